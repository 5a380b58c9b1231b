"""Damage beyond bit flips (issue 23): each kind and size on real photos, restored by the engine.

Each photo (``../shared/datasets/camera`` by default, ``--set eval`` for the 2K evaluation set,
whose photos first get the 160-px EXIF thumbnail the dataset pipeline embeds) gets one damage at a
time (:mod:`acir_core.damage`: zeroed, lost and repeated sector runs, CR before every LF, cut
files, zeroed or removed first sectors), placed by the seed, and is restored by
``restore_photo`` at stage sca with its own thumbnail. Per case: Y-PSNR against the original and
Pillow's on the same damaged file (grey where Pillow shows nothing), the MCUs the damage held
(whose bytes were zeroed, removed, repeated, changed or cut off), the mask's area as a multiple
of theirs (the JSON also holds the MCUs it touches, its 2-pixel growth counted, as a multiple),
the share of the other MCUs (one MCU away from the damage and further, where chroma up-sampling
no longer reaches) that come out bit-exact, seconds, the status or refusal, and the repaired JPEG
(``--format jpeg``): its Y-PSNR as Pillow decodes it, the share of MCUs it made up and the seconds
writing it took.

    python benchmarks/bench_damage.py --files 'Canon*' --seeds 0 --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_camera import SETS, _y_psnr, hit_mcus, pillow_rgb, run_pool, set_photos  # noqa: E402

KINDS = ("zero:4k,zero:16k,lose:4k,lose:16k,repeat:4k,repeat:16k,crlf,cut:0.25,cut:0.5,cut:0.75,head:2,head:16,"
         "head:64,headless:16")


def _held_bytes(clean: bytes, event) -> np.ndarray:
    """Clean-file byte offsets whose MCUs the damage took."""
    if event.kind in ("zero", "lose", "repeat"):
        return np.arange(event.offset, event.offset + max(event.length, 1), dtype=np.int64)
    if event.kind == "cut":
        return np.arange(event.offset, len(clean), dtype=np.int64)
    if event.kind == "crlf":
        return np.flatnonzero(np.frombuffer(clean, np.uint8)[event.offset:] == 0x0A).astype(np.int64) + event.offset
    return np.arange(0, event.length, dtype=np.int64)


def _cells(flags: np.ndarray, result, sr) -> np.ndarray:
    """Per MCU of the scan: any pixel flagged (pixels H×W bool)."""
    ch, cw = 8 * result.frame.max_v, 8 * result.frame.max_h
    pad = np.zeros((sr.mcu_rows * ch, sr.mcu_cols * cw), bool)
    pad[: flags.shape[0], : flags.shape[1]] = flags
    return pad.reshape(sr.mcu_rows, ch, sr.mcu_cols, cw).any(axis=(1, 3))


def _coefficients_placed(result, sr, coded, far: np.ndarray) -> tuple[float, float]:
    """(AC exact, DC placed) shares of the MCUs in ``far`` (see the module docstring)."""
    ac_ok = np.ones(far.shape, bool)
    dc_ok = np.ones(far.shape, bool)
    for ci, comp in enumerate(result.frame.components):
        v, h = (comp.v, comp.h) if len(result.frame.components) > 1 else (1, 1)
        a = coded.coefficients[ci][: sr.mcu_rows * v, : sr.mcu_cols * h].astype(np.int32)
        b = result.coefficients[ci][: sr.mcu_rows * v, : sr.mcu_cols * h].astype(np.int32)
        same = (a[..., 1:] == b[..., 1:]).all(axis=-1).reshape(sr.mcu_rows, v, sr.mcu_cols, h).all(axis=(1, 3))
        diff = (a[..., 0] - b[..., 0]).reshape(sr.mcu_rows, v, sr.mcu_cols, h)
        const = np.median(diff[:, 0, :, 0][far & same]) if (far & same).any() else 0
        ac_ok &= same
        dc_ok &= (diff == const).all(axis=(1, 3))
    n = max(int(far.sum()), 1)
    return 100.0 * float((ac_ok & far).sum()) / n, 100.0 * float((ac_ok & dc_ok & far).sum()) / n


def _donor(task: dict):
    from acir_core.graft import donor_of
    if task["donor"] == "none":
        return ()
    path = Path(task["donor_path"])
    data = path.read_bytes()
    if task["embed"]:
        from acir_core.thumbnail import with_thumbnail
        data = with_thumbnail(data, max_side=160)
    return (donor_of(data, path.name),)


def run_case(task: dict) -> dict:
    """One (file, damage, seed) case, in a worker process."""
    from acir_core.damage import apply_damage, parse_damage
    from acir_engine.photo import restore_photo
    path, spec, seed = Path(task["path"]), task["damage"], task["seed"]
    clean_data = path.read_bytes()
    if task["embed"]:  # as the dataset pipeline gives a photo without one: a 160-px thumbnail in EXIF
        from acir_core.thumbnail import with_thumbnail
        clean_data = with_thumbnail(clean_data, max_side=160)
    damaged = apply_damage(clean_data, [parse_damage(spec)], seed=seed, source=str(path))
    event = damaged.events[0]
    result, sr, held = hit_mcus(clean_data, _held_bytes(clean_data, event))
    clean = result.rgb
    grid = held.reshape(sr.mcu_rows, sr.mcu_cols)
    row = {"file": path.name, "damage": spec, "seed": seed, "offset": event.offset, "bytes": event.length,
           "held_mcus": int(held.sum()), "held_pct": 100.0 * held.mean(),
           "pillow": _y_psnr(pillow_rgb(damaged.data, clean.shape), clean)}
    t = time.perf_counter()
    try:
        res = restore_photo(damaged.data, source=path.name, stage="sca", thumbnail="auto",
                            donors=lambda: _donor(task))
    except Exception as exc:  # a refusal is a result here: the record says why
        row.update(status="refused", reason=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t)
        return row
    row["seconds"] = time.perf_counter() - t
    if res.image.shape != clean.shape:  # a header put back wrong (another picture's frame)
        row.update(status="refused", reason=f"restored at {res.image.shape[1]}x{res.image.shape[0]}, "
                                            f"not {clean.shape[1]}x{clean.shape[0]}")
        return row
    near = grid.copy()
    near[1:] |= grid[:-1]
    near[:-1] |= grid[1:]
    near[:, 1:] |= near[:, :-1].copy()
    near[:, :-1] |= near[:, 1:].copy()
    cell_px = 64 * result.frame.max_v * result.frame.max_h  # pixels per MCU
    differs = _cells(np.any(res.image != clean, axis=2), result, sr)
    masked = _cells(res.mask, result, sr)
    far = ~near
    if res.coded is not None:
        row["ac_exact_pct"], row["dc_placed_pct"] = _coefficients_placed(result, sr, res.coded, far)
    else:
        row["ac_exact_pct"] = row["dc_placed_pct"] = 100.0
    if "header" in res.record:
        row["donor"] = res.record["header"]["donor"]
    if res.coded is not None:
        from acir_core.jpeg.rewrite import repaired_jpeg
        t = time.perf_counter()
        rep = repaired_jpeg(res.coded, res.image, res.region if res.region is not None else res.mask)
        row.update(jpeg_seconds=time.perf_counter() - t, jpeg_made_pct=100.0 * rep.made_up_mcus / rep.mcus,
                   jpeg_psnr=_y_psnr(pillow_rgb(rep.data, clean.shape), clean))
    else:  # intact: the file itself is the repaired JPEG
        row.update(jpeg_seconds=0.0, jpeg_made_pct=0.0, jpeg_psnr=_y_psnr(pillow_rgb(damaged.data, clean.shape), clean))
    row.update(status=res.status, psnr=_y_psnr(res.image, clean), mask_pct=100.0 * res.mask.mean(),
               mask_over_held=float(res.mask.sum() / max(held.sum() * cell_px, 1)),
               mask_mcus_over_held=float(masked.sum() / max(held.sum(), 1)),
               exact_far_pct=100.0 * float((~differs & far).sum() / max(far.sum(), 1)),
               kept=res.record.get("kept", "acir"))
    return row


def summarise(rows: list[dict]) -> str:
    out = ["| damage | cases | refused | Pillow | acir | acir - Pillow | held MCUs | mask area / held | exact beyond "
           "| AC exact beyond | DC placed | s | repaired JPEG | made up | JPEG s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for spec in dict.fromkeys(r["damage"] for r in rows):
        sel = [r for r in rows if r["damage"] == spec]
        ok = [r for r in sel if r["status"] != "refused"]
        if not ok:
            out.append(f"| {spec} | {len(sel)} | {len(sel)} |" + " |" * 12)
            continue
        def mean(key: str) -> float:  # an exact photo's infinite PSNR counts as 99 dB
            return float(np.mean([min(r[key], 99.0) if key in ("psnr", "pillow", "jpeg_psnr") else r[key]
                                  for r in ok]))
        out.append(f"| {spec} | {len(sel)} | {len(sel) - len(ok)} | {mean('pillow'):.2f} | {mean('psnr'):.2f} | "
                   f"{mean('psnr') - mean('pillow'):+.2f} | {mean('held_pct'):.2f} % | "
                   f"{float(np.median([r['mask_over_held'] for r in ok])):.1f}× | {mean('exact_far_pct'):.1f} % | "
                   f"{mean('ac_exact_pct'):.1f} % | {mean('dc_placed_pct'):.1f} % | {mean('seconds'):.1f} | "
                   f"{mean('jpeg_psnr'):.2f} | {mean('jpeg_made_pct'):.2f} % | {mean('jpeg_seconds'):.2f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=sorted(SETS), default="camera")
    ap.add_argument("--damage", default=KINDS, help="comma-separated damage specs (acir corrupt --damage)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--files", default="*", help="globs on file names, comma-separated")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--donor", choices=("auto", "none"), default="auto",
                    help="auto: the next photo of the eval set, a photo's own clean header on the camera set")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    paths = set_photos(args.set, args.files)
    every = set_photos(args.set)
    donor_of = {p: (every[(every.index(p) + 1) % len(every)] if args.set == "eval" else p) for p in paths}
    tasks = [{"path": str(p), "damage": d, "seed": int(s), "embed": args.set == "eval", "donor": args.donor,
              "donor_path": str(donor_of[p])}
             for d in args.damage.split(",") for s in args.seeds.split(",") for p in paths]
    def line(row: dict) -> str:
        tail = (f"acir {row['psnr']:.2f} dB, mask {row['mask_pct']:.1f} % ({row['mask_over_held']:.1f}× held), "
                f"exact beyond {row['exact_far_pct']:.1f} %" if row["status"] != "refused" else row["reason"])
        return (f"{row['file']} {row['damage']} seed {row['seed']}: held {row['held_mcus']} MCUs, Pillow "
                f"{row['pillow']:.2f} dB, {row['status']}: {tail}, {row['seconds']:.1f} s")

    t0 = time.perf_counter()
    rows = run_pool(run_case, tasks, args.jobs, line)
    print(f"\n{len(tasks)} cases in {time.perf_counter() - t0:.0f} s on {args.jobs} workers ({args.set} set)\n")
    print(summarise(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
