"""acir_core.jit: content-stamped kernel cache, compiling ahead, and saying so once.

Kernel runs happen in child processes with their own ACIR_JIT_CACHE_DIR, so that what a fresh
process compiles can be counted and no test touches the tree's or the user's cache."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from acir_core import jit

REPO = Path(__file__).resolve().parents[1]

TOY = textwrap.dedent("""\
    from numba import njit


    @njit(cache=True)
    def plus_one(x):
        return x + 1


    @njit(cache=True)
    def twice(x):
        return 2 * x
    """)

# a child process: the toy package counts as acir's, its kernels run, compiles are counted
CHILD = textwrap.dedent("""\
    import json, sys
    from numba.core import event
    import acir_core.jit as jit
    jit.PACKAGE_DIRS.append(sys.argv[1])
    if sys.argv[2] == "announce":
        jit.announce_compiles(sys.stdout)
    sys.path.insert(0, sys.argv[1])
    with event.install_recorder("numba:compile") as rec:
        import toy
        toy.plus_one(1)
        toy.twice(2)
    print(json.dumps({"compiles": sum(1 for _, ev in rec.buffer if ev.is_start)}))
    """)


def _env(cache: Path) -> dict:
    env = dict(os.environ, ACIR_JIT_CACHE_DIR=str(cache))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _run_toy(pkg: Path, cache: Path, mode: str = "") -> tuple[int, list[str]]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(pkg), mode], env=_env(cache), check=True,
                         capture_output=True, text=True).stdout.splitlines()
    return json.loads(out[-1])["compiles"], out[:-1]


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "toy.py").write_text(TOY)
    return pkg


def test_source_stamp_is_the_content_not_the_mtime(tmp_path: Path):
    src = tmp_path / "k.py"
    src.write_text("x = 1\n")
    before = jit.source_stamp(str(src))
    os.utime(src, (1e9, 1e9))
    assert jit.source_stamp(str(src)) == before
    src.write_text("x = 2\n")
    assert jit.source_stamp(str(src)) != before


def test_cache_survives_a_touch_and_not_an_edit(toy: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    assert _run_toy(toy, cache)[0] == 2
    assert _run_toy(toy, cache)[0] == 0
    assert list(cache.rglob("toy.plus_one-*.nbi")), "entries go under the cache dir, by package folder"
    st = os.stat(toy / "toy.py")
    os.utime(toy / "toy.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**12))  # as an install does
    assert _run_toy(toy, cache)[0] == 0
    (toy / "toy.py").write_text(TOY + "\n# edited\n")  # same functions, lines, bytecode: only the content
    assert _run_toy(toy, cache)[0] == 2


def test_compiling_is_announced_once_and_only_when_it_happens(toy: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    n, lines = _run_toy(toy, cache, "announce")
    assert n == 2 and lines == [jit.ANNOUNCEMENT]
    n, lines = _run_toy(toy, cache, "announce")
    assert n == 0 and lines == []


def test_warm_up_fills_a_cache_a_new_process_then_uses(tmp_path: Path):
    cache = tmp_path / "cache"
    first = jit.warm_up(str(cache), quick=True, paths=("decode",))
    assert first.compiled > 0 and first.cache_dir == str(cache)
    assert list((cache / "acir_core" / "jpeg").glob("entropy.decode_scan-*.nbi"))
    again = jit.warm_up(str(cache), quick=True, paths=("decode",))  # another child process
    assert again.compiled == 0


def test_unknown_warm_up_path_is_refused():
    with pytest.raises(ValueError, match="unknown warm-up paths"):
        jit.warm_up(paths=("decode", "nonsense"))


def test_a_read_only_install_seeds_the_user_cache_from_the_shipped_one(tmp_path: Path, monkeypatch):
    shipped = tmp_path / "site" / "acir_core" / "_jitcache"
    (shipped / "acir_core" / "jpeg").mkdir(parents=True)
    (shipped / "acir_core" / "jpeg" / "entropy.decode_scan-1.py311.nbi").write_bytes(b"index")
    (shipped / "acir_core" / "jpeg" / "entropy.decode_scan-1.py311.1.nbc").write_bytes(b"data")
    monkeypatch.setattr(jit, "SHIPPED", str(shipped))
    monkeypatch.setattr(jit, "_writable", lambda path: False)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    jit._resolve.cache_clear()
    try:
        user = Path(jit._resolve(None, None))
        assert user == tmp_path / "xdg" / "acir" / "numba"
        assert (user / "acir_core" / "jpeg" / "entropy.decode_scan-1.py311.1.nbc").read_bytes() == b"data"
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
        assert Path(jit._resolve(None, str(tmp_path / "numba"))) == tmp_path / "numba" / "acir"
        assert Path(jit._resolve(str(tmp_path / "given"), None)) == tmp_path / "given"
    finally:
        jit._resolve.cache_clear()
