"""Donor headers for photos whose own header was lost: from ``--reference`` (files or folders)
and from the intact photos of the same run. Only the first ``HEADER_BYTES`` of each file are
read; a file that cannot lend its tables (damaged, progressive, not a JPEG) is passed over."""
from __future__ import annotations

import functools
import logging

import fsspec

from acir_core.errors import AcirError
from acir_core.graft import Donor, donor_of
from acir_engine.inputs import list_inputs

log = logging.getLogger(__name__)

HEADER_BYTES = 1 << 18  # camera headers (EXIF, maker notes, thumbnail) fit in 256 KiB
MAX_DONORS = 512


def _head(uri: str) -> bytes:
    with fsspec.open(uri, "rb") as f:
        return f.read(HEADER_BYTES)


@functools.lru_cache(maxsize=8)
def load_donors(specs: tuple[str, ...]) -> tuple[Donor, ...]:
    """Donors from files, folders, globs or URLs (once per process for the same specs)."""
    if not specs:
        return ()
    listing = list_inputs(list(specs))
    out = []
    for item in listing.items[:MAX_DONORS]:
        try:
            out.append(donor_of(_head(item.uri), item.uri))
        except (AcirError, OSError) as exc:
            log.info("%s: not a donor: %s", item.uri, exc)
    return tuple(out)


def donors_for(specs: tuple[str, ...], uri: str):
    """A callable giving the donors for the photo at ``uri`` (never itself), loaded only when a
    photo needs one."""
    return lambda: tuple(d for d in load_donors(specs) if d.source != uri)
