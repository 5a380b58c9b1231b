"""Restore real camera and phone originals as users bring them (design.md §5b).

Each original in ``../shared/datasets/camera`` is corrupted as it is (no resizing, no
re-encoding) with the dm-crypt ESSIV model at each BER and seed, restored by the engine's
``restore_photo`` (stage sca: decode + SCA + fill) with the file's own embedded thumbnail and with
none, and compared with the original decoded. Per case it reports Y-PSNR at full size and at
2048 px wide, the mask, pixels outside the mask off by more than 12 levels, Pillow's Y-PSNR on
the same damaged file, seconds, peak RSS (the worker's high-water mark, reset before each case)
and which thumbnail was used; and an oracle: the original except the MCUs whose bytes changed,
those filled from a 160-px thumbnail of the original.

    python benchmarks/bench_camera.py                      # everything (slow: ~1 h on 2 cores)
    python benchmarks/bench_camera.py --seeds 0 --thumbs embedded --files 'Canon*' --json out.json
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CAMERA = ROOT.parent / "shared" / "datasets" / "camera"
OFF_LEVELS = 12
COMPARE_WIDTH = 2048


def _peak_rss_reset() -> None:
    """Start a case's high-water mark afresh: the heap the worker keeps (acir_core.heap) is
    handed back first, so that the mark is this case's own, not the largest photo's before it."""
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _y(rgb: np.ndarray) -> np.ndarray:
    from acir_core.metrics import rgb_to_y
    return rgb_to_y(rgb)


def _y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    from acir_core.metrics import y_psnr
    return float(y_psnr(a, b))


def _narrow(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w <= COMPARE_WIDTH:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((COMPARE_WIDTH, max(1, round(h * COMPARE_WIDTH / w))),
                                                  Image.BICUBIC))


def hit_mcus(clean_data: bytes, changed: np.ndarray):
    """The clean decode and a per-MCU flag: does any byte that changed lie in the MCU's bits?"""
    from acir_core.jpeg.decoder import decode
    result = decode(clean_data, "robust")
    sr = result.scans[0]
    hit = np.zeros(sr.mcus_expected, bool)
    if changed.size and sr.byte_offsets.size:
        idx = np.searchsorted(sr.byte_offsets, changed, side="right") - 1
        inside = (idx >= 0) & (changed <= sr.byte_offsets[-1])
        bits = idx[inside].astype(np.int64) * 8
        m = np.searchsorted(sr.mcu_bit_start, bits, side="right") - 1
        hit[np.clip(m, 0, hit.size - 1)] = True
    return result, sr, hit


def oracle(result, sr, hit: np.ndarray) -> np.ndarray:
    """The clean decode with every hit MCU replaced by the up-sampled 160-px thumbnail."""
    from acir_core.sca.fill import upsampled_thumbnail
    from acir_core.sca.marks import pixel_mask
    from acir_core.thumbnail import synthetic_thumbnail
    clean = result.rgb
    if not hit.any():
        return clean
    mask = pixel_mask(result, sr, hit.reshape(sr.mcu_rows, sr.mcu_cols), 0)
    up = upsampled_thumbnail(synthetic_thumbnail(clean), clean.shape[1], clean.shape[0])
    out = clean.copy()
    out[mask] = up[mask]
    return out


def pillow_rgb(data: bytes, shape) -> np.ndarray:
    from acir_core.errors import AcirError
    from acir_core.imagefile import load_rgb
    try:
        rgb = load_rgb(data).rgb
    except AcirError:
        return np.full(shape, 128, np.uint8)
    return rgb if rgb.shape == shape else np.full(shape, 128, np.uint8)


def run_case(task: dict) -> dict:
    """One (file, BER, seed, thumbnail) case, in a worker process."""
    from acir_core.bitflip import corrupt
    from acir_engine.photo import restore_photo
    path, ber, seed, thumbs = Path(task["path"]), task["ber"], task["seed"], task["thumbs"]
    clean_data = path.read_bytes()
    c = corrupt(clean_data, ber=ber, seed=seed, source=str(path))
    result, sr, hit = hit_mcus(clean_data, c.changed_bytes)
    clean = result.rgb
    row = {"file": path.name, "ber": ber, "seed": seed, "width": clean.shape[1], "height": clean.shape[0],
           "restart_interval": sr.restart_interval, "flips": c.n_flips,
           "hit_mcus_pct": 100.0 * hit.mean()}
    pil = pillow_rgb(c.data, clean.shape)
    row["pillow"] = _y_psnr(pil, clean)
    row["pillow_2k"] = _y_psnr(_narrow(pil), _narrow(clean))
    orc = oracle(result, sr, hit)
    row["oracle"] = _y_psnr(orc, clean)
    del pil, orc, result
    yc = None  # the clean luma (8 bytes a pixel) is made after the restore: its peak is acir's alone
    for mode in thumbs:
        _peak_rss_reset()
        t = time.perf_counter()
        try:
            res = restore_photo(c.data, source=path.name, stage="sca", thumbnail="auto" if mode == "embedded" else None)
        except Exception as exc:  # a bench reports failures, it does not stop on them
            row[mode] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        secs = time.perf_counter() - t
        img, mask = res.image, res.mask
        yc = _y(clean) if yc is None else yc
        off = np.abs(_y(img) - yc) > OFF_LEVELS
        outside = ~mask
        row[mode] = {
            "psnr": _y_psnr(img, clean), "psnr_2k": _y_psnr(_narrow(img), _narrow(clean)),
            "mask_pct": 100.0 * mask.mean(),
            "off_outside_pct": 100.0 * (off & outside).sum() / max(outside.sum(), 1),
            "seconds": secs, "peak_rss_mb": _peak_rss() / 2**20,
            "thumbnail": res.record.get("thumbnail", "none"), "status": res.status,
            "kept": res.record.get("kept", "acir"),
        }
        del res, img, mask, off
    return row


SETS = {"camera": CAMERA, "eval": ROOT.parent / "shared" / "datasets" / "eval"}


def matches(name: str, patterns: str) -> bool:
    """Whether a file name matches one of the comma-separated globs ``patterns``."""
    return any(fnmatch.fnmatch(name, p) for p in patterns.split(",") if p)


def photos_in(folder: Path, pattern: str = "*") -> list[Path]:
    """The JPEGs in ``folder`` whose names match ``pattern`` (comma-separated globs), sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg") and matches(p.name, pattern))


def set_photos(name: str, pattern: str = "*") -> list[Path]:
    """:func:`photos_in` dataset ``name`` (camera or eval); exits with a message when ``../shared``
    is not beside the repository."""
    folder = SETS[name]
    if not folder.is_dir():
        sys.exit(f"{folder} not found (../shared beside the repository)")
    return photos_in(folder, pattern)


def run_pool(run_case, tasks: list[dict], jobs: int, line) -> list[dict]:
    """Every task through ``run_case`` in ``jobs`` spawned workers (kernels warmed up first),
    printing ``line(row)`` for each as it comes back; the rows in the order they finished."""
    rows = []
    with mp.get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(jobs,)) as pool:
        for row in pool.imap_unordered(run_case, tasks):
            rows.append(row)
            print(f"[{len(rows)}/{len(tasks)}] {line(row)}", flush=True)
    return rows


def _init_worker(jobs: int) -> None:
    from acir_core.jit import warm_up
    from acir_core.process import tune_process
    # as every acir entry point and pipeline worker does (acir_core.process), with its share of
    # the cores as `acir restore --jobs` gives it
    from acir_core.bands import usable_cores
    tune_process(max(1, usable_cores() // jobs))
    warm_up()


def _mean(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def _cap(x: float) -> float:
    return min(x, 99.0)  # an exact result has infinite PSNR; the mean uses 99 dB for it


def summarise(rows: list[dict], thumbs: list[str]) -> str:
    out = []
    for ber in sorted({r["ber"] for r in rows}, reverse=True):
        sel = [r for r in rows if r["ber"] == ber]
        files = sorted({r["file"] for r in sel})
        out.append(f"\n## BER {ber:g}: {len(files)} files, seeds {sorted({r['seed'] for r in sel})}")
        head = "| file | Mpx | RST | flips | hit % | Pillow | oracle |"
        for m in thumbs:
            head += f" {m} dB | 2k dB | mask % | off % | s | MB | thumb |"
        out.append(head)
        out.append("|" + "---|" * (head.count("|") - 1))
        per_mode = {m: [] for m in thumbs}
        worse = {m: 0 for m in thumbs}
        for f in files:
            rs = [r for r in sel if r["file"] == f]
            r0 = rs[0]
            line = (f"| {f[:28]} | {r0['width'] * r0['height'] / 1e6:.1f} | {r0['restart_interval']} | "
                    f"{_mean([r['flips'] for r in rs]):.0f} | {_mean([r['hit_mcus_pct'] for r in rs]):.3f} | "
                    f"{_mean([_cap(r['pillow']) for r in rs]):.2f} | {_mean([_cap(r['oracle']) for r in rs]):.2f} |")
            for m in thumbs:
                ms = [r[m] for r in rs if m in r and "psnr" in r[m]]
                if not ms:
                    line += " error | | | | | | |"
                    continue
                p = _mean([_cap(x["psnr"]) for x in ms])
                per_mode[m].append((p, _mean([_cap(r["pillow"]) for r in rs])))
                if p < _mean([_cap(r["pillow"]) for r in rs]) - 0.01:
                    worse[m] += 1
                line += (f" {p:.2f} | {_mean([_cap(x['psnr_2k']) for x in ms]):.2f} | "
                         f"{_mean([x['mask_pct'] for x in ms]):.2f} | {_mean([x['off_outside_pct'] for x in ms]):.3f} | "
                         f"{_mean([x['seconds'] for x in ms]):.1f} | {max(x['peak_rss_mb'] for x in ms):.0f} | "
                         f"{ms[0]['thumbnail']} |")
            out.append(line)
        out.append("")
        out.append(f"mean Pillow {_mean([_cap(r['pillow']) for r in sel]):.2f} dB, "
                   f"oracle {_mean([_cap(r['oracle']) for r in sel]):.2f} dB")
        for m in thumbs:
            ms = [r[m] for r in sel if m in r and "psnr" in r[m]]
            if not ms:
                continue
            offs = [x["off_outside_pct"] for x in ms]
            out.append(f"{m}: mean {_mean([_cap(x['psnr']) for x in ms]):.2f} dB "
                       f"(2k {_mean([_cap(x['psnr_2k']) for x in ms]):.2f}), min {min(x['psnr'] for x in ms):.2f}, "
                       f"median mask {float(np.median([x['mask_pct'] for x in ms])):.2f} %, "
                       f"off>12 outside mask mean {_mean(offs):.3f} % worst {max(offs):.3f} %, "
                       f"files below Pillow {worse[m]}, mean {_mean([x['seconds'] for x in ms]):.1f} s, "
                       f"peak RSS max {max(x['peak_rss_mb'] for x in ms):.0f} MB, "
                       f"errors {sum(1 for r in sel if m in r and 'error' in r[m])}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--camera", type=Path, default=CAMERA)
    ap.add_argument("--bers", default="1e-6,1e-5")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--thumbs", default="embedded,none", help="embedded, none, or both (comma-separated)")
    ap.add_argument("--files", default="*", help="globs on file names, comma-separated")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", type=Path, help="write every case here")
    args = ap.parse_args()
    if not args.camera.is_dir():
        sys.exit(f"no camera set at {args.camera}")
    paths = photos_in(args.camera, args.files)
    thumbs = [t for t in args.thumbs.split(",") if t]
    tasks = [{"path": str(p), "ber": float(b), "seed": int(s), "thumbs": thumbs}
             for b in args.bers.split(",") for s in args.seeds.split(",") for p in paths]
    def line(row: dict) -> str:
        e = row.get(thumbs[0], {})
        return (f"{row['file']} ber {row['ber']:g} seed {row['seed']}: Pillow {row['pillow']:.2f}, oracle "
                f"{row['oracle']:.2f}, {thumbs[0]} {e.get('psnr', float('nan')):.2f} dB mask "
                f"{e.get('mask_pct', float('nan')):.1f} % off {e.get('off_outside_pct', float('nan')):.3f} % "
                f"{e.get('seconds', float('nan')):.1f} s {e.get('error', '')}")

    t0 = time.perf_counter()
    rows = run_pool(run_case, tasks, args.jobs, line)
    print(f"\n{len(tasks)} cases in {time.perf_counter() - t0:.0f} s on {args.jobs} workers")
    print(summarise(rows, thumbs))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
