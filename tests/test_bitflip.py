"""Bit errors on the ciphertext: reproducible draws, the right statistics, the right places."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from acir_core.bitflip import _binomial, corrupt, sample_flips
from acir_core.errors import BadInput, CorruptHeader, InvalidParameter, NotJpeg, TruncatedJpeg
from acir_core.jpeg.segments import parse_layout


def test_flips_are_pinned_for_a_seed_so_every_machine_draws_the_same() -> None:
    # Golden values: PCG64 raw output + our own inversion and sampling. If this changes, every
    # published dataset made with acir would silently change too.
    assert sample_flips(10_000_000, 1e-6, 42).tolist() == [
        464488, 830402, 1072752, 1779511, 4658219, 4736732, 5955100, 6253843, 8350558, 9748964]


@settings(max_examples=40, deadline=None)
@given(n_bits=st.integers(0, 10**7), ber=st.floats(0, 0.01), seed=st.integers(0, 2**63))
def test_flips_are_distinct_sorted_and_in_range(n_bits, ber, seed) -> None:
    f = sample_flips(n_bits, ber, seed)
    assert f.dtype == np.int64
    assert np.all(np.diff(f) > 0)
    assert f.size == 0 or (f[0] >= 0 and f[-1] < n_bits)
    assert np.array_equal(f, sample_flips(n_bits, ber, seed))


def test_flip_count_follows_the_binomial_mean_and_variance() -> None:
    n, p = 4_000_000, 1e-5  # mean 40, variance ~40
    counts = np.array([sample_flips(n, p, s).size for s in range(400)])
    assert abs(counts.mean() - 40) < 1.5  # 5 standard errors of the mean
    assert 28 < counts.var() < 55


def test_binomial_inversion_matches_the_exact_cdf_for_small_n() -> None:
    n, p = 12, 0.3
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    cdf = np.cumsum(pmf)
    for u in np.linspace(0.001, 0.999, 97):
        assert _binomial(n, p, float(u)) == int(np.searchsorted(cdf, u, side="right"))


def test_positions_are_uniform_over_the_region() -> None:
    f = np.concatenate([sample_flips(1000, 0.01, s) for s in range(2000)])  # ~20000 positions
    hist = np.bincount(f // 100, minlength=10)
    expected = f.size / 10
    chi2 = float(((hist - expected) ** 2 / expected).sum())
    assert chi2 < 30  # 9 degrees of freedom; p < 0.001 would be 27.9


def test_corruption_is_reproducible_and_seed_dependent(big_photo_jpeg) -> None:
    a = corrupt(big_photo_jpeg, ber=1e-4, seed=5)
    b = corrupt(big_photo_jpeg, ber=1e-4, seed=5)
    c = corrupt(big_photo_jpeg, ber=1e-4, seed=6)
    assert a.data == b.data and np.array_equal(a.flip_bits, b.flip_bits)
    assert not np.array_equal(a.flip_bits, c.flip_bits)
    assert a.n_flips > 0 and len(a.data) == len(big_photo_jpeg)


def test_region_scan_spares_every_header_sector(big_photo_jpeg) -> None:
    layout = parse_layout(big_photo_jpeg)
    for seed in range(20):
        c = corrupt(big_photo_jpeg, ber=1e-3, seed=seed, region="scan")
        first_allowed = ((layout.scan_start - 1) // 512 + 1) * 512
        assert c.region_start == first_allowed
        assert c.flip_bits.min() >= 8 * first_allowed
        assert c.changed_bytes.min() >= first_allowed
        assert c.data[:first_allowed] == big_photo_jpeg[:first_allowed]


def test_region_all_can_hit_the_header(big_photo_jpeg) -> None:
    hits = [corrupt(big_photo_jpeg, ber=2e-3, seed=s, region="all").flip_bits.min() for s in range(30)]
    assert min(hits) < 8 * 512


@pytest.mark.parametrize("mode", ["aes-cbc-essiv:sha256", "aes-xts-plain64", "none"])
def test_changed_bytes_are_exactly_the_blocks_each_flip_garbles(big_photo_jpeg, mode) -> None:
    c = corrupt(big_photo_jpeg, fde=mode, ber=1e-4, seed=3)
    blocks = c.flip_bits // 128
    allowed = set(blocks.tolist())
    if mode.startswith("aes-cbc"):
        allowed |= {b + 1 for b in blocks.tolist() if (b % 32) != 31}  # the next block, same sector
    changed_blocks = set((c.changed_bytes // 16).tolist())
    assert changed_blocks <= allowed
    if mode == "none":
        assert c.changed_bytes.size == len(set((c.flip_bits // 8).tolist()))
    if mode == "aes-xts-plain64":
        assert changed_blocks == {b for b in allowed if 16 * b < len(big_photo_jpeg)}


def test_given_key_and_derived_key_decrypt_consistently(big_photo_jpeg) -> None:
    key = bytes(range(64))
    c = corrupt(big_photo_jpeg, fde="aes-xts-plain64", key=key, ber=0.0, seed=1)
    assert c.data == big_photo_jpeg and c.n_flips == 0 and c.params.key_source == "given"
    assert "key" not in c.to_record()["params"]
    assert corrupt(big_photo_jpeg, ber=0.0).params.key_source == "seed"


def test_sector_loss_replaces_whole_sectors_after_the_header(big_photo_jpeg) -> None:
    c = corrupt(big_photo_jpeg, fde="none", ber=0.0, sector_loss=0.2, seed=11)
    assert c.lost_sectors.size > 0 and c.n_flips == 0
    assert c.lost_sectors.min() >= c.region_start // 512
    changed_sectors = set((c.changed_bytes // 512).tolist())
    assert changed_sectors == set(c.lost_sectors.tolist())
    cbc = corrupt(big_photo_jpeg, ber=0.0, sector_loss=0.2, seed=11)
    assert np.array_equal(cbc.lost_sectors, c.lost_sectors)  # same seed, same sectors, any mode


def test_4096_byte_sectors_and_a_first_sector_offset(big_photo_jpeg) -> None:
    c = corrupt(big_photo_jpeg, fde="aes-xts-plain64", sector_size=4096, first_sector=1 << 40, ber=1e-4, seed=2)
    assert c.region_start % 4096 == 0 and c.n_flips > 0
    assert c.params.sector_size == 4096 and c.params.first_sector == 1 << 40


def test_record_is_json_ready_and_describes_the_damage(big_photo_jpeg) -> None:
    import json

    c = corrupt(big_photo_jpeg, ber=1e-4, seed=4)
    rec = json.loads(json.dumps(c.to_record()))
    assert rec["n_flips"] == c.n_flips == len(rec["flip_bits"])
    assert rec["plaintext_bytes_changed"] == sum(e - s for s, e in rec["changed_runs"])
    assert rec["params"]["fde"] == "aes-cbc-essiv:sha256" and rec["params"]["seed"] == 4


@pytest.mark.parametrize("ber", [-1e-6, 0.6, float("nan"), float("inf")])
def test_ber_outside_zero_to_half_is_refused(photo_jpeg, ber) -> None:
    with pytest.raises(InvalidParameter, match="BER must be"):
        corrupt(photo_jpeg, ber=ber)


def test_bad_region_loss_and_seed_are_refused(photo_jpeg) -> None:
    with pytest.raises(InvalidParameter, match="region"):
        corrupt(photo_jpeg, region="header")
    with pytest.raises(InvalidParameter, match="sector-loss"):
        corrupt(photo_jpeg, sector_loss=1.5)
    with pytest.raises(InvalidParameter, match="seed"):
        corrupt(photo_jpeg, seed=-1)


@pytest.mark.parametrize("data,exc,reason", [
    (b"", BadInput, "empty file"),
    (b"GIF89a" + bytes(100), NotJpeg, "not a JPEG"),
    (b"\xff\xd8\xff\xdb\x00\x43" + bytes(10), TruncatedJpeg, "runs past the end"),
    (b"\xff\xd8\xff\xe0\x00\x01" + bytes(10), CorruptHeader, "impossible length"),
    (b"\xff\xd8\xff\xd9", TruncatedJpeg, "EOI marker before any image data"),
    (b"\xff\xd8\xff\xe0\x00\x04ab", TruncatedJpeg, "before the image data"),
])
def test_bad_input_names_the_file_and_the_reason(data, exc, reason) -> None:
    with pytest.raises(exc, match=reason) as info:
        corrupt(data, source="holiday.jpg")
    assert str(info.value).startswith("holiday.jpg: ")


def test_truncated_header_of_a_real_file(photo_jpeg) -> None:
    with pytest.raises(TruncatedJpeg):
        corrupt(photo_jpeg[:300])
