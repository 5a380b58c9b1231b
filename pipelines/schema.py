"""The dataset's Parquet schema: one row per (source photo, BER, variant).

Only pyarrow types here; acir_core never imports pyarrow.
"""
from __future__ import annotations

import pyarrow as pa

from acir_engine.samples import SCORED_IMAGES

SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),  # <image_id>-ber<ber>-v<variant>
        ("image_id", pa.string()),  # first 16 hex digits of SHA-256(source URI)
        ("source_uri", pa.string()),
        ("split", pa.string()),  # from a hash of the URI alone
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("seed", pa.int64()),  # derived from the run seed, the URI, the BER and the variant
        ("ber", pa.float64()),
        ("variant", pa.int32()),
        ("fde", pa.string()),
        ("sector_size", pa.int32()),
        ("region", pa.string()),
        ("quality", pa.int32()),
        ("subsampling", pa.string()),
        ("restart_rows", pa.int32()),
        ("progressive", pa.bool_()),  # stored as a progressive JPEG
        ("n_flips", pa.int32()),
        ("flip_bits", pa.list_(pa.int64())),  # ciphertext bit offsets (bit 0 = MSB of byte 0)
        ("plaintext_bytes_changed", pa.int64()),
        ("damage", pa.string()),  # JSON list of the --damage events (kind, offset, length); "" for none
        ("resyncs", pa.int32()),
        ("bits_skipped", pa.int64()),
        ("suspect_fraction", pa.float64()),
        ("missing_fraction", pa.float64()),
        ("damaged_fraction", pa.float64()),  # pixels in the aware-SCA damage mask
        ("clean_jpeg", pa.binary()),  # ground truth = its decode
        ("corrupted_jpeg", pa.binary()),
        ("thumbnail_jpeg", pa.binary()),  # the embedded thumbnail (q95 JPEG of it)
        ("robust_png", pa.binary()),  # empty unless --images all
        ("paper_sca_png", pa.binary()),  # empty unless --images all
        ("aware_sca_png", pa.binary()),  # empty with --images none
        ("mask_png", pa.binary()),  # 1-bit PNG, white = damaged; empty with --images none
        ("code_version", pa.string()),
    ]
    + [(f"y_psnr_{s}", pa.float64()) for s in SCORED_IMAGES]  # dB at full size; 100 = identical
    + [(f"y_ssim_{s}", pa.float64()) for s in SCORED_IMAGES]
)
