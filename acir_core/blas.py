"""One BLAS thread per process.

acir's linear algebra is small: the thumbnail DC fit solves a few hundred unknowns, the run DC
solve a few dozen. OpenBLAS would still start a thread per core for it, and its threads wait by
spinning; with a worker process per core (``acir restore --jobs``, Beam and Dask workers) that is
twice as many spinning threads as cores (measurements in benchmarks/HISTORY.md).
"""
from __future__ import annotations

_DONE: list[int] = []


def limit_blas_threads(threads: int = 1) -> bool:
    """Cap the BLAS/OpenMP pools of this process at ``threads`` (once per process; later calls do
    nothing). Returns whether a limit was applied (False without threadpoolctl)."""
    if _DONE:
        return True
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a core dependency, but never fatal
        return False
    # threadpoolctl caps the pools of the libraries loaded so far: numpy's OpenBLAS loads with
    # numpy, and an entry point that calls this first thing (a worker's warm-up, a benchmark's
    # fresh loop) may not have imported it yet, which left two threads per process
    import numpy  # noqa: F401

    threadpool_limits(limits=threads, user_api="blas")
    _DONE.append(threads)
    return True
