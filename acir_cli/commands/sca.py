"""``acir sca``: decode a damaged JPEG and undo its colour casts and block shifts (SCA)."""
from __future__ import annotations

import argparse
import io
import json

import numpy as np
from PIL import Image

from acir_core.imagefile import load_rgb
from acir_core.sca.compensate import FILLS, METHODS, compensate, decode_for, resolve_thumbnail
from acir_cli.files import read_input, write_atomic


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
    p.add_argument("--thumbnail", default="auto", metavar="auto|none|FILE",
                   help="auto: the thumbnail embedded in IN; none; or an image file (default auto)")
    p.add_argument("--fill", choices=FILLS, default="auto",
                   help="how damaged MCUs are filled (auto: thumbnail if any, else inpainting)")
    p.add_argument("--mask", metavar="M.png", help="write the damage mask (white = damaged)")
    p.add_argument("--report", metavar="FILE.json", help="write what was done per run as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    data = read_input(args.input)
    if args.thumbnail in ("auto", "none"):
        thumb = "auto" if args.thumbnail == "auto" else None
    else:
        thumb = load_rgb(read_input(args.thumbnail), args.thumbnail).rgb
    thumb, origin = resolve_thumbnail(data, thumb, args.input)
    result = decode_for(data, args.method, args.input)
    c = compensate(result, thumb, method=args.method, fill=args.fill)
    sca = c.sca
    buf = io.BytesIO()
    Image.fromarray(c.rgb).save(buf, "PNG")
    protect = (args.input,)
    write_atomic(args.out, buf.getvalue(), protect=protect)
    if args.mask:
        mbuf = io.BytesIO()
        Image.fromarray((c.mask * np.uint8(255)).astype(np.uint8)).save(mbuf, "PNG")
        write_atomic(args.mask, mbuf.getvalue(), protect=protect)
    moved = sum(1 for s in sca.segments if s.shift or any(s.dc))
    print(f"{args.input} -> {args.out}: {args.method} SCA, {len(result.resyncs)} resyncs, "
          f"{len(sca.segments)} runs ({moved} moved or DC-corrected), {100 * c.damaged_fraction:.2f}% pixels "
          f"damaged, fill {c.fill}, thumbnail {origin}, {1000 * c.timings['total']:.0f} ms")
    if args.report:
        report = {"input": args.input, "output": args.out, "method": args.method, "thumbnail": origin,
                  "fill": c.fill, "damaged_fraction": c.damaged_fraction, "timings": c.timings,
                  "decode": result.summary(),
                  "runs": [{"scan": s.scan, "first_mcu": s.first_mcu, "end_mcu": s.end_mcu, "shift": s.shift,
                            "dc": list(s.dc), "cost": s.cost, "confident": s.confident} for s in sca.segments]}
        write_atomic(args.report, json.dumps(report, indent=1).encode(), protect=protect)
    return 0
