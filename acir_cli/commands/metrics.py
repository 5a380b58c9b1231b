"""``acir metrics A B``: Y-PSNR / Y-SSIM / RGB PSNR of image A against reference B."""
from __future__ import annotations

import argparse
import json
import math

from acir_core.errors import InvalidParameter
from acir_core.imagefile import load_rgb
from acir_core.metrics import evaluate
from acir_engine.inputs import read_bytes


def _scales(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales must be comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"scales must be positive integers, got {text!r}")
    return values


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="Y-PSNR/Y-SSIM of an image against a reference (BT.601 luma, design.md §5)",
        description="Compare IMAGE with REFERENCE (any format Pillow reads; a damaged JPEG is measured as the "
                    "standard decoder shows it). --scales 1,2,4 also evaluates after bicubic downsampling both by "
                    "2 and 4: the paper's 2048x1024 / 1024x512 / 512x256.",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("reference", metavar="REFERENCE")
    p.add_argument("--scales", type=_scales, default=(1,), help="downsampling factors, e.g. 1,2,4 (1)")
    p.add_argument("--crop-border", type=int, default=0, help="pixels removed from each side first (0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.crop_border < 0:
        raise InvalidParameter(f"--crop-border must be >= 0, got {args.crop_border}")
    img = load_rgb(read_bytes(args.image), args.image)
    ref = load_rgb(read_bytes(args.reference), args.reference)
    results = evaluate(img.rgb, ref.rgb, args.scales, args.crop_border)
    notes = [f"{name}: standard decoder reported '{im.problem}'; measured what it produced"
             for name, im in ((args.image, img), (args.reference, ref)) if not im.complete]
    if args.json:
        print(json.dumps({"image": args.image, "reference": args.reference, "crop_border": args.crop_border,
                          "notes": notes, "results": [q.as_dict() for q in results]}))
        return 0
    for n in notes:
        print(f"note: {n}")
    print(f"{'scale':>5}  {'size':>11}  {'Y-PSNR dB':>9}  {'Y-SSIM':>7}  {'RGB-PSNR dB':>11}")
    for q in results:
        fmt = lambda v: "inf" if math.isinf(v) else f"{v:.3f}"  # noqa: E731
        print(f"{'1/' + str(q.scale):>5}  {f'{q.width}x{q.height}':>11}  {fmt(q.y_psnr):>9}  {q.y_ssim:7.4f}  "
              f"{fmt(q.rgb_psnr):>11}")
    return 0
