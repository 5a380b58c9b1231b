"""The README's first commands, run as a new user would: a fresh virtual environment, exactly the
README's install line, then its main command; the damaged examples must go through the network."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_first_commands() -> tuple[str, str]:
    """(install command, main command) from the README's first ``pip install ... && acir ...`` line."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if "pip install" in line and "acir restore" in line:
            parts = [p.strip() for p in line.split("&&")]
            install = next(p for p in parts if "pip install" in p)
            main = next(p for p in parts if p.startswith("acir "))
            return install, main
    raise AssertionError("README.md has no line with 'pip install ... && acir restore ...'")


def test_readme_names_an_install_and_a_restore_command():
    install, main = readme_first_commands()
    assert re.search(r"pip install \S*\[train\]", install), install
    assert main.startswith("acir restore examples/damaged"), main


def _copy_checkout(dst: Path) -> None:
    """The files a fresh clone has (git's list), so the install sees no build leftovers."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the checkout")
def test_readme_install_line_and_main_command_run_the_network(tmp_path):
    install, main = readme_first_commands()
    repo, venv = tmp_path / "repo", tmp_path / "venv"
    _copy_checkout(repo)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = dict(os.environ, PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    env.pop("PYTHONPATH", None)
    env.pop("NUMBA_CACHE_DIR", None)
    t0 = time.perf_counter()
    r = subprocess.run(install.replace("python3", str(venv / "bin" / "python"), 1), shell=True, cwd=repo, env=env,
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    t1 = time.perf_counter()
    r = subprocess.run(shlex.split(main), cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    t2 = time.perf_counter()
    print(f"README install {t1 - t0:.0f} s, first run of '{main}' {t2 - t1:.1f} s")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "compiling" not in r.stderr, "the install should have shipped compiled kernels:\n" + r.stderr[-2000:]
    out = repo / shlex.split(main)[shlex.split(main).index("--out") + 1]
    summary = json.loads((out / "summary.json").read_text())
    damaged = [rec for rec in summary["records"] if rec["status"] == "restored"]
    assert damaged and all(rec["stage"] == "gca" for rec in damaged), summary["stage_counts"]
    assert summary["stage_counts"] == {"gca": len(damaged)}
