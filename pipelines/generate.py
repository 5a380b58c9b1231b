"""Dataset generation: clean photos in, Parquet shards of corrupted / decoded / compensated samples out.

    acir generate --input '/photos/*.jpg' --output /data/acir-ber1e-5 --ber 1e-5 --variants 4
    python -m pipelines.generate --input 'gs://bucket/photos/*' --output gs://bucket/out \\
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp --setup_file ./setup.py

Read → Prepare (frame, encode, thumbnail) → Corrupt (FDE + bit errors + decrypt) → RobustDecode →
SCA (paper and aware) → Metrics → EncodeRows → Write (Parquet, zstd) ; bad records of any stage →
``dead_letter.jsonl``; a ``manifest.json`` records parameters, code version, counts and schema.
Runner-agnostic: every path goes through fsspec or Beam's filesystems, nothing assumes a local disk.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
import traceback
from dataclasses import asdict

import apache_beam as beam
import fsspec
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from acir_core import __version__
from acir_core.bitflip import check_ber
from acir_core.errors import AcirError
from acir_core.process import tune_process
from pipelines import fsspec_beam  # noqa: F401  (registers memory:// and friends with Beam)
from pipelines import sink as sink_mod
from acir_engine import samples as stages
from acir_engine.inputs import IMAGE_EXTENSIONS, list_inputs as list_files
from pipelines.schema import SCHEMA

log = logging.getLogger(__name__)
NAMESPACE = "acir"


class DeadLetter(str):
    """A failed record (JSON text). Stages emit these in their main output rather than a tagged
    side output, because not every runner (Beam's DaskRunner) keeps side outputs."""


_WARM = []


def warm_up() -> None:
    """Load the numba kernels once per worker process (from the on-disk cache when present), so
    the first record does not pay for them."""
    if _WARM:
        return
    import io

    tune_process()

    import numpy as np
    from PIL import Image

    from acir_core.jpeg.decoder import decode

    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(buf, "JPEG")
    decode(buf.getvalue())
    _WARM.append(True)


def _dead(source: str, stage: str, exc: BaseException) -> DeadLetter:
    Metrics.counter(NAMESPACE, f"dead_{stage}").inc()
    reason = str(exc) if isinstance(exc, AcirError) else f"{type(exc).__name__}: {exc}"
    record = {"source": source, "stage": stage, "error": reason}
    if not isinstance(exc, AcirError):
        record["traceback"] = traceback.format_exc(limit=4)
    return DeadLetter(json.dumps(record, sort_keys=True))





class ExpandGlobs(beam.DoFn):
    """Input patterns to file URIs through fsspec (local, gs://, memory://, ...). An element is
    (pattern, part): ``part`` picks one sample of each photo when the work is split per sample
    (-1: all of them); a problem is reported by part -1 or 0 only, so once per pattern."""

    def process(self, element: tuple[str, int]):
        pattern, part = element
        try:
            listing = list_files([pattern], extensions=IMAGE_EXTENSIONS)
        except Exception as exc:  # noqa: BLE001 - a bad pattern is a dead letter, not a crash
            if part <= 0:
                yield _dead(pattern, "read", exc)
            return
        if listing.unmatched and part <= 0:
            yield _dead(pattern, "read", AcirError("no files match", source=pattern))
        for item in listing.items:
            yield item.uri, part


def list_inputs(patterns: list[str]) -> list[str]:
    """The files the patterns match (folders: their image files), listed by the driver; patterns
    matching nothing are kept, so the pipeline reports them as dead letters."""
    listing = list_files(patterns, extensions=IMAGE_EXTENSIONS)
    return [it.uri for it in listing.items] + listing.unmatched


class _RecordFn(beam.DoFn):
    """A pipeline step: dead letters pass through untouched, a failure on a good record becomes a
    dead letter naming this step, each success counts once. Subclasses say what the step does."""

    stage = ""
    counter = ""  # the Beam counter of successes (default: the stage's name)

    def setup(self) -> None:
        warm_up()
        self.ok = Metrics.counter(NAMESPACE, self.counter or self.stage)

    def source(self, element) -> str:
        return element.prepared.uri

    def work(self, element):
        raise NotImplementedError

    def reports(self, element) -> bool:
        """Whether a failure on this element is reported (the per-sample copies of a photo after
        the first fail the same way and stay silent)."""
        return True

    def process(self, element):
        if isinstance(element, DeadLetter):
            yield element
            return
        try:
            outputs = list(self.work(element))
        except Exception as exc:  # noqa: BLE001 - any failure is this record's dead letter
            if self.reports(element):
                yield _dead(self.source(element), self.stage, exc)
            return
        self.ok.inc()
        yield from outputs


class ReadFn(_RecordFn):
    stage = "read"

    def source(self, element) -> str:
        return element[0]

    def reports(self, element) -> bool:
        return element[1] <= 0

    def work(self, element):
        uri, part = element
        with fsspec.open(uri, "rb") as f:
            yield [uri, f.read(), part]  # a list: Prepare drops the bytes once used (Sample.shed)


class PrepareFn(_RecordFn):
    stage = "prepare"

    def __init__(self, cfg: stages.Config):
        self.cfg = cfg

    def source(self, element) -> str:
        return element[0]

    def reports(self, element) -> bool:
        return element[2] <= 0

    def work(self, element):
        uri, data, part = element
        samples = stages.expand(stages.prepare(uri, data, self.cfg), self.cfg)
        if isinstance(element, list):
            element[1] = b""  # the photo's bytes: see Sample.shed
        return samples if part < 0 else samples[part : part + 1]


class StageFn(_RecordFn):
    """One named per-sample step of :mod:`acir_engine.samples`."""

    STEPS = {"corrupt": stages.corrupt_stage, "decode": stages.decode_stage, "sca": stages.sca_stage,
              "metrics": stages.metrics_stage}

    def __init__(self, name: str, cfg: stages.Config):
        self.stage = name
        self.cfg = cfg

    def work(self, sample: stages.Sample):
        out = self.STEPS[self.stage](sample, self.cfg)
        if out is not sample:
            sample.shed()  # the records form one chain: nothing else reads this stage's input
        if self.stage == "decode":
            Metrics.distribution(NAMESPACE, "resyncs").update(len(out.decoded.resyncs))
        if self.stage == "sca":
            Metrics.distribution(NAMESPACE, "damaged_ppm").update(int(1e6 * float(out.mask.mean())))
        yield out


class EncodeFn(_RecordFn):
    stage, counter = "encode", "rows"

    def __init__(self, cfg: stages.Config):
        self.cfg = cfg

    def work(self, sample: stages.Sample):
        row = stages.encode_row(sample, self.cfg)
        sample.shed()
        yield row


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="acir generate", description=__doc__.splitlines()[0])
    p.add_argument("--input", nargs="+", required=True, metavar="GLOB", help="clean photos (JPEG, PNG, ...), fsspec URLs")
    p.add_argument("--output", required=True, metavar="PATH", help="output folder (local, gs://, memory://)")
    p.add_argument("--ber", type=float, nargs="+", default=[1e-5], help="bit error rates (1e-5)")
    p.add_argument("--variants", type=int, default=1, help="seeds per image and BER (1)")
    p.add_argument("--seed", type=int, default=0, help="run seed; per-sample seeds derive from it and the URI")
    p.add_argument("--size", default="2048x1024", help="target WxH, resize-to-cover and centre-crop (2048x1024)")
    p.add_argument("--keep-size", action="store_true", help="keep each photo's own size")
    p.add_argument("--quality", type=int, default=75)
    p.add_argument("--subsampling", choices=tuple(stages.SUBSAMPLING), default="4:2:0")
    p.add_argument("--restart-rows", type=int, default=0, help="restart marker every N MCU rows (0: none)")
    p.add_argument("--progressive", action="store_true", help="store the photos as progressive JPEGs")
    p.add_argument("--no-thumbnail", action="store_true", help="do not embed the 160-px EXIF thumbnail")
    p.add_argument("--thumbnail-style", choices=stages.THUMBNAIL_STYLES, default="pillow",
                   help="pillow: bicubic 160 px, q90 (the paper's); camera: as cameras write them (4:3 frame with "
                        "black bars, their own tone, sharpening and JPEG quality)")
    p.add_argument("--fde", default="aes-cbc-essiv:sha256")
    p.add_argument("--sector-size", type=int, default=512)
    p.add_argument("--region", choices=("scan", "all"), default="scan")
    p.add_argument("--damage", action="append", default=[], metavar="KIND[:SIZE][@AT]",
                   help="damage beyond bit flips per sample, after them (repeatable; as acir corrupt --damage)")
    p.add_argument("--splits", default="train=0.9,val=0.05,test=0.05", help="name=fraction,... (sum 1)")
    p.add_argument("--images", choices=stages.IMAGE_COLUMNS, default="aware",
                   help="PNG columns to store: none, aware (aware SCA + mask, default) or all")
    p.add_argument("--shards", type=int, default=0, help="number of Parquet shards (0: let the runner decide)")
    p.add_argument("--sink", choices=("auto", "beam", "fsspec", "stream"), default="auto",
                   help="beam: WriteToParquet; fsspec: our own deterministic --shards files (a shuffle of every row); "
                        "stream: each bundle writes its rows as they come, no shuffle (auto: stream on Dask, "
                        "fsspec there with --shards)")
    p.add_argument("--per-sample", action="store_true",
                   help="every photo x BER x variant its own element from the start: each reads and prepares "
                        "its photo (~5%% more work, same rows); on Dask, one sample's images in memory per task "
                        "instead of all of a photo's, and few photos still spread over all workers")
    return p


def config_from(args: argparse.Namespace) -> stages.Config:
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise AcirError(f"--size must look like 2048x1024, got {args.size!r}") from None
    splits = []
    for part in args.splits.split(","):
        name, _, frac = part.partition("=")
        splits.append((name.strip(), float(frac)))
    for ber in args.ber:
        check_ber(ber)
    return stages.Config(width=w, height=h, keep_size=args.keep_size, quality=args.quality,
                         subsampling=args.subsampling, restart_rows=args.restart_rows, progressive=args.progressive,
                         thumbnail=not args.no_thumbnail, thumbnail_style=args.thumbnail_style,
                         fde=args.fde, sector_size=args.sector_size,
                         region=args.region, bers=tuple(args.ber), variants=args.variants, seed=args.seed,
                         splits=tuple(splits), images=args.images, damage=tuple(args.damage))


def build(p: beam.Pipeline, inputs: list[str], output: str, cfg: stages.Config, shards: int = 0,
          sink: str = "beam", reshuffle: bool = True, per_sample: bool = False) -> None:
    """The pipeline graph (separate from :func:`run` so tests can inspect or reuse it).

    One linear chain: dead letters ride along with the good records (every stage passes them
    through) and are split off only at the sink. Beam's DaskRunner runs a single leaf of a branched
    graph, so with ``sink="fsspec"`` or ``"stream"`` rows and dead letters even share one writer.

    ``reshuffle``: break fusion after listing and after preparing, so a runner spreads the photos
    (and their variants) over its workers. Off on Dask, where the driver lists the files and gives
    each its own partition: there a Reshuffle is a hash shuffle that lumps random photos together
    and leaves workers idle at the end.

    ``per_sample``: each (photo, BER, variant) is its own element from the start (each reads and
    prepares the photo: a little more work per sample, deterministic so the rows are the same);
    on Dask, where elements stay in the partition they start in, this spreads a photo's samples
    over the workers and keeps one sample's images in memory at a time, not all of a photo's, at
    a small cost in throughput when the photos already spread evenly.
    """
    n_samples = len(cfg.bers) * cfg.variants
    parts = range(n_samples) if per_sample else (-1,)
    records = (p | "Patterns" >> beam.Create([(x, part) for x in inputs for part in parts])
               | "ListInputs" >> beam.ParDo(ExpandGlobs()))
    if reshuffle:
        records = records | "Distribute" >> beam.Reshuffle()
    records = records | "Read" >> beam.ParDo(ReadFn()) | "Prepare" >> beam.ParDo(PrepareFn(cfg))
    if reshuffle:
        records = records | "Rebalance" >> beam.Reshuffle()
    for label, name in (("Corrupt", "corrupt"), ("RobustDecode", "decode"), ("SCA", "sca"), ("Metrics", "metrics")):
        records = records | label >> beam.ParDo(StageFn(name, cfg))
    records = records | "EncodeRows" >> beam.ParDo(EncodeFn(cfg))
    out = output.rstrip("/")
    if sink == "fsspec":
        _ = records | "Write" >> sink_mod.WriteAll(out, shards or 4, is_dead=lambda e: isinstance(e, DeadLetter))
        return
    if sink == "stream":
        _ = records | "Write" >> beam.ParDo(sink_mod.StreamRows(out, is_dead=lambda e: isinstance(e, DeadLetter)))
        return
    rows = records | "Rows" >> beam.Filter(lambda e: not isinstance(e, DeadLetter))
    dead = records | "Dead" >> beam.Filter(lambda e: isinstance(e, DeadLetter)) | "AsText" >> beam.Map(str)
    _ = rows | "Write" >> beam.io.WriteToParquet(
        f"{out}/shard", SCHEMA, codec="zstd", file_name_suffix=".parquet", num_shards=shards,
        row_group_buffer_size=8 * 2**20, record_batch_size=4)
    _ = dead | "WriteDeadLetters" >> beam.io.WriteToText(f"{out}/dead_letter", file_name_suffix=".jsonl",
                                                         shard_name_template="")


def _output_counts(output: str) -> dict:
    """Rows and dead letters as written (not every runner reports Beam metrics)."""
    import pyarrow.parquet as pq

    fs, _, (root,) = fsspec.get_fs_token_paths(output.rstrip("/"))
    rows = 0
    for p in fs.glob(f"{root}/*.parquet"):
        with fs.open(p, "rb") as f:
            rows += pq.ParquetFile(f).metadata.num_rows
    dead = 0
    if fs.exists(f"{root}/dead_letter.jsonl"):
        dead = sum(1 for line in fs.cat(f"{root}/dead_letter.jsonl").decode().splitlines() if line.strip())
    return {"rows": rows, "dead_letters": dead}


def _counters(result) -> dict:
    out = {}
    try:
        for c in result.metrics().query()["counters"]:
            out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(c.committed or c.attempted or 0)
    except Exception:  # noqa: BLE001 - some runners do not report metrics
        pass
    return out


def _distributions(result) -> dict:
    out = {}
    try:
        for d in result.metrics().query()["distributions"]:
            v = d.committed or d.attempted
            if v is not None and v.count:
                out[d.key.metric.name] = {"count": v.count, "mean": v.sum / v.count, "min": v.min, "max": v.max}
    except Exception:  # noqa: BLE001
        pass
    return out


def run(argv: list[str] | None = None) -> dict:
    """Run the pipeline; returns the manifest it wrote. Unknown flags go to Beam (runner options)."""
    # here first: an in-process runner works in this process, and the worker processes a runner
    # starts inherit its one-malloc-arena setting (acir_core.heap) from the environment
    tune_process()
    args, beam_args = build_parser().parse_known_args(argv)
    cfg = config_from(args)
    options = PipelineOptions(beam_args)
    options.view_as(SetupOptions).save_main_session = False
    t0 = time.time()
    p = beam.Pipeline(options=options)
    all_opts = options.get_all_options()
    runner = str(all_opts.get("runner") or "")
    on_dask = "Dask" in runner
    sink = args.sink
    if sink == "auto":
        sink = ("fsspec" if args.shards else "stream") if on_dask else "beam"
    inputs = args.input
    if on_dask:
        # Beam's DaskRunner splits work only where a pipeline starts (its Create), into bags of 128
        # elements by default: list the files here and give each its own partition
        inputs = list_inputs(args.input)
        if not all_opts.get("npartitions") and not all_opts.get("partition_size"):
            options = PipelineOptions(beam_args + ["--dask_partition_size", "1"])
            p = beam.Pipeline(options=options)
    if sink == "stream":
        sink_mod.clear_stream_output(args.output)
    build(p, inputs, args.output, cfg, args.shards, sink, reshuffle=not on_dask, per_sample=args.per_sample)
    result = p.run()
    result.wait_until_finish()
    if sink == "stream":
        sink_mod.merge_dead_letters(args.output)
    counts = _counters(result)
    counts.update(_output_counts(args.output))
    manifest = {
        "code_version": __version__, "config": asdict(cfg), "inputs": args.input, "output": args.output,
        "runner": options.get_all_options().get("runner") or "DirectRunner", "seconds": round(time.time() - t0, 1),
        "counts": counts, "distributions": _distributions(result),
        "schema": [f"{f.name}: {f.type}" for f in SCHEMA],
    }
    dead_path = f"{args.output.rstrip('/')}/dead_letter.jsonl"
    fs, _, (path,) = fsspec.get_fs_token_paths(dead_path)
    if not fs.exists(path):  # no dead letters: an empty file says so explicitly
        with sink_mod.open_for_write(dead_path) as f:
            f.write(b"")
    with sink_mod.open_for_write(f"{args.output.rstrip('/')}/manifest.json", "w") as f:
        json.dump(manifest, f, indent=1, default=str)
    return manifest


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(run()["counts"], indent=1))
