"""Holes longer than the decoder's usual reach: many restart intervals lost at once, stretches of
an MCU row or more, and photo data that ends before the scan does (issue 23)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from acir_core.damage import apply_damage, parse_damage
from acir_core.imagefile import load_rgb
from acir_core.jpeg.decoder import decode
from acir_core.jpeg.restarts import assign_restarts
from acir_core.metrics import y_psnr
from acir_core.sca.aware_sca import aware_sca
from acir_core.sca.edges import mcu_major
from acir_core.thumbnail import with_thumbnail
from acir_engine.photo import restore_photo
from tests.conftest import photo_like


def _jpeg(seed: int, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo_like(1024, 768, seed=seed)).save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def _ac_exact_after(clean: bytes, coefficients, first: int) -> float:
    """Share of the MCUs from ``first`` on whose AC coefficients (every block) equal the clean file's."""
    ref = decode(clean, "robust")
    sr = ref.scans[0]
    ok = np.ones(sr.mcus_expected, bool)
    for ci, comp in enumerate(ref.frame.components):
        a = mcu_major(ref.coefficients[ci], sr.mcu_rows, sr.mcu_cols, comp.v, comp.h)
        b = mcu_major(coefficients[ci], sr.mcu_rows, sr.mcu_cols, comp.v, comp.h)
        ok &= (a[..., 1:] == b[..., 1:]).reshape(a.shape[0], -1).all(axis=1)
    return float(ok[first:].mean())


def _first_after(clean: bytes, damaged_event) -> int:
    """The first MCU whose bits all lie after the damaged stretch of the clean file."""
    sr = decode(clean, "robust").scans[0]
    end_bit = 8 * int(np.searchsorted(sr.byte_offsets, damaged_event.offset + damaged_event.length))
    return int(np.searchsorted(sr.mcu_bit_start, end_bit)) + 1


def test_two_hundred_intervals_lost_between_two_markers_are_placed_there() -> None:
    """200 intervals between two surviving markers is more than a gap between markers taken in
    turn may span, and 200 is a multiple of 8: the numbers run on in sequence. Where the
    stretches either side decoded as whole intervals, the loss can only lie in the damaged one."""
    n_int = 2000
    nums = np.arange(1, n_int) % 8 - 1
    nums[nums < 0] = 7
    pos = np.arange(1, n_int, dtype=np.int64) * 100
    keep = np.ones(nums.size, bool)
    keep[700:900] = False  # markers 700-899 lost with the bytes between them
    pos_d = pos[keep] - np.where(np.arange(nums.size)[keep] >= 900, 200 * 100, 0)
    want = np.arange(1, n_int)[keep]
    sound = np.ones(keep.sum() + 1, bool)
    sound[700] = False  # the stretch from marker 699 to the first after the hole
    got = assign_restarts(nums[keep], pos_d, n_int, int(pos_d[-1] + 100), sound=sound)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("spec", ["lose:16k", "zero:16k"])
def test_a_stretch_of_many_restart_intervals_costs_only_them(spec) -> None:
    """A marker every 4 MCUs: 16 KiB hold some hundred intervals. Before, a gap was taken for at
    most 32 lost intervals, the rest of the scan was placed ~100 intervals early, and the last
    ones counted as lost (an Olympus S760 came out at 11 dB)."""
    data = with_thumbnail(_jpeg(21, restart_marker_blocks=4), max_side=160)
    damaged = apply_damage(data, [parse_damage(spec)], seed=0)
    first = _first_after(data, damaged.events[0])
    result = decode(damaged.data, "robust")
    assert _ac_exact_after(data, result.coefficients, first) > 0.99
    restored = restore_photo(damaged.data, stage="sca")
    clean = load_rgb(data).rgb
    assert y_psnr(restored.image, clean) > max(40.0, y_psnr(load_rgb(damaged.data).rgb, clean) + 15)


@pytest.mark.parametrize("spec", ["lose:16k", "zero:16k"])
@pytest.mark.parametrize("thumb", [True, False])
def test_the_run_after_a_hole_of_several_rows_ends_where_the_scan_does(spec, thumb) -> None:
    """16 KiB hold several MCU rows of a 1024-wide photo, so at its true place the run after the
    hole borders nothing placed; it decoded up to the encoder's fill bits, so it ends at the
    scan's last MCU. Without a thumbnail its DC comes from the rows above the hole."""
    data = _jpeg(23)
    if thumb:
        data = with_thumbnail(data, max_side=160)
    damaged = apply_damage(data, [parse_damage(spec)], seed=1)
    first = _first_after(data, damaged.events[0])
    clean = load_rgb(data).rgb
    if thumb:
        restored = restore_photo(damaged.data, stage="sca")
        coefficients, image = restored.coded.coefficients, restored.image
    else:  # the placing itself (which result the engine keeps is weighed elsewhere)
        sca = aware_sca(decode(damaged.data, "robust"), None)
        coefficients, image = sca.coefficients, sca.rgb
    assert _ac_exact_after(data, coefficients, first) > 0.99
    assert y_psnr(image, clean) > y_psnr(load_rgb(damaged.data).rgb, clean) + 12


@pytest.mark.parametrize("trailer", ["junk", "zeros+junk", "eoi+zeros+junk", "eoi+jpeg"])
def test_data_after_the_photo_inside_the_scan_is_not_taken_for_its_mcus(trailer) -> None:
    """Some cameras pad the scan after the photo's data (zeros, then anything; or its EOI, zeros
    and more; or its EOI and a preview JPEG) up to a fixed file size, before a last EOI. A
    decoder that lost MCUs in a hole read them from the padding. An EOI that zeros or another
    JPEG follow ends the scan; without one, the runs decoded from the padding go and the run
    before them ends where the photo's data did."""
    data = with_thumbnail(_jpeg(25), max_side=160)
    rng = np.random.default_rng(5)
    junk = rng.integers(0, 255, 60_000).astype(np.uint8).tobytes()  # no 0xFF: no markers, no stuffing
    assert data[-2:] == b"\xff\xd9"
    pad = {"junk": junk, "zeros+junk": b"\x00" * 20_000 + junk, "eoi+zeros+junk": b"\xff\xd9" + b"\x00" * 400 + junk,
           "eoi+jpeg": b"\xff\xd9" + _jpeg(3)[:-2]}[trailer]
    padded = data[:-2] + pad + b"\xff\xd9"
    assert np.array_equal(load_rgb(padded).rgb, load_rgb(data).rgb)
    layout = decode(padded, "robust").scans[0]
    assert (layout.trailing_bits > 8 * len(junk) - 8) == (trailer in ("junk", "zeros+junk"))
    damaged = apply_damage(padded, [parse_damage("lose:16k@0.3")], seed=0)
    first = _first_after(padded, damaged.events[0])
    restored = restore_photo(damaged.data, stage="sca")
    assert _ac_exact_after(padded, restored.coded.coefficients, first) > 0.99
    assert y_psnr(restored.image, load_rgb(data).rgb) > 38.0
