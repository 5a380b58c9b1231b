"""Former home of :func:`acir_core.sca.compensate.resolve_thumbnail`."""
from __future__ import annotations

# compatibility: removed once callers use compensate
from acir_core.sca.compensate import resolve_thumbnail

__all__ = ["resolve_thumbnail"]
