"""Seeded fuzzing of the decoder: run as a script (the test runs it with numba bounds checks on).

    python tests/fuzz_decoder.py CASES SEED

Mutations on small files of every layout, progressive ones too: bit flips, byte insertions and
deletions, truncations, garbage after SOS, damaged headers. Every case must either decode (robust
mode always returns an image of the declared size) or raise an AcirError; anything else is printed
and fails the run.
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

from acir_core.errors import AcirError  # noqa: E402
from acir_core.jpeg.decoder import decode  # noqa: E402
from acir_core.jpeg.segments import parse_layout  # noqa: E402


def corpus() -> list[bytes]:
    im = photo_like(48, 40, seed=1)
    files = [encode_jpeg(im, subsampling=s) for s in (0, 1, 2)]
    files += [encode_jpeg(im, subsampling=2, restart_marker_blocks=2), encode_jpeg(photo_like(9, 7, seed=2))]
    grey = io.BytesIO()
    Image.fromarray(im[..., 0]).save(grey, "JPEG")
    files.append(grey.getvalue())
    files += [encode(im, ((1, 2), (1, 1), (1, 1))), encode(im, ((4, 1), (1, 1), (1, 1)), restart_interval=3),
              encode(im, ((2, 2), (1, 1), (1, 1)), separate_scans=True)]
    for s in (0, 2):  # progressive: DC and AC first and refinement scans, each with its own tables
        prog = io.BytesIO()
        Image.fromarray(photo_like(52, 44, seed=3)).save(prog, "JPEG", quality=90, progressive=True, subsampling=s)
        files.append(prog.getvalue())
    prog = io.BytesIO()
    Image.fromarray(im[..., 1]).save(prog, "JPEG", progressive=True)
    files.append(prog.getvalue())
    return files


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    start = parse_layout(data).scan_start
    kind = rng.integers(0, 6)
    if kind == 0:  # bit flips in the scan
        for _ in range(rng.integers(1, 20)):
            p = rng.integers(start, len(b))
            b[p] ^= 1 << rng.integers(0, 8)
    elif kind == 1:  # insert bytes
        p = int(rng.integers(start, len(b)))
        b[p:p] = rng.integers(0, 256, rng.integers(1, 40), dtype=np.uint8).tobytes()
    elif kind == 2:  # delete bytes
        p = int(rng.integers(start, len(b)))
        del b[p : p + int(rng.integers(1, 40))]
    elif kind == 3:  # truncate anywhere
        del b[int(rng.integers(0, len(b))):]
    elif kind == 4:  # garbage after SOS
        n = len(b) - start
        b[start:] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    else:  # anything anywhere, header included
        for _ in range(rng.integers(1, 6)):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
    return bytes(b)


def main(cases: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    files = corpus()
    bad = 0
    worst = 0.0
    t_clean = {}
    for i, f in enumerate(files):
        t = time.perf_counter()
        decode(f)
        t_clean[i] = time.perf_counter() - t
    t0 = time.perf_counter()
    for n in range(cases):
        i = int(rng.integers(0, len(files)))
        data = mutate(files[i], rng)
        for mode in ("robust", "strict"):
            try:
                t = time.perf_counter()
                r = decode(data, mode, resync="paper" if n % 3 == 0 else "lookahead")
                worst = max(worst, (time.perf_counter() - t) / max(t_clean[i], 1e-4))
                assert r.rgb.shape == (r.frame.height, r.frame.width, 3)
            except AcirError:
                pass
            except Exception:  # noqa: BLE001 - the point of a fuzzer
                bad += 1
                print(f"case {n} (file {i}, {mode}): {traceback.format_exc()}")
    print(f"fuzz: {cases} cases x 2 modes in {time.perf_counter() - t0:.1f} s, {bad} unexpected exceptions, "
          f"worst decode {worst:.1f}x the clean file's time")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
