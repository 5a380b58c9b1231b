"""One exception family for everything acir refuses to do.

Callers (the CLI, the pipelines' dead-letter outputs) catch :class:`AcirError` and print its
message as one line, so every message must name the input and the reason on its own.
"""
from __future__ import annotations


class AcirError(Exception):
    """Base class: a clear, one-line reason why an input or a parameter was refused."""

    def __init__(self, reason: str, *, source: str | None = None, offset: int | None = None):
        self.reason = reason
        self.source = source
        self.offset = offset
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}: "
        at = f" (at byte offset {self.offset})" if self.offset is not None else ""
        return f"{where}{self.reason}{at}"

    def with_source(self, source: str) -> "AcirError":
        """The same error, naming the file it came from (library code often sees only bytes)."""
        err = type(self)(self.reason, source=source, offset=self.offset)
        return err


class InvalidParameter(AcirError, ValueError):
    """A parameter is outside what the operation supports (BER range, key length, sector size)."""


class BadInput(AcirError):
    """The input cannot be used at all (empty, a directory, unreadable)."""


class NotJpeg(BadInput):
    """The bytes do not start with a JPEG SOI marker."""


class TruncatedJpeg(BadInput):
    """The file ends inside the header, before the entropy-coded scan starts."""


class CorruptHeader(BadInput):
    """A header segment is malformed (bad length, missing table, marker where none may be)."""


class UnsupportedJpeg(BadInput):
    """A valid JPEG variant that acir does not decode (progressive, arithmetic, 12-bit, ...)."""


class ImageTooLarge(BadInput):
    """The declared dimensions exceed the configured pixel limit (decompression-bomb guard)."""


class HeaderLost(BadInput):
    """The header is gone or unreadable, and no donor (given or found in the run) fits."""


class CorruptJpeg(BadInput):
    """Strict decoding met damaged entropy-coded data. ``bit_offset`` counts bits from the first
    byte of the scan (after byte-stuffing removal); ``mcu`` is the MCU being decoded."""

    def __init__(self, reason: str, *, source: str | None = None, offset: int | None = None,
                 bit_offset: int | None = None, mcu: int | None = None):
        self.bit_offset = bit_offset
        self.mcu = mcu
        super().__init__(reason, source=source, offset=offset)

    def with_source(self, source: str) -> "CorruptJpeg":
        return CorruptJpeg(self.reason, source=source, offset=self.offset, bit_offset=self.bit_offset, mcu=self.mcu)


class CannotWrite(AcirError):
    """An output could not be written (disk full, permission, a path that is not a folder)."""
