"""Row bands of one photo worked on by several threads at once.

The pixel kernels (IDCT, colour conversion, MCU edges, luma, masks) are compiled without the
GIL and treat each row independently, so the rows can be split among the machine's cores and
each band computed exactly as the whole would have been: the output is the same bit for bit.
``ACIR_THREADS`` sets how many threads (default: the cores this process may use, or what
:func:`set_threads` says: ``acir restore --jobs N`` gives each of its N workers its share of the
cores); 1 runs everything on the calling thread, as a pipeline worker with one process per core
may want.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")

MIN_ROWS = 16  # fewer rows than this per band cost more in hand-over than they save

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_size = 0
_inside = threading.local()  # set on the pool's threads: a band never splits again
_default: int | None = None  # set_threads's count


def set_threads(n: int | None) -> None:
    """The threads a photo's kernels use where ``ACIR_THREADS`` does not say (None: the usable
    cores): a process that shares the machine with others of its kind takes its share."""
    global _default
    _default = None if n is None else max(1, int(n))


def threads() -> int:
    """How many threads a photo's kernels use: ``ACIR_THREADS``, else :func:`set_threads`'s
    count, else the usable cores (≥ 1)."""
    env = os.environ.get("ACIR_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    if _default is not None:
        return _default
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _executor(n: int) -> ThreadPoolExecutor:
    """The process's pool of ``n`` - 1 helper threads (the caller works the first band), made
    again after a fork (the child has none of its parent's threads) or when ``n`` changed."""
    global _pool, _pool_pid, _pool_size
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size != n:
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="acir-band",
                                       initializer=_mark_inside)
            _pool_pid, _pool_size = os.getpid(), n
        return _pool


def _mark_inside() -> None:
    _inside.flag = True


def split(n: int, parts: int, min_rows: int = MIN_ROWS) -> list[tuple[int, int]]:
    """``range(n)`` as up to ``parts`` consecutive (lo, hi) bands of at least ``min_rows`` rows,
    as even as they come (one band when ``n`` is small)."""
    k = max(1, min(parts, n // max(min_rows, 1)))
    edges = [n * i // k for i in range(k + 1)]
    return [(edges[i], edges[i + 1]) for i in range(k)]


def over_rows(work: Callable[[int, int], T], n: int, min_rows: int = MIN_ROWS) -> list[T]:
    """``work(lo, hi)`` over bands covering ``range(n)``, on :func:`threads` threads; the results
    in band order. ``work`` must touch only its own rows of anything it writes."""
    n_threads = 1 if getattr(_inside, "flag", False) else threads()
    parts = split(n, n_threads, min_rows)
    if len(parts) == 1:
        return [work(0, n)]
    pool = _executor(n_threads)
    later = [pool.submit(work, lo, hi) for lo, hi in parts[1:]]
    first = work(*parts[0])
    return [first] + [f.result() for f in later]
