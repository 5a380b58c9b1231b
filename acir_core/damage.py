"""Damage beyond bit flips, applied to a file's plaintext: what failing media, carving and careless
transfers do to photo archives (design notes: issue 23).

Kinds, alone or combined, each seeded and recorded like bit flips (:mod:`acir_core.bitflip`):

- ``zero:SIZE``: a zero-filled run of sectors (what ddrescue leaves where a read failed);
- ``lose:SIZE``: a run of sectors removed (carving across a lost cluster);
- ``repeat:SIZE``: a run of sectors written twice (a cluster chained in twice);
- ``crlf``: a CR byte inserted before every LF byte of the file (a text-mode transfer);
- ``cut:FRACTION``: the file cut short after that fraction of its bytes;
- ``head:N``: the first N sectors overwritten with zeros (header gone);
- ``headless:N``: the first N sectors removed (a carved fragment, no header); ``headless:0.4``:
  the first 40 % of the file removed (sector-aligned), a fragment holding the rest of the scan.

SIZE is bytes with an optional ``k`` (KiB), rounded down to whole sectors (at least one); a
stretch starts on a sector boundary inside the scan data (and ends there where it fits), at a
random place or at ``@FRACTION`` of the scan (``zero:16k@0.6``). Every position is drawn from PCG64's raw output like the flips, so
the same seed gives the same damage anywhere.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

import numpy as np

from acir_core.bitflip import RawStream
from acir_core.errors import AcirError, InvalidParameter
from acir_core.jpeg.segments import parse_layout

KINDS = ("zero", "lose", "repeat", "crlf", "cut", "head", "headless")
STRETCHES = ("zero", "lose", "repeat")
_STREAM_DAMAGE = 3
_SPEC = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<size>[0-9.]+)(?P<k>[kK])?)?(?:@(?P<at>[0-9.]+))?$")


@dataclass(frozen=True, kw_only=True)
class DamageSpec:
    """One damage to apply. ``size``: bytes of a stretch (zero, lose, repeat), sectors (head,
    headless), or the fraction of the file kept (cut); ``at``: where a stretch starts, as a
    fraction of the scan data (None: drawn from the seed)."""

    kind: str
    size: float = 0.0
    at: float | None = None

    def __str__(self) -> str:
        """As :func:`parse_damage` reads it back, exactly."""
        whole = self.size == int(self.size)
        size = "" if self.kind == "crlf" else f":{int(self.size) if whole else repr(self.size)}"
        return f"{self.kind}{size}" + ("" if self.at is None else f"@{self.at!r}")


@dataclass(frozen=True, kw_only=True)
class DamageEvent:
    """What one damage did: ``offset`` and ``length`` in bytes of the file as it was before it
    (``length``: bytes zeroed, removed, repeated, inserted or cut off)."""

    kind: str
    offset: int
    length: int


@dataclass(frozen=True, eq=False, kw_only=True)
class Damaged:
    """A damaged file (``data``) and what was done to it, in order."""

    data: bytes
    events: tuple[DamageEvent, ...]
    specs: tuple[str, ...]
    seed: int
    sector_size: int
    input_sha256: str
    output_sha256: str

    def to_record(self) -> dict:
        """JSON-serialisable, beside the bit flips' record in the CLI's sidecar."""
        return {"specs": list(self.specs), "seed": self.seed, "sector_size": self.sector_size,
                "events": [asdict(e) for e in self.events], "input_sha256": self.input_sha256,
                "output_sha256": self.output_sha256}


def parse_damage(text: str) -> DamageSpec:
    """``zero:16k``, ``lose:4096@0.5``, ``repeat:16k``, ``crlf``, ``cut:0.5``, ``head:8``,
    ``headless:8`` -> a :class:`DamageSpec`; anything else raises ``InvalidParameter``."""
    m = _SPEC.match(text.strip())
    if not m or m["kind"] not in KINDS:
        raise InvalidParameter(f"damage must be one of {', '.join(KINDS)} with a size "
                               f"(e.g. zero:16k, cut:0.5, head:8), got {text!r}")
    kind = m["kind"]
    try:
        size = float(m["size"]) * (1024 if m["k"] else 1) if m["size"] else 0.0
        at = float(m["at"]) if m["at"] is not None else None
    except ValueError:
        raise InvalidParameter(f"damage {text!r}: size and position must be numbers") from None
    if kind == "crlf":
        if m["size"] or at is not None:
            raise InvalidParameter(f"damage {text!r}: crlf takes no size or position")
    elif size <= 0:
        raise InvalidParameter(f"damage {text!r} needs a positive size")
    if kind == "cut" and not 0.0 < size < 1.0:
        raise InvalidParameter(f"damage {text!r}: cut keeps a fraction of the file, in (0, 1)")
    if kind == "head" and size != int(size):
        raise InvalidParameter(f"damage {text!r}: the number of sectors must be whole")
    if kind == "headless" and size != int(size) and not 0.0 < size < 1.0:
        raise InvalidParameter(f"damage {text!r}: headless takes whole sectors or a fraction of the file in (0, 1)")
    if at is not None and (kind not in STRETCHES or not 0.0 <= at < 1.0):
        raise InvalidParameter(f"damage {text!r}: @position is a fraction in [0, 1) of the scan, for "
                               f"{', '.join(STRETCHES)}")
    return DamageSpec(kind=kind, size=size, at=at)


def _scan_span(data: bytes, source: str | None) -> tuple[int, int]:
    """(first byte after the SOS header, EOI offset or the end) of the first scan; a file whose
    header no longer parses (damaged before) counts as all scan."""
    try:
        layout = parse_layout(data, source)
    except AcirError:  # a header already damaged: any byte may be hit
        return 0, len(data)
    end = layout.eoi_offset if layout.eoi_offset is not None else len(data)
    return layout.scan_start, max(end, layout.scan_start)


def _stretch(data: bytearray, spec: DamageSpec, sector: int, draw: float, source: str | None) -> DamageEvent:
    start, end = _scan_span(bytes(data), source)
    size = max(sector, int(spec.size) // sector * sector)
    first = -(-start // sector)  # the first whole sector inside the scan
    last = max(first, (end - size) // sector)  # the last sector a stretch of this size can start on
    where = spec.at if spec.at is not None else draw
    offset = min((first + int(where * (last - first + 1))) * sector, len(data))
    size = min(size, len(data) - offset)
    if spec.kind == "zero":
        data[offset: offset + size] = bytes(size)
    elif spec.kind == "lose":
        del data[offset: offset + size]
    else:
        data[offset + size: offset + size] = data[offset: offset + size]
    return DamageEvent(kind=spec.kind, offset=offset, length=size)


def apply_damage(data: bytes, specs: list[DamageSpec] | tuple[DamageSpec, ...], *, seed: int = 0,
                 sector_size: int = 512, source: str | None = None) -> Damaged:
    """``data`` with each of ``specs`` applied in turn (see the module docstring). Positions come
    from ``seed``; ``sector_size`` aligns stretches and counts head sectors. The input is not
    modified."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameter(f"seed must be a non-negative integer, got {seed!r}")
    if sector_size <= 0:
        raise InvalidParameter(f"sector size must be positive, got {sector_size}")
    out = bytearray(data)
    draws = RawStream(int(seed), _STREAM_DAMAGE).uniform(max(len(specs), 1))
    events = []
    for spec, draw in zip(specs, draws):
        if spec.kind in STRETCHES:
            events.append(_stretch(out, spec, sector_size, float(draw), source))
        elif spec.kind == "crlf":
            count = out.count(b"\n")
            out = bytearray(bytes(out).replace(b"\n", b"\r\n"))
            events.append(DamageEvent(kind="crlf", offset=0, length=count))
        elif spec.kind == "cut":
            keep = int(len(out) * spec.size)
            events.append(DamageEvent(kind="cut", offset=keep, length=len(out) - keep))
            del out[keep:]
        else:
            sectors = spec.size if spec.size == int(spec.size) else len(out) * spec.size // sector_size
            n = min(int(sectors) * sector_size, len(out))
            if spec.kind == "head":
                out[:n] = bytes(n)
            else:
                del out[:n]
            events.append(DamageEvent(kind=spec.kind, offset=0, length=n))
    result = bytes(out)
    return Damaged(data=result, events=tuple(events), specs=tuple(str(s) for s in specs), seed=int(seed),
                   sector_size=sector_size, input_sha256=hashlib.sha256(data).hexdigest(),
                   output_sha256=hashlib.sha256(result).hexdigest())


def undo_text_mode(data: bytes, *, share: float = 0.9, min_lf: int = 16) -> tuple[bytes, int] | None:
    """``data`` with the CR bytes a text-mode transfer put before every LF taken out, and how many,
    when at least ``share`` of its (``min_lf`` or more) LF bytes follow a CR (photo data: 1 in 256);
    else None. The exact inverse: a CR LF pair the photo held became CR CR LF and comes back."""
    lf = data.count(b"\n")
    pairs = data.count(b"\r\n")
    if lf < min_lf or pairs < share * lf:
        return None
    return data.replace(b"\r\n", b"\n"), pairs


def _periodic_span(buf: np.ndarray, at: int, period: int, length: int) -> tuple[int, int]:
    """The longest stretch around ``buf[at:at + length]`` whose every byte equals the one
    ``period`` bytes before it."""
    same = buf[period:] == buf[:-period]  # same[i]: byte i + period repeats byte i
    lo = at - period
    while lo > 0 and same[lo - 1]:
        lo -= 1
    hi = at - period + length
    while hi < same.size and same[hi]:
        hi += 1
    return lo + period, hi + period


def find_repeats(data: bytes, *, block: int = 256, before: int | None = None,
                 source: str | None = None) -> list[tuple[int, int]]:
    """Stretches of the scan data written twice in a row (a cluster chained in twice, a sector
    read back twice), as (offset of the second copy, length), by identical ``block``-aligned
    blocks: entropy-coded data holds no two, except where it is periodic (flat or blank areas,
    zero fill), whose blocks are left out. Only a stretch whose second copy is whole (the bytes
    from one copy's start to the other's all repeat) counts; with ``before``, only a copy that
    starts before that offset."""
    start, end = _scan_span(data, source)
    if before is not None:
        end = min(end, before)
    buf = np.frombuffer(data, np.uint8)
    seen: dict[bytes, int] = {}
    found: list[tuple[int, int]] = []
    x = -(-start // block) * block
    while x + block <= end:
        chunk = data[x: x + block]
        first = seen.get(chunk)
        if first is None:
            if len(set(chunk[:16])) > 2:  # a block of one or two byte values is fill, not a copy
                seen[chunk] = x
            x += block
            continue
        period = x - first
        lo, hi = _periodic_span(buf, x, period, block)
        if hi - lo >= period and lo >= start + period:
            found.append((lo, period))
            x = -(-hi // block) * block  # past this copy
            seen.clear()
        else:
            x += block
    return found


def undo_repeats(data: bytes, *, before: int | None = None,
                 source: str | None = None) -> tuple[bytes, list[tuple[int, int]]] | None:
    """``data`` with the second copy of every stretch written twice (:func:`find_repeats`) taken
    out, and (offset, length) of each in ``data``; None when there is none. Removing any
    ``length`` bytes of a repeating stretch gives the same bytes, so the original comes back."""
    found = find_repeats(data, before=before, source=source)
    if not found:
        return None
    out = bytearray(data)
    for offset, length in reversed(found):
        del out[offset: offset + length]
    return bytes(out), found
