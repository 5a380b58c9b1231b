"""SCA: the paper's baseline and the decoder-aware compensation."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from acir_core.bitflip import corrupt
from acir_core.errors import InvalidParameter
from acir_core.jpeg.decoder import decode
from acir_core.metrics import y_psnr
from acir_core.jpeg.render import SamplePlanes
from acir_core.sca.aware_sca import aware_sca
from acir_core.sca.compensate import compensate, decode_for, resolve_thumbnail
from acir_core.sca.fill import _hole_and_ring, dilate, fill_from_thumbnail, inpaint, ring
from acir_core.sca.options import AwareOptions, MaskOptions, RefineOptions, RunOptions
from acir_core.sca.paper import paper_sca
from acir_core.sca.refine import RefineContext, thumbnail_refine
from acir_core.sca.result import SegmentFix
from acir_core.thumbnail import synthetic_thumbnail, with_thumbnail
from conftest import shared_path

FLIPS = 9.0  # expected flipped bits in a damaged test photo


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A real photo when ../shared is there (what SCA is for), else the bundled example."""
    try:
        path = sorted(shared_path("datasets", "eval").glob("*.jpg"))[0]
        im = Image.open(path).convert("RGB").resize((1024, 512))
    except pytest.skip.Exception:
        from conftest import REPO

        im = Image.open(REPO / "examples" / "andrew-ridley-54228.jpg").convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=75)
    return buf.getvalue()


def damage(data: bytes, seed: int):
    """The photo with about nine bits flipped (BER 2e-5 on the 57 kB shared photo): counted per
    photo, not per bit, so the bundled example (1.7× the bytes) is no more damaged than it."""
    return corrupt(data, ber=FLIPS / (8 * len(data)), seed=seed).data


def test_clean_file_passes_through_unchanged_with_an_empty_mask(photo) -> None:
    r = decode(photo)
    s = aware_sca(r, synthetic_thumbnail(r.rgb))
    assert np.array_equal(s.rgb, r.rgb) and not s.mask.any()
    assert [(f.shift, f.dc) for f in s.segments] == [(0, (0, 0, 0))]


def test_aware_sca_restores_a_damaged_photo_far_beyond_the_robust_decode(photo) -> None:
    clean = decode(photo, "strict").rgb
    thumb = synthetic_thumbnail(clean)
    gains, exact = [], []
    for seed in range(3):
        r = decode(damage(photo, seed))
        c = compensate(r, thumb)
        gains.append(y_psnr(c.rgb, clean) - y_psnr(r.rgb, clean))
        exact.append(np.mean(np.all(c.unfilled == clean, axis=2)[~c.mask]))
        s = c.sca
        # one seed loses most of its last third (the bundled example's seed 2: 0.354 of the
        # MCUs); the precautions (content kept where it agrees with the thumbnail: at this size
        # up to 0.14 of the image, most of it the MCU rows beside damage) add the rest
        assert s.mask.any() and np.mean(s.mcu_mask & ~s.doubtful) < 0.36 and s.damaged_fraction < 0.50
        assert c.timings["total"] > 0 and c.fill == "thumbnail"
    assert np.mean(gains) > 10.0
    assert np.median(exact) > 0.75  # outside the mask, most of the image is the clean decode itself


def test_runs_are_put_back_with_the_shift_and_dc_the_damage_caused(photo) -> None:
    clean = decode(photo, "strict")
    r = decode(damage(photo, 1))
    s = aware_sca(r, synthetic_thumbnail(clean.rgb))
    assert any(f.shift != 0 for f in s.segments) or any(any(f.dc) for f in s.segments)
    # every confidently placed run now has the clean coefficients at its new place
    y = s.coefficients[0]
    agree = np.mean(np.all(y == clean.coefficients[0], axis=2))
    assert agree > 0.7


def test_without_a_thumbnail_damage_is_inpainted(photo) -> None:
    clean = decode(photo, "strict").rgb
    r = decode(damage(photo, 2))
    c = compensate(r, None)
    kept = c.sca.unsure if c.sca.unsure is not None else np.zeros_like(c.mask)  # runs that may lie a place off
    assert c.fill == "inpaint" and c.mask.any() and np.array_equal(c.region, c.mask & ~kept)
    assert y_psnr(c.rgb, clean) > y_psnr(r.rgb, clean) + 5
    with pytest.raises(InvalidParameter, match="needs a thumbnail"):
        compensate(r, None, fill="thumbnail")


def test_restart_markers_need_no_guessing_across_intervals(photo) -> None:
    im = Image.open(io.BytesIO(photo))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=75, restart_marker_rows=1)
    data = buf.getvalue()
    clean = decode(data, "strict").rgb
    r = decode(damage(data, 0))
    assert y_psnr(compensate(r, synthetic_thumbnail(clean)).rgb, clean) > 30


def test_paper_sca_normalises_each_channel_to_the_full_range(photo) -> None:
    r = decode(damage(photo, 0), resync="paper")
    p = paper_sca(r)
    assert p.rgb.shape == r.rgb.shape and p.method == "paper"
    assert p.rgb.reshape(-1, 3).min(axis=0).max() <= 1 and p.rgb.reshape(-1, 3).max(axis=0).min() >= 254


def test_paper_alignment_moves_later_rows_back_by_the_mcus_the_stream_lost() -> None:
    """The paper's block alignment on a smooth picture whose MCU stream lost the first two MCUs
    of row 2: rows 2 on are shown from two stream places earlier, so all but the two lost MCUs
    match again pixel for pixel, and the rows above stay as they were."""
    from acir_core.sca.paper import align, place_mcus

    rows, cols, m = 6, 10, 16
    y, x = np.mgrid[0 : rows * m, 0 : cols * m].astype(np.float64)
    clean = np.stack([128 + 60 * np.sin(x / 23) + 40 * np.cos(y / 17) + 20 * np.sin((x + y) / 11),
                      128 + 50 * np.cos(x / 31), 128 + 30 * np.sin(y / 13)], axis=-1)
    stream = clean.reshape(rows, m, cols, m, 3).transpose(0, 2, 1, 3, 4).reshape(rows * cols, m, m, 3)
    lost = np.concatenate([stream[:20], stream[22:], np.zeros_like(stream[:2])])  # MCUs 20, 21 lost
    shown = lost.reshape(rows, cols, m, m, 3).transpose(0, 2, 1, 3, 4).reshape(rows * m, cols * m, 3)
    source = align(shown, m, m)
    assert source[: 2 * cols].tolist() == list(range(2 * cols))
    assert source[2 * cols :].tolist() == list(range(2 * cols - 2, rows * cols - 2))
    out = np.zeros(clean.shape, np.uint8)
    place_mcus(shown, source, cols, m, m, out)
    expect = np.clip(np.rint(clean), 0, 255).astype(np.uint8)
    # where the two lost MCUs were, the two before them (row 1's last) are shown again
    expect[2 * m : 3 * m, : 2 * m] = expect[m : 2 * m, (cols - 2) * m :]
    assert np.array_equal(out, expect)


def test_compensate_uses_the_embedded_thumbnail(photo) -> None:
    damaged = damage(with_thumbnail(photo), 0)
    r = decode_for(damaged)
    thumb, origin = resolve_thumbnail(damaged, "auto")
    c = compensate(r, thumb)
    assert origin == "embedded-exif" and c.fill == "thumbnail" and c.thumb_up.dtype == np.uint8
    assert c.region.any() and not (c.region & ~c.mask).any()
    assert np.array_equal(c.rgb[~c.region], c.unfilled[~c.region])  # the fill changes its region only
    thumb, origin = resolve_thumbnail(damaged, None)
    c = compensate(r, thumb)
    assert origin == "none" and c.fill == "inpaint" and c.thumb_up is None
    none = compensate(r, None, fill="none")
    assert none.rgb is none.unfilled and not none.region.any()
    with pytest.raises(InvalidParameter):
        compensate(r, None, method="magic")
    paper = compensate(decode_for(damaged, "paper"), thumb, method="paper")
    assert paper.sca.method == "paper" and paper.fill == "none"


def test_fill_meets_the_surrounding_pixels_without_a_seam() -> None:
    rng = np.random.default_rng(0)
    img = np.clip(np.add.outer(np.arange(64), np.arange(96))[..., None] + np.zeros(3) + 40, 0, 255).astype(np.uint8)
    mask = np.zeros((64, 96), bool)
    mask[20:36, 30:62] = True
    thumb_up = img.astype(np.float32) - 25.0 + rng.normal(0, 1, img.shape)  # right shape, wrong level
    out = fill_from_thumbnail(img, mask, thumb_up)
    assert np.abs(out[mask].astype(int) - img[mask].astype(int)).mean() < 4  # level corrected from the ring
    painted = inpaint(img, mask)
    assert np.abs(painted[mask].astype(int) - img[mask].astype(int)).mean() < 6
    assert np.array_equal(out[~mask], img[~mask]) and np.array_equal(painted[~mask], img[~mask])
    assert dilate(mask, 2).sum() == (16 + 4) * (32 + 4)


def test_the_fill_reads_its_hole_and_ring_from_the_rows_near_the_mask() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        mask = np.zeros((h, w), bool)
        for _ in range(int(rng.integers(0, 4))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            mask[y:y + int(rng.integers(1, 12)), x:x + int(rng.integers(1, 30))] = True
        r = int(rng.integers(0, 5))
        hy, hx, ry, rx = _hole_and_ring(mask, r)
        assert np.array_equal(np.stack([hy, hx]), np.stack(np.nonzero(mask)))
        assert np.array_equal(np.stack([ry, rx]), np.stack(np.nonzero(ring(mask, r))))


def test_the_fill_carries_the_detail_beside_a_band_into_it() -> None:
    """A damaged band one MCU tall across fine vertical stripes a thumbnail cannot show: the
    stripes continue into the band from above and below (fading over a few pixels), which
    brings the fill closer to the truth than the thumbnail and the smooth correction alone."""
    x = np.arange(128)
    stripes = 128 + 40 * np.sign(np.sin(2 * np.pi * x / 6.0))
    img = np.repeat(np.repeat(stripes[None, :, None], 64, axis=0), 3, axis=2).astype(np.uint8)
    mask = np.zeros((64, 128), bool)
    mask[24:40, 16:112] = True
    thumb_up = np.full(img.shape, 128.0, np.float32)  # the stripes averaged away
    plain = fill_from_thumbnail(img, mask, thumb_up, reach=0.0)
    carried = fill_from_thumbnail(img, mask, thumb_up)
    err = lambda out: np.abs(out[mask].astype(int) - img[mask].astype(int)).mean()  # noqa: E731
    assert err(carried) < 0.75 * err(plain)
    near = mask.copy()
    near[27:37] = False  # the rows next to the band's edges take most of it
    assert np.abs(carried[near].astype(int) - img[near].astype(int)).mean() < 0.5 * err(plain)
    assert np.array_equal(carried[~mask], img[~mask])
    assert err(inpaint(img, mask)) < 0.75 * err(inpaint(img, mask, reach=0.0))  # without a thumbnail too


def test_thumbnail_weights_are_pillows_bicubic() -> None:
    from acir_core.sca.thumbmodel import resample_weights

    x = np.random.default_rng(3).random((200, 333)).astype(np.float32) * 255
    ref = np.asarray(Image.fromarray(x, "F").resize((40, 17), Image.Resampling.BICUBIC))
    ours = resample_weights(200, 17) @ x.astype(np.float64) @ resample_weights(333, 40).T
    assert np.abs(ours - ref).max() < 1e-3


def test_envelope_cholesky_solves_and_gives_the_inverse_diagonal() -> None:
    """The fit's solver on a banded SPD matrix with dense last rows (the tone's bias and gain),
    against LAPACK; and a matrix that is not positive definite is reported, not solved."""
    from acir_core.sca.envelope import cholesky_envelope, envelope_start, inverse_diagonal, solve_envelope

    rng = np.random.default_rng(5)
    n = 120
    a = np.zeros((n, n))
    for i in range(n - 2):
        lo = max(0, i - int(rng.integers(0, 9)))
        a[i, lo: i + 1] = rng.normal(size=i + 1 - lo)
    a[-2:] = rng.normal(size=(2, n))
    mat = a @ a.T + 0.05 * np.eye(n)
    first = envelope_start(np.tril(mat))
    assert (np.arange(n) - first)[: n - 2].max() < 20 and first[-1] == 0
    low, ok = cholesky_envelope(np.tril(mat), first)
    assert ok
    b = rng.normal(size=n)
    assert np.allclose(solve_envelope(low, first, b), np.linalg.solve(mat, b), rtol=1e-9, atol=1e-9)
    assert np.allclose(inverse_diagonal(low, first), np.diag(np.linalg.inv(mat)), rtol=1e-9)
    bad = mat.copy()
    bad[7, 7] = -1.0
    assert not cholesky_envelope(bad, envelope_start(bad))[1]


@pytest.mark.parametrize("size", [(333, 211, 40, 17), (67, 45, 20, 9), (64, 48, 64, 12)], ids=str)
def test_downsample_kept_up_to_date_by_bands_equals_pillows_resize(size) -> None:
    from acir_core.sca.thumbmodel import Downsample

    w, h, tw, th = size
    rng = np.random.default_rng(w)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    small = Downsample(img, tw, th)
    resize = lambda a: np.asarray(Image.fromarray(a).resize((tw, th), Image.Resampling.BICUBIC))
    assert np.array_equal(small.image, resize(img))
    rows = np.zeros(h, bool)
    rows[[0, 5, 6, 7, h // 2, h - 1]] = True
    img = img.copy()
    img[rows] = rng.integers(0, 256, (int(rows.sum()), w, 3), dtype=np.uint8)
    small.update(img, rows)
    assert np.array_equal(small.image, resize(img))
    rows[:] = False
    rows[h // 3: h // 3 + 21] = True  # a stretch across the 16-row bands of the row pass
    img = img.copy()
    img[rows] = 255 - img[rows]
    small.update(img, rows)
    assert np.array_equal(small.image, resize(img))


@pytest.mark.parametrize("size", [(2048, 1024, 160, 80), (160, 80, 2048, 1024), (153, 77, 1000, 61),
                                  (300, 200, 300, 33), (300, 200, 31, 200), (40, 30, 1, 1), (5, 3, 7, 2)],
                         ids=str)
def test_bicubic_resize_equals_pillows_bit_for_bit(size) -> None:
    """Our numba resize is Pillow's, reducing and enlarging, sizes that do not divide, one axis
    unchanged: every integer tap and rounding as Resample.c."""
    from acir_core.sca.resize import bicubic_resize

    w, h, ow, oh = size
    img = np.random.default_rng(w * h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[: h // 2, : w // 2] = 255  # clipping at both ends: flat extremes beside noise
    img[h // 2:, w // 2:] = 0
    ref = np.asarray(Image.fromarray(img).resize((ow, oh), Image.Resampling.BICUBIC))
    assert np.array_equal(bicubic_resize(img, ow, oh), ref)


def test_thumbnail_upsampling_is_pillows_and_takes_a_grey_thumbnail() -> None:
    from acir_core.sca.fill import upsampled_thumbnail

    rng = np.random.default_rng(3)
    thumb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    up = upsampled_thumbnail(thumb, 301, 199)
    assert up.dtype == np.uint8 and up.shape == (199, 301, 3)
    assert np.array_equal(up, np.asarray(Image.fromarray(thumb).resize((301, 199), Image.Resampling.BICUBIC)))
    grey = thumb[..., 0].copy()
    ref = np.asarray(Image.fromarray(grey).resize((301, 199), Image.Resampling.BICUBIC))
    assert np.array_equal(upsampled_thumbnail(grey, 301, 199), np.repeat(ref[..., None], 3, axis=2))


def test_fill_judges_partial_edge_cells_by_the_pixels_they_have() -> None:
    """An image that is not whole MCUs: each damaged cell is judged on its own pixels (a cell
    that agrees is kept, one far off or blank is filled), edge cells included."""
    from acir_core.sca.fill import fill_disagreeing

    h, w = 45, 67  # 3 x 5 cells of 16, the last row and column partial
    yy, xx = np.mgrid[0:h, 0:w]
    ref = np.stack([60 + 2 * xx, 80 + yy, 100 + xx + yy], axis=-1).astype(np.float32)
    img = np.clip(np.rint(ref), 0, 255).astype(np.uint8)
    img[32:, 64:] = np.clip(img[32:, 64:].astype(int) + 40, 0, 255)  # the partial corner cell: far off
    img[0:16, 16:32] = 128  # a blank cell
    img[16:32, 0:16] = np.clip(img[16:32, 0:16].astype(int) + 5, 0, 255)  # off a little: kept
    mask = np.zeros((h, w), bool)
    mask[:, :] = True
    out = fill_disagreeing(img, mask, ref, (16, 16))
    assert np.array_equal(out[16:32, 0:16], img[16:32, 0:16])  # agrees within 12 levels
    assert np.abs(out[32:, 64:].astype(int) - ref[32:, 64:]).max() <= 2  # refilled from the thumbnail
    assert np.abs(out[0:16, 16:32].astype(int) - ref[0:16, 16:32]).max() <= 2


def test_a_precaution_that_breaks_at_the_rows_around_it_is_filled() -> None:
    """Content read out of step at a run's end keeps its level (the agreement test passes it) but
    breaks at the rows of cells above and below; with the seam test such a precaution is filled,
    while one that continues into its neighbours is kept."""
    from acir_core.sca.fill import breaking_cells, disagreeing

    h, w = 64, 96
    yy, xx = np.mgrid[0:h, 0:w]
    ref = np.stack([100 + 40 * np.sin(xx / 5.0)] * 3, axis=-1).astype(np.float32)  # vertical stripes
    img = np.clip(np.rint(ref), 0, 255).astype(np.uint8)
    img[16:32, 32:48] = np.roll(img[16:32, 32:48], 8, axis=1)  # half a period off: same level, broken
    mask = np.zeros((h, w), bool)
    mask[16:32, 16:64] = True  # three precautions, the middle one placed off
    loose = np.zeros((4, 6), bool)
    loose[1, 1:4] = True
    plain = disagreeing(img, mask, ref, (16, 16), loose=loose, loose_tolerance=18.0)
    assert not plain.any()  # every cell's mean agrees with the thumbnail
    seams = breaking_cells(img, mask, plain, loose, (16, 16), 6.0)
    assert seams[16:32, 32:48].all() and not seams[16:32, 16:32].any() and not seams[16:32, 48:64].any()
    assert not breaking_cells(img, mask, seams, loose, (16, 16), 6.0).any()  # filled already


@pytest.mark.parametrize("v,h", [(2, 2), (1, 1), (1, 2), (2, 1)])
def test_mcu_border_lines_equal_the_float_idct_of_the_whole_mcu(v, h) -> None:
    from acir_core.sca.edges import DCT, Edges

    rng = np.random.default_rng(v * 3 + h)
    mcus = (rng.integers(-20, 20, (30, v, h, 64)) * (rng.random((30, v, h, 64)) < 0.2)).astype(np.int16)
    qt = rng.integers(1, 60, 64)
    d = DCT.astype(np.float64)
    px = np.einsum("uy,nabuw,wx->naybx", d, mcus.reshape(30, v, h, 8, 8) * qt.reshape(8, 8), d) + 128.0
    tiles = px.reshape(30, 8 * v, 8 * h)
    e = Edges.of(mcus, qt)
    for got, want in [(e.top, tiles[:, 0]), (e.top2, tiles[:, 1]), (e.bottom, tiles[:, -1]),
                      (e.bottom2, tiles[:, -2]), (e.left, tiles[:, :, 0]), (e.left2, tiles[:, :, 1]),
                      (e.right, tiles[:, :, -1]), (e.right2, tiles[:, :, -2]), (e.mean, tiles.mean(axis=(1, 2)))]:
        assert np.allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("layout", [((2, 2), (1, 1), (1, 1)), ((4, 1), (1, 1), (1, 1)), ((2, 2),)], ids=str)
def test_aware_sca_with_a_thumbnail_on_a_photo_that_is_not_whole_mcus(layout) -> None:
    """The last MCU row and column overhang the image (333 x 211 is neither 16 nor 32 wide): the
    thumbnail is read past its edge for them instead of Pillow refusing the box (it raised
    before), and what SCA keeps outside the mask is still the clean decode."""
    from conftest import photo_like
    from jpeg_writer import encode

    im = photo_like(333, 211, seed=2)
    data = encode(im[..., 0] if len(layout) == 1 else im, layout)
    clean = decode(data, "strict").rgb
    c = corrupt(data, fde="aes-xts-plain64", ber=1e-4, region="scan", seed=1)
    r = decode(c.data, "robust")
    assert r.resyncs
    s = aware_sca(r, synthetic_thumbnail(clean))
    assert s.rgb.shape == clean.shape and s.mask.shape == clean.shape[:2]
    assert 0 < s.mask.mean() < 1
    assert np.mean(s.rgb[~s.mask] == clean[~s.mask]) > 0.97


def test_chunks_split_each_run_like_array_split() -> None:
    from acir_core.sca.thumbdc import Chunks

    owner = np.array([[0, 0, 0, 0, 0, 1, 1], [1, 1, 1, -1, 2, 2, 2]])
    c = Chunks.of(owner, np.array([1]), 2)
    # run 0: 5 MCUs -> round(2.5) = 2 pieces of 3 and 2; run 1: 5 -> 3 and 2; run 2: 3 -> 2 pieces
    assert c.var.tolist() == [[0, 0, 0, 1, 1, 2, 2], [2, 3, 3, -1, 4, 4, 5]]
    assert c.run.tolist() == [0, 0, 1, 1, 2, 2]
    assert c.fixed.tolist() == [False, False, True, False, False, False]


def test_thumbnail_fit_finds_each_chunks_offset_and_a_step_inside_a_run(photo) -> None:
    """Runs offset by whole levels (one with a step half-way, as silent damage leaves) are found
    to a fraction of a level from a thumbnail made of the clean image."""
    from acir_core.sca.thumbdc import solve_offsets

    clean = decode(photo, "strict").rgb.astype(np.int16)
    h, w = clean.shape[:2]
    rows, cols = h // 16, w // 16
    owner = (np.arange(rows * cols) // (rows * cols // 5)).clip(0, 4).reshape(rows, cols)
    truth = {1: 3.0, 2: -2.0, 3: 0.0, 4: 1.0}
    level = np.zeros((rows, cols))
    for j, d in truth.items():
        level[owner == j] = d
    step_at = int(np.flatnonzero(owner.reshape(-1) == 3)[0]) + (owner == 3).sum() // 2
    level.reshape(-1)[step_at: step_at + (owner == 3).sum() // 2] = 4.0  # silent step inside run 3
    owner[0, 3:6] = -1  # some damage
    shifted = clean - np.repeat(np.repeat(level, 16, 0), 16, 1)[:, :, None]
    rgb = np.clip(shifted, 0, 255).astype(np.uint8)
    fit = solve_offsets(rgb, synthetic_thumbnail(clean.astype(np.uint8)), owner, np.array([0]), (16, 16), "ycbcr")
    var = fit.chunks.var
    inside = (owner >= 0) & (fit.chunks.var >= 0)
    # away from the step, every chunk rounds to its true offset
    chunk_truth = np.array([np.median(level[var == i]) for i in range(fit.chunks.run.size)])
    pure = np.array([np.ptp(level[var == i]) == 0 for i in range(fit.chunks.run.size)])
    assert np.array_equal(np.rint(fit.offset[pure, 0]), chunk_truth[pure])
    assert inside.sum() > 0.9 * rows * cols
    assert abs(fit.bias[0]) < 0.2


def test_without_a_visible_anchor_an_offset_every_run_shares_is_not_taken_for_tone(photo) -> None:
    """Every run a level off and no anchored run in sight (damaged, or distrusted): the tone bias
    could explain it all at the cost of one prior; held near 0, each chunk is found off."""
    from acir_core.sca.thumbdc import solve_offsets

    clean = decode(photo, "strict").rgb.astype(np.int16)
    h, w = clean.shape[:2]
    rows, cols = h // 16, w // 16
    owner = (np.arange(rows * cols) // (rows * cols // 4)).clip(0, 3).reshape(rows, cols)
    owner[: rows // 4] = -1  # run 0, the anchored one, is all damage
    level = np.where(owner >= 1, 1.0, 0.0)
    rgb = np.clip(clean - np.repeat(np.repeat(level, 16, 0), 16, 1)[:, :, None], 0, 255).astype(np.uint8)
    fit = solve_offsets(rgb, synthetic_thumbnail(clean.astype(np.uint8)), owner, np.array([0]), (16, 16), "ycbcr")
    assert abs(fit.bias[0]) < 0.3
    assert np.mean(np.rint(fit.offset[:, 0]) == 1.0) > 0.9


def _clean_in_two_runs(photo) -> tuple:
    """The clean photo as the thumbnail check would see it after placing: run 0 (anchored) holds
    the first quarter of the MCUs, run 1 the rest. Returns the decode, the fixes, the owner grid."""
    clean = decode(photo, "strict")
    sr = clean.scans[0]
    rows, cols = sr.mcu_rows, sr.mcu_cols
    n, p = rows * cols, rows * cols // 4
    fixes = [SegmentFix(scan=0, first_mcu=0, end_mcu=p, shift=0, dc=(0, 0, 0), cost=1.0, confident=True),
             SegmentFix(scan=0, first_mcu=p, end_mcu=n, shift=0, dc=(0, 0, 0), cost=1.0, confident=True)]
    return clean, fixes, np.where(np.arange(n) < p, 0, 1).reshape(rows, cols)


def _refine(clean, coefs, fixes, owner, fit=None):
    """thumbnail_refine on ``coefs`` (changed in place) with the clean photo's thumbnail."""
    planes = SamplePlanes.empty(tuple(coefs))
    rgb = clean.rerender(tuple(coefs), planes)
    ctx = RefineContext(result=clean, scan=clean.scans[0], coefs=coefs, owner=owner, fixes=fixes,
                        thumbnail=synthetic_thumbnail(clean.rgb), rgb=rgb, samples=planes)
    kw = {"fit": fit} if fit is not None else {}
    return thumbnail_refine(ctx, RefineOptions(), MaskOptions(), **kw)


def test_the_thumbnail_check_fixes_a_run_whose_dc_the_boundaries_got_wrong(photo) -> None:
    """The thumbnail check moves a run whose DC the boundary fit left off by a step: run 1's luma
    one step too bright comes back to the clean DC, and its fix records the step."""
    clean, fixes, owner = _clean_in_two_runs(photo)
    coefs = [c.copy() for c in clean.coefficients]
    y = coefs[0]
    late = np.repeat(np.repeat(owner == 1, 2, 0), 2, 1)  # luma blocks of run 1 (4:2:0)
    y[..., 0][late] += 1
    refined = _refine(clean, coefs, fixes, owner)
    assert refined is not None
    trusted = ~np.repeat(np.repeat(refined.damaged | refined.doubted, 2, 0), 2, 1)
    assert (trusted & late).sum() > 0.5 * late.sum()
    assert np.mean(y[..., 0][trusted] == clean.coefficients[0][..., 0][trusted]) > 0.97
    assert any(f.first_mcu >= fixes[1].first_mcu and f.dc[0] == 1 for f in refined.fixes)


def test_thumbnail_fit_claims_nothing_from_a_thumbnail_of_another_picture(photo) -> None:
    """A thumbnail that does not show this photo (a camera that letterboxes, a swapped file) must
    not move runs: the fit's residual spread is far above the level aware SCA demands of a
    thumbnail before it lets the fit move anything, while the photo's own thumbnail is far below."""
    from acir_core.sca.thumbdc import solve_offsets

    gate = RefineOptions().exact_sigma
    clean = decode(photo, "strict").rgb
    rows, cols = clean.shape[0] // 16, clean.shape[1] // 16
    owner = (np.arange(rows * cols) // (rows * cols // 4)).clip(0, 3).reshape(rows, cols)
    wrong = synthetic_thumbnail(np.ascontiguousarray(clean[::-1, ::-1]))
    fit = solve_offsets(clean, wrong, owner, np.array([0]), (16, 16), "ycbcr")
    assert fit.sigma.min() > 2 * gate
    right = solve_offsets(clean, synthetic_thumbnail(clean), owner, np.array([0]), (16, 16), "ycbcr")
    assert right.sigma.max() < gate / 2
    # the refinement asks the fit to stop at the first component past the gate
    assert solve_offsets(clean, wrong, owner, np.array([0]), (16, 16), "ycbcr", stop_sigma=gate) is None
    kept = solve_offsets(clean, synthetic_thumbnail(clean), owner, np.array([0]), (16, 16), "ycbcr", stop_sigma=gate)
    assert np.array_equal(kept.offset, right.offset)


def test_a_jpeg_thumbnail_has_no_say_in_the_dc_fit(photo) -> None:
    """An EXIF-style thumbnail (q90 JPEG, chroma subsampled) does not reproduce our downsample to
    a fraction of a level, so the thumbnail DC fit must leave the runs as the boundaries put them."""
    clean = decode(photo, "strict")
    buf = io.BytesIO()
    Image.fromarray(synthetic_thumbnail(clean.rgb)).save(buf, "JPEG", quality=90)
    thumb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    r = decode(damage(photo, 1))
    # every fix counts as short, so a refused fit that still marked short stretches would show
    with_fit = aware_sca(r, thumb, options=AwareOptions(refine=RefineOptions(short_span=np.inf)))
    without = aware_sca(r, thumb, options=AwareOptions(refine=None))
    assert np.array_equal(with_fit.rgb, without.rgb) and np.array_equal(with_fit.mask, without.mask)
    assert np.array_equal(with_fit.doubtful, without.doubtful)


def _edited_fit(clean, edit, seen):
    """solve_offsets with its luma findings edited each round: ``edit(fit, round, unit)`` changes
    ``fit.offset`` / ``fit.stderr`` in place; the last fit's chunks are kept in ``seen``."""
    from acir_core.sca.thumbdc import solve_offsets

    seen["round"] = 0

    def edited(*args, **kwargs):
        fit = solve_offsets(*args, **kwargs)
        if fit is not None:
            edit(fit, seen["round"], float(clean.qtables[0][0]) / 8.0)
            seen["round"] += 1
            seen["chunks"] = fit.chunks
        return fit

    return edited


def _refit(photo, edit) -> tuple:
    """The thumbnail check on the clean photo in two runs, its fit's findings edited by ``edit``.
    Returns the MCUs it found damaged, those it marked as a precaution, and the last chunks."""
    clean, fixes, owner = _clean_in_two_runs(photo)
    seen = {}
    refined = _refine(clean, [c.copy() for c in clean.coefficients], fixes, owner, fit=_edited_fit(clean, edit, seen))
    if refined is None:
        return np.zeros(owner.shape, bool), np.zeros(owner.shape, bool), seen["chunks"]
    return refined.damaged, refined.doubted, seen["chunks"]


def _mask_of_a_refitted_chunk(photo, offset_steps: float, stderr_steps: float) -> bool:
    """The thumbnail check with its fit made to report, for the largest chunk it may move, the
    given luma offset and standard error (in quantiser steps): are all that chunk's MCUs marked?"""
    picked = {}

    def edit(fit, rnd, unit):
        sizes = np.bincount(fit.chunks.var[fit.chunks.var >= 0], minlength=fit.chunks.run.size)
        k = picked.setdefault("k", int(np.argmax(np.where(fit.chunks.fixed, 0, sizes))))
        fit.offset[k, 0], fit.stderr[k, 0] = offset_steps * unit, stderr_steps * unit

    damaged, doubted, chunks = _refit(photo, edit)
    members = chunks.var == picked["k"]
    assert members.sum() >= 3
    return bool((damaged | doubted)[members].all())


def test_a_chunk_the_fit_finds_off_but_cannot_pin_becomes_damage(photo) -> None:
    """A chunk three steps off by the thumbnail, but fitted too loosely to say by how much (six
    standard errors from 0, ±0.5 steps), is neither moved nor trusted."""
    assert _mask_of_a_refitted_chunk(photo, 3.0, 0.5)


def test_a_chunk_the_thumbnail_cannot_see_is_not_trusted(photo) -> None:
    """A chunk whose offset the thumbnail leaves at 0 ± 0.5 steps (its pixels clipped, or their
    footprints on damage) keeps the boundary fit's DC unchecked: not trusted either."""
    assert _mask_of_a_refitted_chunk(photo, 0.0, 0.5)


def test_a_chunk_the_thumbnail_pins_at_zero_stays_trusted(photo) -> None:
    """The control: the same chunk at 0 ± 0.02 steps keeps its MCUs."""
    assert not _mask_of_a_refitted_chunk(photo, 0.0, 0.02)


def test_a_chunk_a_quarter_step_loose_is_not_trusted(photo) -> None:
    """At 0 ± 0.25 steps the boundary fit's DC is off by one too often to be shown as exact
    (train photos at 1e-5: most of the runs left one step off had such a fit)."""
    assert _mask_of_a_refitted_chunk(photo, 0.0, 0.25)


def test_standouts_take_the_mcus_decoded_beside_them_in_the_same_run() -> None:
    from acir_core.sca.marks import with_decode_neighbours

    # positions 0-5 run 0 (chunks 0, 1), 6 damaged, 7-9 run 1 (chunk 2)
    var = np.array([0, 0, 0, 1, 1, 1, -1, 2, 2, 2])
    run = np.array([0, 0, 1])
    flag = np.zeros(10, bool)
    flag[[2, 7]] = True
    got = with_decode_neighbours(flag, var, run, 1, 1)
    # 1 and 3 are 2's neighbours in run 0 (across the chunk border); 8 is 7's; 6 is damage already
    assert np.flatnonzero(got).tolist() == [1, 2, 3, 7, 8]
    flag[:] = False
    flag[5] = True  # 5 and 7 are not neighbours across the damaged 6; 5 and 6 are not one run
    assert np.flatnonzero(with_decode_neighbours(flag, var, run, 1, 1)).tolist() == [4, 5]


def test_the_mcus_just_after_each_resume_point_are_shown_as_damage(photo) -> None:
    """Placed (so the fill keeps them where they agree with the thumbnail) but not trusted: a
    resume a few bits early decodes a wrong block or two before falling into step; and garbage
    can decode for longer before a failure than what is walked back."""
    clean = decode(photo, "strict")
    r = decode(damage(photo, 1))
    thumb = synthetic_thumbnail(clean.rgb)
    opts = RunOptions()
    kept = MaskOptions(clear=False)  # every precaution stays; lifting them is checked below
    s = aware_sca(r, thumb, options=AwareOptions(runs=opts, mask=kept))
    loose = aware_sca(r, thumb, options=AwareOptions(runs=RunOptions(settle_mcus=0, lead_mcus=0), mask=kept))
    # the same placements: only the mask differs
    assert s.segments == loose.segments and np.array_equal(s.rgb, loose.rgb)
    flat = s.mcu_mask.reshape(-1)
    checked = led = 0
    for e in r.resyncs:
        k = e.mcu + 1 + opts.skip_mcus
        fix = next((f for f in s.segments if f.first_mcu <= k < f.end_mcu and f.confident), None)
        if fix is None or not 0 <= k + fix.shift < flat.size:
            continue
        assert flat[k + fix.shift : k + fix.shift + opts.settle_mcus].all()
        checked += 1
        j = e.mcu - opts.back_mcus - opts.lead_mcus  # and before what was walked back from the failure
        before = next((f for f in s.segments if f.first_mcu <= j < f.end_mcu and f.confident), None)
        if before is not None and e.mcu - opts.back_mcus <= before.end_mcu and 0 <= j + before.shift:
            assert flat[j + before.shift : e.mcu - opts.back_mcus + before.shift].all()
            led += 1
    assert checked >= 3 and led >= 3
    assert s.mcu_mask.sum() > loose.mcu_mask.sum()
    # lifting precautions whose borders join their trusted neighbours only ever lifts, and what
    # it lifts is the clean decode
    lifted = aware_sca(r, thumb, options=AwareOptions(runs=opts))
    gone = s.mask & ~lifted.mask
    assert not (lifted.mcu_mask & ~s.mcu_mask).any() and gone.any()
    assert np.mean(np.all(lifted.rgb[gone] == clean.rgb[gone], axis=-1)) > 0.95


def test_a_silently_lost_mcu_in_texture_splits_the_run_where_it_was_lost() -> None:
    """Decoded MCUs after a silent loss of one MCU sit one place early: for the next row's worth of
    MCUs, the MCU one place right of the one decoded a row earlier joins their top edge better
    than that MCU itself, and the run is cut there (in texture the plain roughness cannot tell)."""
    from acir_core.sca.edges import Edges, misalignment
    from acir_core.sca.runs import Run, split_pulse

    def border(t):  # what SCA reads of these MCU tiles
        return [Edges(t[:, 0], t[:, 1], t[:, -1], t[:, -2], t[:, :, 0], t[:, :, 1], t[:, :, -1], t[:, :, -2],
                       t.mean(axis=(1, 2)))]

    rng = np.random.default_rng(3)
    rows, cols = 12, 40
    y, x = np.mgrid[0 : rows * 16, 0 : cols * 16].astype(np.float64)
    img = sum(rng.uniform(10, 30) * np.sin(x * rng.uniform(0.05, 0.6) + y * rng.uniform(0.05, 0.6) + rng.uniform(0, 6))
              for _ in range(12)) + 128 + rng.normal(0, 2, x.shape)
    true = img.reshape(rows, 16, cols, 16).transpose(0, 2, 1, 3).reshape(rows * cols, 16, 16).astype(np.float32)
    lost = 5 * cols + 17
    decoded = np.concatenate([true[:lost], true[lost + 1 :], true[-1:]])
    d = misalignment(border(decoded), cols)
    assert d[lost : lost + cols].mean() > 0 > np.median(d)  # elsewhere the MCU above fits best
    run = Run(0, rows * cols, np.arange(rows * cols))
    pieces = split_pulse(run, d, cols, RunOptions(), per_mcu_noise=True)
    assert len(pieces) == 2 and abs(pieces[1].first - lost) <= 2
    # the MCUs just after the break are placed but marked, as after a resume point
    opts = RunOptions()
    assert pieces[1].settled == pieces[1].first + 1 + opts.skip_mcus + opts.settle_mcus
    assert pieces[0].settled == -1 and pieces[1].trusted[0] < pieces[1].settled
    # and the last MCUs kept before it
    assert pieces[0].trusted[-1] >= pieces[0].tail > pieces[0].trusted[-1] - opts.lead_mcus
    assert pieces[1].tail == run.tail
    assert split_pulse(run, misalignment(border(true), cols), cols, RunOptions(), per_mcu_noise=True) == [run]
    assert not misalignment(border(true[:cols]), cols).any()  # one MCU row: nothing above to judge by


def test_the_fill_keeps_damaged_mcus_whose_content_agrees_with_the_thumbnail() -> None:
    """Of three damaged MCUs, the one with decoded texture matching the thumbnail's mean is kept;
    the blank one (nothing decoded) and the one 40 levels off are filled from the thumbnail."""
    from acir_core.sca.fill import fill_disagreeing, smooth

    rng = np.random.default_rng(0)
    clean = np.clip(128 + smooth(rng.normal(0, 40, (64, 96, 3)), 2) + rng.normal(0, 6, (64, 96, 3)), 0, 255)
    thumb_up = smooth(clean, 3).astype(np.float32)
    img = clean.astype(np.uint8)
    img[16:32, 48:64] = 128  # blank: a neutral block
    img[32:48, 16:32] = np.clip(img[32:48, 16:32].astype(int) + 40, 0, 255)  # off
    mask = np.zeros((64, 96), bool)
    for y, x in ((16, 16), (16, 48), (32, 16)):
        mask[y : y + 16, x : x + 16] = True
    out = fill_disagreeing(img, mask, thumb_up)
    assert np.array_equal(out[16:32, 16:32], img[16:32, 16:32])  # agrees: kept as decoded
    for y, x in ((16, 48), (32, 16)):
        assert not np.array_equal(out[y : y + 16, x : x + 16], img[y : y + 16, x : x + 16])
    assert np.array_equal(out[~mask], img[~mask])
    everything = fill_disagreeing(img, mask, thumb_up, tolerance=-1.0)  # every damaged MCU filled
    assert not np.array_equal(everything[16:32, 16:32], img[16:32, 16:32])


def test_a_precautionary_mcu_is_judged_with_the_loose_tolerance() -> None:
    """An MCU 18 levels off is filled when SCA found it wrong, kept when it was marked only as a
    precaution (``loose``); 30 levels off, it is filled either way."""
    from acir_core.sca.fill import fill_disagreeing

    ref = np.full((32, 64, 3), 100.0, np.float32)
    img = np.full((32, 64, 3), 100, np.uint8)
    img += (np.arange(64)[None, :, None] % 3 * 3).astype(np.uint8)  # texture (mean +3): not a blank block
    img[:16, :16] += 18
    img[:16, 32:48] += 30
    mask = np.zeros((32, 64), bool)
    mask[:16, :16] = mask[:16, 32:48] = True
    loose = np.zeros((2, 4), bool)
    loose[0, 0] = loose[0, 2] = True
    strict = fill_disagreeing(img, mask, ref)
    soft = fill_disagreeing(img, mask, ref, loose=loose)
    assert not np.array_equal(strict[:16, :16], img[:16, :16])
    assert np.array_equal(soft[:16, :16], img[:16, :16])
    assert not np.array_equal(soft[:16, 32:48], img[:16, 32:48])


def test_an_mcu_one_level_off_stands_out_where_the_thumbnail_sees_it() -> None:
    """A residual that is one MCU 1.3 levels off (a silent break leaves such halves either side
    of a chunk's fitted offset) is flagged; 0.5 levels is not."""
    from acir_core.sca.thumbdc import Chunks, ThumbnailDC
    from acir_core.sca.thumbmodel import cell_weights

    rows, cols = 16, 32
    ry = cell_weights(rows * 16, 40, 16, rows)
    rx = cell_weights(cols * 16, 80, 16, cols)

    def flagged(level: float) -> np.ndarray:
        footprint = np.outer(ry[:, 7], rx[:, 20])
        resid = np.stack([footprint * level, np.zeros_like(footprint), np.zeros_like(footprint)])
        resid += np.random.default_rng(0).normal(0, 0.05, resid.shape)
        fit = ThumbnailDC(Chunks(np.zeros((rows, cols), np.int64), np.zeros(1, np.int64), np.zeros(1, bool)),
                          np.zeros((1, 3)), np.zeros((1, 3)), 3200, np.zeros(3), np.zeros(3), resid,
                          np.ones((40, 80), bool), np.full(3, 0.05), ry, rx)
        return fit.standouts()

    assert np.flatnonzero(flagged(1.3)).tolist() == [7 * cols + 20]
    assert not flagged(0.5).any()


def test_blind_mcus_next_to_damage_are_marked_up_to_the_reach() -> None:
    from acir_core.sca.marks import unseen_edges

    damaged = np.zeros(12, bool)
    damaged[5] = True
    blind = np.ones(12, bool)
    blind[2] = blind[9] = False
    got = unseen_edges(damaged, blind, 2)
    assert np.flatnonzero(got).tolist() == [3, 4, 6, 7]
    blind[4] = False  # a seen MCU stops the walk
    assert np.flatnonzero(unseen_edges(damaged, blind, 3)).tolist() == [6, 7, 8]


def test_precautions_are_part_of_the_mask_and_kept_apart(photo) -> None:
    clean = decode(photo, "strict")
    r = decode(damage(photo, 1))
    s = aware_sca(r, synthetic_thumbnail(clean.rgb))
    assert s.doubtful is not None and s.doubtful.any()
    assert not (s.doubtful & ~s.mcu_mask).any()
    assert (s.mcu_mask & ~s.doubtful).any()


def test_a_photo_one_mcu_row_tall_is_compensated() -> None:
    """Nothing lies above the first MCU row: the continuity checks must stand aside, not fail."""
    from conftest import encode_jpeg, photo_like

    data = encode_jpeg(photo_like(2048, 16, seed=1))
    clean = decode(data, "strict").rgb
    r = decode(corrupt(data, ber=3e-4, seed=0).data)
    assert r.resyncs
    s = aware_sca(r, synthetic_thumbnail(clean))
    assert s.rgb.shape == clean.shape and 0 < s.damaged_fraction < 1


def test_short_stretches_the_thumbnail_blends_with_their_neighbours_are_not_shown_as_sure() -> None:
    """A confident fix spanning fewer thumbnail pixels than ``short_span`` is marked as a
    precaution, unless a restart anchors its DC; the span scales with the thumbnail's pixels per
    MCU, so a larger photo (more MCUs per thumbnail pixel) needs a longer stretch."""
    from acir_core.sca.marks import short_fixes

    fix = lambda first, end, shift, cost, confident: SegmentFix(  # noqa: E731
        scan=0, first_mcu=first, end_mcu=end, shift=shift, dc=(0, 0, 0), cost=cost, confident=confident)
    fixes = [fix(0, 20, 0, 1.0, True),  # anchored at a restart: sure
             fix(20, 45, -2, 1.0, True),  # 25 MCUs: short
             fix(45, 50, -2, 9.0, False),  # not confident: damage already
             fix(50, 120, -2, 1.0, True)]  # 70 MCUs: long enough
    got = short_fixes(fixes, {0}, 130, 1.25, 40.0)
    assert np.flatnonzero(got).tolist() == list(range(18, 43))
    # at a quarter of the thumbnail pixels per MCU, the 70-MCU stretch spans under 40 of them
    got = short_fixes(fixes, {0}, 130, 0.5, 40.0)
    assert np.flatnonzero(got).tolist() == list(range(18, 43)) + list(range(48, 118))


def test_the_mcus_decoded_beside_garbage_the_thumbnail_rejects_are_marked(photo) -> None:
    """Garbage that decoded without any failure: two MCUs whose luma the thumbnail flatly
    contradicts, after one whose AC is garbled but whose mean is right. The two are damage;
    the four before them (silent garbage's DC error grows as it goes, so it starts before what the
    thumbnail sees) and the two after are shown as damage too, as a precaution."""
    import dataclasses

    clean = decode(photo, "strict")
    thumb = synthetic_thumbnail(clean.rgb)
    y = clean.coefficients[0].copy()
    rows, cols = y.shape[0] // 2, y.shape[1] // 2
    p = (rows // 2) * cols + cols // 2  # an MCU in the middle, in decode order
    rng = np.random.default_rng(0)
    for q, (dc, ac) in ((p - 1, (0, True)), (p, (60, False)), (p + 1, (60, False))):
        r0, c0 = 2 * (q // cols), 2 * (q % cols)
        y[r0:r0 + 2, c0:c0 + 2, 0] += dc
        if ac:
            y[r0:r0 + 2, c0:c0 + 2, 1:10] = rng.integers(-2, 3, (2, 2, 9))  # its mean unchanged
    coefs = (y,) + tuple(clean.coefficients[1:])
    garbled = dataclasses.replace(clean, coefficients=coefs, rgb=clean.rerender(coefs))
    s = aware_sca(garbled, thumb, options=AwareOptions(mask=MaskOptions(clear=False)))
    flat, doubt = s.mcu_mask.reshape(-1), s.doubtful.reshape(-1)
    assert flat[p] and flat[p + 1] and not doubt[p] and not doubt[p + 1]
    assert doubt[p - 4:p].all() and doubt[p + 2:p + 4].all()  # four MCUs before, two after
    assert not doubt[p - 6] and not doubt[p + 5]
    # and not much else: the row above (one false standout and its neighbours) and the MCUs just
    # below the garbage, which the thumbnail sees only partly (its footprints there reach the damage)
    marked = np.flatnonzero(flat)
    assert flat.sum() <= 18 and np.all(np.abs(marked // cols - p // cols) <= 1)
    # lifting precautions whose borders join their neighbours keeps the garbled one
    lifted = aware_sca(garbled, thumb).mcu_mask.reshape(-1)
    assert lifted[p - 1] and lifted[p] and lifted[p + 1] and not (lifted & ~flat).any()


def test_a_silent_step_the_refit_finds_splits_the_run_and_marks_around_the_split(photo) -> None:
    """A luma step of one quantiser unit from a chunk boundary on, too small for the run to be
    split before the thumbnail fit: the refit moves the chunks after it, the run becomes two
    fixes, and the MCUs around the split (where silent garbage would be) are marked."""
    import dataclasses

    from acir_core.sca.thumbdc import Chunks

    clean = decode(photo, "strict")
    y = clean.coefficients[0].copy()
    rows, cols = y.shape[0] // 2, y.shape[1] // 2
    var = Chunks.of(np.zeros((rows, cols), np.int64), np.array([0]), 24).var.reshape(-1)
    p = int(np.flatnonzero(var == var[rows * cols // 2] + 1)[0])  # a chunk's first MCU
    mcus = y.reshape(rows, 2, cols, 2, 64).transpose(0, 2, 1, 3, 4).reshape(rows * cols, 2, 2, 64)
    mcus[p:, :, :, 0] += 1
    y = mcus.reshape(rows, cols, 2, 2, 64).transpose(0, 2, 1, 3, 4).reshape(rows * 2, cols * 2, 64)
    coefs = (y,) + tuple(clean.coefficients[1:])
    stepped = dataclasses.replace(clean, coefficients=coefs, rgb=clean.rerender(coefs))
    # the refit alone: the edges' step split (runs.split_step) reads a step of a level a row of
    # pairs on from where it is, over content's own edge there, and its margins mark more
    s = aware_sca(stepped, synthetic_thumbnail(clean.rgb), options=AwareOptions(runs=RunOptions(step_sigma=0.0)))
    assert [(f.first_mcu, f.end_mcu, f.dc) for f in s.segments] == [(0, p, (0, 0, 0)), (p, rows * cols, (1, 0, 0))]
    assert np.array_equal(s.rgb, clean.rgb)
    assert np.flatnonzero(s.doubtful.reshape(-1)).tolist() == list(range(p - 3, p + 3))


def test_an_mcu_or_two_unmarked_between_marked_ones_of_a_run_are_marked() -> None:
    from acir_core.sca.marks import mask_holes

    fixes = [SegmentFix(scan=0, first_mcu=0, end_mcu=10, shift=0, dc=(0, 0, 0), cost=1.0, confident=True),
             SegmentFix(scan=0, first_mcu=10, end_mcu=22, shift=-2, dc=(0, 0, 0), cost=1.0, confident=True)]
    mask = np.zeros(24, bool)
    mask[[1, 4, 7, 9, 11, 14, 18]] = True
    # fix 0 holds positions 0-7, fix 1 (shift -2) positions 8-19. 2-3 lie between 1 and 4, 5-6
    # between 4 and 7 (fix 0); 8 lies between 7 (fix 0) and 9 (fix 1): not inside one fix; 10
    # between 9 and 11, 12-13 between 11 and 14 (fix 1); 15-17 is three wide; 19 and beyond open
    got = np.flatnonzero(mask_holes(mask, fixes, 0, 2)).tolist()
    assert got == [2, 3, 5, 6, 10, 12, 13]


def _big_chunk_with_neighbours(chunks) -> int:
    """A large chunk, not pinned, whose run has a chunk on either side of it."""
    sizes = np.bincount(chunks.var[chunks.var >= 0], minlength=chunks.run.size)
    inner = np.zeros(chunks.run.size, bool)
    inner[1:-1] = (chunks.run[1:-1] == chunks.run[:-2]) & (chunks.run[1:-1] == chunks.run[2:])
    return int(np.argmax(np.where(inner & ~chunks.fixed, sizes, 0)))


def test_the_run_neighbours_of_a_chunk_caught_between_two_steps_are_marked(photo) -> None:
    """A chunk fitted half-way between two steps holds a silent break; the fused tie shares its
    pull with the chunks beside it in the run, so those are marked as a precaution."""
    picked = {}

    def edit(fit, rnd, unit):
        k = picked.setdefault("k", _big_chunk_with_neighbours(fit.chunks))
        fit.offset[k, 0], fit.stderr[k, 0] = 0.5 * unit, 0.02 * unit

    damaged, doubt, chunks = _refit(photo, edit)
    k = picked["k"]
    mask = damaged | doubt
    assert mask[chunks.var == k].all() and not doubt[chunks.var == k].any()  # damage itself
    for j in (k - 1, k + 1):
        assert mask[chunks.var == j].all() and doubt[chunks.var == j].mean() > 0.5


def test_a_chunk_moved_one_way_and_then_back_is_marked(photo) -> None:
    """Two steps down in one round and one back up in the next: the fit was pulled (by garbage
    it had not yet found, on train photos), so the chunk is not shown as sure."""
    picked = {}

    def edit(fit, rnd, unit):
        k = picked.setdefault("k", _big_chunk_with_neighbours(fit.chunks))
        fit.offset[k, 0] = {0: -2.0, 1: 1.0}.get(rnd, 0.0) * unit
        fit.stderr[k, 0] = 0.02 * unit

    damaged, doubt, chunks = _refit(photo, edit)
    members = chunks.var == picked["k"]
    assert members.sum() >= 3 and (damaged | doubt)[members].all() and doubt[members].mean() > 0.5


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 64, 65, 1000, 1001])
def test_bucket_median_is_numpys_median_exactly(n) -> None:
    """The shift search's median: the same float as np.median for odd and even counts, ties,
    values far beyond the bucket range (end buckets) and the rank-(k-1) value in a lower bucket."""
    from acir_core.sca.median import BUCKETS, bucket_median, median, select_kth

    rng = np.random.default_rng(n)
    cases = [rng.normal(0, 3, n), rng.normal(40, 500, n), np.round(rng.normal(0, 2, n)),
             np.full(n, -7.25), rng.standard_cauchy(n) * 1e4, np.where(np.arange(n) < n // 2, -3.9, 4.1)]
    scratch = (np.zeros(BUCKETS, np.int64), np.empty(n, np.int64), np.empty(n))  # kept across calls
    for vals in cases:
        for width in (0.5, 1.125, 0.01):
            got = bucket_median(vals.copy(), n, width, *scratch)
            assert got == np.median(vals), (vals[:5], width)
            assert not scratch[0].any(), "the buckets are left clear for the next call"
            assert median(vals, width) == np.median(vals)
        a = vals.copy()
        k = n // 3
        assert select_kth(a, n, k) == np.sort(vals)[k] and np.all(a[:k] <= a[k])


def test_reweighted_differences_recovers_offsets_despite_a_bad_boundary() -> None:
    """The joint DC fit: runs' offsets from pairwise differences and absolute measurements (an
    index of -1 is the anchored run at 0); one wildly wrong boundary is outweighed, as the dense
    least squares it replaced did."""
    from acir_core.sca.dcfit import reweighted_differences
    from acir_core.sca.options import DCOptions

    truth = np.array([3.0, -2.0, 5.0, 1.0])
    plus = np.array([0, 1, 2, 3, 1, 2, 3, 0, 2])
    minus = np.array([-1, 0, 1, 2, -1, -1, -1, 3, 0])
    b = np.where(plus >= 0, truth[plus], 0) - np.where(minus >= 0, truth[np.maximum(minus, 0)], 0)
    b = b + np.random.default_rng(0).normal(0, 0.05, b.size)
    b[2] += 40.0  # one bad boundary
    x = reweighted_differences(plus, minus, b, np.ones(b.size), 4, DCOptions().rounds, DCOptions().scale)
    assert np.array_equal(np.rint(x), truth)
    a = np.zeros((b.size, 4))
    a[np.arange(b.size), plus] += 1
    ok = minus >= 0
    a[np.flatnonzero(ok), minus[ok]] -= 1
    w = np.ones(b.size)
    for _ in range(4):  # the dense form, for the same numbers
        aw = a * w[:, None]
        dense = np.linalg.solve(aw.T @ a + 1e-9 * np.eye(4), aw.T @ b)
        w = 1.0 / (1.0 + (np.abs(a @ dense - b) / 1.5) ** 2)
    assert np.allclose(x, dense, atol=1e-9)


def _dense_viterbi(costs, start, final, penalty):
    """The plain dynamic programme over every pair of shifts, as an oracle."""
    from acir_core.sca.shifts import INF

    keys = [s for c in costs for s in c] + [start] + ([final] if final is not None else [])
    lo, hi = min(keys), max(keys)
    span = np.arange(lo, hi + 1)
    jump = penalty * np.abs(span[:, None] - span[None, :])
    prev = np.full(span.size, INF)
    prev[start - lo] = 0.0
    back = []
    for c in costs:
        local = np.full(span.size, INF)
        for s, v in c.items():
            local[s - lo] = v
        total = prev[None, :] + jump
        arg = np.argmin(total, axis=1)
        prev = total[np.arange(span.size), arg] + local
        back.append(arg)
    ok = final is not None and lo <= final <= hi and prev[final - lo] < INF
    path = [final - lo if ok else int(np.argmin(prev))]
    for arg in reversed(back[1:]):
        path.append(int(arg[path[-1]]))
    return [int(p + lo) for p in path[::-1]]


def test_viterbi_equals_the_dense_programme() -> None:
    """Reading only the states that can still win gives the same shifts as every pair of shifts,
    ties (lowest shift index first), unreachable placeholders and a forced end included."""
    from acir_core.sca.shifts import INF, viterbi

    rng = np.random.default_rng(5)
    for _ in range(400):
        prev, costs = 0, []
        for _ in range(int(rng.integers(1, 10))):
            w = int(rng.integers(1, 6))
            c = {s: float(rng.choice([rng.random() * 5, np.round(rng.random() * 3), INF / 2]))
                 for s in range(prev - w, prev + w + 1) if rng.random() < 0.7} or {prev: float(INF) / 2}
            costs.append(c)
            prev = min(c, key=c.get)
        final = int(rng.integers(-8, 8)) if rng.random() < 0.5 else None
        pen = float(rng.choice([0.0, 0.05, 0.3, 1.0]))
        bases = np.array([min(c) for c in costs])
        matrix = np.full((len(costs), max(max(c) - b for c, b in zip(costs, bases)) + 1), INF)
        for r, (c, b) in enumerate(zip(costs, bases)):
            matrix[r, np.array(list(c)) - b] = list(c.values())
        assert viterbi(matrix, bases, 0, final, pen) == _dense_viterbi(costs, 0, final, pen)


def test_a_stretch_a_step_off_right_under_damage_is_not_shown_as_sure(photo) -> None:
    """The thumbnail pixels whose footprint reaches damage are left out of its fit, so the MCU row
    just under a garbled stretch is judged from few pixels: a step of one level there went
    unseen. Such MCUs are marked, as a precaution or, where the edges' step split cuts the run
    there, left out as damage (and the rest of the image stays unmarked)."""
    import dataclasses

    clean = decode(photo, "strict")
    thumb = synthetic_thumbnail(clean.rgb)
    y = clean.coefficients[0].copy()
    rows = y.shape[0] // 2
    r, c0, n = rows // 2, 20, 10
    y[2 * r:2 * r + 2, 2 * c0:2 * (c0 + n), 0] += 60  # garbage the thumbnail flatly contradicts
    y[2 * r + 2:2 * r + 4, 2 * c0:2 * (c0 + n), 0] += 1  # the row under it one step off
    coefs = (y,) + tuple(clean.coefficients[1:])
    garbled = dataclasses.replace(clean, coefficients=coefs, rgb=clean.rerender(coefs))
    s = aware_sca(garbled, thumb)
    assert s.mcu_mask[r + 1, c0:c0 + n].all()
    assert np.all(np.all(s.rgb == clean.rgb, axis=2)[~s.mask])
    assert s.mask.mean() < 0.03


def test_unseen_mcus_between_damage_are_marked_through_the_reach() -> None:
    """MCUs the thumbnail cannot see (clipped highlights) reached from damage in decode order
    through unseen MCUs only: a blind stretch of nine between two damaged MCUs is covered from
    both ends with the default reach of six; seen MCUs stop the walk."""
    from acir_core.sca.marks import unseen_edges

    reach = RefineOptions().blind_reach
    damaged = np.zeros(30, bool)
    damaged[[5, 15]] = True
    blind = np.zeros(30, bool)
    blind[6:15] = True  # nine blind MCUs between the two
    blind[16:26] = True  # ten after the second
    got = unseen_edges(damaged, blind, reach)
    assert got[6:15].all() and got[16:16 + reach].all() and not got[16 + reach:].any()
    assert not got[:5].any()  # seen MCUs before the first damage: nothing
    assert unseen_edges(damaged, blind, 2)[6:15].sum() == 4


def test_fuzzed_photos_never_crash_either_sca_with_bounds_checks_on(tmp_path) -> None:
    """Hundreds of damaged small photos (every layout, restart markers, one scan or several, BER up
    to 3e-3, lost sectors; exact, JPEG and no thumbnail; every fill) through both SCAs in a fresh
    process compiled with numba bounds checking: an index the damage pushes out of range raises
    there instead of reading past a buffer."""
    from conftest import run_fuzzer

    run_fuzzer("fuzz_sca.py", 600, 5, tmp_path)


@pytest.mark.parametrize("r", [3, 9, 40])
def test_dilate_by_running_sums_equals_the_square_window(r) -> None:
    from acir_core.sca.fill import dilate, window_reduce

    m = np.random.default_rng(r).random((120, 97)) < 0.003
    assert np.array_equal(dilate(m, r), window_reduce(m, r, np.logical_or))


def test_a_runs_own_row_wraps_tell_its_shift() -> None:
    from acir_core.sca.shifts import WRAP_ROWS, wrap_costs
    cols, rows = 20, 5
    m = np.arange(100, 100 + cols * rows, dtype=np.int64)  # decoded MCUs of one run
    true_shift = 3
    steps = np.full(m.size, 2.0)  # neighbours join smoothly ...
    steps[(m + true_shift) % cols == 0] = 30.0  # ... strangers meet where the rows really wrap
    steps[0] = -1.0  # the first MCU has no predecessor in the run
    shifts = np.arange(-2, 8, dtype=np.int64)
    cost = wrap_costs(steps, m, shifts, cols, 0.5)
    assert shifts[int(np.argmin(cost))] == true_shift
    assert np.sort(cost)[1] - cost.min() > 10.0  # one MCU off is clearly worse
    two_rows = m[: WRAP_ROWS * cols]
    assert wrap_costs(steps[: two_rows.size], two_rows, shifts, cols, 0.5).any()  # two rows have a say
    short = m[: WRAP_ROWS * cols - 1]
    assert not wrap_costs(steps[: short.size], short, shifts, cols, 0.5).any()  # less: none


def test_one_garbage_step_does_not_win_a_runs_row_wraps() -> None:
    """Garbage beside a resync steps far more than any wrap: it must not pull the run to the
    shift that puts a wrap on it while the other wraps there show neighbours."""
    from acir_core.sca.shifts import wrap_costs
    cols, rows = 160, 3
    m = np.arange(30624, 30624 + cols * rows, dtype=np.int64)
    true_shift, garbage_shift = -230, -225
    steps = np.full(m.size, 4.5)
    steps[(m + true_shift) % cols == 0] = 12.0  # true wraps step a little more than neighbours
    steps[0] = -1.0
    steps[np.flatnonzero((m + garbage_shift) % cols == 0)[0]] = 56.0  # one garbage MCU
    shifts = np.arange(-236, -216, dtype=np.int64)
    cost = wrap_costs(steps, m, shifts, cols, 0.5)
    assert shifts[int(np.argmin(cost))] == true_shift
    assert cost[shifts == garbage_shift][0] > cost[shifts == true_shift][0] + 3.0

def _search(decoded: np.ndarray, placed: int, runs: list, rows: int, cols: int, opts, thumb=None):
    from acir_core.sca.edges import inward, outward
    from acir_core.sca.shifts import Canvas, search_runs
    e = _border(decoded)
    inner = ((inward(e.top, e.top2),), (inward(e.left, e.left2),))
    outer = ((outward(e.bottom, e.bottom2),), (outward(e.right, e.right2),))
    canvas = Canvas(outer)
    canvas.place(np.arange(placed), np.arange(placed), [0.0])
    return search_runs(runs, 0, rows * cols, cols, inner, [1.0], canvas,
                       (np.zeros(1),) if thumb is None else (thumb,), thumb is not None, opts, (e.mean,))


def test_row_wraps_place_a_run_of_one_row_that_a_thumbnail_pulls_aside() -> None:
    """A run a row and a half long after a lost MCU, under a thumbnail whose means sit one MCU
    off (a camera's, half a pixel off the photo): too short for the edges alone to overrule it,
    but placed one MCU off it puts the far right of one row beside the far left of the next, and
    its own row wrap says so."""
    from acir_core.sca.options import ShiftOptions
    from acir_core.sca.runs import Run
    rows, cols = 12, 40
    true = _tiles(rows, cols, 5)
    lost = 2 * cols + 7
    decoded = np.concatenate([true[:lost], true[lost + 1 :], true[-1:]])
    means = true.mean(axis=(1, 2))
    thumb = np.ascontiguousarray(np.r_[means[1:], means[-1:]])  # one MCU off: says "shift 0"
    run = Run(lost, lost + 3 * cols // 2, np.arange(lost, lost + 3 * cols // 2))

    def best(wrap_weight: float) -> int:
        opts = ShiftOptions(thumb_weight=8.0, decisive=0.0, wrap_weight=wrap_weight)
        c, _, bases = _search(decoded, lost, [run], rows, cols, opts, thumb)
        return int(bases[0] + np.argmin(c[0]))

    assert best(0.0) == 0  # the thumbnail's means outweigh the edges
    assert best(ShiftOptions().wrap_weight) == 1  # the run's own row wrap puts it right


def test_a_short_run_far_off_does_not_move_the_next_runs_window() -> None:
    """Each run is searched within a window around the shift of the run before it; a short run
    (garbage, or too little content to place) landing far off must not carry the next run's
    window away from where it belongs."""
    from acir_core.sca.options import ShiftOptions
    from acir_core.sca.runs import Run
    rows, cols = 12, 40
    true = _tiles(rows, cols, 5)
    lost = 2 * cols + 7
    decoded = np.concatenate([true[:lost], true[lost + 1 :], true[-1:]])
    short = np.arange(lost, lost + 6)
    decoded[short] = true[short - 4]  # six MCUs that fit best four places back
    runs = [Run(lost, lost + 6, short), Run(lost + 6, rows * cols, np.arange(lost + 6, rows * cols - 1))]
    costs, _, bases = _search(decoded, lost, runs, rows, cols, ShiftOptions(window=4))
    assert int(bases[0] + np.argmin(costs[0])) == -4
    assert int(bases[1] + np.argmin(costs[1])) == 1  # searched around 0, not -4 (-8..0 misses it)


def test_row_wraps_judge_only_shifts_near_the_best() -> None:
    """Over a wide window (a lost stretch searched for), a short run's one or two wraps could land
    on an edge inside the picture at some far shift: the wrap term is kept only near the best."""
    from acir_core.sca.shifts import INF, WRAP_REACH, near_best
    c = np.full(200, 5.0)
    c[100] = 1.0
    c[:3] = INF
    assert near_best(c) == (100 - WRAP_REACH, 100 + WRAP_REACH + 1)
    lo, hi = near_best(np.full(5, INF))
    assert hi <= lo  # nothing costed: no shift judged


def test_seam_steps_join_each_mcu_to_the_one_decoded_before_it_in_the_run() -> None:
    from acir_core.sca.shifts import seam_steps
    left = np.arange(10, dtype=np.float64)[:, None] * np.ones((1, 8))  # MCU i's left edge: i
    right = left + 0.5  # MCU i's right edge, extrapolated out: i + 0.5
    m = np.array([2, 3, 4, 6, 7], dtype=np.int64)  # MCU 5 is not in the run
    got = seam_steps((left, left), (right, right), m)
    # 3 after 2: |3 - 2.5|; 4 after 3; 6 has no predecessor in the run; 7 after 6
    assert np.allclose(got, [-1.0, 0.5, 0.5, -1.0, 0.5])


def test_a_thumbnail_that_steps_where_the_photo_does_not_splits_no_intact_run() -> None:
    """A camera's thumbnail steps against the photo where its tone curve bends; a split there
    would move the rest of a run decoded right by the thumbnail's step. The decode's own edges
    across the break must show the step too (they show none here)."""
    from conftest import encode_jpeg, photo_like
    from acir_core.sca.edges import mcu_major, scan_geometry

    rgb = photo_like(1024, 768, seed=20)
    clean_data = encode_jpeg(rgb, quality=75)
    thumb = synthetic_thumbnail(rgb).astype(int)
    thumb[60:] += 10  # the lower half 10 levels brighter in the thumbnail only
    data = bytearray(clean_data)
    data[int(len(data) * 0.9)] ^= 0x20
    result, clean = decode(bytes(data), "robust"), decode(clean_data, "robust")
    sr = result.scans[0]
    first = min(e.mcu for e in sr.resyncs)
    assert first > 2000  # the damage is near the end: the first run holds most of the photo
    s = aware_sca(result, np.clip(thumb, 0, 255).astype(np.uint8))
    _, comps = scan_geometry(result, sr)
    n = sr.mcu_rows * sr.mcu_cols
    for ci, h, v in comps:
        a = mcu_major(s.coefficients[ci], sr.mcu_rows, sr.mcu_cols, v, h).reshape(n, -1)
        b = mcu_major(clean.coefficients[ci], sr.mcu_rows, sr.mcu_cols, v, h).reshape(n, -1)
        assert np.array_equal(a[: first - 16], b[: first - 16]), ci


def _tiles(rows: int, cols: int, seed: int) -> np.ndarray:
    """MCU tiles (rows·cols, 16, 16) of a textured picture, in decode order."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : rows * 16, 0 : cols * 16].astype(np.float64)
    img = sum(rng.uniform(10, 30) * np.sin(x * rng.uniform(0.05, 0.6) + y * rng.uniform(0.05, 0.6) + rng.uniform(0, 6))
              for _ in range(12)) + 128 + rng.normal(0, 2, x.shape)
    return img.reshape(rows, 16, cols, 16).transpose(0, 2, 1, 3).reshape(rows * cols, 16, 16).astype(np.float64)


def _border(t: np.ndarray):
    from acir_core.sca.edges import Edges
    return Edges(t[:, 0], t[:, 1], t[:, -1], t[:, -2], t[:, :, 0], t[:, :, 1], t[:, :, -1], t[:, :, -2],
                 t.mean(axis=(1, 2)))


def test_edges_sure_of_a_shift_overrule_a_thumbnail_one_mcu_off() -> None:
    """A camera's thumbnail may sit most of an MCU off the photo (its pixel spans more than an MCU),
    and its means then pull a long run one MCU aside. Where the edges alone have a decisive
    minimum within an MCU of the thumbnail's choice, they place the run."""
    from acir_core.sca.edges import inward, outward
    from acir_core.sca.options import ShiftOptions
    from acir_core.sca.runs import Run
    from acir_core.sca.shifts import Canvas, search_runs

    rows, cols = 12, 40
    true = _tiles(rows, cols, 5)
    lost = 2 * cols + 7  # one MCU lost: everything decoded after it belongs one place later
    decoded = np.concatenate([true[:lost], true[lost + 1 :], true[-1:]])
    e = _border(decoded)
    inner = ((inward(e.top, e.top2),), (inward(e.left, e.left2),))
    outer = ((outward(e.bottom, e.bottom2),), (outward(e.right, e.right2),))
    means = true.mean(axis=(1, 2))
    thumb = (np.ascontiguousarray(np.r_[means[1:], means[-1:]]),)  # one MCU off: says "shift 0"
    n = rows * cols
    later = [Run(lost, n, np.arange(lost, n - 1))]

    def best(decisive: float) -> int:
        canvas = Canvas(outer)
        canvas.place(np.arange(lost), np.arange(lost), [0.0])
        opts = ShiftOptions(thumb_weight=8.0, decisive=decisive, wrap_weight=0.0)
        costs, _, bases = search_runs(later, 0, n, cols, inner, [1.0], canvas, thumb, True, opts, (e.mean,))
        return int(bases[0] + np.argmin(costs[0]))

    assert best(0.0) == 0  # the thumbnail's means outweigh the edges
    assert best(4.0) == 1  # the edges are sure, and right


def test_sharp_minimum_needs_a_ratio_and_a_margin_in_levels() -> None:
    from acir_core.sca.shifts import INF, sharp
    assert sharp(np.array([9.0, 1.2, 7.0, INF]), 4.0, 2.0)
    assert not sharp(np.array([9.0, 2.0, 7.0]), 4.0, 2.0)  # 7 is not 4× above 2
    assert not sharp(np.array([0.3, 0.02, 0.5]), 4.0, 2.0)  # flat content: tiny costs say nothing
    assert not sharp(np.full(3, INF), 4.0, 2.0)


def test_the_mcus_beside_a_silent_break_are_placed_but_do_not_judge_the_shift() -> None:
    """Garbage around a silent break reaches an unknown way past where the break was found: the
    MCUs there are placed with their run, but the shift search reads the run without them."""
    from acir_core.sca.runs import Run, split_at
    opts = RunOptions()
    run = Run(0, 400, np.arange(400))
    a, b = split_at(run, 200, 200, opts)
    assert a.trusted[-1] == 200 - opts.back_mcus - 1 and b.trusted[0] == 200 + opts.skip_mcus + 1
    assert a.probes()[-1] == 200 - opts.back_mcus - opts.silent_margin - 1
    assert b.probes()[0] == 200 + opts.skip_mcus + 1 + opts.silent_margin
    # split again: each piece keeps the bounds it had from the first break
    c, d = split_at(b, 100, int(b.trusted[100]), opts)
    assert c.probes()[0] == b.probes()[0] and d.probes()[-1] == 399
    assert np.array_equal(run.probes(), run.trusted)


def test_a_shift_the_segment_end_forces_on_a_long_run_splits_it_where_misalignment_peaks() -> None:
    """The decoder found no break in a long run, but the segment's end says it gained an MCU that
    its own edges reject: the gain is silent and too faint to split the run by itself. It is cut
    where the misalignment peaks and the segment searched again."""
    from acir_core.sca.aware_sca import split_held
    from acir_core.sca.runs import Run

    cols, n = 40, 40 * 20
    run = Run(100, n, np.arange(100, n))
    gain = 500
    misalign = np.random.default_rng(1).normal(0.0, 0.3, n)
    misalign[gain: gain + cols] += 3.0  # one row's worth of MCUs sit a place off
    costs = np.array([[3.0, 0.5, 2.5]])  # shifts -1, 0, 1: the run fits at 0 ...
    bases = np.array([-1])
    searched = []

    def again(runs):
        searched.append([(r.first, r.end) for r in runs])
        c = np.array([[3.0, 0.5, 2.5], [0.6, 3.0, 3.0]])[: len(runs)]
        return c, np.zeros(c.shape + (1,), np.int64), np.array([-1] * len(runs)), [0, -1][: len(runs)]

    later, found = split_held([run], (costs, None, bases, [-1]), misalign, cols, AwareOptions(), again)
    assert [(r.first, r.end) for r in later] == [(100, gain), (gain, n)]  # ... but the end forces -1
    assert searched == [[(100, gain), (gain, n)]] and found[3] == [0, -1]
    # a run at its own best shift is left whole
    later, found = split_held([run], (costs, None, bases, [0]), misalign, cols, AwareOptions(), again)
    assert later == [run] and len(searched) == 1


def test_a_dc_correction_that_leaves_a_run_past_white_is_pulled_back_into_range() -> None:
    from acir_core.sca.inrange import runs_into_range

    mk = MaskOptions()
    y = np.linspace(200.0, 250.0, 40)
    c = np.full(40, 128.0)
    m = np.arange(40)
    # a correction of -10 steps (+80 levels) puts most of the run past 255: it comes back to
    # where all but a quarter lie within 4 levels and a step of white
    dc = runs_into_range((y, c), [m], [(-10, 0)], [8.0, 8.0], mk)[0]
    lv = y - dc[0] * 8.0
    assert dc[1] == 0 and dc[0] > -10
    assert np.mean(lv > 255 + 4 + 8) <= 0.25 and np.mean(lv > 255 + 4 + 8 - 8) > 0.25
    # in range: left alone; past black: pulled up; all in one call, as the runs of a scan are
    got = runs_into_range((y, c), [m, m[:0], m], [(0, 0), (5, 5), (3, 0)], [8.0, 8.0], mk)
    y2 = (y - 240.0, c)
    assert got[:2] == [(0, 0), (5, 5)]  # a run without MCUs keeps its own
    assert got[2] == runs_into_range((y, c), [m], [(3, 0)], [8.0, 8.0], mk)[0]  # as judged alone
    assert runs_into_range(y2, [m], [(3, 0)], [8.0, 8.0], mk)[0][0] < 3  # past black too


def test_run_quantiles_are_numpys_bit_for_bit() -> None:
    from acir_core.sca.inrange import run_quantiles

    rng = np.random.default_rng(3)
    sizes = [1, 2, 3, 7, 40, 0, 101]
    levels = rng.normal(128.0, 60.0, (3, sum(sizes)))
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    got = run_quantiles(levels, starts, 0.25, 0.75)
    for g, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
        if a == b:
            assert np.isnan(got[g]).all()
            continue
        want = np.quantile(levels[:, a:b], [0.75, 0.25], axis=1).T
        assert np.array_equal(got[g], want)


def test_trusted_runs_above_vouch_for_a_run_placed_right_but_not_for_one_a_level_off() -> None:
    """A smooth ramp of 8×8 MCUs in two runs: the second, placed right, joins the first as
    smoothly as it joins itself, so the first vouches for it; with its DC a level and a half
    off (12 steps of 1/8), or placed one MCU off in texture, it does not."""
    from acir_core.sca.dcfit import Placement
    from acir_core.sca.runs import Run
    from acir_core.sca.vouch import vouched

    rows, cols = 12, 48
    n = rows * cols
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0 : rows * 8, 0 : cols * 8].astype(np.float64)
    plane = 100 + 0.3 * yy + 0.2 * xx + 3 * np.sin(xx / 3.0) + rng.normal(0, 0.3, yy.shape)
    mcu = plane.reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3).reshape(n, 8, 8)
    bottom = (mcu[:, 7, :] + (mcu[:, 7, :] - mcu[:, 6, :]),)
    inner = (mcu[:, 0, :] - (mcu[:, 1, :] - mcu[:, 0, :]),)
    cut = 5 * cols + 7

    def placements(shift: int) -> list[Placement]:
        a = Run(0, cut, np.arange(cut))
        b = Run(cut, n, np.arange(cut, n - max(shift, 0)))
        return [Placement(run=a, shift=0, dc=(0,), cost=0.0, anchored=True, first=0, count=n),
                Placement(run=b, shift=shift, dc=(0,), cost=9.0, anchored=False, first=0, count=n)]

    sure = np.array([True, False])
    assert vouched(placements(0), np.array([[0], [0]]), inner, bottom, [0.125], cols, n, sure).tolist() == [False, True]
    off = np.array([[0], [12]])  # the correction 12 steps wrong: 1.5 levels at every border pair
    assert not vouched(placements(0), off, inner, bottom, [0.125], cols, n, sure)[1]
    assert not vouched(placements(1), np.array([[0], [0]]), inner, bottom, [0.125], cols, n, sure)[1]


def test_the_first_run_is_trusted_however_far_the_thumbnails_tone_is_from_it(photo) -> None:
    """The first run is decoded from a zero DC predictor, so a thumbnail 12 levels brighter (a
    camera's tone curve) says nothing against its level; the runs after it must still agree."""
    clean = decode(photo, "strict")
    r = decode(damage(photo, 0))
    thumb = np.clip(synthetic_thumbnail(clean.rgb).astype(np.int16) + 12, 0, 255).astype(np.uint8)
    s = aware_sca(r, thumb, options=AwareOptions(refine=None))
    assert s.segments[0].first_mcu == 0 and s.segments[0].confident


def test_a_precautionary_mcu_that_joins_its_trusted_neighbours_smoothly_is_cleared() -> None:
    """In a textured ramp of 8×8 MCUs all placed right, a precaution whose borders join the
    trusted MCUs around it as smoothly as they join each other is lifted; one holding another
    stretch's content (garbage) keeps it, and so does one with a single trusted neighbour."""
    from acir_core.sca.vouch import cleared

    rows, cols = 10, 24
    n = rows * cols
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0 : rows * 8, 0 : cols * 8].astype(np.float64)
    plane = 90 + 0.4 * yy + 0.3 * xx + 4 * np.sin(xx / 2.5) * np.cos(yy / 3.5) + rng.normal(0, 0.5, yy.shape)
    mcu = plane.reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3).reshape(n, 8, 8)
    garbage = rng.normal(128, 60, (8, 8))
    mcus = np.concatenate([mcu, garbage[None]])  # decoded MCU n: garbage
    inner = ((2 * mcus[:, 0, :] - mcus[:, 1, :],), (2 * mcus[:, :, 0] - mcus[:, :, 1],))
    outer = ((2 * mcus[:, 7, :] - mcus[:, 6, :],), (2 * mcus[:, :, 7] - mcus[:, :, 6],))
    dec_at = np.arange(n)
    dec_at[5 * cols + 9] = n  # garbage shown at one place
    trusted = np.ones(n, bool)
    doubted = np.zeros(n, bool)
    doubted[[3 * cols + 4, 5 * cols + 9]] = True
    lone = 7 * cols + 12
    doubted[lone - 1 : lone + 2] = True
    trusted[[lone - cols, lone + cols]] = False
    args = (dec_at, np.zeros((n, 1)), np.zeros(n, np.int64), inner, outer, [1.0], cols)
    got = cleared(doubted, trusted, *args)
    assert got[3 * cols + 4] and not got[5 * cols + 9] and not got[lone]
    assert not got[~doubted].any()


def test_pieces_of_one_decoded_run_placed_alike_are_one_run_again() -> None:
    """A run split at a silent break whose pieces land at one shift and DCs within a level is
    taken back: one DC (the anchored piece's), the MCUs the split left out back as precautions.
    Pieces a level and a half apart, at other shifts, or either side of a resync stay apart."""
    from types import SimpleNamespace

    from acir_core.sca.dcfit import Placement
    from acir_core.sca.rejoin import rejoin
    from acir_core.sca.runs import Run

    n = 400
    sr = SimpleNamespace(mcu_rows=10, mcu_cols=40, decoded=np.ones(n, bool), suspect=np.zeros(n, bool), resyncs=())
    units = [0.375, 0.5]

    def pieces(shift_b: int, dc_b: tuple) -> tuple[list, np.ndarray]:
        a = Run(0, 200, np.arange(0, 197))  # the split left out 197..201
        b = Run(200, n, np.arange(202, n))
        pl = [Placement(run=a, shift=0, dc=(0, 0), cost=1.0, anchored=True, first=0, count=n),
              Placement(run=b, shift=shift_b, dc=dc_b, cost=3.0, anchored=False, first=0, count=n)]
        return pl, np.array([[0, 0], list(dc_b)])

    placed, solved, loose = rejoin(*pieces(0, (2, -1)), sr, units, 1.0, (2, 7))
    assert len(placed) == 1 and solved.tolist() == [[0, 0]]
    assert placed[0].run.trusted.tolist() == list(range(n)) and placed[0].anchored
    assert np.flatnonzero(loose).tolist() == list(range(195, 209))
    for shift, dc in ((0, (4, 0)), (1, (0, 0))):  # 1.5 levels apart; another shift
        placed, solved, loose = rejoin(*pieces(shift, dc), sr, units, 1.0, (2, 7))
        assert len(placed) == 2 and solved.tolist() == [[0, 0], list(dc)] and not loose.any()
    resynced = SimpleNamespace(**{**vars(sr), "resyncs": (SimpleNamespace(mcu=200),)})
    assert len(rejoin(*pieces(0, (1, 0)), resynced, units, 1.0, (2, 7))[0]) == 2


def test_the_unguided_result_takes_the_guided_levels_only_where_both_placed_the_runs_alike(photo) -> None:
    """Two runs, the second corrected by a level's worth of Y steps in the unguided SCA and by none
    in the guided one (the truth): borrowing gives the guided DC and the clean decode back; a guided SCA that
    put the run elsewhere, or more than a level away, lends nothing."""
    from dataclasses import replace

    from acir_core.sca.borrow import borrow_levels
    from acir_core.sca.result import SCAResult, SegmentFix

    result = decode(photo, "robust")
    sr = result.scans[0]
    units = float(result.qtables[0][0]) / 8.0
    step = max(int(1.0 // units), 1)
    n, half = sr.mcu_rows * sr.mcu_cols, (sr.mcu_rows // 2) * sr.mcu_cols
    coefs = [c.copy() for c in result.coefficients]
    v, h = result.frame.components[0].v, result.frame.components[0].h
    coefs[0][(sr.mcu_rows // 2) * v: sr.mcu_rows * v, : sr.mcu_cols * h, 0] -= step

    def sca(dc: int, shift: int = 0, coefficients=None) -> SCAResult:
        fixes = (SegmentFix(scan=0, first_mcu=0, end_mcu=half, shift=0, dc=(0, 0, 0), cost=0.0, confident=True),
                 SegmentFix(scan=0, first_mcu=half, end_mcu=n, shift=shift, dc=(dc, 0, 0), cost=1.0, confident=True))
        grid = np.zeros((sr.mcu_rows, sr.mcu_cols), bool)
        return SCAResult(rgb=result.rgb, mask=np.zeros(result.rgb.shape[:2], bool), mcu_mask=grid, segments=fixes,
                         coefficients=tuple(coefficients or result.coefficients), method="aware", timings={})

    unguided = sca(step, coefficients=coefs)
    got = borrow_levels(unguided, sca(0), result)
    assert got is not None and got.segments[1].dc == (0, 0, 0)
    assert all(np.array_equal(a, b) for a, b in zip(got.coefficients, result.coefficients))
    assert np.array_equal(got.rgb, result.rgb)
    assert borrow_levels(unguided, sca(0, shift=1), result) is None
    assert borrow_levels(unguided, sca(step - int(np.ceil(1.01 / units))), result) is None
    assert borrow_levels(unguided, replace(unguided), result) is None  # nothing differs
