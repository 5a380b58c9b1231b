"""Keep large buffers in the process heap instead of a fresh mapping per allocation.

glibc serves every allocation above its mmap threshold (128 KiB, adapting up to at most 32 MiB)
with a new mapping that the kernel faults in and zeroes page by page, and unmaps it again on
free. A 2K photo's planes are 6-50 MB, and every stage of acir allocates a few of them, so a
worker spent a fifth of its time in page faults, and two workers on one machine contended in
the kernel for it. Raising the threshold (and the trim threshold, so freed memory stays for the
next photo) keeps such buffers in the heap: six train photos through the dataset pipeline in one
process took 7.8-8.0 s instead of 9.8-9.9 s, with 47 k minor page faults instead of 174-181 k.
The price is that a worker's resident memory stays at its peak between photos.

That holds only in the main arena. A thread's allocations come from an arena of its own, made of
64 MiB heaps that glibc unmaps once they empty whatever the thresholds say, and Beam's SDK
harness and Dask's workers run every bundle in such a thread: four photos through the dataset
stages in a thread faulted 78-82 k pages and took 4.8-5.2 s, in the main thread 11-15 faults and
4.4-4.5 s. So the process is also held to one arena (``M_ARENA_MAX``), which the threads created
from then on share, and ``MALLOC_ARENA_MAX=1`` is put in the environment for the worker processes
it starts (Beam's multi_processing workers, a LocalCluster's): set at their start, it covers the
threads they make before any acir code runs (the same four photos in a thread: 26-35 faults,
4.0-4.1 s). With one compute thread per worker, one arena costs no lock contention.

Kept memory can fragment: a Dask worker's event-loop thread allocates small objects between a
photo's large buffers in the one arena, and glibc returns only the free memory at the heap's
top. There a worker's resident memory grew by ~75 MB a photo (8 train photos x 4 samples: 1.2 GB,
20: 2.1 GB, 64: 5.5 GB; all but 0.4 GB of it free), which a dataset of thousands of photos would
not survive. :func:`release_free_memory` hands such free pages back once the process holds more
than a limit; the pipelines call it after each row.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_DONE: list[int] = []
_LIBC: list = []


def _libc():
    if not _LIBC:
        name = ctypes.util.find_library("c")
        try:
            _LIBC.append(ctypes.CDLL(name) if name else None)
        except OSError:  # pragma: no cover - no C library to load
            _LIBC.append(None)
    return _LIBC[0]


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc; 0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_free_memory(limit: int = 2 << 30) -> bool:
    """When the process holds more than ``limit`` bytes, give the heap's free pages back to the
    system (glibc ``malloc_trim``: the top of the heap and whole free pages inside it). Cheap to
    call often (a read of /proc); the pages handed back fault in again when next used, which at
    a 2 GiB limit is once every ~20 photos of a fragmenting worker. Returns whether it trimmed."""
    if resident_bytes() <= limit:
        return False
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


def keep_large_buffers(threshold: int = 1 << 30) -> bool:
    """Serve allocations up to ``threshold`` bytes from the heap and keep freed memory for reuse,
    in one arena for all threads, here and in the processes started from here (once per process;
    later calls do nothing). Returns whether the C library took the setting (False where it is
    not glibc, e.g. macOS or musl: nothing changes there)."""
    if _DONE:
        return True
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    value = ctypes.c_int(min(int(threshold), 2**31 - 1))
    ok = bool(mallopt(_M_MMAP_THRESHOLD, value)) and bool(mallopt(_M_TRIM_THRESHOLD, value)) \
        and bool(mallopt(_M_ARENA_MAX, ctypes.c_int(1)))
    if ok:
        os.environ.setdefault("MALLOC_ARENA_MAX", "1")  # read by glibc when a child process starts
        _DONE.append(threshold)
    return ok
