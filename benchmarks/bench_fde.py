"""Throughput of sector encryption, decryption and whole-file corruption, in MB/s.

For each FDE mode and sector size: encrypt and decrypt of a 10 MB buffer through
``SectorCipher``, and ``corrupt()`` (encrypt + flips + decrypt + diff) of a JPEG of about the
same size at BER 1e-5. The reference ("ceiling") is one ``AES.new(key, MODE_ECB).encrypt`` call
over the same bytes, measured in the same run: no mode can beat raw AES-NI over one buffer.
Best of ``--repeat`` runs, to take the noise of a shared machine out.

    python benchmarks/bench_fde.py [--mb 10] [--repeat 5]
"""
from __future__ import annotations

import argparse
import io
import platform

import numpy as np
from Crypto.Cipher import AES
from PIL import Image

from acir_core.bitflip import corrupt
from timing import best_time
from acir_core.fde import DEFAULT_KEY_BYTES, SectorCipher, derive_key


def big_jpeg(target_mb: float) -> bytes:
    """A noisy photo-sized JPEG of roughly ``target_mb`` MB (noise makes JPEGs large)."""
    rng = np.random.default_rng(0)
    side = 1024
    while True:
        base = np.linspace(0, 255, side * side * 3).reshape(side, side, 3)
        img = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=95, subsampling=0)
        if buf.tell() >= target_mb * 1e6 * 0.9:
            return buf.getvalue()
        side = int(side * 1.4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0, help="buffer size in MB (10)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = int(args.mb * 1e6) // 4096 * 4096
    data = np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8).tobytes()
    jpeg = big_jpeg(args.mb)
    mb, jmb = n / 1e6, len(jpeg) / 1e6

    print(f"acir FDE benchmark: {mb:.1f} MB buffer, {jmb:.1f} MB JPEG for corrupt(), best of {args.repeat}; "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    ceiling = best_time(lambda: AES.new(bytes(16), AES.MODE_ECB).encrypt(data), args.repeat)
    print(f"ceiling: one AES-128-ECB call over the buffer: {mb / ceiling:,.0f} MB/s")
    print()
    head = f"{'mode (key bits)':<28} {'sector':>6} {'encrypt MB/s':>13} {'decrypt MB/s':>13} {'enc+dec s':>10} " \
           f"{'corrupt MB/s':>13} {'enc vs ceiling':>15}"
    print(head)
    print("-" * len(head))
    for mode in ("aes-cbc-essiv:sha256", "aes-cbc-essiv-be32", "aes-xts-plain64", "none"):
        for sector in (512, 4096):
            c = SectorCipher(mode, derive_key(mode, 0), sector)
            ct = c.encrypt(data)
            t_enc = best_time(lambda: c.encrypt(data), args.repeat)
            t_dec = best_time(lambda: c.decrypt(ct, len(data)), args.repeat)
            t_cor = best_time(lambda: corrupt(jpeg, fde=mode, ber=1e-5, seed=1, sector_size=sector), args.repeat)
            key_bits = 8 * DEFAULT_KEY_BYTES[mode]
            label = f"{mode}" + (f" ({key_bits}b)" if key_bits else "")
            print(f"{label:<28} {sector:>6} {mb / t_enc:>13,.0f} {mb / t_dec:>13,.0f} {t_enc + t_dec:>10.3f} "
                  f"{jmb / t_cor:>13,.0f} {t_enc / ceiling:>14.1f}x")


if __name__ == "__main__":
    main()
