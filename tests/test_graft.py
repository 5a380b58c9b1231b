"""Lost and damaged headers: salvaged from what survived, grafted from a donor, placed exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest

from acir_cli.app import main
from acir_core.damage import apply_damage, parse_damage
from acir_core.graft import HeaderLost, anchor_dc, donor_of, graft, header_lost, salvage
from acir_core.jpeg.decoder import decode
from acir_core.metrics import y_psnr
from acir_core.thumbnail import with_thumbnail
from acir_engine.photo import restore_photo
from conftest import encode_jpeg, photo_like


def _photo(seed: int, **kw) -> bytes:
    rgb = photo_like(512, 384, seed=seed)
    rgb[300:, :96] = 0  # shadows, as nearly every photo has: what anchors the DC of a lost start
    return with_thumbnail(encode_jpeg(rgb, quality=90, **kw))


@pytest.fixture(scope="module")
def clean() -> bytes:
    return _photo(3)


@pytest.fixture(scope="module")
def same_camera() -> bytes:
    """Another photo "from the same camera": the same encoder settings, other content."""
    return _photo(8)


def _placed_exactly(result, ref) -> tuple[float, float, np.ndarray]:
    """Share of decoded MCUs whose AC coefficients equal the original's, and whose DC does after
    one constant per component; and the decoded MCU grid."""
    sr = result.scans[0]
    dec = sr.decoded.reshape(sr.mcu_rows, sr.mcu_cols)
    ac, dc = [], []
    for ci, comp in enumerate(result.frame.components):
        m = np.repeat(np.repeat(dec, comp.v, 0), comp.h, 1)
        a, b = result.coefficients[ci][m].astype(int), ref.coefficients[ci][m].astype(int)
        ac.append((a[:, 1:] == b[:, 1:]).all(axis=1).mean())
        diff = a[:, 0] - b[:, 0]
        dc.append((diff == np.median(diff)).mean())
    return float(min(ac)), float(min(dc)), dec


def test_a_few_lost_sectors_leave_the_tables_and_the_photo_decodes_exactly(clean):
    bad = apply_damage(clean, [parse_damage("head:2")], seed=0).data
    assert bad[:2] != b"\xff\xd8" and header_lost(bad)
    sal = salvage(bad)
    assert sal.scan_start is not None and {"DQT", "SOF0", "DHT", "SOS"} <= set(sal.names)
    r = restore_photo(bad, source="bad.jpg")
    assert r.status == "restored" and r.record["header"]["donor"] == "none (own segments)"
    assert np.array_equal(r.image, decode(clean, "strict").rgb)


@pytest.mark.parametrize("spec", ["head:24", "headless:24"])
def test_a_lost_scan_start_is_placed_at_its_true_mcu_with_a_donor(clean, same_camera, spec):
    bad = apply_damage(clean, [parse_damage(spec)], seed=0).data
    ref = decode(clean, "strict")
    g = graft(bad, [donor_of(same_camera, "donor.jpg")], source="bad.jpg")
    assert g.donor == "donor.jpg" and "SOS" in g.taken and g.head is not None
    ac, dc, dec = _placed_exactly(g.result, ref)
    assert ac >= 0.99 and dc >= 0.99  # everything after the first surviving byte, bit-exact
    assert not dec.reshape(-1)[: g.record["lost_mcus"]].any() and dec.reshape(-1)[-1]
    assert 0 < g.record["lost_mcus"] < dec.size // 2
    r = restore_photo(bad, source="bad.jpg", donors=[donor_of(same_camera, "donor.jpg")])
    assert r.record["header"]["donor"] == "donor.jpg" and r.mask.reshape(-1)[0]
    assert y_psnr(r.image, ref.rgb) > 20


def test_without_a_donor_the_record_says_header_lost_no_donor(clean):
    bad = apply_damage(clean, [parse_damage("head:24")], seed=0).data
    with pytest.raises(HeaderLost, match="JPEG header lost .* no donor: give --reference"):
        restore_photo(bad, source="bad.jpg")


def test_restart_markers_place_whole_intervals_with_exact_dc(same_camera):
    clean = _photo(3, restart_marker_rows=1)
    donor = donor_of(_photo(8, restart_marker_rows=1), "donor.jpg")
    bad = apply_damage(clean, [parse_damage("head:24")], seed=1).data
    g = graft(bad, [donor], source="bad.jpg")
    ref = decode(clean, "strict")
    sr = g.result.scans[0]
    dec = sr.decoded
    for ci in range(3):
        comp = g.result.frame.components[ci]
        m = np.repeat(np.repeat(dec.reshape(sr.mcu_rows, sr.mcu_cols), comp.v, 0), comp.h, 1)
        assert np.array_equal(g.result.coefficients[ci][m], ref.coefficients[ci][m])
    assert "dc_anchor" not in g.record and dec[-1] and not dec[0]


def test_the_donor_whose_tables_decode_is_chosen(clean):
    bad = apply_damage(clean, [parse_damage("head:24")], seed=0).data
    wrong = donor_of(with_thumbnail(encode_jpeg(photo_like(512, 384, seed=8), quality=90, optimize=True)), "a.jpg")
    right = donor_of(_photo(8), "b.jpg")
    g = graft(bad, [wrong, right], source="bad.jpg")
    assert g.donor == "b.jpg"
    tried = {t["donor"]: t for t in g.record["tried"]}
    assert set(tried) >= {"a.jpg", "b.jpg"}


def test_an_edge_along_an_mcu_row_of_a_lost_start_scan_is_kept(same_camera):
    """A scan that decodes from a lost start to its end without a failure holds no damage: a
    brightness step along an MCU row there is the picture's, not a DC step for SCA to cut at."""
    rgb = photo_like(512, 384, seed=3).astype(int)
    rgb[192:] += 8  # a uniform step where MCU row 12 begins, as a silent DC step would leave
    rgb[300:, :96] = 0  # shadows, to anchor the lost start's DC
    clean = with_thumbnail(encode_jpeg(np.clip(rgb, 0, 255).astype(np.uint8), quality=90))
    bad = apply_damage(clean, [parse_damage("head:24")], seed=0).data
    r = restore_photo(bad, source="bad.jpg", donors=[donor_of(same_camera, "donor.jpg")])
    assert r.record["header"]["donor"] == "donor.jpg" and r.record["header"]["lost_mcus"] > 0
    ref = decode(clean, "strict")
    sr = ref.scans[0]
    kept = ~r.mask[::16, ::16][: sr.mcu_rows, : sr.mcu_cols]  # MCUs of 16 x 16 (4:2:0)
    assert kept[12:].mean() > 0.9
    for ci, comp in enumerate(ref.frame.components):
        m = np.repeat(np.repeat(kept, comp.v, 0), comp.h, 1)
        diff = r.coded.coefficients[ci][..., 0][m].astype(int) - ref.coefficients[ci][..., 0][m]
        assert (diff == np.median(diff)).mean() >= 0.99, ci  # one constant: the step kept


def test_the_dc_of_a_lost_start_is_anchored_on_the_shadows(clean):
    ref = decode(clean, "strict")
    shifted = [c.copy() for c in ref.coefficients]
    for c, d in zip(shifted, (37, -11, 6)):
        c[..., 0] += d
    moved = ref.__class__(rgb=ref.rgb, frame=ref.frame, coefficients=tuple(shifted), qtables=ref.qtables,
                          scans=ref.scans, mode=ref.mode, resync_method=ref.resync_method)
    back, notes = anchor_dc(moved)
    steps = [float(q.reshape(64)[0]) / 8 for q in ref.qtables]
    for ci in range(3):
        err = float(np.median(back.coefficients[ci][..., 0].astype(int) - ref.coefficients[ci][..., 0])) * steps[ci]
        assert abs(err) <= 4, (ci, err, notes)


def test_cli_restores_a_lost_header_from_the_runs_intact_photo(clean, same_camera, tmp_path):
    d = tmp_path / "card"
    d.mkdir()
    (d / "a_intact.jpg").write_bytes(same_camera)
    (d / "b_lost.jpg").write_bytes(apply_damage(clean, [parse_damage("head:24")], seed=0).data)
    out = tmp_path / "out"
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca", "--format", "jpeg"]) == 0
    rec = json.loads((out / "b_lost.jpg.json").read_text())
    assert rec["status"] == "restored" and rec["header"]["donor"].endswith("a_intact.jpg")
    assert "SOS" in rec["header"]["from_donor"] and rec["header"]["lost_mcus"] > 0
    assert decode((out / "b_lost.jpg.restored.jpg").read_bytes(), "strict").clean  # a whole JPEG again
    assert "header put back from" in (out / "report.html").read_text()


def test_cli_reference_option_lends_a_header(clean, same_camera, tmp_path):
    (tmp_path / "ref.jpg").write_bytes(same_camera)
    (tmp_path / "lost.jpg").write_bytes(apply_damage(clean, [parse_damage("headless:24")], seed=2).data)
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "lost.jpg"), "--out", str(out), "--stage", "sca", "--no-previews",
                 "--reference", str(tmp_path / "ref.jpg")]) == 0
    rec = json.loads((out / "lost.jpg.json").read_text())
    assert rec["header"]["donor"].endswith("ref.jpg")


@pytest.mark.parametrize("keep", [0.3, 0.5, 0.7])
def test_a_carved_fragment_of_the_scan_is_placed_at_its_true_mcu(clean, same_camera, keep):
    bad = apply_damage(clean, [parse_damage(f"headless:{1 - keep:.1f}")], seed=0).data
    g = graft(bad, [donor_of(same_camera, "donor.jpg")], source="fragment.jpg")
    ac, dc, dec = _placed_exactly(g.result, decode(clean, "strict"))
    assert ac >= 0.99 and dc >= 0.99
    share = dec.mean()
    assert abs(share - keep) < 0.12  # the fragment holds about that share of the MCUs


def test_a_cut_file_is_recorded_as_truncated(clean, tmp_path):
    (tmp_path / "cut.jpg").write_bytes(apply_damage(clean, [parse_damage("cut:0.6")], seed=0).data)
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "cut.jpg"), "--out", str(out), "--stage", "sca", "--no-previews"]) == 0
    rec = json.loads((out / "cut.jpg.json").read_text())
    assert rec["status"] == "truncated" and 0 < rec["missing_fraction"] < 0.6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["restored"] == 1 and summary["truncated"] == 1
    assert main(["restore", str(tmp_path / "cut.jpg"), "--out", str(out), "--stage", "sca", "--no-previews"]) == 0
    assert json.loads((out / "summary.json").read_text())["resumed"] == 1  # a finished photo is not redone


def test_the_archive_pipeline_lends_the_runs_headers_in_a_second_pass(clean, same_camera, tmp_path):
    pytest.importorskip("apache_beam")
    from pipelines.archive import run

    d = tmp_path / "card"
    d.mkdir()
    (d / "intact.jpg").write_bytes(same_camera)
    (d / "lost.jpg").write_bytes(apply_damage(clean, [parse_damage("head:24")], seed=0).data)
    s = run(["--input", str(d), "--output", str(tmp_path / "out"), "--stage", "sca", "--no-previews"])
    assert (s["restored"], s["clean"], s["failed"]) == (1, 1, 0)
    rec = json.loads((tmp_path / "out" / "lost.jpg.json").read_text())
    assert rec["header"]["donor"].endswith("intact.jpg")
