"""Writing outputs: the one atomic writer (local disks and object stores alike) and the one
place images become PNG, JPEG or preview bytes.

An interrupted or failed write never leaves a half-written file under the final name, never
writes over an input, and fails with a one-line :class:`CannotWrite` naming the path and the
reason (disk full, permission denied) instead of a traceback."""
from __future__ import annotations

import errno
import io
import os
import posixpath
import tempfile

import fsspec
import numpy as np
from PIL import Image

from acir_core.errors import CannotWrite, InvalidParameter

PART_SUFFIX = ".part"


def join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}"


def _is_local(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot be written ({exc.strerror or exc})"


def write_atomic(path: str | os.PathLike, data: bytes, *, protect: tuple[str | os.PathLike, ...] = ()) -> None:
    """Write ``data`` to ``path`` (any fsspec URL) through a temporary file and a rename on local
    disks (object stores make a whole object appear at once anyway). Refuses to write over any
    path in ``protect`` (the inputs)."""
    fs, p = fsspec.core.url_to_fs(path)
    local = _is_local(fs)
    for q in protect:
        same = (os.path.abspath(q) == os.path.abspath(p)
                or (os.path.exists(p) and os.path.exists(q) and os.path.samefile(p, q))) if local \
            else fsspec.core.url_to_fs(q)[1] == p
        if same:
            raise InvalidParameter("refusing to overwrite an input file", source=path)
    parent = posixpath.dirname(p)
    if not local:  # object stores have no folders to make, and make a whole object appear at once
        try:
            fs.pipe_file(p, data)
        except OSError as exc:
            raise CannotWrite(_reason(exc), source=path) from None
        except Exception as exc:  # noqa: BLE001 - store clients raise their own types (HTTP errors)
            raise CannotWrite(f"cannot be written ({type(exc).__name__}: {exc})", source=path) from None
        return
    try:
        if parent:
            os.makedirs(parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(p)}.", suffix=PART_SUFFIX, dir=parent or ".")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            os.replace(tmp, p)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise CannotWrite(_reason(exc), source=path) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def clean_partials(out: str) -> int:
    """Remove temporary ``.*.part`` files an interrupted local run may have left. Returns how many."""
    fs, root = fsspec.core.url_to_fs(out)
    if not fs.exists(root):
        return 0
    stale = [p for p in fs.find(root) if posixpath.basename(p).startswith(".") and p.endswith(PART_SUFFIX)]
    for p in stale:
        fs.rm_file(p)
    return len(stale)


def png_bytes(image: np.ndarray | None, *, level: int = 6) -> bytes:
    """PNG of an RGB (H×W×3 uint8) or grey (H×W uint8) image; a bool mask becomes a 1-bit PNG
    (white = True); None gives ``b""``. ``level``: zlib level (fixed, so reruns are byte-identical)."""
    if image is None:
        return b""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def mask_png(mask: np.ndarray) -> bytes:
    """A damage mask as an 8-bit greyscale PNG, 255 = damaged (what image viewers show best)."""
    return png_bytes((mask * np.uint8(255)).astype(np.uint8))


def jpeg_bytes(rgb: np.ndarray, *, quality: int = 95, exif: bytes | None = None, subsampling: int = -1) -> bytes:
    """JPEG of an RGB image; ``exif`` (an APP1 payload) is kept when given."""
    buf = io.BytesIO()
    kw = {"exif": exif} if exif else {}
    if subsampling >= 0:
        kw["subsampling"] = subsampling
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def preview_bytes(image: np.ndarray, width: int = 320) -> bytes:
    """A small JPEG preview for the contact sheet."""
    im = Image.fromarray(image)
    im.thumbnail((width, width))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()
