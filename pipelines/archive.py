"""Batch restoration of photo archives as a Beam pipeline (the same work as ``acir restore``).

    python -m pipelines.archive --input 'gs://bucket/damaged/**' --output gs://bucket/restored \\
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp \\
        --setup_file ./setup.py --device cuda

Read → DecodeSCA (robust decode, aware SCA, thumbnail fill) → GCA (``RunInference`` with a PyTorch
model handler: batched, the model loaded once per worker, CPU or GPU; a plain ParDo with the same
handler on Beam's DaskRunner) → Write (image, mask, record,
previews, through fsspec) → Summary (summary.json, report.html, by the driver from the records). One linear chain: Beam's
DaskRunner runs a single leaf, so intact, skipped and failed photos ride along with the rest and
the model handler passes them through. Failures are records with status "failed" (the
dead-letter output: ``summary.json`` lists them and the run goes on)."""
from __future__ import annotations

import argparse
import json
import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from acir_core.errors import AcirError
from acir_core.process import tune_process
from acir_engine import run as engine
from acir_engine.inputs import Item, list_inputs, read_bytes
from acir_engine.network import STAGE_CHOICES, load_network, resolve_stage
from acir_core.jpeg.tables import DEFAULT_MAX_PIXELS
from acir_engine.run import FORMATS, RunOptions, parse_size
from acir_engine.thumbnails import HELP as THUMBNAIL_HELP, ThumbnailSpec
from pipelines import fsspec_beam  # noqa: F401  (registers memory:// and friends with Beam)

log = logging.getLogger(__name__)
NAMESPACE = "acir_restore"


def _drop_images(element) -> None:
    """Empty a step's input (a list: restoration, file bytes, network output) once the step is
    done with it. Beam's DaskRunner keeps every step's outputs of a bundle alive until the whole
    run ends (a ParDo's receiver collects them, and the worker keeps the task), so an archive of
    thousands of photos would otherwise hold all their images at once."""
    if isinstance(element, list):
        for i in range(2, len(element)):
            element[i] = None


class DecodeSCAFn(beam.DoFn):
    """Resume check, read, decrypt, robust decode, aware SCA + fill. Emits (item, record,
    restoration or None, bytes); a record that is already final has restoration None."""

    def __init__(self, opts: RunOptions):
        self.opts = opts

    def setup(self) -> None:
        tune_process()

    def process(self, item: Item):
        prior, data = engine.prior_record(self.opts, item)
        if prior is not None:
            Metrics.counter(NAMESPACE, "resumed").inc()
            yield [item, prior, None, b""]
            return
        t0 = time.perf_counter()
        try:
            rec, r, data = engine.prepare(item, self.opts, data)
        except Exception as exc:  # noqa: BLE001 - any failure is this photo's dead letter
            rec, r, data = {"input": item.uri, "name": item.name, "status": "failed",
                            "reason": f"{type(exc).__name__}: {exc}"}, None, b""
        rec["t0"] = t0
        Metrics.counter(NAMESPACE, rec.get("status", "failed")).inc()
        yield [item, rec, r, data]  # a list: the next step drops the photo once used (_drop_images)


class GCAModelHandler(ModelHandler):
    """RunInference's model handler for the GCA network (PyTorch). Elements are DecodeSCAFn's
    tuples; those with nothing for the network (intact, failed, no thumbnail, stage sca) pass
    through. ``load_model`` runs once per worker; batches are small since each element is a photo."""

    def __init__(self, stage: str, weights: str = "", device: str = "cpu", max_batch: int = 4):
        self.stage = stage
        self.weights = weights
        self.device = device
        self.max_batch = max_batch

    def load_model(self):
        if self.stage != "gca":
            return None
        return load_network(self.weights, self.device)

    def run_inference(self, batch, model, inference_args=None):
        out = []
        for element in batch:
            item, rec, r, data = element
            rgb, secs = engine.apply_network(model, rec, r)
            out.append([item, rec, r, data, rgb, secs])
            _drop_images(element)
        return out

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self.max_batch}

    def get_metrics_namespace(self) -> str:
        return NAMESPACE


class InferFn(beam.DoFn):
    """The same model handler in a plain ParDo (model loaded once per worker in ``setup``), for
    runners that cannot run RunInference's batching composite: Beam's DaskRunner drops its output."""

    def __init__(self, handler: GCAModelHandler):
        self.handler = handler

    def setup(self) -> None:
        self.model = self.handler.load_model()

    def process(self, element):
        yield from self.handler.run_inference([element], self.model)


class WriteFn(beam.DoFn):
    def __init__(self, opts: RunOptions):
        self.opts = opts

    def process(self, element):
        item, rec, r, data, rgb, secs = element
        if rec.get("resumed"):
            yield rec
            return
        t0 = rec.pop("t0", time.perf_counter())
        rec["seconds"] = time.perf_counter() - t0
        try:
            rec = engine.finish(item, self.opts, rec, r, data, rgb, secs)
        except Exception as exc:  # noqa: BLE001
            rec.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        _drop_images(element)
        yield rec


def write_summary(items: list[Item], opts: RunOptions, seconds: float,
                  resumed: int, left_out: list[tuple[str, str]] = ()) -> dict:
    """Summary and report from the per-photo records the workers wrote. Done by the driver after
    the run rather than by a Beam combine: not every runner (Beam's DaskRunner) combines globally."""
    records = []
    for item in items:
        try:
            records.append(json.loads(read_bytes(engine.record_path(opts, item))))
        except (AcirError, ValueError) as exc:
            records.append({"input": item.uri, "name": item.name, "status": "failed",
                            "reason": f"no record written ({exc})"})
    records = engine.with_earlier_records(opts, records)
    summary = engine.summarise(records, seconds, resumed, left_out)
    engine.write_run_outputs(opts, records, summary)
    return summary.to_dict()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.archive", description=__doc__.splitlines()[0])
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="files, folders, globs, fsspec URLs")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--stage", choices=STAGE_CHOICES, default="auto")
    p.add_argument("--thumbnail", default="auto", metavar="auto|none|FILE|DIR", help=THUMBNAIL_HELP)
    p.add_argument("--weights", default="", help="GCA weights (default: the packaged ones)")
    p.add_argument("--device", default="cpu", help="cpu or cuda, for the GCA workers")
    p.add_argument("--format", choices=FORMATS, default="png")
    p.add_argument("--batch", type=int, default=4, help="photos per RunInference batch")
    p.add_argument("--reference", action="append", default=[], metavar="PATH",
                   help="photos from the same camera whose headers may stand in for a lost one (repeatable); "
                        "the run's own intact photos are offered in a second pass")
    p.add_argument("--no-previews", action="store_true")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse photos whose header declares more pixels ({DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--memory-budget", default="auto", metavar="SIZE",
                   help="refuse photos estimated to need more memory than this per worker, e.g. 4G "
                        "(auto: half of this machine's memory; 0: no limit)")
    return p


def build(p: beam.Pipeline, items: list[Item], opts: RunOptions, batch: int = 4,
          run_inference: bool = True):
    """The graph; it ends with the per-photo records (each also written as a file).
    ``run_inference=False`` runs the model handler in a plain ParDo (for Beam's DaskRunner)."""
    handler = GCAModelHandler(opts.stage, opts.weights, opts.device, batch)
    decoded = (p | "Inputs" >> beam.Create(items)
               | "Distribute" >> beam.Reshuffle()
               | "DecodeSCA" >> beam.ParDo(DecodeSCAFn(opts)))
    gca = decoded | "GCA" >> (RunInference(handler) if run_inference else beam.ParDo(InferFn(handler)))
    return gca | "Write" >> beam.ParDo(WriteFn(opts))


def run(argv: list[str] | None = None) -> dict:
    """Run the pipeline; returns the summary it wrote. Unknown flags go to Beam (runner options)."""
    # here first: an in-process runner works in this process, and the worker processes a runner
    # starts inherit its one-malloc-arena setting (acir_core.heap) from the environment
    tune_process()
    args, beam_args = build_parser().parse_known_args(argv)
    ThumbnailSpec.parse(args.thumbnail)
    stage = resolve_stage(args.stage, args.weights)
    opts = RunOptions(out=args.output, stage=stage, thumbnail=args.thumbnail, format=args.format,
                      device=args.device, weights=args.weights, previews=not args.no_previews,
                      max_pixels=args.max_pixels, memory_budget=parse_size(args.memory_budget),
                      references=tuple(args.reference))
    listing = list_inputs(args.input, exclude=args.output)
    listing.check_matched()
    items = engine.free_names(opts, listing.items)
    options = PipelineOptions(beam_args)
    options.view_as(SetupOptions).save_main_session = False
    all_opts = options.get_all_options()
    on_dask = "Dask" in str(all_opts.get("runner") or "")
    if on_dask and not all_opts.get("partition_size"):
        options = PipelineOptions(beam_args + ["--dask_partition_size", "1"])  # one photo per Dask task
    before = [engine.read_record(opts, item.name) for item in items]  # small JSON files, not the photos
    t0 = time.time()
    p = beam.Pipeline(options=options)
    build(p, items, opts, args.batch, run_inference=not on_dask)
    p.run().wait_until_finish()
    records = [engine.read_record(opts, it.name) or {} for it in items]
    again_opts, again = engine.donor_pass(opts, items, records)
    if again:  # headers lost: a second, small pipeline offers the photos that decoded as donors
        p = beam.Pipeline(options=options)
        build(p, again, again_opts, args.batch, run_inference=not on_dask)
        p.run().wait_until_finish()
    # a photo whose record the run left as it was had been restored already (resumed)
    resumed = sum(b is not None and b == engine.read_record(opts, it.name) for b, it in zip(before, items))
    return write_summary(items, opts, time.time() - t0, resumed, listing.left_out)


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    try:
        s = run()
    except AcirError as exc:  # bad input or options: one line, like the CLI
        print(f"python -m pipelines.archive: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({k: s[k] for k in ("total", "restored", "clean", "skipped", "failed", "resumed")}, indent=1))
