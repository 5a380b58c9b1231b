"""The per-photo engine with bad inputs and a hostile disk: absurd headers, a full disk, names
that could collide, inputs inside the output folder, two files joined."""
from __future__ import annotations

import errno
import json

import pytest

from acir_core.bitflip import corrupt
from acir_core.errors import CannotWrite, ImageTooLarge
from acir_core.sca.options import AwareOptions, MaskOptions
from acir_core.thumbnail import with_thumbnail
from acir_cli.app import main
from acir_engine import outputs
from acir_engine.inputs import list_inputs
from acir_engine.photo import check_budget, header_size, kept_candidate, restore_photo
from conftest import encode_jpeg, photo_like

BER = 3e-4


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode_jpeg(photo_like(256, 128, seed=31))


def _with_size(data: bytes, width: int, height: int) -> bytes:
    """The same file with its SOF0 declaring another size."""
    i = data.index(b"\xff\xc0")
    b = bytearray(data)
    b[i + 5:i + 9] = bytes([height >> 8, height & 255, width >> 8, width & 255])
    return bytes(b)


def test_header_size_is_read_without_decoding(jpeg):
    assert header_size(jpeg) == (256, 128)
    assert header_size(_with_size(jpeg, 14000, 14000)) == (14000, 14000)


def test_a_small_file_declaring_14000x14000_is_refused_before_decoding(jpeg, tmp_path):
    bomb = _with_size(jpeg, 14000, 14000)
    with pytest.raises(ImageTooLarge, match="memory budget"):
        check_budget(bomb, stage="sca", memory_budget=8 * 2**30)
    with pytest.raises(ImageTooLarge, match="exceeds the limit"):
        restore_photo(bomb, stage="sca", max_pixels=100_000_000)
    d = tmp_path / "in"
    d.mkdir()
    (d / "bomb.jpg").write_bytes(bomb)
    (d / "good.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=1).data)
    out = tmp_path / "out"
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca", "--memory-budget", "8G"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["restored"], summary["failed"]) == (1, 1)
    assert "memory budget" in summary["failures"][0]["reason"] and "14000x14000" in summary["failures"][0]["reason"]


@pytest.mark.parametrize("value, expected", [("8G", 8 * 2**30), ("512M", 512 * 2**20), ("0", 0), ("1.5GiB", 3 * 2**29)])
def test_memory_budget_sizes(value, expected):
    from acir_engine.run import parse_size

    assert parse_size(value, 1) == expected
    assert parse_size("auto", 2) > 0


def test_a_corrupt_frame_header_fails_that_photo_only(jpeg, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "zero.jpg").write_bytes(_with_size(jpeg, 0, 0))
    i = jpeg.index(b"\xff\xc0")
    (d / "short.jpg").write_bytes(jpeg[: i + 4] + b"\x00\x03" + jpeg[i + 6:])  # SOF length 3
    (d / "good.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=2).data)
    out = tmp_path / "out"
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca"]) in (0, 1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["restored"] == 1 and summary["skipped"] + summary["failed"] == 2
    assert all(f["reason"] for f in summary["failures"] + summary["skips"])


def test_a_full_disk_fails_the_photo_and_the_summary_is_still_written(jpeg, tmp_path, monkeypatch, capsys):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=3).data)
    (d / "b.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=4).data)
    real = outputs.os.replace

    def full(src, dst, *args, **kwargs):  # the disk fills up while a.jpg's image is written
        if str(dst).endswith("a.jpg.restored.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(outputs.os, "replace", full)
    out = tmp_path / "out"
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["restored"], summary["failed"]) == (1, 1)
    assert "no space left" in summary["failures"][0]["reason"]
    err = capsys.readouterr().err
    assert "Traceback" not in err and "a.jpg" in err
    assert not list(out.rglob("*.part"))


def test_write_atomic_names_the_path_and_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(CannotWrite, match="x.png: no space left on the device"):
        outputs.write_atomic(str(tmp_path / "x.png"), b"data")
    assert not list(tmp_path.iterdir())


def test_outputs_of_x_and_x_mask_never_collide(jpeg, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "x.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=5).data)
    (d / "x.mask.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=6).data)
    out = tmp_path / "out"
    main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews"])
    written = [p.name for p in out.iterdir()]
    assert len(written) == len(set(written))
    recs = {r["name"]: r for r in json.loads((out / "summary.json").read_text())["records"]}
    images = {r["outputs"]["image"] for r in recs.values()} | {r["outputs"]["mask"] for r in recs.values()}
    assert len(images) == 4 and all((out / p).exists() for p in images)


def test_two_runs_with_names_differing_in_case_keep_both(jpeg, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "p.JPG").write_bytes(corrupt(jpeg, ber=BER, seed=7).data)
    (b / "p.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=8).data)
    out = tmp_path / "out"
    main(["restore", str(a), "--out", str(out), "--stage", "sca", "--no-previews"])
    main(["restore", str(b), "--out", str(out), "--stage", "sca", "--no-previews"])
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["name"] for r in summary["records"]) == ["p.JPG", "p.jpg"] and summary["total"] == 2
    assert (out / "p.JPG.restored.png").exists() and (out / "p.jpg.restored.png").exists()


def test_one_run_with_names_differing_in_case_keeps_both(jpeg, tmp_path):
    listing = list_inputs([str(tmp_path)], exclude=str(tmp_path / "out"))
    assert listing.items == []
    (tmp_path / "q.JPG").write_bytes(jpeg)
    (tmp_path / "q.jpg").write_bytes(jpeg)
    names = [it.name for it in list_inputs([str(tmp_path)]).items]
    assert len({n.lower() for n in names}) == 2


def test_inputs_inside_the_output_folder_are_left_out_with_a_reason(jpeg, tmp_path, capsys):
    d = tmp_path / "photos"
    d.mkdir()
    (d / "a.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=9).data)
    (d / "notes.txt").write_text("not a photo")
    out = d / "restored"
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews"]) == 0
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews"]) == 0  # rerun
    err = capsys.readouterr().err
    assert "left out" in err and "output folder" in err and "notes.txt" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"] == 1 and any("output folder" in x["reason"] for x in summary["left_out"])


def test_the_output_folder_as_the_input_says_why_nothing_is_done(jpeg, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(jpeg)
    assert main(["restore", str(tmp_path), "--out", str(tmp_path), "--stage", "sca"]) == 2
    err = capsys.readouterr().err
    assert "output folder" in err and "no JPEG files to restore" in err


def test_two_joined_files_are_an_intact_photo_copied_byte_for_byte(jpeg, tmp_path):
    joined = jpeg + encode_jpeg(photo_like(64, 64, seed=2))
    r = restore_photo(joined, stage="sca")
    assert r.status == "clean" and "after the image's end" in r.record["note"]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "j.jpg").write_bytes(joined)
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "in"), "--out", str(out), "--stage", "sca"]) == 0
    assert (out / "j.jpg.intact.jpg").read_bytes() == joined
    damaged = corrupt(jpeg, ber=BER, seed=10).data + jpeg
    assert restore_photo(damaged, stage="sca").status == "restored"  # damage before the end still counts


def test_a_file_name_with_glob_characters_is_restored(jpeg, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a*b[1].jpg").write_bytes(corrupt(jpeg, ber=BER, seed=11).data)
    out = tmp_path / "out"
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews"]) == 0
    assert (out / "a*b[1].jpg.restored.png").exists()
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews"]) == 0  # resumes


def test_a_second_run_never_overwrites_another_input_of_the_same_name(jpeg, tmp_path):
    for cam, seed in (("cam1", 12), ("cam2", 13)):
        (tmp_path / cam).mkdir()
        (tmp_path / cam / "DSC1.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=seed).data)
    out = tmp_path / "out"
    main(["restore", str(tmp_path / "cam1"), "--out", str(out), "--stage", "sca", "--no-previews"])
    first = (out / "DSC1.jpg.restored.png").read_bytes()
    main(["restore", str(tmp_path / "cam2"), "--out", str(out), "--stage", "sca", "--no-previews"])
    assert (out / "DSC1.jpg.restored.png").read_bytes() == first
    rec = json.loads((out / "DSC1.jpg~1.json").read_text())
    assert rec["input"].endswith("cam2/DSC1.jpg")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"] == 2
    main(["restore", str(tmp_path / "cam2"), "--out", str(out), "--stage", "sca", "--no-previews"])
    assert json.loads((out / "summary.json").read_text())["resumed"] == 1  # found under its ~1 name again


def test_an_earlier_failure_does_not_fail_later_runs(jpeg, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "bad.jpg").write_bytes(b"not a photo")
    (d / "good.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=14).data)
    out = tmp_path / "out"
    assert main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews"]) == 1
    assert main(["restore", str(d / "good.jpg"), "--out", str(out), "--stage", "sca", "--no-previews"]) == 0


def test_resume_redoes_a_photo_when_options_changed_or_an_output_is_gone(jpeg, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=15).data)
    out = tmp_path / "out"
    main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews"])
    main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews", "--format", "jpeg"])
    assert (out / "a.jpg.restored.jpg").exists()
    assert json.loads((out / "summary.json").read_text())["resumed"] == 0
    (out / "a.jpg.restored.jpg").unlink()
    main(["restore", str(d), "--out", str(out), "--stage", "sca", "--no-previews", "--format", "jpeg"])
    assert (out / "a.jpg.restored.jpg").exists()


def test_an_output_folder_reached_through_a_link_is_still_left_out(jpeg, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jpg").write_bytes(jpeg)
    (tmp_path / "link").symlink_to(d)
    out = str(tmp_path / "link" / "out")
    for _ in range(2):
        assert main(["restore", str(d), "--out", out, "--stage", "sca", "--no-previews"]) == 0
    assert json.loads((d / "out" / "summary.json").read_text())["total"] == 1
    assert len(list_inputs([str(d), str(tmp_path / "link")], exclude=out).items) == 1  # one file, one input


def test_globs_match_like_a_shell_and_are_filtered_by_extension(jpeg, tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("IMG_0001.jpg", "IMG_0002.jpg", "notes.txt", "sub/IMG_0003.jpg"):
        (tmp_path / name).write_bytes(jpeg)
    assert [it.name for it in list_inputs([str(tmp_path / "IMG_000?.jpg")]).items] == ["IMG_0001.jpg", "IMG_0002.jpg"]
    listing = list_inputs([str(tmp_path / "**")])
    assert sorted(it.name for it in listing.items) == ["IMG_0001.jpg", "IMG_0002.jpg", "sub/IMG_0003.jpg"]
    assert any(u.endswith("notes.txt") for u, _ in listing.left_out)


def test_a_thumbnail_folder_is_searched_by_the_photos_own_name(tmp_path):
    from PIL import Image

    from acir_engine.thumbnails import ThumbnailSpec

    t = tmp_path / "thumbs"
    t.mkdir()
    Image.new("RGB", (8, 6), (200, 0, 0)).save(t / "my~photo.png")
    Image.new("RGB", (8, 6), (0, 200, 0)).save(t / "IMG1.png")
    (t / "IMG[1].xmp").write_text("sidecar, not a thumbnail")
    spec = ThumbnailSpec.parse(str(t))
    assert spec.for_photo("my~photo.jpg")[0, 0, 0] == 200
    assert spec.for_photo("IMG[1].jpg") == "auto"
    assert spec.for_photo("IMG1.jpg~2")[0, 0, 1] == 200


def test_a_failing_network_keeps_the_filled_photo_and_says_why(jpeg, tmp_path):
    from acir_engine.inputs import Item
    from acir_engine.run import RunOptions, run_item

    (tmp_path / "a.jpg").write_bytes(corrupt(with_thumb(jpeg), ber=BER, seed=16).data)

    def broken(image, thumb_up, region):
        raise RuntimeError("CUDA out of memory")

    rec = run_item(Item(uri=str(tmp_path / "a.jpg"), name="a.jpg"),
                   RunOptions(out=str(tmp_path / "out"), stage="gca", previews=False), broken)
    assert rec["status"] == "restored" and rec["stage"] == "sca" and "CUDA out of memory" in rec["note"]


def test_the_network_is_not_run_on_photos_stored_at_quality_85_or_more(tmp_path):
    """The shipped network learned on quality-75 frames; on camera originals (quality 85-99) it
    lowered Y-PSNR, so those keep SCA + fill and the record says why. Quality 75 still runs it."""
    from acir_core.jpeg.decoder import decode
    from acir_core.jpeg.tables import ijg_quality
    from acir_engine.inputs import Item
    from acir_engine.run import RunOptions, run_item

    calls = []

    def network(image, thumb_up, region):
        calls.append(region.sum())
        return image

    rgb = photo_like(256, 128, seed=32)
    for quality, ran in ((95, False), (75, True)):
        data = encode_jpeg(rgb, quality=quality)
        assert abs(ijg_quality(decode(data, "strict").qtables[0]) - quality) < 0.5
        (tmp_path / f"q{quality}.jpg").write_bytes(corrupt(with_thumb(data), ber=BER, seed=18).data)
        calls.clear()
        rec = run_item(Item(uri=str(tmp_path / f"q{quality}.jpg"), name=f"q{quality}.jpg"),
                       RunOptions(out=str(tmp_path / "out"), stage="gca", previews=False), network)
        assert rec["status"] == "restored" and rec["quality"] == quality
        assert bool(calls) == ran and rec["stage"] == ("gca" if ran else "sca")
        assert ran or "quality 95" in rec["note"]


def test_bad_weights_with_several_jobs_are_one_clean_error(jpeg, tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "w.pt").write_bytes(b"not weights")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(corrupt(jpeg, ber=BER, seed=17).data)
    rc = main(["restore", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--stage", "gca", "--jobs", "2",
               "--weights", str(tmp_path / "w.pt")])
    assert rc in (1, 2) and "w.pt" in capsys.readouterr().err
    rc = main(["restore", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--weights", str(tmp_path / "nope.pt")])
    assert rc == 0 and json.loads((tmp_path / "o" / "summary.json").read_text())["stage_counts"] == {"sca": 1}


def with_thumb(data: bytes) -> bytes:
    from acir_core.thumbnail import with_thumbnail

    return with_thumbnail(data)


def test_the_lowest_score_is_kept_the_first_listed_among_equals() -> None:
    assert kept_candidate({"sca": 35.035, "sca-unguided": 35.033, "standard-decoder": 39.6}) == "sca-unguided"
    assert kept_candidate({"sca": 35.0, "sca-unguided": 35.0, "standard-decoder": 39.6}) == "sca"
    assert kept_candidate({"sca": 36.0, "sca-unguided": 35.0, "standard-decoder": 34.0}) == "standard-decoder"
    assert kept_candidate({"sca": 20.0}) == "sca"


def test_the_unguided_candidate_marks_no_blocks_past_the_range(monkeypatch) -> None:
    """Filled in the judged view, the garbage of runs the unguided SCA placed wrong made it look
    better than the guided one: only the guided SCA marks it."""
    import acir_engine.photo as photo
    seen = []
    real = photo.compensate

    def spy(result, thumb, *, options=None, **kw):
        seen.append((thumb is None, (options or AwareOptions()).mask.overshoot))
        return real(result, thumb, options=options, **kw)

    monkeypatch.setattr(photo, "compensate", spy)
    rgb = photo_like(256, 192, seed=7)
    data = corrupt(with_thumbnail(encode_jpeg(rgb, quality=90)), ber=2e-4, seed=3).data
    restore_photo(data, source="t.jpg", stage="sca", thumbnail="auto")
    assert (True, -1) in seen and (False, MaskOptions().overshoot) in seen
