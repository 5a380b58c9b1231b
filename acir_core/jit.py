"""Where acir's numba kernels are cached, how they are compiled ahead, and saying so once.

Compiling the decoder and SCA kernels takes most of a minute; numba's ``cache=True`` keeps the
result, but only after a first run, in ``__pycache__`` folders keyed on the source files. So acir
registers its own cache locator (this module is imported before any kernel is defined): kernels of
the acir packages are cached in ``acir_core/_jitcache/`` when the installed package is writable,
else in the user's cache folder (``$NUMBA_CACHE_DIR/acir`` if set, else
``$XDG_CACHE_HOME/acir/numba``), which is first seeded from ``_jitcache``. An entry is valid
while its source file's *content* is unchanged (a hash, never its mtime, which installing does not
keep). Building the wheel runs :func:`warm_up` over the built package (see ``setup.py``), so a
fresh install ships compiled kernels and its first run compiles nothing. ``ACIR_JIT_CACHE_DIR``
names a cache folder that replaces all of this (tests, benchmarks, the build step).

Numba still checks each entry's CPU, numba version and function bytecode: a cache made on another
machine or with another numba is ignored, and the kernels are compiled (once) as before.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass

from numba.core import caching, event

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.join(PACKAGE_DIR, "_jitcache")
# source folders whose kernels use this cache (tests add their own)
PACKAGE_DIRS: list[str] = [PACKAGE_DIR]
ENV_DIR = "ACIR_JIT_CACHE_DIR"
ANNOUNCEMENT = "acir: compiling the decoder and SCA kernels for this machine (first run only; later runs start at once)"


# --------------------------------------------------------------------------- the cache folder

def _writable(path: str) -> bool:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.access(path, os.W_OK)


def _user_dir() -> str:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.path.join(os.environ["NUMBA_CACHE_DIR"], "acir")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "acir", "numba")


def _seed(src: str, dst: str) -> None:
    """Copy the shipped entries the user cache lacks or holds older copies of (after an upgrade)."""
    for root, _dirs, files in os.walk(src):
        out = os.path.join(dst, os.path.relpath(root, src))
        for name in files:
            if not name.endswith((".nbi", ".nbc")):
                continue
            a, b = os.path.join(root, name), os.path.join(out, name)
            try:
                if not os.path.exists(b) or os.stat(a).st_mtime > os.stat(b).st_mtime:
                    os.makedirs(out, exist_ok=True)
                    tmp = f"{b}.tmp.{os.getpid()}"
                    shutil.copy2(a, tmp)
                    os.replace(tmp, b)
            except OSError:
                return  # a read-only or full cache folder: kernels compile as without one


@functools.lru_cache(maxsize=None)
def _resolve(env_dir: str | None, numba_dir: str | None) -> str:
    if env_dir:
        return os.path.abspath(env_dir)
    if not numba_dir and _writable(SHIPPED):
        return SHIPPED
    user = _user_dir()
    if os.path.isdir(SHIPPED):
        _seed(SHIPPED, user)
    return user


def cache_dir() -> str:
    """The folder acir's kernels are cached in, in this process (see the module docstring)."""
    return _resolve(os.environ.get(ENV_DIR) or None, os.environ.get("NUMBA_CACHE_DIR") or None)


# --------------------------------------------------------------------------- the locator

@functools.lru_cache(maxsize=None)
def _content_hash(path: str, mtime_ns: int, size: int) -> str:
    # mtime and size only key the memo (a file edited while we run is hashed again), not the stamp
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def source_stamp(path: str) -> tuple[str, str]:
    """What a cache entry's validity rests on: the hash of its source file's bytes."""
    st = os.stat(path)
    return ("sha256", _content_hash(path, st.st_mtime_ns, st.st_size))


def _package_subdir(py_file: str) -> str | None:
    """``<package>/<subfolder>`` of a source file inside one of PACKAGE_DIRS, else None."""
    path = os.path.abspath(py_file)
    for root in PACKAGE_DIRS:
        rel = os.path.relpath(os.path.dirname(path), root)
        if rel == "." or not (rel.startswith("..") or os.path.isabs(rel)):
            return os.path.normpath(os.path.join(os.path.basename(root), rel))
    return None


class AcirCacheLocator(caching._CacheLocator):
    """Numba cache locator for the acir packages: content-stamped, in :func:`cache_dir`."""

    def __init__(self, py_func, py_file, subdir: str):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(cache_dir(), subdir)

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self):
        return source_stamp(self._py_file)

    def get_disambiguator(self) -> str:
        return str(self._lineno)  # two kernels of one name in a file differ by their line

    @classmethod
    def from_function(cls, py_func, py_file):
        subdir = _package_subdir(py_file) if os.path.isfile(py_file) else None
        if subdir is None:
            return None  # not ours: numba's own locators take it
        self = cls(py_func, py_file, subdir)
        try:
            self.ensure_cache_path()
        except OSError:
            return None  # an unwritable cache: numba's fallbacks (user-wide cache) take it
        return self


def install() -> None:
    """Put :class:`AcirCacheLocator` first in numba's list (idempotent)."""
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # renamed in numba 0.59
    classes = impl._locator_classes
    if AcirCacheLocator not in classes:
        classes.insert(0, AcirCacheLocator)


if __name__ != "__main__":  # ``python -m acir_core.jit`` runs a second copy: the package's is installed
    install()


# --------------------------------------------------------------------------- saying it once

class _Announcer(event.Listener):
    def __init__(self, stream):
        self.stream = stream
        self.said = False

    def on_start(self, ev):
        if self.said:
            return
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        if func is not None and _package_subdir(getattr(func.__code__, "co_filename", "")) is not None:
            self.said = True
            print(ANNOUNCEMENT, file=self.stream or sys.stderr, flush=True)

    def on_end(self, ev):
        pass


_announcer: _Announcer | None = None
_lock = threading.Lock()


def announce_compiles(stream=None) -> None:
    """Print :data:`ANNOUNCEMENT` to ``stream`` (default stderr) the first time in this process an
    acir kernel starts compiling; loading a cached kernel says nothing. Calling it again only
    changes the stream."""
    global _announcer
    with _lock:
        if _announcer is None:
            _announcer = _Announcer(stream)
            event.register("numba:compile", _announcer)
        else:
            _announcer.stream = stream


# --------------------------------------------------------------------------- compiling ahead

@dataclass(frozen=True, kw_only=True)
class WarmUp:
    """What :func:`warm_up` did: kernel signatures compiled (0: all were cached), seconds, where."""

    compiled: int
    seconds: float
    cache_dir: str


class _Counter(event.Listener):
    def __init__(self):
        self.n = 0

    def on_start(self, ev):
        pass

    def on_end(self, ev):
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        if func is not None and _package_subdir(func.__code__.co_filename) is not None:
            self.n += 1


PATHS = ("decode", "sca", "paper", "metrics")
LAYOUTS = ("4:2:0", "4:2:2", "4:4:4", "4:4:0", "gray")
BERS = (3e-4, 2e-3)


def warm_up(cache: str | None = None, *, quick: bool = False, paths: tuple[str, ...] | None = None) -> WarmUp:
    """Compile every kernel signature that decoding, SCA (ours and the paper's), the fill and the
    metrics use, by running the public functions on small synthetic photos (every sampling layout,
    with and without restart markers and thumbnails, clean and damaged), into :func:`cache_dir`
    or, in a child process, into ``cache``. ``quick``: one small grayscale photo only; ``paths``:
    a subset of :data:`PATHS`."""
    if cache is not None and os.path.abspath(cache) != cache_dir():
        return _warm_up_elsewhere(cache, quick, paths)
    paths = PATHS if paths is None else tuple(paths)
    unknown = set(paths) - set(PATHS)
    if unknown:
        raise ValueError(f"unknown warm-up paths {sorted(unknown)}; choose from {', '.join(PATHS)}")
    counter = _Counter()
    t0 = time.perf_counter()
    event.register("numba:compile", counter)
    try:
        for data in _photos(quick):
            _exercise(data, paths, quick)
    finally:
        event.unregister("numba:compile", counter)
    return WarmUp(compiled=counter.n, seconds=time.perf_counter() - t0, cache_dir=cache_dir())


def _picture(width: int, height: int, seed: int):
    """Something photo-like: gradients, edges and texture (SCA needs structure to work on)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([96 + 80 * np.sin(x / 23 + seed), 64 + 0.5 * y + 40 * np.cos(y / 17),
                    128 + 60 * np.sin((x + y) / 31)], axis=-1)
    rgb[(x - width / 3) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2] += 50
    rgb[:, width // 2 : width // 2 + 6] = 20
    rgb += rng.normal(0, 6, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _encode(rgb, layout: str, restart: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    kw = {"quality": 80, "restart_marker_blocks": restart} if restart else {"quality": 80}
    buf = io.BytesIO()
    if layout == "gray":
        Image.fromarray(rgb).convert("L").save(buf, "JPEG", **kw)
        return buf.getvalue()
    if layout != "4:4:0":
        Image.fromarray(rgb).save(buf, "JPEG", subsampling=layout, **kw)
        return buf.getvalue()
    # Pillow writes no 4:4:0: a 4:2:2 file of twice the width and half the height has the same MCU
    # count and block order, so its SOF with Y's sampling 2x1 -> 1x2 and the size swapped is one
    h, w = rgb.shape[:2]
    wide = np.ascontiguousarray(rgb[: h // 2].repeat(2, axis=1)) if h >= 2 else rgb
    Image.fromarray(wide).save(buf, "JPEG", subsampling="4:2:2", **kw)
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    hh, ww = wide.shape[:2]
    data[sof + 5 : sof + 9] = (2 * hh).to_bytes(2, "big") + (ww // 2).to_bytes(2, "big")
    assert data[sof + 11] == 0x21
    data[sof + 11] = 0x12
    return bytes(data)


def _jfif_thumbnail(data: bytes, rgb) -> bytes:
    """``data`` with its APP0 replaced by a JFIF one that carries ``rgb`` (small) uncompressed."""
    import struct

    th, tw = rgb.shape[:2]
    payload = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01" + bytes([tw, th]) + rgb.tobytes()
    app0 = b"\xff\xe0" + struct.pack(">H", len(payload) + 2) + payload
    if data[2:4] == b"\xff\xe0":
        return data[:2] + app0 + data[4 + int.from_bytes(data[4:6], "big"):]
    return data[:2] + app0 + data[2:]


def _photos(quick: bool):
    """(JPEG bytes) for every case the warm-up runs."""
    from acir_core.thumbnail import synthetic_thumbnail, with_thumbnail

    if quick:
        yield _encode(_picture(48, 32, 0), "gray", 0)
        return
    for i, layout in enumerate(LAYOUTS):
        rgb = _picture(208, 144, i)
        for restart in (0, 4):
            data = _encode(rgb, layout, restart)
            yield with_thumbnail(data)  # an EXIF JPEG thumbnail
            yield data if i % 2 else _jfif_thumbnail(data, synthetic_thumbnail(rgb, 24))


def _exercise(data: bytes, paths: tuple[str, ...], quick: bool) -> None:
    from acir_core.bitflip import corrupt
    from acir_core.errors import AcirError
    from acir_core.jpeg.decoder import decode

    clean = decode(data, "strict")
    if "decode" in paths:  # the repaired JPEG's entropy coder (acir restore --format jpeg)
        from acir_core.jpeg.rewrite import write_jpeg

        write_jpeg(clean.frame, clean.qtables, clean.coefficients, restart_interval=clean.restart_intervals[0])
    damaged = [data]
    for j, ber in enumerate(BERS[:1] if quick else BERS):
        for seed in (1, 2):
            damaged.append(corrupt(data, ber=ber, seed=10 * j + seed).data)
    for d in damaged:
        try:
            decode(d, "strict")
        except AcirError:
            pass
        try:
            results = {r: decode(d, "robust", resync=r) for r in ("lookahead", "paper")}
        except AcirError:
            continue
        if "sca" in paths or "paper" in paths:
            _compensate(d, results, paths)
        if "metrics" in paths:
            from acir_core import metrics

            metrics.y_psnr(results["lookahead"].rgb, results["paper"].rgb)
            metrics.y_ssim(results["lookahead"].rgb, results["paper"].rgb)


def _compensate(data: bytes, results: dict, paths: tuple[str, ...]) -> None:
    """SCA as restoring a photo runs it (acir_core.sca.compensate): ours with every fill, the
    paper's; and the decode stage's damage mask."""
    from acir_core.sca.compensate import FILLS, compensate, resolve_thumbnail
    from acir_core.sca.marks import pixel_mask

    thumb, _ = resolve_thumbnail(data, "auto")
    result = results["lookahead"]
    sr = result.scans[0]
    pixel_mask(result, sr, (sr.suspect | ~sr.decoded).reshape(sr.mcu_rows, sr.mcu_cols), 0)
    if "sca" in paths:
        from acir_core.jpeg.tables import scan_cell
        from acir_core.sca.evidence import judge

        alone = compensate(result, None, method="aware", fill="none")  # as the engine runs it first
        for fill in FILLS:
            if fill != "thumbnail" or thumb is not None:
                compensate(result, thumb, method="aware", fill=fill)
        if thumb is not None:  # framed, registered and toned on what the unguided SCA has in place
            import numpy as np

            from acir_core.sca.compensate import fill_breaks
            from acir_core.sca.fill import breaking_cells

            guided = compensate(result, thumb, method="aware", reference=alone)
            # the run-tone fit needs 1000 placed MCUs, more than these photos hold: its kernel directly
            from acir_core.sca.runtone import _demeaned
            _demeaned(np.zeros((2, 8)), np.zeros(2, np.int64), np.ones(2))
            # nor do these photos lock runs in off for the unguided SCA's places to move them
            from acir_core.sca.crosscheck import _RunTable, _pair_cost
            from acir_core.sca.dcfit import Placement
            from acir_core.sca.runs import Run
            table = _RunTable([Placement(run=Run(0, 2, np.arange(2)), shift=0, dc=(0,), cost=0.0, anchored=True,
                                         first=0, count=4)])
            owner, dec = table.owners(4, [0], 1)
            _pair_cost(np.arange(4), owner, dec, (np.zeros((4, 8)),), (np.zeros((4, 8)),), 2)
            # nor break in the scan's first row where the thumbnail is asked
            from acir_core.sca.runs import step_here
            step_here(np.zeros((16, 3)), 8)
            judge(guided.rgb, scan_cell(result.frame, sr.components), guided.thumbnail)
            # where the engine's two SCAs place content differently (acir_core.sca.dispute)
            from acir_core.sca.dispute import disputed, local_evidence
            from acir_core.thumbframe import luma
            cell = scan_cell(result.frame, sr.components)
            ev = local_evidence(guided.rgb, cell, luma(guided.thumb_up))
            local_evidence(guided.rgb, cell, None)
            disputed(guided.unfilled, 255 - guided.unfilled, ev, ev, cell)  # unlike everywhere: every step
            fill_breaks(guided, result)  # the chosen restoration's breaking precautions (every cell judged here)
            everywhere = np.ones_like(guided.mask)
            breaking_cells(guided.unfilled, everywhere, ~everywhere, np.ones((1, 1), bool), (16, 16), 6.0)
        judge(alone.rgb, scan_cell(result.frame, sr.components), None)
    if "paper" in paths:
        compensate(results["paper"], thumb, method="paper")


def _warm_up_elsewhere(cache: str, quick: bool, paths) -> WarmUp:
    import json
    import subprocess

    cmd = [sys.executable, "-c", "import sys; from acir_core.jit import main; sys.exit(main())", "--json"]
    cmd += ["--quick"] if quick else []
    if paths:
        cmd += ["--paths", ",".join(paths)]
    env = dict(os.environ, **{ENV_DIR: os.path.abspath(cache)})
    # the child imports this very acir_core, wherever it is
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(PACKAGE_DIR), env.get("PYTHONPATH")) if p)
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return WarmUp(**json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """``python -m acir_core.jit``: compile the kernels now (what ``acir warm-up`` runs)."""
    p = argparse.ArgumentParser(prog="acir warm-up", description="compile acir's numba kernels for this "
                                "machine now, so that the first restore starts at once")
    p.add_argument("--cache-dir", help=f"compile into this folder (default: {cache_dir()})")
    p.add_argument("--quick", action="store_true", help="one small grayscale photo only")
    p.add_argument("--paths", help=f"comma-separated subset of {','.join(PATHS)}")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    paths = tuple(args.paths.split(",")) if args.paths else None
    if not args.json:
        print(f"acir: compiling the kernels into {args.cache_dir or cache_dir()} ...", file=sys.stderr, flush=True)
    done = warm_up(args.cache_dir, quick=args.quick, paths=paths)
    if args.json:
        import json
        import dataclasses

        print(json.dumps(dataclasses.asdict(done)))
    else:
        print(f"acir: {done.compiled} kernel signatures compiled in {done.seconds:.1f} s "
              f"({'all were cached' if not done.compiled else 'cached for later runs'}) in {done.cache_dir}")
    return 0


if __name__ == "__main__":
    from acir_core.jit import main as _main  # the installed module's, not this copy's

    sys.exit(_main())
