"""Row bands of one photo worked on by several threads at once.

The pixel kernels (IDCT, colour conversion, MCU edges, luma, masks) are compiled without the
GIL and treat each row independently, so the rows can be split among the machine's cores and
each band computed exactly as the whole would have been: the output is the same bit for bit.
``ACIR_THREADS`` sets how many threads; else what :func:`set_threads` said (``acir restore
--jobs N`` gives each of its N workers its share of the cores); else the cores this process may
use. 1 runs everything on the calling thread, as a pipeline worker with one process per core
may want.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, TypeVar

T = TypeVar("T")

MIN_ROWS = 16  # fewer rows than this per band cost more in hand-over than they save

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_size = 0
_inside = threading.local()  # set while a thread works a band: a band never splits again
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
    return usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _executor(n: int) -> ThreadPoolExecutor:
    """A pool of at least ``n`` - 1 helper threads (the caller works the first band), made again
    after a fork (the child has none of its parent's threads) and when more are asked for; a
    smaller one is never shut down under a caller that may still be handing it work."""
    global _pool, _pool_pid, _pool_size
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size < n:
            _pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="acir-band")
            _pool_pid, _pool_size = os.getpid(), n
        return _pool


def _after_fork() -> None:
    """In a forked child: a fresh lock (another thread may have held the parent's) and no pool."""
    global _lock, _pool, _pool_pid, _pool_size
    _lock = threading.Lock()
    _pool, _pool_pid, _pool_size = None, -1, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _band(work: Callable[[int, int], T], lo: int, hi: int) -> T:
    """``work(lo, hi)`` with this thread marked as working a band."""
    was = getattr(_inside, "flag", False)
    _inside.flag = True
    try:
        return work(lo, hi)
    finally:
        _inside.flag = was


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
    later = [pool.submit(_band, work, lo, hi) for lo, hi in parts[1:]]
    try:
        first = _band(work, *parts[0])
    finally:
        wait(later)  # no band still writes when this returns or raises
    return [first] + [f.result() for f in later]
