"""Progressive JPEGs (issue 24): exactness, speed, damaged and cut files, against Pillow.

Each photo (``--set eval``: the 24 2K photos with the pipeline's 160-px thumbnail; ``--set camera``:
the 44 camera originals, their EXIF kept) is re-encoded by Pillow (libjpeg-turbo) as a progressive
file and, for comparison, as a baseline one at the same quality. Per photo: whether acir's decode of
the clean progressive file equals libjpeg-turbo's pixel for pixel, both decode times (best of 3 after a warm-up), and whether
its robust decoding (where libjpeg's conventions may be failures) is the same; then per
BER and seed (aes-cbc-essiv:sha256, errors after the header) and per cut (25 / 50 / 75 % of the file
kept): Y-PSNR of ``restore_photo`` (stage sca) on the progressive file, of Pillow on it (what
libjpeg-turbo decodes before giving up; for a cut file also Pillow's default, an error: grey), and
of ``restore_photo`` on the baseline file with the same damage.

    python benchmarks/bench_progressive.py --set eval --seeds 0,1
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_camera import SETS, _y_psnr, pillow_rgb, run_pool, set_photos  # noqa: E402
from timing import best_time  # noqa: E402



def _encodings(path: Path, embed: bool, quality: int) -> tuple[bytes, bytes]:
    from PIL import Image
    with Image.open(path) as im:
        exif = im.info.get("exif")
        rgb = im.convert("RGB")
        out = []
        for progressive in (True, False):
            buf = io.BytesIO()
            rgb.save(buf, "JPEG", quality=quality, progressive=progressive, **({"exif": exif} if exif else {}))
            out.append(buf.getvalue())
    if embed:
        from acir_core.thumbnail import with_thumbnail
        out = [with_thumbnail(d, max_side=160) for d in out]
    return out[0], out[1]


def _pillow_default(data: bytes, shape) -> np.ndarray:
    """Pillow without LOAD_TRUNCATED_IMAGES: a cut file is an error (grey here)."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
    except Exception:  # noqa: BLE001 - it shows nothing
        return np.full(shape, 128, np.uint8)
    return rgb if rgb.shape == shape else np.full(shape, 128, np.uint8)


def run_case(task: dict) -> dict:
    """One photo: clean, then every damage, in a worker process."""
    from acir_core.bitflip import corrupt
    from acir_core.damage import apply_damage, parse_damage
    from acir_core.jpeg.decoder import decode
    from acir_engine.photo import restore_photo
    path = Path(task["path"])
    prog, base = _encodings(path, task["embed"], task["quality"])
    clean = decode(prog, "strict")
    ref = pillow_rgb(prog, clean.rgb.shape)
    acir_s = best_time(lambda: decode(prog, "strict"))  # best of 3 after a warm-up, each
    pillow_s = best_time(lambda: pillow_rgb(prog, clean.rgb.shape))
    truth = decode(base, "strict").rgb
    robust = decode(prog, "robust")  # libjpeg's conventions counted where they would be failures
    row = {"file": path.name, "scans": len(clean.scans), "exact": bool(np.array_equal(clean.rgb, ref)),
           "robust_exact": bool(robust.clean and np.array_equal(robust.rgb, clean.rgb)),
           "conventions": [sum(s.conventions[0] for s in robust.scans), sum(s.conventions[1] for s in robust.scans)],
           "acir_s": acir_s, "pillow_s": pillow_s, "cases": []}

    def case(name: str, damaged_prog: bytes, damaged_base: bytes | None) -> None:
        t = time.perf_counter()
        r = restore_photo(damaged_prog, source=path.name, stage="sca")
        c = {"damage": name, "acir": _y_psnr(r.image, clean.rgb), "acir_s": time.perf_counter() - t,
             "pillow": _y_psnr(pillow_rgb(damaged_prog, clean.rgb.shape), clean.rgb),
             "pillow_default": _y_psnr(_pillow_default(damaged_prog, clean.rgb.shape), clean.rgb)}
        if damaged_base is not None:
            t = time.perf_counter()
            c["baseline_acir"] = _y_psnr(restore_photo(damaged_base, source=path.name, stage="sca").image, truth)
            c["baseline_s"] = time.perf_counter() - t
        row["cases"].append(c)

    for ber in task["bers"]:
        for seed in task["seeds"]:
            case(f"ber {ber:g}", corrupt(prog, ber=ber, seed=seed).data, corrupt(base, ber=ber, seed=seed).data)
    for keep in (0.25, 0.5, 0.75):
        spec = [parse_damage(f"cut:{keep}")]
        case(f"cut {keep:g}", apply_damage(prog, spec).data, None)
    return row


def _secs(vals: list) -> str:
    """Mean / max of the restore times measured (none: older results)."""
    vals = [v for v in vals if v is not None]
    return f"{np.mean(vals):.1f} / {max(vals):.1f}" if vals else "—"


def summarise(rows: list[dict]) -> str:
    def m(vals):
        return float(np.mean([min(v, 99.0) for v in vals]))
    exact = sum(r["exact"] for r in rows)
    ratio = np.array([r["acir_s"] / max(r["pillow_s"], 1e-6) for r in rows])
    robust = sum(r["robust_exact"] for r in rows)
    breaks, places = (sum(r["conventions"][i] for r in rows) for i in (0, 1))
    out = [f"clean: {exact} of {len(rows)} bit-exact with libjpeg-turbo; decode time / Pillow's: median "
           f"{np.median(ratio):.2f}×, worst {ratio.max():.2f}×; robust decoding: {robust} of {len(rows)} the same, "
           f"{breaks} codes against libjpeg's conventions in {places} places checked", "",
           "| damage | cases | Pillow (best effort) | Pillow (default) | acir | acir - Pillow | acir, baseline file "
           "| restore s (mean / max) | baseline file s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    names = list(dict.fromkeys(c["damage"] for r in rows for c in r["cases"]))
    for n in names:
        cs = [c for r in rows for c in r["cases"] if c["damage"] == n]
        base = [c["baseline_acir"] for c in cs if "baseline_acir" in c]
        out.append(f"| {n} | {len(cs)} | {m([c['pillow'] for c in cs]):.2f} | {m([c['pillow_default'] for c in cs]):.2f} "
                   f"| {m([c['acir'] for c in cs]):.2f} | {m([c['acir'] for c in cs]) - m([c['pillow'] for c in cs]):+.2f} "
                   f"| {f'{m(base):.2f}' if base else '—'} | {_secs([c.get('acir_s') for c in cs])} "
                   f"| {_secs([c.get('baseline_s') for c in cs])} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=sorted(SETS), default="eval")
    ap.add_argument("--bers", default="1e-6,1e-5", help="comma-separated; empty: clean and cut files only")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--quality", type=int, default=92)
    ap.add_argument("--files", default="*", help="globs on file names, comma-separated")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    paths = set_photos(args.set, args.files)
    tasks = [{"path": str(p), "embed": args.set == "eval", "quality": args.quality,
              "bers": [float(b) for b in args.bers.split(",") if b], "seeds": [int(s) for s in args.seeds.split(",")]}
             for p in paths]

    def line(row: dict) -> str:
        cases = ", ".join(f"{c['damage']} {c['acir']:.1f}/{c['pillow']:.1f}" for c in row["cases"])
        return (f"{row['file']}: {row['scans']} scans, exact {row['exact']}, {row['acir_s']:.2f} s vs Pillow "
                f"{row['pillow_s']:.2f} s; acir/Pillow dB: {cases}")

    t0 = time.perf_counter()
    rows = run_pool(run_case, tasks, args.jobs, line)
    print(f"\n{len(tasks)} photos in {time.perf_counter() - t0:.0f} s on {args.jobs} workers ({args.set} set, "
          f"quality {args.quality})\n")
    print(summarise(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
