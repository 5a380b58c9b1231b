"""Keep large buffers in the process heap instead of a fresh mapping per allocation.

glibc serves every allocation above its mmap threshold (128 KiB, adapting up to at most 32 MiB)
with a new mapping that the kernel faults in and zeroes page by page, and unmaps it again on
free. A 2K photo's planes run to tens of MB, and every stage of acir allocates a few of them, so a
worker spent much of its time in page faults, and two workers on one machine contended in the
kernel for it. Raising the threshold (and the trim threshold, so freed memory stays for the
next photo) keeps such buffers in the heap (measurements in benchmarks/HISTORY.md). The price is
that a worker's resident memory stays at its peak between photos.

That holds only in the main arena. A thread's allocations come from an arena of its own, made of
64 MiB heaps that glibc unmaps once they empty whatever the thresholds say, and Beam's SDK
harness and Dask's workers run every bundle in such a thread, which then faults its buffers in
page by page again. So the process is also held to one arena (``M_ARENA_MAX``), which the threads
created from then on share, and ``MALLOC_ARENA_MAX=1`` is put in the environment for the worker
processes it starts (Beam's multi_processing workers, a LocalCluster's): set at their start, it
covers the threads they make before any acir code runs (measurements in benchmarks/HISTORY.md).
With one compute thread per worker, one arena costs no lock contention.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_DONE: list[int] = []


def keep_large_buffers(threshold: int = 1 << 30) -> bool:
    """Serve allocations up to ``threshold`` bytes from the heap and keep freed memory for reuse,
    in one arena for all threads, here and in the processes started from here (once per process;
    later calls do nothing). Returns whether the C library took the setting (False where it is
    not glibc, e.g. macOS or musl: nothing changes there)."""
    if _DONE:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
    except OSError:  # pragma: no cover - no C library to load
        mallopt = None
    if mallopt is None:
        return False
    value = ctypes.c_int(min(int(threshold), 2**31 - 1))
    ok = bool(mallopt(_M_MMAP_THRESHOLD, value)) and bool(mallopt(_M_TRIM_THRESHOLD, value)) \
        and bool(mallopt(_M_ARENA_MAX, ctypes.c_int(1)))
    if ok:
        os.environ.setdefault("MALLOC_ARENA_MAX", "1")  # read by glibc when a child process starts
        _DONE.append(threshold)
    return ok
