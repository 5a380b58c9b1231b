"""acir restore and the Beam restoration pipeline: outputs, resume, bad inputs, report, equality."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acir_core.bitflip import corrupt
from acir_core.fde import SectorCipher
from acir_engine.photo import restore_photo
from acir_core.thumbnail import with_thumbnail
from acir_cli.app import main
from conftest import encode_jpeg, photo_like

BER = 3e-4


@pytest.fixture(scope="module")
def clean_jpeg() -> bytes:
    return with_thumbnail(encode_jpeg(photo_like(512, 256, seed=21)))


@pytest.fixture()
def archive_dir(tmp_path, clean_jpeg) -> Path:
    """A small photo folder: intact, damaged (two levels, one in a subfolder), not a JPEG,
    arithmetic-coded (unsupported), and a damaged one with no thumbnail."""
    d = tmp_path / "photos"
    (d / "trip").mkdir(parents=True)
    (d / "intact.jpg").write_bytes(clean_jpeg)
    (d / "bad1.jpg").write_bytes(corrupt(clean_jpeg, ber=BER, seed=1).data)
    (d / "trip" / "bad2.JPG").write_bytes(corrupt(clean_jpeg, ber=2 * BER, seed=2).data)
    (d / "nothumb.jpg").write_bytes(corrupt(encode_jpeg(photo_like(256, 128, seed=5)), ber=BER, seed=3).data)
    (d / "notes.jpg").write_bytes(b"these are not pixels")
    (d / "arith.jpg").write_bytes(encode_jpeg(photo_like(128, 64, seed=3)).replace(b"\xff\xc0", b"\xff\xc9", 1))
    (d / "readme.txt").write_text("ignored: not a JPEG name")
    return d


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _tree_hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_restore_photo_clean_and_damaged(clean_jpeg):
    r = restore_photo(clean_jpeg, source="x.jpg")
    assert r.status == "clean" and not r.mask.any()
    bad = corrupt(clean_jpeg, ber=BER, seed=1).data
    d = restore_photo(bad, source="x.jpg", stage="decode")
    s = restore_photo(bad, source="x.jpg", stage="sca")
    assert d.stage == "decode" and s.stage == "sca" and s.thumbnail_source == "embedded-exif"
    assert s.mask.any() and s.thumb_up is not None
    truth = restore_photo(clean_jpeg).image.astype(float)
    err = lambda img: float(np.mean((img.astype(float) - truth) ** 2))  # noqa: E731
    assert err(s.image) < err(d.image) / 4  # SCA + fill is far better than the bare robust decode


def test_the_network_restores_only_what_the_fill_took_from_the_thumbnail(clean_jpeg):
    """The damage mask is mostly right content the fill keeps (MCUs that agree with the thumbnail);
    the network's input is that filled photo and its region only the MCUs the fill replaced, so
    the decoded content the fill keeps stays exact through the GCA stage too (given the whole
    mask, a network trained on thumbnail-filled holes replaced it: 6 train photos at 1e-5 lost
    2.0 dB against the fill alone, and gain 0.7 dB over it given only the region)."""
    from acir_core.jpeg.decoder import decode
    from acir_core.sca.compensate import compensate, fill_breaks
    from acir_core.thumbnail import extract_thumbnail

    bad = corrupt(clean_jpeg, ber=BER, seed=1).data
    s = restore_photo(bad, source="x.jpg", stage="sca")
    assert s.region is not None and s.region.any()
    assert not (s.region & ~s.mask).any() and (s.mask & ~s.region).any()  # a part of the mask
    r = decode(bad, "robust")
    thumb = extract_thumbnail(bad).rgb
    c = fill_breaks(compensate(r, thumb, reference=compensate(r, None, fill="none")), r)  # as the engine does
    assert np.array_equal(s.image[~s.region], c.unfilled[~s.region])  # the fill changed nothing else
    assert np.array_equal(s.image, c.rgb) and np.array_equal(s.region, c.region)
    assert s.record["filled_fraction"] == pytest.approx(float(s.region.mean()))


@pytest.mark.parametrize("size", [(333, 211), (1000, 750)], ids=str)
def test_restore_photo_of_a_size_that_is_not_whole_mcus(size):
    """Most camera sizes are whole MCUs one way only (4000 x 3000: 3000 is not a multiple of 16):
    stage sca with the embedded thumbnail used to raise on them."""
    data = with_thumbnail(encode_jpeg(photo_like(*size, seed=22)))
    bad = corrupt(data, ber=BER, seed=4).data
    s = restore_photo(bad, source="odd.jpg", stage="sca")
    assert s.stage == "sca" and s.thumbnail_source == "embedded-exif"
    assert s.image.shape == (size[1], size[0], 3) and s.mask.shape == (size[1], size[0])


def test_cli_restore_archive(archive_dir, tmp_path, capsys):
    before = _tree_hashes(archive_dir)
    out = tmp_path / "out"
    rc = main(["restore", str(archive_dir), "--out", str(out), "--stage", "sca"])
    assert rc == 1  # notes.jpg failed; the others were still processed
    assert _tree_hashes(archive_dir) == before  # inputs untouched
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["total"], summary["restored"], summary["clean"], summary["skipped"], summary["failed"]) == (6, 3, 1, 1, 1)
    assert (out / "intact.jpg.intact.jpg").read_bytes() == (archive_dir / "intact.jpg").read_bytes()  # copied, not re-encoded
    for name in ("bad1.jpg", "trip/bad2.JPG", "nothumb.jpg"):
        assert (out / f"{name}.restored.png").exists() and (out / f"{name}.mask.png").exists()
        rec = json.loads((out / f"{name}.json").read_text())
        assert rec["status"] == "restored" and rec["stage"] == "sca" and 0 < rec["damaged_fraction"] < 1
    assert json.loads((out / "nothumb.jpg.json").read_text())["fill"] == "inpaint"
    assert json.loads((out / "bad1.jpg.json").read_text())["thumbnail"] == "embedded-exif"
    assert (out / "arith.jpg.skipped.jpg").read_bytes() == (archive_dir / "arith.jpg").read_bytes()
    assert "arithmetic" in (out / "skipped.txt").read_text()
    err = capsys.readouterr().err
    assert "notes.jpg" in err and "not a JPEG" in err
    assert not list(out.rglob("*.part"))
    html = (out / "report.html").read_text()
    assert html.count("<tr data-name=") == 6 and "sortBy('damage',true)" in html
    for rec in summary["records"]:
        for key, rel in rec.get("outputs", {}).items():
            assert (out / rel).exists(), (key, rel)


def test_cli_restore_resumes_and_redoes_changed_inputs(archive_dir, tmp_path):
    out = tmp_path / "out"
    main(["restore", str(archive_dir / "bad1.jpg"), str(archive_dir / "intact.jpg"), "--out", str(out), "--stage", "sca"])
    first = (out / "bad1.jpg.json").stat().st_mtime_ns
    rc = main(["restore", str(archive_dir / "bad1.jpg"), str(archive_dir / "intact.jpg"), "--out", str(out),
               "--stage", "sca"])
    assert rc == 0
    assert json.loads((out / "summary.json").read_text())["resumed"] == 2
    assert (out / "bad1.jpg.json").stat().st_mtime_ns == first
    (archive_dir / "bad1.jpg").write_bytes((archive_dir / "trip" / "bad2.JPG").read_bytes())  # input changed
    main(["restore", str(archive_dir / "bad1.jpg"), "--out", str(out), "--stage", "sca"])
    assert json.loads((out / "summary.json").read_text())["resumed"] == 0


def test_cli_restore_jobs_match_serial(archive_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    main(["restore", str(archive_dir), "--out", str(a), "--stage", "sca", "--no-previews"])
    main(["restore", str(archive_dir), "--out", str(b), "--stage", "sca", "--no-previews", "--jobs", "2"])
    for p in a.rglob("*.png"):
        assert p.read_bytes() == (b / p.relative_to(a)).read_bytes()


def test_cli_restore_jpeg_keeps_exif(archive_dir, tmp_path):
    out = tmp_path / "out"
    main(["restore", str(archive_dir / "bad1.jpg"), "--out", str(out), "--stage", "sca", "--format", "jpeg"])
    with Image.open(out / "bad1.jpg.restored.jpg") as im:
        assert im.format == "JPEG" and im.getexif().get_ifd(0x8769) is not None or im.info.get("exif")


def test_cli_restore_encrypted_raw_image(clean_jpeg, tmp_path):
    key = bytes(range(32))
    raw = SectorCipher("aes-cbc-essiv:sha256", key).encrypt(clean_jpeg)
    (tmp_path / "k.bin").write_bytes(key)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "carved.bin").write_bytes(raw)
    out = tmp_path / "out"
    rc = main(["restore", str(tmp_path / "raw"), "--out", str(out), "--fde", "aes-cbc-essiv:sha256",
               "--key-file", str(tmp_path / "k.bin"), "--stage", "sca"])
    assert rc == 0
    rec = json.loads((out / "carved.bin.json").read_text())
    assert rec["status"] == "clean" and (out / "carved.bin.intact.jpg").read_bytes().startswith(clean_jpeg)


@pytest.mark.parametrize("argv, message", [
    (["restore", "/nonexistent/dir", "--out", "o"], "no such file"),
    (["restore", ".", "--out", "o", "--jobs", "0"], "--jobs"),
    (["restore", ".", "--out", "o", "--fde", "aes-xts-plain64"], "--key-file"),
])
def test_cli_restore_usage_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) in (1, 2)
    assert message in capsys.readouterr().err


def test_pipeline_equals_cli(archive_dir, tmp_path):
    pytest.importorskip("apache_beam")
    from pipelines.archive import run

    a, b = tmp_path / "cli", tmp_path / "beam"
    main(["restore", str(archive_dir), "--out", str(a), "--stage", "sca"])
    summary = run(["--input", str(archive_dir), "--output", str(b), "--stage", "sca"])
    assert (summary["restored"], summary["clean"], summary["skipped"], summary["failed"]) == (3, 1, 1, 1)
    ha, hb = _tree_hashes(a), _tree_hashes(b)
    images = [k for k in ha if k.endswith((".png", ".jpg")) and not k.startswith("report_files")]
    assert images and all(ha[k] == hb.get(k) for k in images)
    drop = ("seconds", "timings")
    for k in ha:
        if k.endswith(".json") and k != "summary.json":
            ra, rb = (json.loads((root / k).read_text()) for root in (a, b))
            assert {x: v for x, v in ra.items() if x not in drop} == {x: v for x, v in rb.items() if x not in drop}


def test_pipeline_on_memory_filesystem(clean_jpeg):
    pytest.importorskip("apache_beam")
    import fsspec

    from pipelines.archive import run

    fs = fsspec.filesystem("memory")
    fs.pipe("/restore-in/a.jpg", corrupt(clean_jpeg, ber=BER, seed=4).data)
    fs.pipe("/restore-in/b.jpg", clean_jpeg)
    s = run(["--input", "memory://restore-in", "--output", "memory://restore-out", "--stage", "sca"])
    assert (s["restored"], s["clean"]) == (1, 1)
    assert fs.exists("/restore-out/a.jpg.restored.png") and fs.exists("/restore-out/report.html")


def test_gca_stage_keeps_pixels_outside_mask(archive_dir, tmp_path):
    pytest.importorskip("torch")
    from training.checkpoint import DEFAULT_WEIGHTS

    if not DEFAULT_WEIGHTS.exists():
        pytest.fail("packaged GCA weights missing")
    a, b = tmp_path / "sca", tmp_path / "gca"
    main(["restore", str(archive_dir / "bad1.jpg"), "--out", str(a), "--stage", "sca"])
    assert main(["restore", str(archive_dir / "bad1.jpg"), "--out", str(b)]) == 0  # auto -> gca
    assert json.loads((b / "bad1.jpg.json").read_text())["stage"] == "gca"
    sca = np.asarray(Image.open(a / "bad1.jpg.restored.png"))
    gca = np.asarray(Image.open(b / "bad1.jpg.restored.png"))
    mask = np.asarray(Image.open(a / "bad1.jpg.mask.png")) > 127
    assert np.array_equal(sca[~mask], gca[~mask]) and not np.array_equal(sca[mask], gca[mask])
    region = restore_photo((archive_dir / "bad1.jpg").read_bytes(), source="bad1.jpg", stage="gca").region
    changed = np.any(sca != gca, axis=2)
    assert changed.any() and not (changed & ~region).any()  # only what the fill took from the thumbnail


def test_pipeline_on_dask_local_cluster_matches_direct(archive_dir, tmp_path):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("apache_beam.runners.dask.dask_runner")
    from pipelines.archive import run

    common = ["--input", str(archive_dir), "--stage", "sca", "--no-previews"]
    run([*common, "--output", str(tmp_path / "direct")])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        summary = run([*common, "--output", str(tmp_path / "dask"),
                       "--runner", "apache_beam.runners.dask.dask_runner.DaskRunner",
                       "--dask_client_address", cluster.scheduler_address])
        for client in list(distributed.client._global_clients.values()):  # the runner's own client too
            client.close()
    assert (summary["restored"], summary["clean"], summary["skipped"], summary["failed"]) == (3, 1, 1, 1)
    direct, dask = _tree_hashes(tmp_path / "direct"), _tree_hashes(tmp_path / "dask")
    images = [k for k in direct if k.endswith(".png")]
    assert images and all(direct[k] == dask.get(k) for k in images)


def test_cli_restore_external_thumbnail_folder(archive_dir, tmp_path, clean_jpeg):
    from acir_core.thumbnail import extract_thumbnail

    thumbs = tmp_path / "thumbs"
    thumbs.mkdir()
    Image.fromarray(extract_thumbnail(clean_jpeg).rgb).save(thumbs / "bad1.png")
    out = tmp_path / "out"
    main(["restore", str(archive_dir / "bad1.jpg"), str(archive_dir / "nothumb.jpg"), "--out", str(out),
          "--stage", "sca", "--thumbnail", str(thumbs)])
    assert json.loads((out / "bad1.jpg.json").read_text())["thumbnail"] == "given"
    assert json.loads((out / "nothumb.jpg.json").read_text())["thumbnail"] == "none"  # no file for it: embedded/none
