"""SCA quality and speed on the paper's protocol (design.md §5).

The 24 photos of ``../shared/datasets/eval`` re-encoded as the paper's files (2048×1024, baseline,
q75, 4:2:0, no EXIF), aes-cbc-essiv:sha256, region=scan, ``--seeds`` seeds per photo and BER;
mean Y-PSNR / Y-SSIM at 2048×1024, 1024×512 and 512×256 (bicubic downsampling of both images,
ground truth = the decoded clean JPEG) for:

* ``pillow``       what a standard decoder shows (libjpeg-turbo; grey after it stops);
* ``robust``       our robust decoder (lookahead resync), no compensation;
* ``paper-sca``    the paper's SCA on the robust decode with the paper's resync rule;
* ``aware``        decoder-aware SCA, damaged MCUs left as neutral blocks (no fill);
* ``aware+fill``   the same, damaged MCUs filled from the 160-px bicubic thumbnail.

Also the fraction of pixels marked damaged, exactness outside the mask (share of images whose
unmasked pixels all equal the clean decode, Y-PSNR outside the mask, share of differing MCUs the
mask misses: those with a differing pixel it does not cover), and per-image times.
``--restart both`` repeats everything with restart markers every MCU row. Results are printed
and written as JSON.

    python benchmarks/bench_sca.py [--images 24] [--seeds 3] [--workers 2] [--restart both]
"""
from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from acir_core.bitflip import corrupt
from acir_core.process import tune_process
from acir_core.imagefile import load_rgb
from acir_core.jpeg.decoder import decode
from acir_core.metrics import evaluate, psnr, rgb_to_y
from acir_core.sca.compensate import compensate
from acir_core.sca.paper import paper_sca
from acir_core.thumbnail import synthetic_thumbnail

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "datasets" / "eval"
METHODS = ("pillow", "robust", "paper-sca", "aware", "aware+fill")
SCALES = (4, 2, 1)  # 512x256, 1024x512, 2048x1024


def paper_file(path: str, restart: bool) -> bytes:
    im = Image.open(path).convert("RGB")
    if im.size != (2048, 1024):
        im = im.resize((2048, 1024), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    kw = {"restart_marker_rows": 1} if restart else {}
    im.save(buf, "JPEG", quality=75, subsampling=2, **kw)
    return buf.getvalue()


def mask_stats(out: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict:
    eq = np.all(out == clean, axis=2)
    outside = ~mask
    y_out = psnr(rgb_to_y(out)[outside], rgb_to_y(clean)[outside]) if outside.any() else math.inf
    h, w = mask.shape
    cells = lambda a: a[: h // 16 * 16, : w // 16 * 16].reshape(h // 16, 16, w // 16, 16)  # noqa: E731
    differ = ~cells(eq).all(axis=(1, 3))
    # missed: a differing pixel the mask does not cover (an MCU merely touched by the dilated
    # mask of its neighbour is not thereby covered)
    missed = cells(~eq & outside).any(axis=(1, 3))
    return {"exact_outside": bool(eq[outside].all()), "exact_fraction": float(eq[outside].mean()),
            "y_psnr_outside": y_out, "mcus_differ": int(differ.sum()), "mcus_missed": int(missed.sum())}


def warm_worker() -> None:
    """Compile (or load from numba's cache) every kernel before the first timed case: after a
    code change the first case of each worker otherwise carried seconds of compilation, which a
    mean over 72 cases showed as ~50 ms more per image."""
    tune_process()
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 256 * 3)[None, :].repeat(128, axis=0).reshape(128, 256, 3)
    img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=75, subsampling=2)
    data = buf.getvalue()
    clean = decode(data, "strict").rgb
    thumb = synthetic_thumbnail(clean)
    for seed in range(3):
        c = corrupt(data, fde="aes-cbc-essiv:sha256", ber=3e-4, region="scan", seed=seed)
        robust = decode(c.data, "robust")
        compensate(robust, thumb)
        paper_sca(decode(c.data, "robust", resync="paper"))
        evaluate(clean, clean, SCALES)


def run_case(args: tuple) -> dict:
    tune_process()  # as acir's own workers do (acir_core.process)
    path, restart, ber, seed = args
    data = paper_file(path, restart)
    clean = decode(data, "strict").rgb
    thumb = synthetic_thumbnail(clean)
    c = corrupt(data, fde="aes-cbc-essiv:sha256", ber=ber, region="scan", seed=seed)
    out, times = {}, {}
    t = time.perf_counter()
    out["pillow"] = load_rgb(c.data).rgb
    times["pillow"] = time.perf_counter() - t
    t = time.perf_counter()
    robust = decode(c.data, "robust")
    times["decode"] = time.perf_counter() - t
    out["robust"] = robust.rgb
    paper_dec = decode(c.data, "robust", resync="paper")
    p = paper_sca(paper_dec)
    out["paper-sca"], times["paper-sca"] = p.rgb, p.timings["total"]
    comp = compensate(robust, thumb, fill="thumbnail")
    a = comp.sca
    times["aware"], times["aware+fill"] = comp.timings["sca"], comp.timings["total"]
    out["aware+fill"] = comp.rgb
    out["aware"] = comp.unfilled
    scores = {m: [(q.y_psnr, q.y_ssim) for q in evaluate(img, clean, SCALES)] for m, img in out.items()}
    return {"image": Path(path).name, "restart": restart, "ber": ber, "seed": seed, "flips": c.n_flips,
            "resyncs": len(robust.resyncs), "damaged": a.damaged_fraction, "scores": scores, "times": times,
            "mask": mask_stats(a.rgb, clean, a.mask)}


def finite_mean(values) -> float:
    vals = [v for v in values if math.isfinite(v)]
    capped = [min(v, 100.0) for v in values]  # identical images (inf dB) count as 100 dB
    return statistics.mean(capped) if capped else float("nan") if not vals else statistics.mean(vals)


def report(rows: list[dict], restart: bool, ber: float) -> None:
    sel = [r for r in rows if r["restart"] == restart and r["ber"] == ber]
    if not sel:
        return
    print(f"\nBER {ber:g}, {'restart markers every MCU row' if restart else 'no restart markers'}: "
          f"{len(sel)} corrupted files ({len({r['image'] for r in sel})} photos), mean flips "
          f"{statistics.mean(r['flips'] for r in sel):.1f}, mean resyncs {statistics.mean(r['resyncs'] for r in sel):.1f}")
    print(f"{'method':<12} {'512x256':>15} {'1024x512':>15} {'2048x1024':>15}   (Y-PSNR dB / Y-SSIM)")
    for m in METHODS:
        cells = []
        for si in range(len(SCALES)):
            ps = finite_mean([r["scores"][m][si][0] for r in sel])
            ss = statistics.mean(r["scores"][m][si][1] for r in sel)
            cells.append(f"{ps:6.2f} / {ss:.4f}")
        print(f"{m:<12} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15}")
    dmg = statistics.mean(r["damaged"] for r in sel)
    ex = statistics.mean(r["mask"]["exact_outside"] for r in sel)
    exf = statistics.mean(r["mask"]["exact_fraction"] for r in sel)
    yout = min(r["mask"]["y_psnr_outside"] for r in sel)
    differ = sum(r["mask"]["mcus_differ"] for r in sel)
    missed = sum(r["mask"]["mcus_missed"] for r in sel)
    print(f"pixels marked damaged {100 * dmg:.2f}%; outside the mask: all pixels exact in {100 * ex:.1f}% of files, "
          f"{100 * exf:.3f}% of pixels exact, worst Y-PSNR {yout:.1f} dB; mask misses {missed} of {differ} "
          f"differing MCUs ({100 * missed / max(differ, 1):.2f}%)")
    t = {k: statistics.mean(r["times"][k] for r in sel) for k in ("decode", "aware", "aware+fill", "paper-sca")}
    print(f"time per image: robust decode {1e3 * t['decode']:.0f} ms, aware SCA {1e3 * t['aware']:.0f} ms "
          f"(+fill {1e3 * (t['aware+fill'] - t['aware']):.0f} ms), paper SCA {1e3 * t['paper-sca']:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--bers", default="1e-6,1e-5,1e-4")
    ap.add_argument("--restart", choices=("none", "rows", "both"), default="both")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("bench_sca_results.json"))
    args = ap.parse_args()
    paths = sorted(str(p) for p in EVAL.glob("*.jpg"))[: args.images]
    if not paths:
        sys.exit(f"no photos in {EVAL}: the SCA benchmark needs ../shared/datasets/eval")
    bers = [float(b) for b in args.bers.split(",")]
    restarts = {"none": [False], "rows": [True], "both": [False, True]}[args.restart]
    cases = [(p, rs, ber, s) for rs in restarts for ber in bers for p in paths for s in range(args.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers, initializer=warm_worker) as pool:
        rows = list(pool.map(run_case, cases, chunksize=2))
    print(f"SCA benchmark: {len(cases)} cases in {time.perf_counter() - t0:.0f} s ({args.workers} workers)")
    for rs in restarts:
        for ber in bers:
            report(rows, rs, ber)
    args.json.write_text(json.dumps(rows, default=float))
    print(f"\nper-case results: {args.json}")


if __name__ == "__main__":
    main()
