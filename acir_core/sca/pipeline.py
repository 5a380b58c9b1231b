"""One call from damaged JPEG bytes to a compensated image: decode, pick a thumbnail, run SCA."""
from __future__ import annotations

import numpy as np

from acir_core.errors import InvalidParameter
from acir_core.jpeg.decoder import DecodeResult, decode
from acir_core.sca.aware import AwareOptions, SCAResult, aware_sca
from acir_core.sca.paper import paper_sca
from acir_core.thumbnail import extract_thumbnail

METHODS = ("aware", "paper")


def resolve_thumbnail(data: bytes, thumbnail: np.ndarray | str | None,
                      source: str | None = None) -> tuple[np.ndarray | None, str]:
    """``"auto"`` (the one embedded in ``data``, if any), None, or an array -> (image or None,
    where it came from: ``embedded-<kind>``, ``given`` or ``none``)."""
    if isinstance(thumbnail, str):
        if thumbnail != "auto":
            raise InvalidParameter(f"thumbnail must be 'auto', None or an image array, got {thumbnail!r}")
        found = extract_thumbnail(data, source)
        return (found.rgb, f"embedded-{found.kind}") if found is not None else (None, "none")
    return thumbnail, "given" if thumbnail is not None else "none"


def compensate(data: bytes, method: str = "aware", thumbnail: np.ndarray | str | None = "auto", *,
               fill: str = "auto", source: str | None = None,
               options: AwareOptions | None = None) -> tuple[DecodeResult, SCAResult, str]:
    """Decode ``data`` robustly and compensate it. ``thumbnail``: ``"auto"`` (the embedded one, if
    any), ``None`` (none), or an H×W×3 uint8 array. Returns the decode, the SCA result and where
    the thumbnail came from (``embedded-exif`` etc., ``given`` or ``none``)."""
    if method not in METHODS:
        raise InvalidParameter(f"SCA method must be one of {', '.join(METHODS)}, got {method!r}")
    thumb, origin = resolve_thumbnail(data, thumbnail, source)
    # the paper's SCA goes with the paper's decoder behaviour; ours with the lookahead resync
    result = decode(data, "robust", resync="paper" if method == "paper" else "lookahead", source=source)
    if method == "paper":
        return result, paper_sca(result), origin
    return result, aware_sca(result, thumb, fill=fill, options=options), origin
