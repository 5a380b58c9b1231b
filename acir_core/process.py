"""What every acir process that does the work sets up once: the CLI, pipeline and restore
workers, training data workers, and the benchmarks that stand in for them."""
from __future__ import annotations

from acir_core.bands import set_threads
from acir_core.blas import limit_blas_threads
from acir_core.heap import keep_large_buffers


def tune_process(threads: int | None = None) -> None:
    """One BLAS thread (:mod:`acir_core.blas`: acir's matrices are small, extra threads only
    spin), photo-sized buffers kept in the heap (:mod:`acir_core.heap`) and, when ``threads``
    is given, that many threads for a photo's pixel kernels (:mod:`acir_core.bands`: a process
    among several sharing the cores takes its share). Idempotent."""
    limit_blas_threads()
    keep_large_buffers()
    if threads is not None:
        set_threads(threads)
