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
from acir_core.sca.aware import aware_sca
from acir_core.sca.fill import dilate, fill_from_thumbnail, inpaint
from acir_core.sca.paper import paper_sca
from acir_core.sca.pipeline import compensate
from acir_core.thumbnail import synthetic_thumbnail, with_thumbnail
from conftest import shared_path


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
        r = decode(corrupt(photo, ber=2e-5, seed=seed).data)
        s = aware_sca(r, thumb)
        gains.append(y_psnr(s.rgb, clean) - y_psnr(r.rgb, clean))
        unfilled = aware_sca(r, thumb, fill="none")
        exact.append(np.mean(np.all(unfilled.rgb == clean, axis=2)[~s.mask]))
        assert s.mask.any() and s.damaged_fraction < 0.3
        assert s.timings["total"] > 0 and s.fill == "thumbnail"
    assert np.mean(gains) > 10.0
    assert np.median(exact) > 0.75  # outside the mask, most of the image is the clean decode itself


def test_runs_are_put_back_with_the_shift_and_dc_the_damage_caused(photo) -> None:
    clean = decode(photo, "strict")
    r = decode(corrupt(photo, ber=2e-5, seed=1).data)
    s = aware_sca(r, synthetic_thumbnail(clean.rgb), fill="none")
    assert any(f.shift != 0 for f in s.segments) or any(any(f.dc) for f in s.segments)
    # every confidently placed run now has the clean coefficients at its new place
    y = s.coefficients[0]
    agree = np.mean(np.all(y == clean.coefficients[0], axis=2))
    assert agree > 0.7


def test_without_a_thumbnail_damage_is_inpainted(photo) -> None:
    clean = decode(photo, "strict").rgb
    r = decode(corrupt(photo, ber=2e-5, seed=2).data)
    s = aware_sca(r, None)
    assert s.fill == "inpaint" and s.mask.any()
    assert y_psnr(s.rgb, clean) > y_psnr(r.rgb, clean) + 5
    with pytest.raises(InvalidParameter, match="needs a thumbnail"):
        aware_sca(r, None, fill="thumbnail")


def test_restart_markers_need_no_guessing_across_intervals(photo) -> None:
    im = Image.open(io.BytesIO(photo))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=75, restart_marker_rows=1)
    data = buf.getvalue()
    clean = decode(data, "strict").rgb
    r = decode(corrupt(data, ber=2e-5, seed=0).data)
    s = aware_sca(r, synthetic_thumbnail(clean))
    assert y_psnr(s.rgb, clean) > 30


def test_paper_sca_normalises_each_channel_to_the_full_range(photo) -> None:
    r = decode(corrupt(photo, ber=2e-5, seed=0).data, resync="paper")
    p = paper_sca(r)
    assert p.rgb.shape == r.rgb.shape and p.method == "paper"
    assert p.rgb.reshape(-1, 3).min(axis=0).max() <= 1 and p.rgb.reshape(-1, 3).max(axis=0).min() >= 254


def test_compensate_uses_the_embedded_thumbnail(photo) -> None:
    damaged = corrupt(with_thumbnail(photo), ber=2e-5, seed=0).data
    _, s, origin = compensate(damaged)
    assert origin == "embedded-exif" and s.fill == "thumbnail"
    _, s, origin = compensate(damaged, thumbnail=None)
    assert origin == "none" and s.fill == "inpaint"
    with pytest.raises(InvalidParameter):
        compensate(damaged, method="magic")


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
