"""``acir restore INPUT... --out DIR``: bring a folder (or bucket) of damaged photos back."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from acir_core.errors import AcirError, InvalidParameter
from acir_core.fde import FDE_MODES, SECTOR_SIZES, SectorCipher
from acir_core.jpeg.tables import DEFAULT_MAX_PIXELS
from acir_engine.inputs import JPEG_EXTENSIONS, read_key_file
from acir_engine.network import STAGE_CHOICES
from acir_engine.thumbnails import HELP as THUMBNAIL_HELP, ThumbnailSpec

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
    p.add_argument("--stage", choices=STAGE_CHOICES, default="auto",
                   help="how far to go (auto: gca when torch and weights are present, else sca)")
    p.add_argument("--thumbnail", default="auto", metavar="auto|none|FILE|DIR", help=THUMBNAIL_HELP)
    p.add_argument("--fde", choices=[m for m in FDE_MODES if m != "none"],
                   help="inputs are raw sector-encrypted images: decrypt them first")
    p.add_argument("--key-file", metavar="FILE", help="the FDE key (raw bytes or hex)")
    p.add_argument("--sector-size", type=int, choices=SECTOR_SIZES, default=512)
    p.add_argument("--weights", metavar="FILE", help="GCA weights (default: the packaged gca-v2.pt)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (GCA)")
    p.add_argument("--format", choices=("png", "jpeg"), default="png",
                   help="png, or jpeg: the repaired JPEG (the photo's own header and coefficients)")
    p.add_argument("--reference", action="append", default=[], metavar="FILE|DIR",
                   help="photos (files or folders) from the same camera whose headers may stand in for a lost "
                        "one (repeatable); the run's own intact photos are tried too")
    p.add_argument("--jobs", type=int, default=1, help="photos restored in parallel (processes)")
    p.add_argument("--no-previews", action="store_true", help="no preview images (report.html has no pictures)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse photos whose header declares more pixels ({DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--memory-budget", metavar="SIZE", default="auto",
                   help="refuse photos estimated (from the header) to need more memory than this, e.g. 4G "
                        "(auto: half this machine's memory shared among --jobs; 0: no limit)")
    p.set_defaults(run=run)


_STATE: dict = {}


def _init_worker(opts, threads: int) -> None:
    from acir_core.process import tune_process

    tune_process(threads)  # each of --jobs workers its share of the cores
    _STATE.update(opts=opts, network=None)
    if opts.stage == "gca":
        from acir_engine.network import load_network

        _STATE["network"] = load_network(opts.weights, opts.device, threads)


def _work(item):
    from acir_engine.run import run_item

    return run_item(item, _STATE["opts"], _STATE["network"])


def _print_left_out(left_out: list[tuple[str, str]], show: int = 3) -> None:
    """A few examples per reason, then a count (summary.json lists them all)."""
    by_reason: dict[str, list[str]] = {}
    for uri, why in left_out:
        by_reason.setdefault(why, []).append(uri)
    for why, uris in by_reason.items():
        for uri in uris[:show]:
            print(f"left out: {uri}: {why}", file=sys.stderr)
        if len(uris) > show:
            print(f"left out: {len(uris) - show} more: {why} (listed in summary.json)", file=sys.stderr)


def _restore_all(items, opts, jobs: int, threads: int, bar) -> list[dict]:
    """Every item's record, in one process or a pool of ``jobs``."""
    records = []
    if jobs == 1:
        _init_worker(opts, threads)
        for item in items:
            records.append(_work(item))
            if bar is not None:
                bar.update(1)
        return records
    import multiprocessing as mp

    ctx = mp.get_context("spawn" if opts.stage == "gca" else "fork")
    with ctx.Pool(jobs, _init_worker, (opts, threads)) as pool:
        for rec in pool.imap_unordered(_work, items):
            records.append(rec)
            if bar is not None:
                bar.update(1)
    return records


def run(args: argparse.Namespace) -> int:
    from acir_engine.inputs import list_inputs
    from acir_engine.network import resolve_stage
    from acir_engine.outputs import clean_partials
    from acir_engine.run import (RunOptions, donor_pass, free_names, parse_size, summarise, with_earlier_records,
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
    if "://" not in args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InvalidParameter("--out must be a folder, and this is a file", source=args.out)
    listing = list_inputs(args.inputs, extensions=None if args.fde else JPEG_EXTENSIONS, exclude=args.out)
    listing.check_matched()
    _print_left_out(listing.left_out)
    items = listing.items
    if not items:
        raise InvalidParameter("no JPEG files to restore in the inputs" + (" (see 'left out' above)"
                                                                          if listing.left_out else ""))
    ThumbnailSpec.parse(args.thumbnail)  # a bad --thumbnail is a usage error before any work
    stage = resolve_stage(args.stage, args.weights)
    opts = RunOptions(out=args.out, stage=stage, thumbnail=args.thumbnail, fde=args.fde or "", key=key,
                      sector_size=args.sector_size, format=args.format, device=args.device,
                      weights=args.weights or "", previews=not args.no_previews, max_pixels=args.max_pixels,
                      memory_budget=parse_size(args.memory_budget, args.jobs), references=tuple(args.reference))
    items = free_names(opts, items)
    if stage == "gca" and args.jobs > 1:  # a bad weights file is one error here, not one per worker
        from acir_engine.network import load_network

        load_network(opts.weights, opts.device)
    print(f"acir restore: {len(items)} inputs -> {args.out} (stage {stage}, {args.jobs} job(s))", file=sys.stderr)
    t0 = time.perf_counter()
    records: list[dict] = []
    from acir_core.bands import usable_cores

    threads = max(1, usable_cores() // args.jobs)
    from tqdm import tqdm

    bar = tqdm(total=len(items), unit="photo", dynamic_ncols=True, disable=not sys.stderr.isatty())
    try:
        records = _restore_all(items, opts, args.jobs, threads, bar)
        again_opts, again = donor_pass(opts, items, records)
        if again:  # headers lost: the photos that decoded lend theirs
            print(f"acir restore: {len(again)} photo(s) lost their header; trying the run's other photos as "
                  "donors", file=sys.stderr)
            redone = {r["name"]: r for r in _restore_all(again, again_opts, args.jobs, threads, None)}
            records = [redone.get(r.get("name"), r) for r in records]
    except KeyboardInterrupt:
        bar.close()
        removed = clean_partials(args.out)
        print(f"acir restore: interrupted after {bar.n} of {len(items)} photos; finished ones are kept "
              f"({removed} partial files removed); run the same command again to resume", file=sys.stderr)
        return 130
    bar.close()
    resumed = sum(1 for r in records if r.get("resumed"))
    seconds = time.perf_counter() - t0
    summary = summarise(records, seconds, resumed, listing.left_out)  # this run's photos
    every = with_earlier_records(opts, records)
    try:
        write_run_outputs(opts, every, summarise(every, seconds, resumed, listing.left_out))
        where = f"report: {args.out.rstrip('/')}/report.html"
    except AcirError as exc:
        where = f"summary not written: {exc}"
    cut = f" ({summary.truncated} of them cut short)" if summary.truncated else ""
    print(f"{summary.total} photos: {summary.restored} restored{cut}, {summary.clean} intact (copied), "
          f"{summary.skipped} skipped, {summary.failed} failed ({resumed} already done) in {summary.seconds:.1f} s; "
          f"{where}")
    for s in summary.skips:
        print(f"skipped: {s['input']}: {s['reason']}")
    for f in summary.failures:
        print(f"failed: {f['input']}: {f['reason']}", file=sys.stderr)
    return 1 if summary.failed or where.startswith("summary not") else 0
