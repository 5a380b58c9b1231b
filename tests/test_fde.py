"""Sector encryption: public known-answer vectors, round trips, and how errors propagate."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings, strategies as st

from acir_core import fde
from acir_core.errors import InvalidParameter
from conftest import FIXTURES, SHARED

VECTOR_FILES = sorted((FIXTURES / "vectors").glob("*.json"))


def _u8(hexstr: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hexstr), np.uint8)


def _tweak(v: dict) -> bytes:
    return int(v["tweak"]).to_bytes(16, "little") if isinstance(v["tweak"], int) else bytes.fromhex(v["tweak"])


def check_vector(mode: str, v: dict) -> None:
    """Check one vector in both directions through the public API that covers its mode."""
    key, pt, ct = bytes.fromhex(v["key"]), _u8(v["plaintext"]), _u8(v["ciphertext"])
    if mode == "xts":
        tw = np.frombuffer(_tweak(v), np.uint8)[None]
        assert fde.xts_units(key, tw, pt[None]).tobytes() == ct.tobytes()
        assert fde.xts_units(key, tw, ct[None], decrypt=True).tobytes() == pt.tobytes()
        if isinstance(v["tweak"], int) and len(pt) % 16 == 0:
            # the sector layer itself: a sector number is a plain64 tweak; XTS is blockwise, so a
            # shorter unit is a prefix of the padded sector
            c = fde.SectorCipher("aes-xts-plain64", key, 512, v["tweak"])
            assert c.encrypt(pt.tobytes())[: len(pt)] == ct.tobytes()
            if len(pt) == 512:
                assert c.decrypt(ct.tobytes()) == pt.tobytes()
    elif mode == "cbc-essiv-sha256":
        iv = fde.essiv_ivs(key, np.array([v["sector"]], dtype=np.uint64))
        assert iv.tobytes().hex() == v["essiv_iv"]
        c = fde.SectorCipher("aes-cbc-essiv:sha256", key, 512, v["sector"])
        padded = c.encrypt(pt.tobytes())
        assert padded[: len(pt)] == ct.tobytes()  # CBC: a prefix does not depend on what follows
        assert c.decrypt(padded, len(pt)) == pt.tobytes()
    elif mode == "cbc":
        iv = _u8(v["iv"])[None]
        assert fde.cbc_units(key, iv, pt[None]).tobytes() == ct.tobytes()
        assert fde.cbc_units(key, iv, ct[None], decrypt=True).tobytes() == pt.tobytes()
    else:
        raise AssertionError(f"unknown vector mode {mode}")


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_bundled_public_vectors_pass(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["vectors"], "an empty vector file would make this test vacuous"
    for v in doc["vectors"]:
        check_vector(doc["mode"], v)


def test_bundled_vectors_cover_every_mode_and_ciphertext_stealing() -> None:
    modes, lengths = set(), set()
    for path in VECTOR_FILES:
        doc = json.loads(path.read_text())
        modes.add(doc["mode"])
        lengths |= {len(v["plaintext"]) // 2 for v in doc["vectors"]}
    assert modes == {"xts", "cbc-essiv-sha256", "cbc"}
    assert {17, 25, 512} <= lengths


def test_every_vector_file_in_shared_passes() -> None:
    files = sorted((SHARED / "vectors").glob("*.json"))
    if not files:
        pytest.skip("../shared/vectors is not beside this checkout")
    for path in files:
        doc = json.loads(path.read_text())
        for v in doc["vectors"]:
            check_vector(doc["mode"], v)


def test_paper_be32_variant_matches_the_papers_construction() -> None:
    # Two-ACIR android_aes.py: per 512-byte block n, IV = AES-ECB_{sha256(key)}(be32(n) || 0^12), AES-CBC.
    key = bytes(range(16))
    data = bytes((i * 7) & 0xFF for i in range(512 * 5))
    ecb = AES.new(hashlib.sha256(key).digest(), AES.MODE_ECB)
    expected = b"".join(
        AES.new(key, AES.MODE_CBC, ecb.encrypt(n.to_bytes(4, "big") + bytes(12))).encrypt(data[512 * n : 512 * (n + 1)])
        for n in range(5)
    )
    assert fde.encrypt(data, "aes-cbc-essiv-be32", key) == expected


def test_4096_byte_sectors_count_iv_in_512_byte_units_like_dm_crypt() -> None:
    key = bytes(range(32))
    data = bytes(range(256)) * 64  # 16 KiB = 4 sectors of 4096
    big = fde.encrypt(data, "aes-xts-plain64", key, sector_size=4096, first_sector=16)
    for i in range(4):  # sector i of 4096 bytes uses tweak 16 + 8 i
        one = fde.encrypt(data[4096 * i : 4096 * (i + 1)], "aes-xts-plain64", key, sector_size=4096,
                          first_sector=16 + 8 * i)
        assert big[4096 * i : 4096 * (i + 1)] == one
    large = fde.encrypt(data, "aes-xts-plain64", key, sector_size=4096, first_sector=16, iv_large_sectors=True)
    assert large[4096:8192] == fde.encrypt(data[4096:8192], "aes-xts-plain64", key, sector_size=4096,
                                           first_sector=17, iv_large_sectors=True)
    assert large[4096:] != big[4096:]


MODES_WITH_KEYS = [("aes-cbc-essiv:sha256", 16), ("aes-cbc-essiv:sha256", 32), ("aes-cbc-essiv-be32", 16),
                   ("aes-xts-plain64", 32), ("aes-xts-plain64", 64), ("none", 0)]


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=5000), which=st.sampled_from(MODES_WITH_KEYS),
       sector_size=st.sampled_from([512, 4096]), first=st.integers(0, 2**32 - 1000))
def test_decrypt_inverts_encrypt_for_any_length(data, which, sector_size, first) -> None:
    mode, klen = which
    key = bytes((i * 31 + 5) & 0xFF for i in range(klen))
    ct = fde.encrypt(data, mode, key, sector_size=sector_size, first_sector=first)
    assert len(ct) % sector_size == 0 and len(ct) >= len(data)
    assert fde.decrypt(ct, mode, key, length=len(data), sector_size=sector_size, first_sector=first) == data
    if mode != "none" and len(data) >= 32:
        assert ct[: len(data)] != data


def _garbled_blocks(mode: str, bit: int, sector_size: int = 512, n_sectors: int = 4) -> tuple[set[int], np.ndarray]:
    key = bytes(range(16 if "cbc" in mode else 64))
    plain = bytes((i * 13 + 1) & 0xFF for i in range(sector_size * n_sectors))
    ct = bytearray(fde.encrypt(plain, mode, key, sector_size=sector_size))
    ct[bit // 8] ^= 0x80 >> (bit % 8)
    out = np.frombuffer(fde.decrypt(bytes(ct), mode, key, sector_size=sector_size), np.uint8)
    diff = out != np.frombuffer(plain, np.uint8)
    return set(np.flatnonzero(diff) // 16), diff


@pytest.mark.parametrize("bit", [0, 8 * 100 + 3, 8 * 511 + 7, 8 * 512 * 2 + 8 * 490 + 1, 8 * 2047 + 6])
def test_cbc_flip_garbles_its_block_and_one_bit_of_the_next_within_the_sector(bit) -> None:
    blocks, diff = _garbled_blocks("aes-cbc-essiv:sha256", bit)
    i = bit // 128
    last_in_sector = (i % 32) == 31
    assert blocks == ({i} if last_in_sector else {i, i + 1})
    assert diff[16 * i : 16 * i + 16].sum() >= 12  # essentially the whole block is garbage
    if not last_in_sector:
        nxt = np.flatnonzero(diff[16 * (i + 1) : 16 * (i + 2)])
        assert nxt.tolist() == [(bit // 8) % 16]  # exactly the same bit position, one block later


@pytest.mark.parametrize("bit", [0, 8 * 100 + 3, 8 * 511 + 7, 8 * 4096 + 5])
def test_xts_flip_garbles_exactly_one_block(bit) -> None:
    blocks, _ = _garbled_blocks("aes-xts-plain64", bit, sector_size=4096, n_sectors=2)
    assert blocks == {bit // 128}


def test_none_mode_flip_changes_exactly_one_bit() -> None:
    blocks, diff = _garbled_blocks("none", 777)
    assert diff.sum() == 1 and blocks == {777 // 128}


@pytest.mark.parametrize("mode,klen", [("aes-cbc-essiv:sha256", 20), ("aes-cbc-essiv:sha256", 64),
                                       ("aes-xts-plain64", 16), ("aes-xts-plain64", 48)])
def test_wrong_key_length_is_a_clear_error(mode, klen) -> None:
    with pytest.raises(InvalidParameter, match=f"{mode} needs a key of .* got {8 * klen} bits"):
        fde.SectorCipher(mode, bytes(klen))


def test_unknown_mode_and_sector_size_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="unknown FDE mode"):
        fde.SectorCipher("aes-ctr", bytes(16))
    with pytest.raises(InvalidParameter, match="sector size"):
        fde.SectorCipher("aes-xts-plain64", bytes(64), sector_size=520)
    with pytest.raises(InvalidParameter, match="whole number"):
        fde.decrypt(bytes(100), "none", None)


def test_key_never_appears_in_repr() -> None:
    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert "00112233" not in repr(fde.SectorCipher("aes-cbc-essiv:sha256", key))
    assert "x00" not in repr(fde.SectorCipher("aes-cbc-essiv:sha256", key))


def test_derived_keys_are_reproducible_and_sized_per_mode() -> None:
    assert fde.derive_key("aes-xts-plain64", 7) == fde.derive_key("aes-xts-plain64", 7)
    assert len(fde.derive_key("aes-xts-plain64", 7)) == 64
    assert len(fde.derive_key("aes-cbc-essiv:sha256", 7)) == 16
    assert fde.derive_key("aes-cbc-essiv:sha256", 7) != fde.derive_key("aes-cbc-essiv:sha256", 8)
