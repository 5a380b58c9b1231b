"""acir core library: storage-fault simulation, JPEG parsing, thumbnails and metrics.

Pure numpy/Pillow/pycryptodome/numba code. It never imports Apache Beam or torch, so the
pipelines and the training package can both depend on it without dragging each other in.
"""
from importlib.metadata import PackageNotFoundError, version as _version

# first: numba must know where acir's kernels are cached before any of them is defined
from acir_core import jit as _jit  # noqa: F401

try:
    __version__ = _version("acir")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0+source"

__all__ = ["__version__"]
