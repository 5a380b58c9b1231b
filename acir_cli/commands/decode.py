"""``acir decode``: decode a (possibly damaged) JPEG to PNG with the robust decoder and report what it met."""
from __future__ import annotations

import argparse
import json
import time


from acir_core.jpeg.decoder import RESYNC_METHODS, decode
from acir_engine.inputs import read_bytes
from acir_engine.outputs import png_bytes, write_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "decode",
        help="decode every bit of a damaged JPEG (robust decoder) to PNG and report the resyncs",
        description="Robust mode (default) decodes to the end, resynchronising after each damaged code; "
                    "--strict stops at the first damaged code with its bit offset and MCU (exit code 1). "
                    "On a clean file the pixels equal libjpeg-turbo's (Pillow's).",
    )
    p.add_argument("input", metavar="IN", help="JPEG file (never modified)")
    p.add_argument("--out", required=True, metavar="OUT.png", help="decoded image (PNG, lossless)")
    p.add_argument("--strict", action="store_true", help="fail at the first damaged code instead of resyncing")
    p.add_argument("--resync", choices=tuple(RESYNC_METHODS), default="lookahead",
                   help="robust resync: lookahead (scores candidate resume points) or paper (first that decodes)")
    p.add_argument("--report", metavar="FILE.json", help="write the full decode report (every resync) as JSON")
    p.add_argument("--max-pixels", type=int, default=200_000_000, help="refuse larger images (200,000,000)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    data = read_bytes(args.input)
    t0 = time.perf_counter()
    result = decode(data, "strict" if args.strict else "robust", resync=args.resync, max_pixels=args.max_pixels,
                    source=args.input)
    elapsed = time.perf_counter() - t0
    write_atomic(args.out, png_bytes(result.rgb), protect=(args.input,))
    s = result.summary()
    print(f"{args.input} -> {args.out}: {s['width']}x{s['height']}, {s['mcus_decoded']}/{s['mcus_expected']} MCUs, "
          f"{s['resyncs']} resyncs, {s['bits_skipped']} bits skipped, "
          f"{100 * s['suspect_fraction']:.2f}% MCUs suspect, {100 * s['missing_fraction']:.2f}% missing "
          f"({elapsed:.2f} s)")
    if args.report:
        report = {"input": args.input, "output": args.out, "seconds": elapsed, **s,
                  "events": [{"scan": r.scan, "mcu": r.mcu, "fail_bit": r.fail_bit, "resume_bit": r.resume_bit,
                              "bits_skipped": r.bits_skipped, "block_phase": r.block_phase, "reason": r.reason,
                              "fail_file_offset": result.scans[r.scan].file_offset(r.fail_bit),
                              "dc_predictors": list(r.dc_predictors)} for r in result.resyncs]}
        write_atomic(args.report, json.dumps(report, indent=1).encode(), protect=(args.input,))
    return 0
