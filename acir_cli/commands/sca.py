"""``acir sca``: decode a damaged JPEG and undo its colour casts and block shifts (SCA)."""
from __future__ import annotations

import argparse
import json
import posixpath

from acir_core.sca.compensate import FILLS, METHODS, compensate, decode_for, resolve_thumbnail
from acir_engine.inputs import read_bytes
from acir_engine.outputs import mask_png, png_bytes, write_atomic
from acir_engine.thumbnails import HELP as THUMBNAIL_HELP, ThumbnailSpec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sca",
        help="self-compensation and alignment: fix DC drift and block shifts of a damaged JPEG",
        description="aware (default): uses the robust decoder's records to put every run of MCUs back in place "
                    "with its DC corrected, marks what it could not fix and fills it from the thumbnail (or by "
                    "inpainting when there is none). paper: the CVPR 2023 paper's pixel-only SCA, for comparison.",
    )
    p.add_argument("input", metavar="IN", help="damaged JPEG (never modified)")
    p.add_argument("--out", required=True, metavar="OUT.png")
    p.add_argument("--method", choices=METHODS, default="aware")
    p.add_argument("--thumbnail", default="auto", metavar="auto|none|FILE|DIR", help=THUMBNAIL_HELP)
    p.add_argument("--fill", choices=FILLS, default="auto",
                   help="how damaged MCUs are filled (auto: thumbnail if any, else inpainting)")
    p.add_argument("--mask", metavar="M.png", help="write the damage mask (white = damaged)")
    p.add_argument("--report", metavar="FILE.json", help="write what was done per run as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec = ThumbnailSpec.parse(args.thumbnail)
    data = read_bytes(args.input)
    thumb, origin = resolve_thumbnail(data, spec.for_photo(posixpath.basename(args.input)), args.input)
    result = decode_for(data, args.method, args.input)
    reference = None
    if args.method == "aware" and thumb is not None and len(result.scans) == 1:
        # as acir restore does: the thumbnail framed and registered on what SCA alone puts in place
        reference = compensate(result, None, fill="none")
    c = compensate(result, thumb, method=args.method, fill=args.fill, reference=reference)
    timings = dict(c.timings, reference=reference.timings["total"] if reference is not None else 0.0)
    sca = c.sca
    protect = (args.input,)
    write_atomic(args.out, png_bytes(c.rgb), protect=protect)
    if args.mask:
        write_atomic(args.mask, mask_png(c.mask), protect=protect)
    moved = sum(1 for s in sca.segments if s.shift or any(s.dc))
    print(f"{args.input} -> {args.out}: {args.method} SCA, {len(result.resyncs)} resyncs, "
          f"{len(sca.segments)} runs ({moved} moved or DC-corrected), {100 * c.damaged_fraction:.2f}% pixels "
          f"damaged, fill {c.fill}, thumbnail {origin}, "
          f"{1000 * (timings['total'] + timings['reference']):.0f} ms")
    if args.report:
        report = {"input": args.input, "output": args.out, "method": args.method, "thumbnail": origin,
                  "thumbnail_frame": c.thumbnail_note, "fill": c.fill, "damaged_fraction": c.damaged_fraction,
                  "timings": timings,
                  "decode": result.summary(),
                  "runs": [{"scan": s.scan, "first_mcu": s.first_mcu, "end_mcu": s.end_mcu, "shift": s.shift,
                            "dc": list(s.dc), "cost": s.cost, "confident": s.confident} for s in sca.segments]}
        write_atomic(args.report, json.dumps(report, indent=1).encode(), protect=protect)
    return 0
