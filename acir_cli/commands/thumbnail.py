"""``acir thumbnail extract|embed``: read the preview a camera embedded, or embed one (EXIF IFD1)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from acir_core.errors import AcirError, InvalidParameter
from acir_core.jpeg.decoder import decode
from acir_core.thumbnail import THUMBNAIL_MAX_SIDE, camera_thumbnail, extract_thumbnail, with_thumbnail
from acir_engine.inputs import read_bytes
from acir_engine.outputs import png_bytes, write_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("thumbnail", help="extract or embed the small preview image in a JPEG header")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(p))
    ex = actions.add_parser("extract", help="write each input's embedded thumbnail (EXIF, JFXX or JFIF) as PNG",
                            description="Writes IN's thumbnail to DIR/<name>.thumb.png. Works on damaged files: "
                                        "segments before the first damaged one are searched.")
    ex.add_argument("inputs", nargs="+", metavar="IN")
    ex.add_argument("--out", required=True, metavar="DIR")
    ex.set_defaults(run=run_extract)
    em = actions.add_parser("embed", help="copy JPEGs with a bicubic EXIF thumbnail added (the paper's 160 px)",
                            description="Writes DIR/<name> with an EXIF APP1 holding a baseline JPEG thumbnail. "
                                        "Existing camera EXIF (IFD0) is kept; the image data is copied unchanged.")
    em.add_argument("inputs", nargs="+", metavar="IN")
    em.add_argument("--out", required=True, metavar="DIR")
    em.add_argument("--max-side", type=int, default=THUMBNAIL_MAX_SIDE, help="thumbnail's longer side (160)")
    em.add_argument("--quality", type=int, default=90, help="thumbnail JPEG quality (90)")
    em.add_argument("--style", choices=("pillow", "camera"), default="pillow",
                    help="pillow: bicubic, --max-side, --quality; camera: as cameras write them (4:3 frame with "
                         "black bars, their own tone, sharpening and quality, drawn from --seed)")
    em.add_argument("--seed", type=int, default=0, help="camera style: the look's seed (0)")
    em.set_defaults(run=run_embed)


def _each(inputs: list[str], work) -> int:
    failed = 0
    for src in inputs:
        try:
            print(work(src))
        except AcirError as exc:
            failed += 1
            print(f"acir: error: {exc}", file=sys.stderr)
    return 1 if failed else 0


def run_extract(args: argparse.Namespace) -> int:
    def work(src: str) -> str:
        thumb = extract_thumbnail(read_bytes(src), src)
        if thumb is None:
            raise AcirError("no usable embedded thumbnail (run with -v for the reasons)", source=src)
        dst = Path(args.out) / (Path(src).name + ".thumb.png")
        write_atomic(dst, png_bytes(thumb.rgb), protect=tuple(args.inputs))
        return f"{src}: {thumb.kind} thumbnail {thumb.size[0]}x{thumb.size[1]} -> {dst}"
    return _each(args.inputs, work)


def run_embed(args: argparse.Namespace) -> int:
    if not 1 <= args.max_side <= 1024:
        raise InvalidParameter(f"--max-side must be in [1, 1024], got {args.max_side}")
    if not 1 <= args.quality <= 100:
        raise InvalidParameter(f"--quality must be in [1, 100], got {args.quality}")

    def work(src: str) -> str:
        data = read_bytes(src)
        made = None
        if args.style == "camera":
            made = camera_thumbnail(decode(data, "strict", source=src).rgb, args.seed)
        out = with_thumbnail(data, args.max_side, args.quality, source=src, thumbnail_jpeg=made)
        dst = Path(args.out) / Path(src).name
        write_atomic(dst, out, protect=tuple(args.inputs))
        return f"{src}: thumbnail embedded -> {dst}"
    return _each(args.inputs, work)
