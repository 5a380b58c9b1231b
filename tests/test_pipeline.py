"""The Beam dataset pipeline: end to end on memory://, reproducible to the byte, same rows on Dask."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from acir_core.jpeg.segments import parse_layout

beam = pytest.importorskip("apache_beam")
fsspec = pytest.importorskip("fsspec")

from PIL import Image  # noqa: E402

from conftest import encode_jpeg, photo_like  # noqa: E402
from pipelines import dataset, generate  # noqa: E402
from acir_core.errors import AcirError  # noqa: E402
from acir_engine import samples as stages_mod  # noqa: E402
from acir_engine.samples import Config, split_of  # noqa: E402

SMALL = ["--size", "256x128", "--ber", "1e-4", "1e-5", "--variants", "2"]


def write_inputs(fs_root: str, fs) -> None:
    fs.makedirs(fs_root, exist_ok=True)
    for i in range(3):
        fs.pipe(f"{fs_root}/p{i}.jpg", encode_jpeg(photo_like(300, 200, seed=i), quality=92))
    buf = io.BytesIO()
    Image.fromarray(photo_like(280, 190, seed=7)).save(buf, "PNG")
    fs.pipe(f"{fs_root}/q.png", buf.getvalue())
    fs.pipe(f"{fs_root}/bad.jpg", b"this is not an image")


@pytest.fixture()
def memory_inputs():
    fs = fsspec.filesystem("memory")
    root = f"/acir-test-{np.random.default_rng().integers(1 << 30)}"
    write_inputs(root, fs)
    yield f"memory://{root}", fs, root
    fs.rm(root, recursive=True)


def test_pipeline_runs_end_to_end_on_memory_paths(memory_inputs) -> None:
    url, fs, root = memory_inputs
    manifest = generate.run(["--input", f"{url}/*", "--output", f"{url}/out", *SMALL])
    assert manifest["counts"]["rows"] == 4 * 2 * 2 and manifest["counts"]["dead_letters"] == 1
    dead = [json.loads(line) for line in fs.cat(f"{root}/out/dead_letter.jsonl").decode().splitlines()]
    assert dead[0]["stage"] == "prepare" and dead[0]["source"].endswith("bad.jpg") and "not an image" in dead[0]["error"]
    saved = json.loads(fs.cat(f"{root}/out/manifest.json"))
    assert saved["config"]["bers"] == [1e-4, 1e-5] and saved["schema"][0].startswith("sample_id")
    rows = list(dataset.iter_rows(f"{url}/out"))
    assert len({r["sample_id"] for r in rows}) == 16
    for r in rows:
        assert r["n_flips"] == len(r["flip_bits"]) and r["width"] == 256 and r["height"] == 128
        assert r["clean_jpeg"][:2] == b"\xff\xd8" and len(r["corrupted_jpeg"]) == len(r["clean_jpeg"])
        assert r["aware_sca_png"][:4] == b"\x89PNG" and r["robust_png"] == b""
    mean = lambda k: np.mean([r[k] for r in rows if r["ber"] == 1e-4])  # noqa: E731
    assert mean("y_psnr_aware_fill") > mean("y_psnr_robust") + 5


def test_damage_kinds_reach_the_dataset_and_a_lost_header_is_a_dead_letter(memory_inputs) -> None:
    url, fs, root = memory_inputs
    manifest = generate.run(["--input", f"{url}/p*.jpg", "--output", f"{url}/cut", "--size", "256x128",
                             "--ber", "0", "--damage", "repeat:512", "--damage", "cut:0.9"])
    assert manifest["counts"]["rows"] == 3 and list(manifest["config"]["damage"]) == ["repeat:512", "cut:0.9"]
    for r in dataset.iter_rows(f"{url}/cut"):
        events = json.loads(r["damage"])
        assert [e["kind"] for e in events] == ["repeat", "cut"] and r["n_flips"] == 0
        assert len(r["corrupted_jpeg"]) == int((len(r["clean_jpeg"]) + 512) * 0.9)
    gone = generate.run(["--input", f"{url}/p0.jpg", "--output", f"{url}/head", "--size", "256x128",
                         "--ber", "0", "--damage", "head:1"])
    assert gone["counts"]["rows"] == 0 and gone["counts"]["dead_letters"] == 1
    with pytest.raises(AcirError, match="damage"):
        generate.run(["--input", f"{url}/p0.jpg", "--output", f"{url}/bad", "--damage", "zap"])


def test_reruns_write_byte_identical_shards(tmp_path) -> None:
    write_inputs(str(tmp_path / "in"), fsspec.filesystem("file"))
    outs = []
    for name in ("a", "b"):
        generate.run(["--input", str(tmp_path / "in" / "*.jpg"), "--output", str(tmp_path / name), *SMALL,
                      "--sink", "fsspec", "--shards", "3"])
        outs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).glob("*.parquet"))})
    assert outs[0] and outs[0] == outs[1]


def test_dask_runner_on_a_local_cluster_writes_the_same_rows(tmp_path) -> None:
    """On Dask: --shards N gives the DirectRunner's shard files to the byte; by default each photo's
    partition streams its rows to a file of its own (no shuffle of the images), the same files on
    a rerun, holding the DirectRunner's rows."""
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("apache_beam.runners.dask.dask_runner")
    write_inputs(str(tmp_path / "in"), fsspec.filesystem("file"))
    common = ["--input", str(tmp_path / "in" / "*"), *SMALL]
    generate.run([*common, "--output", str(tmp_path / "direct"), "--sink", "fsspec", "--shards", "2"])
    manifests = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        dask = ["--runner", "apache_beam.runners.dask.dask_runner.DaskRunner",
                "--dask_client_address", cluster.scheduler_address]
        for name, extra in (("shards", ["--shards", "2"]), ("stream", []), ("again", [])):
            manifests[name] = generate.run([*common, *dask, *extra, "--output", str(tmp_path / name)])
        for client in list(distributed.client._global_clients.values()):  # the runner's own client too
            client.close()
    assert all(m["counts"]["rows"] == 4 * 2 * 2 and m["counts"]["dead_letters"] == 1 for m in manifests.values())
    files = lambda name: {p.name: p.read_bytes() for p in (tmp_path / name).iterdir()  # noqa: E731
                          if p.name != "manifest.json"}
    direct, shards, stream = files("direct"), files("shards"), files("stream")
    assert any(k.endswith(".parquet") for k in direct) and shards == direct
    assert stream == files("again") and sum(k.endswith(".parquet") for k in stream) == 4  # one per photo
    assert stream["dead_letter.jsonl"] == direct["dead_letter.jsonl"]
    rows = lambda name: sorted(dataset.iter_rows(str(tmp_path / name)), key=lambda r: r["sample_id"])  # noqa: E731
    assert rows("stream") == rows("direct")


def test_stream_sink_writes_each_bundle_as_it_goes(tmp_path) -> None:
    """--sink stream on the DirectRunner: the fsspec sink's rows and dead letters, files of at most
    ROWS_PER_FILE rows, and no dead-letter parts left behind."""
    from pipelines import sink

    write_inputs(str(tmp_path / "in"), fsspec.filesystem("file"))
    common = ["--input", str(tmp_path / "in" / "*"), *SMALL]
    generate.run([*common, "--output", str(tmp_path / "f"), "--sink", "fsspec", "--shards", "2"])
    old = sink.ROWS_PER_FILE
    try:
        sink.StreamRows.__init__.__defaults__ = (5,)
        generate.run([*common, "--output", str(tmp_path / "s"), "--sink", "stream"])
    finally:
        sink.StreamRows.__init__.__defaults__ = (old,)
    parts = sorted((tmp_path / "s").glob("part-*.parquet"))
    import pyarrow.parquet as pq

    sizes = sorted(pq.ParquetFile(p).metadata.num_rows for p in parts)
    assert sum(sizes) == 16 and max(sizes) <= 5 and len(parts) >= 4
    assert not list((tmp_path / "s").glob("dead_letter-*"))
    assert (tmp_path / "s" / "dead_letter.jsonl").read_bytes() == (tmp_path / "f" / "dead_letter.jsonl").read_bytes()
    rows = lambda name: sorted(dataset.iter_rows(str(tmp_path / name)), key=lambda r: r["sample_id"])  # noqa: E731
    assert rows("s") == rows("f")
    # a rerun into the same folder with other settings replaces the earlier files, not adds to them
    generate.run([*common[:-1], "1", "--output", str(tmp_path / "s"), "--sink", "stream"])
    assert len(rows("s")) == 8 and all(r["variant"] == 0 for r in rows("s"))


def test_splits_follow_the_uri_alone() -> None:
    cfg = Config(splits=(("train", 0.8), ("val", 0.1), ("test", 0.1)))
    uris = [f"gs://bucket/photos/{i:05d}.jpg" for i in range(3000)]
    first = {u: split_of(u, cfg) for u in uris[:1000]}
    assert all(split_of(u, cfg) == s for u, s in first.items())  # more photos never move old ones
    counts = {s: sum(1 for u in uris if split_of(u, cfg) == s) for s in ("train", "val", "test")}
    assert 2250 < counts["train"] < 2550 and 220 < counts["val"] < 380


def test_bad_options_are_refused_before_any_work(tmp_path) -> None:
    from acir_core.errors import AcirError, InvalidParameter

    with pytest.raises(InvalidParameter, match="BER"):
        generate.run(["--input", "x", "--output", str(tmp_path / "o"), "--ber", "0.9"])
    with pytest.raises(AcirError, match="--size"):
        generate.run(["--input", "x", "--output", str(tmp_path / "o"), "--size", "big"])
    with pytest.raises(InvalidParameter, match="split"):
        generate.run(["--input", "x", "--output", str(tmp_path / "o"), "--splits", "train=0.5"])


def test_dataset_info_and_previews_from_the_cli(tmp_path, capsys) -> None:
    from acir_cli.app import main

    write_inputs(str(tmp_path / "in"), fsspec.filesystem("file"))
    code = main(["generate", "--input", str(tmp_path / "in" / "*"), "--output", str(tmp_path / "ds"), *SMALL])
    out = capsys.readouterr().out
    assert code == 1 and "16 rows from 4 photos, 1 dead letters" in out  # 1: a record failed
    code = main(["dataset", "info", str(tmp_path / "ds"), "--previews", str(tmp_path / "prev"), "--json"])
    inf = json.loads(capsys.readouterr().out)
    assert code == 0 and inf["rows"] == 16 and inf["images"] == 4 and inf["dead_letters"] == 1
    assert set(inf["bers"]) == {"0.0001", "1e-05"} and inf["mean_y_psnr"]["0.0001"]["aware_fill"] > 20
    previews = list((tmp_path / "prev").glob("*.png"))
    assert len(previews) == 3 and Image.open(previews[0]).size[0] > 256
    rows = list(dataset.iter_rows(str(tmp_path / "ds"), ber=1e-5, decode_images=True))
    assert len(rows) == 8 and rows[0]["aware_sca_png"].shape == (128, 256, 3) and rows[0]["mask_png"].ndim == 2
    assert main(["dataset", "info", str(tmp_path / "nothing")]) == 1


def test_reader_decodes_a_corrupted_jpeg_that_pillow_gives_up_on(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    whole = encode_jpeg(photo_like(64, 48, seed=3), quality=90)
    cut = whole[: len(whole) * 2 // 3]  # libjpeg stops with an error, not a warning
    with pytest.raises(OSError):
        dataset.decode_image(cut)
    pq.write_table(pa.table({"clean_jpeg": [whole], "corrupted_jpeg": [cut], "ber": [1e-5]}),
                   str(tmp_path / "part-0.parquet"))
    (row,) = dataset.iter_rows(str(tmp_path), decode_images=True)
    clean, shown = row["clean_jpeg"], row["corrupted_jpeg"]
    assert shown.shape == clean.shape == (48, 64, 3)
    assert np.array_equal(shown[:8], clean[:8]) and not np.array_equal(shown, clean)  # top decoded, rest grey


def test_per_sample_elements_write_the_same_rows_and_each_bad_file_once(tmp_path) -> None:
    """--per-sample (every photo x BER x variant its own element) writes the rows and dead letters
    the per-photo layout writes."""
    write_inputs(str(tmp_path / "in"), fsspec.filesystem("file"))
    pattern = str(tmp_path / "in" / "*")
    args = ["--input", pattern, *SMALL, "--sink", "fsspec", "--shards", "2"]
    generate.run([*args, "--output", str(tmp_path / "photo")])
    generate.run([*args, "--output", str(tmp_path / "sample"), "--per-sample"])
    read = lambda name: {q.name: q.read_bytes() for q in (tmp_path / name).iterdir()}  # noqa: E731
    photo, sample = read("photo"), read("sample")
    photo.pop("manifest.json"), sample.pop("manifest.json")
    assert sample == photo and any(k.endswith(".parquet") for k in sample)
    assert len(sample["dead_letter.jsonl"].decode().splitlines()) == 1
    assert " at 0x" not in sample["dead_letter.jsonl"].decode()  # no object addresses: reruns write the same


@pytest.mark.parametrize("module", ["pipelines.generate", "pipelines.archive"])
def test_a_pipeline_run_tunes_its_process_before_starting_workers(module, monkeypatch) -> None:
    """The runner's worker processes inherit the launcher's one-malloc-arena setting from the
    environment (acir_core.heap), so run() must set it up before it parses or builds anything."""
    import importlib

    mod = importlib.import_module(module)

    class Tuned(Exception):
        pass

    def tuned() -> None:
        raise Tuned

    monkeypatch.setattr(mod, "tune_process", tuned)
    with pytest.raises(Tuned):
        mod.run(["--no-such-option-is-parsed-first"])


def test_a_stage_sheds_its_input_once_its_output_holds_the_images() -> None:
    """Beam's DaskRunner keeps every stage's outputs of a bundle until the run ends: each stage
    leaves its input Sample without the decode and images, which its output keeps."""
    cfg = Config(width=256, height=128, bers=(1e-4,), variants=1)
    prepared = stages_mod.prepare("mem://p.jpg", encode_jpeg(photo_like(300, 200, seed=1), quality=92), cfg)
    (sample,) = stages_mod.expand(prepared, cfg)
    chain = [sample]
    for name in ("corrupt", "decode", "sca", "metrics"):
        chain.append(list(generate.StageFn(name, cfg).work(chain[-1]))[0])
    assert all(s.decoded is None and s.aware is None and s.corrupted == b"" for s in chain[:-1])
    last = chain[-1]
    assert last.decoded is not None and last.aware.shape == (128, 256, 3) and last.corrupted
    (row,) = generate.EncodeFn(cfg).work(last)
    assert last.decoded is None and last.aware is None and row["aware_sca_png"][:4] == b"\x89PNG"
    element = ["mem://p.jpg", encode_jpeg(photo_like(300, 200, seed=1), quality=92), -1]
    assert len(list(generate.PrepareFn(cfg).work(element))) == 1 and element[1] == b""


def test_progressive_samples_are_made_and_restored(memory_inputs) -> None:
    url, fs, root = memory_inputs
    manifest = generate.run(["--input", f"{url}/p*.jpg", "--output", f"{url}/prog", "--size", "256x128",
                             "--ber", "1e-4", "--progressive"])
    assert manifest["counts"]["rows"] == 3 and manifest["config"]["progressive"] is True
    for r in dataset.iter_rows(f"{url}/prog"):
        assert r["progressive"] and parse_layout(r["clean_jpeg"]).frame.marker == 0xC2
        assert r["y_psnr_aware_fill"] >= r["y_psnr_robust"] - 0.5
