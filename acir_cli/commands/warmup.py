"""``acir warm-up``: compile the decoder and SCA kernels now (editable installs, another CPU or
numba version), so that the first restore starts at once."""
from __future__ import annotations

import argparse

from acir_core.jit import PATHS, cache_dir, warm_up


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("warm-up", help="compile the decoder and SCA kernels for this machine now (once)",
                       description="A normal install ships compiled kernels; an editable install, another CPU "
                                   "or another numba version compiles them on first use. This does it now.")
    p.add_argument("--cache-dir", help=f"compile into this folder (default: {cache_dir()})")
    p.add_argument("--quick", action="store_true", help="one small grayscale photo only")
    p.add_argument("--paths", help=f"comma-separated subset of {','.join(PATHS)}")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    done = warm_up(args.cache_dir, quick=args.quick, paths=tuple(args.paths.split(",")) if args.paths else None)
    state = "all were cached" if not done.compiled else "cached for later runs"
    print(f"acir: {done.compiled} kernel signatures compiled in {done.seconds:.1f} s ({state}) in {done.cache_dir}")
    return 0
