"""``acir restore INPUT... --out DIR``: bring a folder (or bucket) of damaged photos back."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from acir_core.errors import AcirError, InvalidParameter
from acir_core.fde import FDE_MODES, SECTOR_SIZES, SectorCipher
from acir_cli.files import read_key_file

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "restore", help="restore damaged photos: files, folders, globs or URLs -> DIR (with report.html)",
        description="Intact photos are copied untouched; damaged ones are decoded robustly, compensated (aware "
                    "SCA), filled from their thumbnail and, when torch and the GCA weights are installed, "
                    "restored by the network. Writes per photo the image, its damage mask and a JSON record, "
                    "then summary.json and report.html. Inputs are never modified; a rerun resumes.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders (recursive), globs, fsspec URLs")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--stage", choices=("auto", "decode", "sca", "gca"), default="auto",
                   help="how far to go (auto: gca when torch and weights are present, else sca)")
    p.add_argument("--thumbnail", default="auto", metavar="auto|none|DIR",
                   help="auto: embedded EXIF/JFIF thumbnail; none; DIR: thumbnails named like the photos")
    p.add_argument("--fde", choices=[m for m in FDE_MODES if m != "none"],
                   help="inputs are raw sector-encrypted images: decrypt them first")
    p.add_argument("--key-file", metavar="FILE", help="the FDE key (raw bytes or hex)")
    p.add_argument("--sector-size", type=int, choices=SECTOR_SIZES, default=512)
    p.add_argument("--weights", metavar="FILE", help="GCA weights (default: the packaged gca-v2.pt)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (GCA)")
    p.add_argument("--format", choices=("png", "jpeg"), default="png",
                   help="png, or jpeg (q95, keeps the original EXIF)")
    p.add_argument("--jobs", type=int, default=1, help="photos restored in parallel (processes)")
    p.add_argument("--no-previews", action="store_true", help="no preview images (report.html has no pictures)")
    p.set_defaults(run=run)


_STATE: dict = {}


def _init_worker(opts, stage: str, weights: str | None, device: str, threads: int) -> None:
    from acir_core.process import tune_process

    tune_process()
    _STATE.update(opts=opts, stage=stage, gca=None)
    if stage == "gca":
        import torch

        torch.set_num_threads(threads)
        from training.infer import GCARestorer

        _STATE["gca"] = GCARestorer(weights, device)


def _work(item):
    from pipelines.archive import run_item

    return run_item(item, _STATE["opts"], _STATE["stage"], _STATE["gca"])


def run(args: argparse.Namespace) -> int:
    from pipelines.archive import (RestoreOptions, clean_partials, list_inputs, resolve_stage, summarise,
                                   write_run_outputs)

    if args.jobs < 1:
        raise InvalidParameter(f"--jobs must be >= 1, got {args.jobs}")
    key = b""
    if args.fde:
        if not args.key_file:
            raise InvalidParameter(f"--key-file is required with --fde {args.fde}")
        try:
            key = read_key_file(args.key_file)
            SectorCipher(args.fde, key, args.sector_size)
        except AcirError as exc:
            raise InvalidParameter(exc.reason, source=exc.source) from None
    out_abs = os.path.abspath(args.out) if "://" not in args.out else None
    items = list_inputs(args.inputs, any_extension=bool(args.fde))
    if out_abs:  # never read our own outputs back as inputs
        items = [i for i in items if not os.path.abspath(i.uri).startswith(out_abs + os.sep)]
    if not items:
        raise InvalidParameter("no JPEG files found in the inputs")
    stage = resolve_stage(args.stage, args.weights)
    opts = RestoreOptions(args.out, stage, args.thumbnail, args.fde or "", key, args.sector_size, args.format,
                          args.device, args.weights or "", not args.no_previews)
    print(f"acir restore: {len(items)} inputs -> {args.out} (stage {stage}, {args.jobs} job(s))", file=sys.stderr)
    t0 = time.perf_counter()
    records: list[dict] = []
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    from tqdm import tqdm

    bar = tqdm(total=len(items), unit="photo", dynamic_ncols=True, disable=not sys.stderr.isatty())
    try:
        if args.jobs == 1:
            _init_worker(opts, stage, args.weights, args.device, threads)
            for item in items:
                records.append(_work(item))
                bar.update(1)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn" if stage == "gca" else "fork")
            with ctx.Pool(args.jobs, _init_worker, (opts, stage, args.weights, args.device, threads)) as pool:
                for rec in pool.imap_unordered(_work, items):
                    records.append(rec)
                    bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        removed = clean_partials(args.out)
        print(f"acir restore: interrupted after {len(records)} of {len(items)} photos; finished ones are kept "
              f"({removed} partial files removed); run the same command again to resume", file=sys.stderr)
        return 130
    bar.close()
    resumed = sum(1 for r in records if r.get("resumed"))
    summary = summarise(records, time.perf_counter() - t0, resumed)
    write_run_outputs(opts, records, summary)
    print(f"{summary.total} photos: {summary.restored} restored, {summary.clean} intact (copied), "
          f"{summary.skipped} skipped, {summary.failed} failed ({resumed} already done) in {summary.seconds:.1f} s; "
          f"report: {args.out.rstrip('/')}/report.html")
    for s in summary.skips:
        print(f"skipped: {s['input']}: {s['reason']}")
    for f in summary.failures:
        print(f"failed: {f['input']}: {f['reason']}", file=sys.stderr)
    return 1 if summary.failed else 0
