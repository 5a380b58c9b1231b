"""What numba compiling costs the README's command, per kernel module and per kernel.

Runs ``acir restore examples/damaged --out DIR --stage sca`` (the README command's work, without
the network) in fresh processes:

1. cold: an empty kernel cache, so every kernel it uses is compiled; each ``numba:compile`` event
   is recorded, and its own time (nested compiles of callees subtracted) is summed per module;
2. warm: the same command again on the cache the cold run filled;
3. prepared: ``acir_core.jit.warm_up`` fills another empty cache (what installing acir does; timed),
   then a fresh process runs the command on it (the first run after an install).

Every run points both ``NUMBA_CACHE_DIR`` and ``ACIR_JIT_CACHE_DIR`` at its own temporary folder,
so neither the tree's nor the user's cache is read or touched.

    python benchmarks/bench_compile.py [--top 15] [--stage sca] [--inputs examples/damaged]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- inside the child

def _child(inputs: list[str], out: str, stage: str, report: str) -> None:
    from numba.core import event

    class Recorder(event.Listener):
        """Own (exclusive) and total time of each compile; compiles nest when a kernel's callees
        compile while it is being typed."""

        def __init__(self):
            self.stack: list[list] = []
            self.done: list[dict] = []

        def on_start(self, ev):
            f = ev.data["dispatcher"].py_func
            name = (f.__module__, f.__qualname__)
            # numba's own helpers (np.empty, reshape, ...) count for the acir kernel that needs them
            owner = name if name[0].startswith("acir") or not self.stack else self.stack[-1][3]
            self.stack.append([time.perf_counter(), 0.0, name, owner, ev.data["args"]])

        def on_end(self, ev):
            t0, children, name, owner, args = self.stack.pop()
            total = time.perf_counter() - t0
            if self.stack:
                self.stack[-1][1] += total
            self.done.append({"module": owner[0], "kernel": owner[1], "function": ".".join(name),
                              "signature": ", ".join(str(a) for a in args) if name == owner else "",
                              "total": total if name == owner else 0.0, "own": total - children})

    rec = Recorder()
    event.register("numba:compile", rec)
    from acir_cli.app import main

    t0 = time.perf_counter()
    rc = main(["restore", *inputs, "--out", out, "--stage", stage])
    wall = time.perf_counter() - t0
    event.unregister("numba:compile", rec)
    Path(report).write_text(json.dumps({"rc": rc, "command_wall": wall, "compiles": rec.done}))


# --------------------------------------------------------------------------- the parent

def _env(cache: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), ACIR_JIT_CACHE_DIR=str(cache))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def run_child(cache: Path, tmp: Path, name: str, args) -> dict:
    report = tmp / f"{name}.json"
    cmd = [sys.executable, __file__, "--child", "--report", str(report), "--stage", args.stage,
           "--out", str(tmp / f"out-{name}"), *args.inputs]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=_env(cache), cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    res = json.loads(report.read_text())
    res["process_wall"] = time.perf_counter() - t0
    return res


def prepare_cache(cache: Path) -> float | None:
    """Seconds ``acir_core.jit.warm_up`` takes to fill ``cache`` (None where it does not exist)."""
    code = "import acir_core.jit as j, sys; j.warm_up(); sys.exit(0)"
    probe = subprocess.run([sys.executable, "-c", "import acir_core.jit"], env=_env(cache), cwd=REPO,
                           capture_output=True)
    if probe.returncode:
        return None
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=_env(cache), cwd=REPO, check=True)
    return time.perf_counter() - t0


def summarise(name: str, res: dict, top: int) -> None:
    comp = res["compiles"]
    own = sum(c["own"] for c in comp)
    kernels = [c for c in comp if c["signature"]]
    print(f"{name}: process wall {res['process_wall']:.1f} s (command {res['command_wall']:.1f} s), "
          f"{len(kernels)} kernel signatures compiled ({len(comp)} with numba's helpers), {own:.1f} s compiling")
    if not comp:
        return
    by_module: dict[str, list] = defaultdict(lambda: [0.0, 0])
    for c in comp:
        by_module[c["module"]][0] += c["own"]
        by_module[c["module"]][1] += bool(c["signature"])
    print("  per module (seconds, numba helpers they need included; compiles):")
    for mod, (s, n) in sorted(by_module.items(), key=lambda kv: -kv[1][0]):
        print(f"    {mod:34s} {s:6.1f} s  {n:3d}")
    by_kernel: dict[tuple, list] = defaultdict(lambda: [0.0, 0.0, 0])
    for c in comp:
        k = by_kernel[(c["module"], c["kernel"])]
        k[0] += c["own"]
        k[1] += c["total"]
        k[2] += bool(c["signature"])
    print(f"  top {top} kernels (own s with numba helpers, s with acir callees too, signatures):")
    for (mod, kern), (s, t, n) in sorted(by_kernel.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"    {mod.rsplit('.', 1)[-1] + '.' + kern:44s} {s:6.2f}  {t:6.2f}  {n:2d}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="*", default=[str(REPO / "examples" / "damaged")])
    ap.add_argument("--stage", default="sca", choices=("decode", "sca", "gca"))
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--report", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.inputs, args.out, args.stage, args.report)
        return 0
    print(f"acir restore {' '.join(args.inputs)} --stage {args.stage}; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="acir-bench-compile-") as t:
        tmp = Path(t)
        cold_cache, ready_cache = tmp / "cache-cold", tmp / "cache-prepared"
        cold = run_child(cold_cache, tmp, "cold", args)
        summarise("cold (empty cache)", cold, args.top)
        warm = run_child(cold_cache, tmp, "warm", args)
        summarise("warm (the cache the cold run filled)", warm, args.top)
        prep = prepare_cache(ready_cache)
        if prep is None:
            print("prepared: n/a (no acir_core.jit.warm_up here)")
        else:
            print(f"prepared: acir_core.jit.warm_up filled an empty cache in {prep:.1f} s")
            first = run_child(ready_cache, tmp, "prepared", args)
            summarise("first run on the prepared cache", first, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
