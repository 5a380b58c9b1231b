"""Sector encryption as full-disk encryption does it (Linux dm-crypt, Android FDE, LUKS).

Why this exists: a bit error on an encrypted disk hits the *ciphertext*. After decryption one
flipped bit garbles a whole 16-byte plaintext block (and, in CBC, one bit of the next), never
another sector. To simulate what a failing phone or SSD does to a photo we must encrypt, flip,
and decrypt exactly as the disk does.

Modes (``FDE_MODES``):

``aes-cbc-essiv:sha256``
    dm-crypt / Android FDE default. Per sector ``s``: ``IV = AES-256-ECB_{SHA-256(key)}(le64(s) || 0^8)``,
    then AES-CBC over the sector. Data key 128, 192 or 256 bits.
``aes-cbc-essiv-be32``
    The paper's own code (Two-ACIR ``android_aes.py``): the IV input is ``be32(s) || 0^12``.
    Only for reproducing its data; sector numbers must fit in 32 bits.
``aes-xts-plain64``
    LUKS default. Tweak = ``le64(s) || 0^8``; key = Key1 || Key2 (256 bits = XTS-AES-128,
    512 bits = XTS-AES-256).
``none``
    No encryption: bit errors land on the plaintext directly (a bare SD card).

Sector numbering: the file occupies consecutive sectors; its first sector has IV sector number
``first_sector``. Like dm-crypt, the IV sector number counts 512-byte units even when the sector
size is 4096 (sector ``i`` of the file uses ``first_sector + i * sector_size // 512``), unless
``iv_large_sectors=True`` (dm-crypt's option of that name), where it counts whole sectors. The
``be32`` compatibility mode always counts whole sectors, as the paper's code did.

Padding rule: the plaintext is zero-padded up to a whole number of sectors before encryption (the
slack a file system leaves in its last sector); :func:`decrypt` returns whole sectors, or exactly
``length`` bytes when the original length is given, which strips that padding again.

Everything is vectorised over sectors: AES runs as one ECB call over all sectors per block
position (CBC encryption, which is sequential inside a sector) or over the whole buffer at once
(CBC decryption, XTS), so 10 MB take a few tens of milliseconds.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from Crypto.Cipher import AES

from acir_core.errors import InvalidParameter

BLOCK = 16
FDE_MODES = ("aes-cbc-essiv:sha256", "aes-cbc-essiv-be32", "aes-xts-plain64", "none")
SECTOR_SIZES = (512, 1024, 2048, 4096)
_KEY_BYTES = {
    "aes-cbc-essiv:sha256": (16, 24, 32),
    "aes-cbc-essiv-be32": (16, 24, 32),
    "aes-xts-plain64": (32, 64),
    "none": (0,),
}
# The key length a seed-derived key gets: Android FDE's 128-bit key, LUKS2's 512-bit XTS key.
DEFAULT_KEY_BYTES = {
    "aes-cbc-essiv:sha256": 16,
    "aes-cbc-essiv-be32": 16,
    "aes-xts-plain64": 64,
    "none": 0,
}
_GF128_REDUCTION = np.uint64(0x87)


# --------------------------------------------------------------------------- AES primitives

def _ecb(key: bytes, data: np.ndarray, *, decrypt: bool = False) -> np.ndarray:
    """AES-ECB over a C-contiguous uint8 array whose size is a multiple of 16 (one C call)."""
    cipher = AES.new(key, AES.MODE_ECB)
    out = np.empty_like(data)
    if data.size:
        fn = cipher.decrypt if decrypt else cipher.encrypt
        fn(memoryview(np.ascontiguousarray(data).reshape(-1)), output=memoryview(out.reshape(-1)))
    return out


def _gf128_mul_alpha(t: np.ndarray) -> np.ndarray:
    """Multiply XTS tweaks by alpha (x) in GF(2^128); ``t`` is (n, 2) little-endian uint64 halves."""
    lo, hi = t[:, 0], t[:, 1]
    carry = hi >> np.uint64(63)
    out = np.empty_like(t)
    out[:, 1] = (hi << np.uint64(1)) | (lo >> np.uint64(63))
    out[:, 0] = (lo << np.uint64(1)) ^ (carry * _GF128_REDUCTION)
    return out


def _xts_tweak_stream(key2: bytes, tweaks: np.ndarray, n_blocks: int) -> np.ndarray:
    """All per-block tweak masks T_j = E_K2(tweak) * alpha^j as a (n_units, n_blocks, 16) uint8 array."""
    t = _ecb(key2, tweaks).view("<u8").reshape(-1, 2).copy()
    stream = np.empty((tweaks.shape[0], n_blocks, 2), dtype="<u8")
    for j in range(n_blocks):  # loop over block positions; each step is vectorised over units
        stream[:, j] = t
        t = _gf128_mul_alpha(t)
    return stream.view(np.uint8).reshape(tweaks.shape[0], n_blocks, BLOCK)


def _xts_blocks(key1: bytes, blocks: np.ndarray, masks: np.ndarray, decrypt: bool) -> np.ndarray:
    return _ecb(key1, blocks ^ masks, decrypt=decrypt) ^ masks


def xts_units(key: bytes, tweaks: np.ndarray, units: np.ndarray, *, decrypt: bool = False) -> np.ndarray:
    """IEEE 1619 XTS-AES over equal-length data units, with ciphertext stealing.

    ``key`` is Key1 || Key2 (32 or 64 bytes); ``tweaks`` is (n, 16) uint8 (the 128-bit tweak
    values as bytes); ``units`` is (n, L) uint8 with L >= 16. L need not be a multiple of 16:
    the last partial block is handled by ciphertext stealing (sector sizes never need it, the
    standard's test vectors do).
    """
    _check_key("aes-xts-plain64", key)
    tweaks = np.ascontiguousarray(tweaks, dtype=np.uint8).reshape(-1, BLOCK)
    units = np.ascontiguousarray(units, dtype=np.uint8)
    n, length = units.shape
    if length < BLOCK:
        raise InvalidParameter(f"XTS needs data units of at least 16 bytes, got {length}")
    if tweaks.shape[0] != n:
        raise InvalidParameter(f"{tweaks.shape[0]} tweaks for {n} data units")
    half = len(key) // 2
    key1, key2 = key[:half], key[half:]
    full, rem = divmod(length, BLOCK)
    masks = _xts_tweak_stream(key2, tweaks, full + (1 if rem else 0))
    out = np.empty_like(units)
    plain_full = full - 1 if rem else full  # with stealing, the last full block is special
    body = units[:, : plain_full * BLOCK].reshape(n, plain_full, BLOCK)
    out[:, : plain_full * BLOCK] = _xts_blocks(key1, body, masks[:, :plain_full], decrypt).reshape(n, -1)
    if rem:
        penult = units[:, plain_full * BLOCK : full * BLOCK]
        tail = units[:, full * BLOCK :]
        # Encryption uses T_{m-1} then T_m; decryption the other way round (IEEE 1619 §5.4.2).
        first_mask, second_mask = (masks[:, full], masks[:, full - 1]) if decrypt else (masks[:, full - 1], masks[:, full])
        stolen = _xts_blocks(key1, penult, first_mask, decrypt)
        joined = np.concatenate([tail, stolen[:, rem:]], axis=1)
        out[:, plain_full * BLOCK : full * BLOCK] = _xts_blocks(key1, joined, second_mask, decrypt)
        out[:, full * BLOCK :] = stolen[:, :rem]
    return out


def cbc_units(key: bytes, ivs: np.ndarray, units: np.ndarray, *, decrypt: bool = False) -> np.ndarray:
    """AES-CBC (no padding) over equal-length units, each with its own IV, vectorised over units.

    ``ivs`` is (n, 16) uint8, ``units`` (n, L) uint8 with L a multiple of 16.
    """
    units = np.ascontiguousarray(units, dtype=np.uint8)
    n, length = units.shape
    if length % BLOCK:
        raise InvalidParameter(f"CBC units must be a multiple of 16 bytes, got {length}")
    ivs = np.ascontiguousarray(ivs, dtype=np.uint8).reshape(n, BLOCK)
    blocks = units.reshape(n, length // BLOCK, BLOCK)
    if decrypt:
        # Decryption is parallel: P_j = D(C_j) ^ C_{j-1}, one ECB call over everything.
        prev = np.concatenate([ivs[:, None, :], blocks[:, :-1]], axis=1)
        return (_ecb(key, blocks, decrypt=True) ^ prev).reshape(n, length)
    cipher = AES.new(key, AES.MODE_ECB)
    out = np.empty_like(blocks)
    chain = ivs
    for j in range(blocks.shape[1]):  # sequential inside a sector, vectorised across sectors
        col = np.ascontiguousarray(blocks[:, j] ^ chain)
        enc = np.empty_like(col)
        cipher.encrypt(memoryview(col.reshape(-1)), output=memoryview(enc.reshape(-1)))
        out[:, j] = enc
        chain = enc
    return out.reshape(n, length)


def essiv_ivs(key: bytes, sectors: np.ndarray, *, big_endian32: bool = False) -> np.ndarray:
    """ESSIV IVs for the given sector numbers: AES-256-ECB_{SHA-256(key)}(sector block).

    The sector block is ``le64(s) || 0^8`` (dm-crypt) or ``be32(s) || 0^12`` (the paper's code).
    """
    sectors = np.asarray(sectors, dtype=np.uint64).reshape(-1)
    blocks = np.zeros((sectors.size, BLOCK), dtype=np.uint8)
    if big_endian32:
        if sectors.size and int(sectors.max()) >= 1 << 32:
            raise InvalidParameter("aes-cbc-essiv-be32 sector numbers must be below 2^32")
        blocks[:, :4] = sectors.astype(">u4").view(np.uint8).reshape(-1, 4)
    else:
        blocks[:, :8] = sectors.astype("<u8").view(np.uint8).reshape(-1, 8)
    salt = hashlib.sha256(key).digest()
    return _ecb(salt, blocks)


# --------------------------------------------------------------------------- sector layer

def _check_key(mode: str, key: bytes | None) -> bytes:
    if mode not in _KEY_BYTES:
        raise InvalidParameter(f"unknown FDE mode {mode!r}; choose one of {', '.join(FDE_MODES)}")
    key = b"" if key is None else bytes(key)
    allowed = _KEY_BYTES[mode]
    if mode != "none" and len(key) not in allowed:
        bits = ", ".join(str(8 * b) for b in allowed)
        raise InvalidParameter(f"{mode} needs a key of {bits} bits, got {8 * len(key)} bits ({len(key)} bytes)")
    return key


def derive_key(mode: str, seed: int, n_bytes: int | None = None) -> bytes:
    """A reproducible key for simulations: SHA-512 of a label, the mode and the seed.

    Simulated corruption needs *some* key; deriving it from the seed keeps a run reproducible
    without anyone having to store key files. Real keys come from ``--key-file``.
    """
    if mode not in DEFAULT_KEY_BYTES:
        _check_key(mode, None)  # raises the unknown-mode error
    n = DEFAULT_KEY_BYTES[mode] if n_bytes is None else n_bytes
    digest = hashlib.sha512(f"acir/fde-key/v1/{mode}/{int(seed)}".encode()).digest()
    return _check_key(mode, digest[:n])


@dataclass(frozen=True)
class SectorCipher:
    """One encrypted volume region holding a file: mode, key and sector geometry.

    The key is kept out of ``repr`` so that it never ends up in a log line.
    """

    mode: str = "aes-cbc-essiv:sha256"
    key: bytes = field(default=b"", repr=False)
    sector_size: int = 512
    first_sector: int = 0
    iv_large_sectors: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _check_key(self.mode, self.key))
        if self.sector_size not in SECTOR_SIZES:
            raise InvalidParameter(
                f"sector size must be one of {', '.join(map(str, SECTOR_SIZES))} bytes, got {self.sector_size}"
            )
        if not 0 <= int(self.first_sector) < 1 << 64:
            raise InvalidParameter(f"first sector must be in [0, 2^64), got {self.first_sector}")

    def n_sectors(self, n_bytes: int) -> int:
        return -(-n_bytes // self.sector_size)

    def iv_sectors(self, n: int) -> np.ndarray:
        """The IV sector number of each of the file's ``n`` sectors (see the module docstring)."""
        step = 1 if (self.iv_large_sectors or self.mode == "aes-cbc-essiv-be32") else self.sector_size // 512
        idx = np.arange(n, dtype=np.uint64) * np.uint64(step)
        return idx + np.uint64(int(self.first_sector))  # wraps modulo 2^64, as a 64-bit counter does

    def _transform(self, sectors: np.ndarray, decrypt: bool) -> np.ndarray:
        n = sectors.shape[0]
        if self.mode == "none" or n == 0:
            return sectors.copy()
        numbers = self.iv_sectors(n)
        if self.mode == "aes-xts-plain64":
            tweaks = np.zeros((n, BLOCK), dtype=np.uint8)
            tweaks[:, :8] = numbers.astype("<u8").view(np.uint8).reshape(n, 8)
            return xts_units(self.key, tweaks, sectors, decrypt=decrypt)
        ivs = essiv_ivs(self.key, numbers, big_endian32=self.mode == "aes-cbc-essiv-be32")
        return cbc_units(self.key, ivs, sectors, decrypt=decrypt)

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt a file's bytes; returns whole sectors (zero-padded, see the module docstring)."""
        data = np.frombuffer(plaintext, dtype=np.uint8)
        n = self.n_sectors(data.size)
        padded = np.zeros(n * self.sector_size, dtype=np.uint8)
        padded[: data.size] = data
        return self._transform(padded.reshape(n, self.sector_size), decrypt=False).tobytes()

    def decrypt(self, ciphertext: bytes, length: int | None = None) -> bytes:
        """Decrypt whole sectors; with ``length`` return just the file's bytes (padding stripped)."""
        data = np.frombuffer(ciphertext, dtype=np.uint8)
        if data.size % self.sector_size:
            raise InvalidParameter(
                f"ciphertext of {data.size} bytes is not a whole number of {self.sector_size}-byte sectors"
            )
        if length is not None and not 0 <= length <= data.size:
            raise InvalidParameter(f"length {length} is outside the {data.size} bytes of ciphertext")
        plain = self._transform(data.reshape(-1, self.sector_size), decrypt=True)
        out = plain.reshape(-1)
        return (out if length is None else out[:length]).tobytes()


def encrypt(plaintext: bytes, mode: str, key: bytes | None, *, sector_size: int = 512, first_sector: int = 0,
            iv_large_sectors: bool = False) -> bytes:
    """Encrypt ``plaintext`` as the sectors of a disk would hold it (see :class:`SectorCipher`)."""
    return SectorCipher(mode, key or b"", sector_size, first_sector, iv_large_sectors).encrypt(plaintext)


def decrypt(ciphertext: bytes, mode: str, key: bytes | None, *, length: int | None = None, sector_size: int = 512,
            first_sector: int = 0, iv_large_sectors: bool = False) -> bytes:
    """Inverse of :func:`encrypt`; ``length`` strips the last sector's padding."""
    return SectorCipher(mode, key or b"", sector_size, first_sector, iv_large_sectors).decrypt(ciphertext, length)
