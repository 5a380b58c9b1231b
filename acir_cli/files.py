"""Reading inputs and writing outputs for the CLI: clear one-line errors, atomic writes, inputs never touched."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from acir_core.errors import BadInput, InvalidParameter


def read_input(path: str | os.PathLike) -> bytes:
    """The bytes of an input file, or a ``BadInput`` that says why not (missing, directory, unreadable)."""
    p = Path(path)
    if not p.exists():
        raise BadInput("no such file", source=str(path))
    if p.is_dir():
        raise BadInput("is a directory, not a file", source=str(path))
    try:
        return p.read_bytes()
    except PermissionError:
        raise BadInput("permission denied", source=str(path)) from None
    except OSError as exc:
        raise BadInput(f"cannot be read ({exc.strerror or exc})", source=str(path)) from None


def write_atomic(path: str | os.PathLike, data: bytes, *, protect: tuple[str | os.PathLike, ...] = ()) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so that an interrupted run
    never leaves a half-written file. Refuses to write over any path in ``protect`` (the inputs)."""
    target = Path(path)
    for p in protect:
        same = os.path.abspath(p) == os.path.abspath(target) or (
            target.exists() and Path(p).exists() and os.path.samefile(target, p))
        if same:
            raise InvalidParameter("refusing to overwrite an input file", source=str(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_key_file(path: str) -> bytes:
    """A key from a file: raw binary key bytes, or the key as hex text (whitespace ignored).

    Hex is tried first only when the whole file is hex digits, so a binary key that happens to
    look like hex must have the length of a binary key to be read as binary.
    """
    raw = read_input(path)
    text = raw.strip()
    try:
        decoded = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return raw
    if len(decoded) in (16, 24, 32, 64):
        return decoded
    return raw
