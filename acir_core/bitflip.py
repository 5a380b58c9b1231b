"""Bit errors and lost sectors on an encrypted disk, applied to one JPEG file.

The fault model (design.md §1): bit errors hit the *ciphertext* on the medium with a bit error
rate (BER) per bit; the file is then read back through the same sector cipher. Whole NAND pages
can also fail, which we model as sectors replaced by random bytes.

Reproducibility: every random draw comes from PCG64 raw 64-bit outputs seeded through
``numpy.random.SeedSequence`` (both are stable across numpy versions and machines), turned into
counts and positions by our own code below rather than by ``Generator.binomial``/``choice``,
whose streams numpy may change between releases. Same seed + same input = same flips anywhere.

Bit offsets are ciphertext bit offsets counted from the start of the file's first sector, bit 0
being the most significant bit of byte 0 (JPEG's own bit order).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from acir_core.errors import InvalidParameter
from acir_core.fde import SectorCipher, derive_key
from acir_core.jpeg.segments import parse_layout

REGIONS = ("scan", "all")
MAX_BER = 0.5
_STREAM_FLIPS, _STREAM_LOSS = 1, 2


# --------------------------------------------------------------------------- random draws

class RawStream:
    """Uniform doubles and bytes from PCG64's raw output, independent of numpy's distribution code."""

    def __init__(self, seed: int, stream: int):
        seq = np.random.SeedSequence(entropy=int(seed), spawn_key=(stream,))
        self._bits = np.random.PCG64(seq)

    def uniform(self, n: int) -> np.ndarray:
        raw = self._bits.random_raw(n)
        return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def bytes(self, n: int) -> np.ndarray:
        words = self._bits.random_raw(-(-n // 8))
        return words.astype("<u8").view(np.uint8)[:n]


def _binomial(n: int, p: float, u: float) -> int:
    """Binomial(n, p) by inverting its CDF at ``u``, summed in log space over a ±12σ window."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    mean = n * p
    sd = math.sqrt(mean * (1.0 - p))
    lo = max(0, int(mean - 12 * sd - 20))
    hi = min(n, int(math.ceil(mean + 12 * sd + 20)))
    k = np.arange(lo, hi + 1, dtype=np.float64)
    log_first = math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1)
    step = np.log((n - k[1:] + 1) / k[1:])  # log C(n,k) - log C(n,k-1)
    log_comb = log_first + np.concatenate([[0.0], np.cumsum(step)])
    log_pmf = log_comb + k * math.log(p) + (n - k) * math.log1p(-p)
    pmf = np.exp(log_pmf - log_pmf.max())
    cdf = np.cumsum(pmf)
    return lo + int(np.searchsorted(cdf, u * cdf[-1], side="right"))


def sample_flips(n_bits: int, ber: float, seed: int, stream: int = _STREAM_FLIPS) -> np.ndarray:
    """Sorted distinct bit positions in ``[0, n_bits)``: count ~ Binomial(n_bits, ber), positions
    uniform without replacement. Deterministic in (n_bits, ber, seed, stream)."""
    check_ber(ber)
    rng = RawStream(seed, stream)
    k = _binomial(n_bits, ber, float(rng.uniform(1)[0]))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = np.zeros(0, dtype=np.int64)
    while chosen.size < k:
        need = k - chosen.size
        cand = np.minimum((rng.uniform(need + need // 8 + 16) * n_bits).astype(np.int64), n_bits - 1)
        pool = np.concatenate([chosen, cand])
        _, first = np.unique(pool, return_index=True)
        chosen = pool[np.sort(first)]  # first occurrences, in draw order: order-stable and deterministic
    return np.sort(chosen[:k])


def check_ber(ber: float) -> None:
    """Refuse a BER outside [0, 0.5] (0.5 is already pure noise) with a usage error."""
    if not (isinstance(ber, (int, float)) and math.isfinite(ber) and 0.0 <= ber <= MAX_BER):
        raise InvalidParameter(f"BER must be a number in [0, {MAX_BER}], got {ber!r}")


# --------------------------------------------------------------------------- results

@dataclass(frozen=True, kw_only=True)
class CorruptionParams:
    """Everything needed to reproduce a corruption (the key itself is never stored)."""

    fde: str
    sector_size: int
    first_sector: int
    iv_large_sectors: bool
    ber: float
    region: str
    sector_loss: float
    seed: int
    key_source: str  # "seed" (derived, reproducible) or "given" (from the caller; not recorded)


@dataclass(frozen=True, eq=False, kw_only=True)
class Corruption:
    """A corrupted file and what was done to it.

    ``data``: the decrypted, corrupted plaintext, as long as the input.
    ``flip_bits``: ciphertext bit offsets flipped (int64, sorted; bit 0 = MSB of byte 0).
    ``lost_sectors``: indices (from 0, within the file) of sectors replaced by random bytes.
    ``changed_bytes``: plaintext byte offsets whose value differs from the input (int64, sorted).
    ``region_start``: first ciphertext byte eligible for errors; ``region_bits``: how many bits were.
    """

    data: bytes = field(repr=False)
    flip_bits: np.ndarray
    lost_sectors: np.ndarray
    changed_bytes: np.ndarray
    region_start: int
    region_bits: int
    params: CorruptionParams
    input_sha256: str
    output_sha256: str

    @property
    def n_flips(self) -> int:
        return int(self.flip_bits.size)

    @property
    def changed_runs(self) -> list[tuple[int, int]]:
        """Changed plaintext bytes as half-open ``(start, end)`` runs, the natural unit to look at."""
        b = self.changed_bytes
        if b.size == 0:
            return []
        breaks = np.flatnonzero(np.diff(b) != 1)
        starts = np.concatenate([[b[0]], b[breaks + 1]])
        ends = np.concatenate([b[breaks], [b[-1]]]) + 1
        return [(int(s), int(e)) for s, e in zip(starts, ends)]

    def to_record(self) -> dict:
        """A JSON-serialisable description (the CLI's sidecar; the dataset pipeline's flip log)."""
        return {
            "params": asdict(self.params),
            "region_start_byte": self.region_start,
            "region_bits": self.region_bits,
            "n_flips": self.n_flips,
            "flip_bits": self.flip_bits.tolist(),
            "lost_sectors": self.lost_sectors.tolist(),
            "plaintext_bytes_changed": int(self.changed_bytes.size),
            "changed_runs": self.changed_runs,
            "input_sha256": self.input_sha256,
            "output_sha256": self.output_sha256,
        }


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------- the operation

def corrupt(jpeg_bytes: bytes, *, fde: str = "aes-cbc-essiv:sha256", key: bytes | None = None, ber: float = 1e-5,
            region: str = "scan", seed: int = 0, sector_size: int = 512, first_sector: int = 0,
            iv_large_sectors: bool = False, sector_loss: float = 0.0, source: str | None = None) -> Corruption:
    """Encrypt ``jpeg_bytes`` as a disk would, flip ciphertext bits, lose sectors, decrypt.

    ``region="scan"`` spares every sector up to and including the one that holds the end of the
    SOS header, as the paper does (its code also spares the final sector holding the EOI; we do
    not). ``region="all"`` lets errors hit the header too. ``key`` defaults to one derived from
    ``seed`` (:func:`acir_core.fde.derive_key`). ``source`` names the file in error messages.
    """
    check_ber(ber)
    if region not in REGIONS:
        raise InvalidParameter(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    if not (isinstance(sector_loss, (int, float)) and 0.0 <= sector_loss <= 1.0):
        raise InvalidParameter(f"sector-loss probability must be in [0, 1], got {sector_loss!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameter(f"seed must be a non-negative integer, got {seed!r}")
    layout = parse_layout(jpeg_bytes, source)
    key_source = "given" if key is not None else "seed"
    if key is None:
        key = derive_key(fde, seed)
    cipher = SectorCipher(fde, key or b"", sector_size, first_sector, iv_large_sectors)

    cipher_bytes = np.frombuffer(cipher.encrypt(jpeg_bytes), dtype=np.uint8).copy()
    n_sectors = cipher_bytes.size // sector_size
    first_sector_hit = (layout.scan_start - 1) // sector_size + 1 if region == "scan" else 0
    region_start = min(first_sector_hit * sector_size, cipher_bytes.size)
    region_bits = 8 * (cipher_bytes.size - region_start)

    flips = sample_flips(region_bits, ber, seed, _STREAM_FLIPS) + 8 * region_start
    np.bitwise_xor.at(cipher_bytes, flips >> 3, (0x80 >> (flips & 7)).astype(np.uint8))

    lost = np.zeros(0, dtype=np.int64)
    if sector_loss > 0 and n_sectors > first_sector_hit:
        loss_rng = RawStream(seed, _STREAM_LOSS)
        hit = loss_rng.uniform(n_sectors - first_sector_hit) < sector_loss
        lost = np.flatnonzero(hit).astype(np.int64) + first_sector_hit
        if lost.size:
            sectors = cipher_bytes.reshape(n_sectors, sector_size)
            sectors[lost] = loss_rng.bytes(lost.size * sector_size).reshape(lost.size, sector_size)

    plain = cipher.decrypt(cipher_bytes.tobytes(), len(jpeg_bytes))
    changed = np.flatnonzero(np.frombuffer(plain, np.uint8) != np.frombuffer(jpeg_bytes, np.uint8))
    params = CorruptionParams(fde=fde, sector_size=sector_size, first_sector=int(first_sector),
                              iv_large_sectors=bool(iv_large_sectors), ber=float(ber), region=region,
                              sector_loss=float(sector_loss), seed=int(seed), key_source=key_source)
    return Corruption(data=plain, flip_bits=_frozen(flips), lost_sectors=_frozen(lost), changed_bytes=_frozen(changed),
                      region_start=region_start, region_bits=region_bits, params=params,
                      input_sha256=hashlib.sha256(jpeg_bytes).hexdigest(), output_sha256=hashlib.sha256(plain).hexdigest())
