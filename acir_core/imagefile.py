"""Decode image files with the standard decoder (Pillow / libjpeg-turbo), damage included.

This is the baseline every acir stage is measured against: what an ordinary program shows for
a corrupted photo. libjpeg-turbo stops at the first undecodable Huffman code and Pillow then
fills the rest with grey; we keep that image (rather than an exception) and say that it is
incomplete, so its quality can be measured.
"""
from __future__ import annotations

import io
import re
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFile

from acir_core.errors import BadInput, ImageTooLarge

DEFAULT_MAX_PIXELS = 200_000_000  # like Pillow's decompression-bomb guard, as a clear error
_TRUNCATED_LOCK = threading.Lock()  # LOAD_TRUNCATED_IMAGES is a Pillow global


@dataclass(frozen=True, eq=False, kw_only=True)
class LoadedImage:
    """``rgb``: H×W×3 uint8. ``complete``: the decoder read all image data without error;
    ``problem``: what it reported when not. ``format``: Pillow's name for the file type."""

    rgb: np.ndarray = field(repr=False)
    format: str
    complete: bool
    problem: str | None = None


def _plain(exc: BaseException) -> str:
    """An exception's text without object addresses (Pillow names the ``<_io.BytesIO object at
    0x...>`` it read): messages end up in dead-letter files, which reruns must write identically."""
    return re.sub(r" ?<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc)) or type(exc).__name__


def load_rgb(data: bytes, source: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode any Pillow-readable image to RGB; a damaged JPEG gives what the decoder managed."""
    if not data:
        raise BadInput("empty file", source=source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
    except Exception as exc:
        raise BadInput(f"not an image Pillow can read ({_plain(exc)})", source=source) from None
    with im:
        fmt = im.format or "unknown"
        if im.width * im.height > max_pixels:
            raise ImageTooLarge(f"{im.width}x{im.height} pixels exceeds the limit of {max_pixels}", source=source)
        problem = None
        try:
            im.load()
        except Exception as exc:  # libjpeg errors surface as OSError/SyntaxError subclasses
            problem = _plain(exc)
            with _TRUNCATED_LOCK:
                old = ImageFile.LOAD_TRUNCATED_IMAGES
                ImageFile.LOAD_TRUNCATED_IMAGES = True
                try:
                    with Image.open(io.BytesIO(data)) as again:
                        again.load()
                        rgb = np.asarray(again.convert("RGB"))
                except Exception as exc2:
                    raise BadInput(f"image data cannot be decoded at all ({_plain(exc2)})", source=source) from None
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = old
            return LoadedImage(rgb=rgb, format=fmt, complete=False, problem=problem)
        return LoadedImage(rgb=np.asarray(im.convert("RGB")), format=fmt, complete=True)
