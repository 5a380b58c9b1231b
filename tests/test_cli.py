"""The acir command line: what a user types, what they see, and that inputs are never harmed."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acir_cli.app import main
from acir_core import __version__
from conftest import REPO


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def photo_file(tmp_path, big_photo_jpeg) -> Path:
    p = tmp_path / "in" / "holiday.jpg"
    p.parent.mkdir()
    p.write_bytes(big_photo_jpeg)
    return p


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_and_help_in_a_real_process() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    v = subprocess.run([sys.executable, "-m", "acir_cli", "--version"], capture_output=True, text=True, env=env)
    assert v.returncode == 0 and v.stdout.strip() == f"acir {__version__}"
    h = subprocess.run([sys.executable, "-m", "acir_cli", "--help"], capture_output=True, text=True, env=env)
    assert h.returncode == 0
    for cmd in ("corrupt", "metrics", "thumbnail", "fde"):
        assert cmd in h.stdout


def test_no_command_and_unknown_options_are_usage_errors(capsys) -> None:
    assert run_cli(capsys)[0] == 2
    with pytest.raises(SystemExit) as e:
        main(["corrupt", "--bogus"])
    assert e.value.code == 2


def test_corrupt_writes_the_file_and_a_sidecar_and_reports_the_damage(capsys, photo_file, tmp_path) -> None:
    before = sha(photo_file)
    code, out, err = run_cli(capsys, "corrupt", str(photo_file), "--out", str(tmp_path / "out"), "--ber", "1e-4",
                             "--seed", "7")
    assert code == 0, err
    dst = tmp_path / "out" / "holiday.jpg"
    side = json.loads((tmp_path / "out" / "holiday.jpg.json").read_text())
    assert dst.stat().st_size == photo_file.stat().st_size and dst.read_bytes() != photo_file.read_bytes()
    assert side["n_flips"] > 0 and side["params"]["seed"] == 7 and side["params"]["key_source"] == "seed"
    assert side["input_sha256"] == before and side["output_sha256"] == sha(dst)
    assert side["damage"]["y_psnr"] < 40
    assert "flipped" in out and "Y-PSNR" in out and "standard decoder" in out
    assert sha(photo_file) == before
    assert not list((tmp_path / "out").glob(".*part"))  # no temp files left behind


def test_corrupt_is_reproducible_from_the_command_line(capsys, photo_file, tmp_path) -> None:
    for name in ("a", "b"):
        run_cli(capsys, "corrupt", str(photo_file), "--out", str(tmp_path / name), "--seed", "3", "--ber", "1e-4",
                "--fde", "aes-xts-plain64", "--no-metrics")
    assert (tmp_path / "a" / "holiday.jpg").read_bytes() == (tmp_path / "b" / "holiday.jpg").read_bytes()


def test_corrupt_refuses_to_overwrite_its_input(capsys, photo_file) -> None:
    before = sha(photo_file)
    code, _, err = run_cli(capsys, "corrupt", str(photo_file), "--out", str(photo_file.parent))
    assert code == 1 and "refusing to overwrite an input file" in err
    assert sha(photo_file) == before


def test_corrupt_with_a_key_file_in_hex_or_binary(capsys, photo_file, tmp_path) -> None:
    (tmp_path / "k.hex").write_text("00112233445566778899aabbccddeeff\n")
    (tmp_path / "k.bin").write_bytes(bytes.fromhex("00112233445566778899aabbccddeeff"))
    outs = []
    for k in ("k.hex", "k.bin"):
        code, out, err = run_cli(capsys, "corrupt", str(photo_file), "--out", str(tmp_path / ("out_" + k)), "--key-file",
                                 str(tmp_path / k), "--seed", "1", "--ber", "1e-4", "--no-metrics", "--json")
        assert code == 0, err
        rec = json.loads(out)
        assert rec["params"]["key_source"] == "given" and "0011223344" not in out
        outs.append((tmp_path / ("out_" + k) / "holiday.jpg").read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "not a JPEG"),
    (None, "truncated"),
])
def test_bad_records_fail_alone_with_one_line_and_others_still_run(capsys, tmp_path, photo_file, content, reason):
    bad = tmp_path / "in" / "bad.jpg"
    bad.write_bytes(photo_file.read_bytes()[:200] if content is None else content)
    before = sha(bad)
    code, out, err = run_cli(capsys, "corrupt", str(bad), str(photo_file), "--out", str(tmp_path / "out"),
                             "--no-metrics")
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("acir: error:")]
    assert len(lines) == 1 and str(bad) in lines[0]
    if reason == "truncated":
        assert "runs past the end" in lines[0] or "ends inside" in lines[0]
    else:
        assert reason in lines[0]
    assert "Traceback" not in err
    assert (tmp_path / "out" / "holiday.jpg").exists() and not (tmp_path / "out" / "bad.jpg").exists()
    assert sha(bad) == before


def test_missing_path_and_directory_are_record_failures(capsys, tmp_path, photo_file) -> None:
    code, _, err = run_cli(capsys, "corrupt", str(tmp_path / "nope.jpg"), str(photo_file.parent), "--out",
                           str(tmp_path / "o"))
    assert code == 1
    assert "nope.jpg: no such file" in err and "is a directory" in err


def test_unreadable_file_is_a_record_failure(capsys, tmp_path, photo_file, monkeypatch) -> None:
    import builtins

    real = builtins.open

    def deny(file, *args, **kwargs):  # chmod 000 does not stop root, which CI may be: simulate the OS refusing
        if str(file).endswith(photo_file.name):
            raise PermissionError(13, "Permission denied")
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    code, _, err = run_cli(capsys, "corrupt", str(photo_file), "--out", str(tmp_path / "o"))
    assert code == 1 and "permission denied" in err


@pytest.mark.parametrize("args,reason", [
    (["--ber", "0.7"], "BER must be a number in [0, 0.5]"),
    (["--ber=-1e-5"], "BER must be"),
    (["--sector-loss", "2"], "--sector-loss must be in [0, 1]"),
])
def test_bad_parameters_are_usage_errors(capsys, photo_file, tmp_path, args, reason) -> None:
    code, _, err = run_cli(capsys, "corrupt", str(photo_file), "--out", str(tmp_path / "o"), *args)
    assert code == 2 and reason in err and not (tmp_path / "o").exists()


def test_wrong_key_length_is_a_usage_error_naming_the_mode(capsys, photo_file, tmp_path) -> None:
    (tmp_path / "short.key").write_bytes(b"0123456789")
    code, _, err = run_cli(capsys, "corrupt", str(photo_file), "--out", str(tmp_path / "o"), "--key-file",
                           str(tmp_path / "short.key"), "--fde", "aes-xts-plain64")
    assert code == 2 and "aes-xts-plain64 needs a key of 256, 512 bits, got 80 bits" in err


def test_metrics_command_prints_all_three_scales(capsys, tmp_path, big_photo_jpeg) -> None:
    ref = tmp_path / "ref.jpg"
    ref.write_bytes(big_photo_jpeg)
    img = tmp_path / "img.png"
    Image.open(ref).convert("RGB").rotate(1).save(img)
    code, out, _ = run_cli(capsys, "metrics", str(img), str(ref), "--scales", "1,2,4")
    assert code == 0
    assert "1024x512" in out and "512x256" in out and "256x128" in out
    code, out, _ = run_cli(capsys, "metrics", str(img), str(ref), "--json", "--crop-border", "4")
    rec = json.loads(out)
    assert code == 0 and rec["crop_border"] == 4 and rec["results"][0]["y_psnr"] > 10


def test_metrics_on_mismatched_sizes_is_a_usage_error(capsys, tmp_path, big_photo_jpeg, photo_jpeg) -> None:
    (tmp_path / "a.jpg").write_bytes(big_photo_jpeg)
    (tmp_path / "b.jpg").write_bytes(photo_jpeg)
    code, _, err = run_cli(capsys, "metrics", str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"))
    assert code == 2 and "differ in size" in err


def test_thumbnail_embed_then_extract(capsys, tmp_path, photo_file) -> None:
    code, out, err = run_cli(capsys, "thumbnail", "embed", str(photo_file), "--out", str(tmp_path / "t"))
    assert code == 0, err
    code, out, err = run_cli(capsys, "thumbnail", "extract", str(tmp_path / "t" / "holiday.jpg"), "--out",
                             str(tmp_path / "x"))
    assert code == 0 and "exif thumbnail 160x80" in out
    assert Image.open(tmp_path / "x" / "holiday.jpg.thumb.png").size == (160, 80)
    code, _, err = run_cli(capsys, "thumbnail", "extract", str(photo_file), "--out", str(tmp_path / "y"))
    assert code == 1 and "no usable embedded thumbnail" in err
    code, out, err = run_cli(capsys, "thumbnail", "embed", str(photo_file), "--style", "camera", "--seed", "2",
                             "--out", str(tmp_path / "c"))
    assert code == 0, err
    code, out, err = run_cli(capsys, "thumbnail", "extract", str(tmp_path / "c" / "holiday.jpg"), "--out",
                             str(tmp_path / "cx"))
    assert code == 0 and Image.open(tmp_path / "cx" / "holiday.jpg.thumb.png").size in ((160, 120), (320, 240))


def test_fde_encrypt_then_decrypt_restores_the_file(capsys, tmp_path, photo_file) -> None:
    key = tmp_path / "xts.key"
    key.write_text("ab" * 64)
    enc, dec = tmp_path / "disk.img", tmp_path / "back.jpg"
    common = ["--fde", "aes-xts-plain64", "--key-file", str(key), "--sector-size", "4096"]
    assert run_cli(capsys, "fde", "encrypt", str(photo_file), "--out", str(enc), *common)[0] == 0
    assert enc.stat().st_size % 4096 == 0
    size = str(photo_file.stat().st_size)
    assert run_cli(capsys, "fde", "decrypt", str(enc), "--out", str(dec), "--length", size, *common)[0] == 0
    assert dec.read_bytes() == photo_file.read_bytes()
    code, _, err = run_cli(capsys, "fde", "decrypt", str(photo_file), "--out", str(dec), *common)
    assert code == 1 and "whole number" in err
    code, _, err = run_cli(capsys, "fde", "encrypt", str(photo_file), "--out", str(enc), "--fde", "aes-xts-plain64")
    assert code == 2 and "--key-file is required" in err


def test_readme_main_command_runs_on_the_bundled_example(capsys, tmp_path) -> None:
    example = REPO / "examples" / "andrew-ridley-54228.jpg"
    before = sha(example)
    code, out, err = run_cli(capsys, "corrupt", str(example), "--out", str(tmp_path), "--ber", "1e-5", "--seed", "7")
    assert code == 0, err
    assert "Y-PSNR" in out
    assert sha(example) == before


def test_decode_writes_a_png_and_a_report_of_every_resync(capsys, tmp_path, photo_file) -> None:
    code, _, err = run_cli(capsys, "corrupt", str(photo_file), "--out", str(tmp_path / "c"), "--ber", "1e-4",
                           "--seed", "3", "--no-metrics")
    assert code == 0, err
    damaged = tmp_path / "c" / "holiday.jpg"
    code, out, err = run_cli(capsys, "decode", str(damaged), "--out", str(tmp_path / "d.png"), "--report",
                             str(tmp_path / "r.json"))
    assert code == 0, err
    assert "resyncs" in out and "bits skipped" in out and "% MCUs suspect" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["resyncs"] == len(report["events"]) > 0
    assert Image.open(tmp_path / "d.png").size == (1024, 512)
    code, _, err = run_cli(capsys, "decode", str(damaged), "--out", str(tmp_path / "s.png"), "--strict")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and str(damaged) in lines[0] and "MCU" in lines[0]
    assert not (tmp_path / "s.png").exists()


def test_decode_of_a_clean_file_equals_pillow(capsys, tmp_path, photo_file) -> None:
    code, out, _ = run_cli(capsys, "decode", str(photo_file), "--out", str(tmp_path / "d.png"))
    assert code == 0 and "0 resyncs" in out
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.png")), np.asarray(Image.open(photo_file)))


def test_decode_refuses_arithmetic_coded_files_with_a_hint(capsys, tmp_path, photo_jpeg) -> None:
    p = tmp_path / "arith.jpg"
    p.write_bytes(photo_jpeg.replace(b"\xff\xc0", b"\xff\xc9", 1))
    code, _, err = run_cli(capsys, "decode", str(p), "--out", str(tmp_path / "x.png"))
    assert code == 1 and "arithmetic" in err and "Pillow" in err


def test_sca_writes_the_image_the_mask_and_a_report(capsys, tmp_path) -> None:
    example = REPO / "examples" / "andrew-ridley-54228.jpg"
    code, _, err = run_cli(capsys, "corrupt", str(example), "--out", str(tmp_path / "c"), "--ber", "2e-5",
                           "--seed", "7", "--no-metrics")
    assert code == 0, err
    damaged = tmp_path / "c" / example.name
    code, out, err = run_cli(capsys, "sca", str(damaged), "--out", str(tmp_path / "s.png"), "--mask",
                             str(tmp_path / "m.png"), "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    assert "aware SCA" in out and "thumbnail embedded-exif" in out and "fill thumbnail" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["runs"] and 0 < rep["damaged_fraction"] < 0.5
    assert isinstance(rep["thumbnail_frame"], str) and rep["timings"]["reference"] > 0  # as acir restore does
    mask = np.asarray(Image.open(tmp_path / "m.png"))
    assert mask.shape == (512, 1024) and set(np.unique(mask)) <= {0, 255}
    code, out, _ = run_cli(capsys, "metrics", str(tmp_path / "s.png"), str(example), "--json")
    assert json.loads(out)["results"][0]["y_psnr"] > 28
    code, out, _ = run_cli(capsys, "sca", str(damaged), "--out", str(tmp_path / "p.png"), "--method", "paper")
    assert code == 0 and "paper SCA" in out
    code, out, _ = run_cli(capsys, "sca", str(damaged), "--out", str(tmp_path / "n.png"), "--thumbnail", "none")
    assert code == 0 and "fill inpaint" in out


def test_blas_is_limited_to_one_thread_per_process() -> None:
    """acir's matrices are small; worker processes must not each start a spinning BLAS pool."""
    import subprocess
    import sys

    code = ("from acir_core.blas import limit_blas_threads; import threadpoolctl; "
            "assert limit_blas_threads(); "
            "print(max(i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'))")
    for first in ("import numpy; ", ""):  # also when called before anything loaded numpy's BLAS
        out = subprocess.run([sys.executable, "-c", first + code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "1", first
