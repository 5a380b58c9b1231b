"""Shared timing helper for the benchmarks: best of N runs, after a warm-up."""
from __future__ import annotations

import time


def best_time(fn, repeat: int = 3, warmup: bool = True) -> float:
    """Seconds of the fastest of ``repeat`` calls: the least disturbed by a busy machine."""
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
