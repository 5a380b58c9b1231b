"""Decoder speed and memory against Pillow (libjpeg-turbo) and the paper's pure-Python decoder.

Per image, 2048×1024 q75 4:2:0 photos (``../shared/datasets/eval`` re-encoded as the paper's
files, or generated if that folder is absent), all measured in this run:

* clean decode: ours vs Pillow's ``Image.open().convert("RGB")`` (target ≤ 4×);
* corrupted at BER 1e-5 (aes-cbc-essiv:sha256, region=scan): our robust decode vs Pillow's *clean*
  decode time (target ≤ 6×), for both resync methods;
* the first decode in a fresh process with a warm numba cache (target < 2 s);
* peak extra memory during a decode, from tracemalloc (numpy reports to it), vs the RGB size
  (target ≤ 4×);
* with ``--paper-code DIR`` (a checkout of wenyang001/Two-ACIR; needs opencv and matplotlib):
  the paper's decoder on one corrupted file, its SCA stubbed out so only decoding is timed.

    python benchmarks/bench_decoder.py [--images 8] [--seeds 2] [--paper-code PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

from acir_core.bitflip import corrupt
from acir_core.jpeg.decoder import decode
from timing import best_time

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "datasets" / "eval"


def paper_files(n: int) -> list[tuple[str, bytes]]:
    """The paper's kind of file: 2048×1024, baseline, quality 75, 4:2:0, no EXIF."""
    out = []
    paths = sorted(EVAL.glob("*.jpg"))[:n]
    if paths:
        for p in paths:
            buf = io.BytesIO()
            Image.open(p).convert("RGB").resize((2048, 1024)).save(buf, "JPEG", quality=75, subsampling=2)
            out.append((p.name, buf.getvalue()))
        return out
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import photo_like  # generated stand-ins when ../shared is absent

    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(photo_like(2048, 1024, seed=i)).save(buf, "JPEG", quality=75, subsampling=2)
        out.append((f"generated-{i}", buf.getvalue()))
    return out


def pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def peak_memory(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def fresh_process_first_decode(path: Path) -> float:
    code = ("import time; t = time.perf_counter(); from acir_core.jpeg.decoder import decode; "
            f"decode(open({str(path)!r}, 'rb').read()); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(out.stdout.strip())


def paper_decode_time(paper_dir: Path, data: bytes) -> float | None:
    code_dir = paper_dir / "Robust decoder"
    if not code_dir.is_dir():
        print(f"paper code: {code_dir} not found; skipped")
        return None
    sys.path.insert(0, str(code_dir))
    try:
        import decoder as paper  # type: ignore[import-not-found]
    except ImportError as exc:
        print(f"paper code: cannot import ({exc}); skipped")
        return None
    paper.image_transfer = lambda rgb: (rgb, rgb)  # time the decoder alone, not the paper's SCA
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints every marker and table
        image, _ = paper.JpegDecoder().decode_image(data)
    elapsed = time.perf_counter() - t
    print(f"paper code decoded a {image.size[0]}x{image.size[1]} image")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--ber", type=float, default=1e-5)
    ap.add_argument("--paper-code", type=Path, help="checkout of wenyang001/Two-ACIR to time its decoder")
    args = ap.parse_args()
    files = paper_files(args.images)
    decode(files[0][1])  # compile / load the numba cache outside the timings

    rows = []
    for name, data in files:
        t_pil = best_time(lambda: pillow_decode(data))
        t_ours = best_time(lambda: decode(data, "strict"))
        corrupted = [corrupt(data, ber=args.ber, seed=s).data for s in range(args.seeds)]
        t_look = statistics.mean(best_time(lambda: decode(c, resync="lookahead"), 2) for c in corrupted)
        t_paper = statistics.mean(best_time(lambda: decode(c, resync="paper"), 2) for c in corrupted)
        rows.append((name, len(data), t_pil, t_ours, t_look, t_paper))

    print(f"decoder benchmark: {len(files)} images 2048x1024 q75 4:2:0, BER {args.ber:g} x {args.seeds} seeds "
          f"(aes-cbc-essiv:sha256, region=scan); best-of-3 times in ms")
    head = f"{'image':<34} {'KB':>5} {'Pillow':>7} {'ours':>7} {'ratio':>6} {'robust':>7} {'ratio':>6} " \
           f"{'paper-rs':>8} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for name, size, t_pil, t_ours, t_look, t_paper in rows:
        print(f"{name[:34]:<34} {size // 1024:>5} {1e3 * t_pil:>7.1f} {1e3 * t_ours:>7.1f} {t_ours / t_pil:>5.2f}x "
              f"{1e3 * t_look:>7.1f} {t_look / t_pil:>5.2f}x {1e3 * t_paper:>8.1f} {t_paper / t_pil:>5.2f}x")
    r = np.array([row[2:] for row in rows])
    print(f"{'mean ratio to Pillow clean decode':<34} {'':>5} {'':>7} {'':>7} {np.mean(r[:, 1] / r[:, 0]):>5.2f}x "
          f"{'':>7} {np.mean(r[:, 2] / r[:, 0]):>5.2f}x {'':>8} {np.mean(r[:, 3] / r[:, 0]):>5.2f}x")
    print("columns: ours = strict decode of the clean file (target <= 4x Pillow); robust = lookahead resync on the "
          "corrupted file, paper-rs = paper-style resync (target <= 6x Pillow's clean time)")

    tmp = REPO / ".bench_first_decode.jpg"
    tmp.write_bytes(corrupt(files[0][1], ber=args.ber, seed=0).data)
    try:
        first = fresh_process_first_decode(tmp)
    finally:
        tmp.unlink()
    print(f"first decode in a fresh process (warm numba cache, imports included): {first:.2f} s (target < 2 s)")

    data = corrupt(files[0][1], ber=args.ber, seed=0).data
    rgb_bytes = 2048 * 1024 * 3
    peak = peak_memory(lambda: decode(data))
    print(f"peak traced memory during a robust decode: {peak / 2**20:.1f} MiB = {peak / rgb_bytes:.2f}x the RGB "
          f"output ({rgb_bytes / 2**20:.1f} MiB), output included (target <= 4x extra)")

    if args.paper_code:
        t_paper_code = paper_decode_time(args.paper_code, data)
        if t_paper_code is not None:
            ours = best_time(lambda: decode(data, resync="paper"), 3)
            print(f"paper's pure-Python decoder on {files[0][0]} (BER {args.ber:g}): {t_paper_code:.1f} s; "
                  f"ours (paper resync) {1e3 * ours:.1f} ms: {t_paper_code / ours:,.0f}x faster")


if __name__ == "__main__":
    main()
