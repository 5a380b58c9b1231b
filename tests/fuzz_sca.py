"""Seeded fuzzing of both SCAs: run as a script (the test runs it with numba bounds checks on).

    python tests/fuzz_sca.py CASES SEED

Small photos of every sampling layout and of sizes that are not whole MCUs, with and without
restart markers, in one scan or one per component, corrupted at BERs from 1e-5 to 3e-3 (so that
runs are long, short, empty, and whole restart intervals or sectors lost), restored by the
aware SCA with the thumbnail (exact and JPEG-compressed), without one and with each fill, and by
the paper's SCA. The compiled kernels index arrays by positions the damage decides (shifted
runs, canvas neighbours, chunk variables, buckets); without bounds checks a wrong index reads past
a buffer silently. Every case must give an image and a mask of the photo's size; anything else is
printed and fails the run.
"""
from __future__ import annotations

import io
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import encode_jpeg, photo_like  # noqa: E402
from jpeg_writer import encode  # noqa: E402

from acir_core.bitflip import corrupt  # noqa: E402
from acir_core.jpeg.decoder import decode  # noqa: E402
from acir_core.sca.compensate import compensate  # noqa: E402
from acir_core.sca.paper import paper_sca  # noqa: E402
from acir_core.thumbnail import synthetic_thumbnail  # noqa: E402

LAYOUTS = [((2, 2), (1, 1), (1, 1)), ((2, 1), (1, 1), (1, 1)), ((1, 1), (1, 1), (1, 1)),
           ((1, 2), (1, 1), (1, 1)), ((4, 1), (1, 1), (1, 1)), ((2, 2),), ((1, 1),)]


def photo(rng: np.random.Generator) -> bytes:
    w, h = int(rng.integers(24, 200)), int(rng.integers(16, 120))
    im = photo_like(w, h, seed=int(rng.integers(0, 1000)))
    if rng.random() < 0.3:  # Pillow's own files, optionally with restart markers
        kw = {"restart_marker_blocks": int(rng.integers(1, 6))} if rng.random() < 0.5 else {}
        return encode_jpeg(im, subsampling=int(rng.integers(0, 3)), **kw)
    layout = LAYOUTS[int(rng.integers(0, len(LAYOUTS)))]
    interval = int(rng.integers(1, 8)) if rng.random() < 0.4 else 0
    return encode(im[..., 0] if len(layout) == 1 else im, layout, restart_interval=interval,
                  separate_scans=len(layout) > 1 and rng.random() < 0.15)


def jpeg_thumbnail(thumb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(thumb).save(buf, "JPEG", quality=90)
    return np.asarray(Image.open(buf).convert("RGB"))


def main(cases: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    bad = 0
    t0 = time.perf_counter()
    for case in range(cases):
        data = photo(rng)
        ber = float(10 ** rng.uniform(-5, -2.5))
        try:
            clean = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # libjpeg's view of it
            hurt = corrupt(data, fde="aes-cbc-essiv:sha256" if rng.random() < 0.5 else "aes-xts-plain64",
                           ber=ber, region="scan", seed=int(rng.integers(0, 1 << 30)),
                           sector_loss=0.05 if rng.random() < 0.2 else 0.0).data
            r = decode(hurt, "robust")
            thumb = synthetic_thumbnail(clean)
            choice = int(rng.integers(0, 4))
            runs = [compensate(r, thumb if choice < 2 else jpeg_thumbnail(thumb) if choice == 2 else None,
                               fill=("none", "thumbnail", "auto", "auto")[choice]), paper_sca(r)]
            if choice < 2:
                runs.append(compensate(r, None, fill="inpaint"))
            for s in runs:
                assert s.rgb.shape == clean.shape and s.rgb.dtype == np.uint8, s.rgb.shape
                assert s.mask.shape == clean.shape[:2], s.mask.shape
        except Exception:  # noqa: BLE001 - every failure is reported with its case
            bad += 1
            print(f"case {case} (ber {ber:.1e}):")
            traceback.print_exc(file=sys.stdout)
    print(f"{cases} cases in {time.perf_counter() - t0:.0f} s, {bad} unexpected exceptions")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
