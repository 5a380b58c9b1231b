"""What every acir process that does the work sets up once: the CLI, pipeline and restore
workers, training data workers, and the benchmarks that stand in for them."""
from __future__ import annotations

from acir_core.blas import limit_blas_threads
from acir_core.heap import keep_large_buffers


def tune_process() -> None:
    """One BLAS thread (:mod:`acir_core.blas`: acir's matrices are small, extra threads only
    spin) and photo-sized buffers kept in the heap (:mod:`acir_core.heap`). Idempotent."""
    limit_blas_threads()
    keep_large_buffers()
