"""Make docs/before-after.jpg, the README's picture: damaged photos as a standard decoder
shows them, beside what `acir restore` makes of them (one row per photo).

    python docs/make_before_after.py [DAMAGED.jpg ...] [--out docs/before-after.jpg] [--restored DIR]

Left: Pillow (libjpeg-turbo) with ImageFile.LOAD_TRUNCATED_IMAGES, what a photo viewer shows.
Right: `acir restore` with its default stage (GCA when `.[train]` is installed, else aware SCA +
fill). Each half is scaled to `--width` pixels and the grid saved as a JPEG (< 300 KB).
"""

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFile

ROOT = Path(__file__).resolve().parent.parent


def standard_decoder(path: Path) -> Image.Image:
    """The photo as Pillow shows it: libjpeg's warnings ignored, grey after where it gave up."""
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    with Image.open(io.BytesIO(path.read_bytes())) as im:
        return im.convert("RGB")


def acir_restored(path: Path, out_dir: Path | None) -> Image.Image:
    """Run `acir restore` on the one photo and read its NAME.restored.png back."""
    with tempfile.TemporaryDirectory() as tmp:
        out = out_dir or Path(tmp)
        png = out / (path.name + ".restored.png")
        if not png.exists():
            subprocess.run(["acir", "restore", str(path), "--out", str(out), "--no-previews"], check=True)
        with Image.open(png) as im:
            return im.convert("RGB")


def labelled(im: Image.Image, width: int, text: str) -> Image.Image:
    im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(im)
    box = draw.textbbox((8, 6), text)
    draw.rectangle((box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3), fill=(0, 0, 0))
    draw.text((8, 6), text, fill=(255, 255, 255))
    return im


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("damaged", nargs="*", type=Path,
                   default=[ROOT / "examples/damaged/andrew-ridley-ber5e-05.jpg",
                            ROOT / "examples/damaged/andrew-ridley-ber2e-04.jpg"])
    p.add_argument("--out", type=Path, default=ROOT / "docs/before-after.jpg")
    p.add_argument("--restored", type=Path, default=None,
                   help="an `acir restore` output folder to take NAME.restored.png from (else run it)")
    p.add_argument("--width", type=int, default=512, help="width of each half (512)")
    p.add_argument("--quality", type=int, default=85)
    args = p.parse_args(argv)

    gap = 6
    rows = []
    for path in args.damaged:
        ber = path.stem.rsplit("-ber", 1)[-1].replace("e-0", "e-") if "-ber" in path.stem else ""
        note = f", BER {ber}" if ber else ""
        rows.append((labelled(standard_decoder(path), args.width, f"standard decoder (Pillow){note}"),
                     labelled(acir_restored(path, args.restored), args.width, f"acir restore{note}")))
    height = sum(max(b.height, a.height) for b, a in rows) + gap * (len(rows) - 1)
    pair = Image.new("RGB", (2 * args.width + gap, height), (255, 255, 255))
    y = 0
    for before, after in rows:
        pair.paste(before, (0, y))
        pair.paste(after, (args.width + gap, y))
        y += max(before.height, after.height) + gap
    pair.save(args.out, quality=args.quality, optimize=True, progressive=False)
    print(f"{args.out}: {pair.width}x{pair.height}, {args.out.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
