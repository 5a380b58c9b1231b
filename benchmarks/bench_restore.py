"""`acir restore` throughput on 2K photos at BER 1e-5, per stage, on this machine.

Damaged inputs are made from ``../shared/datasets/eval`` (or generated stand-ins) the paper's way
(2048x1024, q75 4:2:0, 160-px EXIF thumbnail, aes-cbc-essiv:sha256, BER 1e-5). Each stage
(decode, sca, gca when torch is installed) runs as ``acir restore --jobs J`` in a fresh process;
reported: photos per second, the mean per-photo time split from the records, and peak memory
(max RSS) of the parent and of its worker processes. References measured in the same run: Pillow
(libjpeg-turbo) decoding the same damaged files, and the paper's SCA (our faithful
re-implementation: the paper's own code needs its unpublished checkpoints for the GCA half).

    python benchmarks/bench_restore.py [--images 12] [--jobs 2] [--stages decode,sca,gca]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "datasets" / "eval"


def make_inputs(n: int, folder: Path) -> list[Path]:
    from acir_core.bitflip import corrupt
    from acir_engine.samples import Config, prepare

    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(EVAL.glob("*.jpg"))[:n]
    cfg = Config()
    out = []
    for i in range(n):
        if sources:
            uri, data = str(sources[i % len(sources)]), sources[i % len(sources)].read_bytes()
        else:
            import io

            from PIL import Image

            sys.path.insert(0, str(REPO / "tests"))
            from conftest import photo_like

            buf = io.BytesIO()
            Image.fromarray(photo_like(2048, 1024, seed=i)).save(buf, "JPEG", quality=92)
            uri, data = f"gen{i}.jpg", buf.getvalue()
        p = prepare(uri, data, cfg)
        path = folder / f"photo{i:03d}.jpg"
        path.write_bytes(corrupt(p.jpeg, ber=1e-5, seed=1000 + i).data)
        out.append(path)
    return out


def child(stage: str, inp: str, out: str, jobs: int) -> None:
    """Runs in its own process: restore, then print timing and memory as JSON."""
    from acir_cli.app import main

    t = time.perf_counter()
    rc = main(["restore", inp, "--out", out, "--stage", stage, "--jobs", str(jobs), "--no-previews"])
    wall = time.perf_counter() - t
    print(json.dumps({"rc": rc, "wall": wall,
                      "rss_parent_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def make_big(folder: Path, width: int = 4032, height: int = 3024) -> Path:
    """One 12-Mpx damaged photo (an eval photo up-scaled, or a generated one), BER 1e-5."""
    import io

    from PIL import Image

    from acir_core.bitflip import corrupt
    from acir_engine.samples import Config, prepare

    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(EVAL.glob("*.jpg"))
    if sources:
        im = Image.open(sources[0]).convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from conftest import photo_like

        im = Image.fromarray(photo_like(width, height, seed=99))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    p = prepare("big.jpg", buf.getvalue(), Config(keep_size=True))
    path = folder / "big12mpx.jpg"
    path.write_bytes(corrupt(p.jpeg, ber=1e-5, seed=4242).data)
    return path


def references(paths: list[Path]) -> dict:
    from acir_core.imagefile import load_rgb
    from acir_core.jpeg.decoder import decode
    from acir_core.sca.paper import paper_sca

    datas = [p.read_bytes() for p in paths]
    load_rgb(datas[0])
    paper_sca(decode(datas[0], "robust", resync="paper"))  # warm the numba kernels
    t = time.perf_counter()
    for d in datas:
        load_rgb(d)
    pillow = (time.perf_counter() - t) / len(datas)
    t = time.perf_counter()
    for d in datas:
        paper_sca(decode(d, "robust", resync="paper"))
    paper = (time.perf_counter() - t) / len(datas)
    return {"pillow_decode_s": pillow, "paper_decode_sca_s": paper}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--stages", default="decode,sca,gca")
    ap.add_argument("--big", action="store_true", help="also restore one 12-Mpx photo with GCA (time, peak memory)")
    ap.add_argument("--child", nargs=4, metavar=("STAGE", "IN", "OUT", "JOBS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2], int(args.child[3]))
        return
    stages = [s for s in args.stages.split(",") if s]
    if "gca" in stages:
        try:
            import torch  # noqa: F401
        except ImportError:
            stages.remove("gca")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_inputs(args.images, Path(tmp) / "in")
        ref = references(paths)
        print(f"acir restore benchmark: {len(paths)} photos 2048x1024 q75 at BER 1e-5, --jobs {args.jobs}, "
              f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        print(f"references per photo: Pillow decode {1000 * ref['pillow_decode_s']:.0f} ms, "
              f"paper SCA path (robust decode + paper SCA) {1000 * ref['paper_decode_sca_s']:.0f} ms (1 process)\n")
        print(f"{'stage':6} {'photos/s':>9} {'s/photo':>8} {'decode ms':>10} {'sca ms':>8} {'gca ms':>8} "
              f"{'parent MB':>10} {'worker MB':>10} {'damaged %':>10}")
        results = {}
        for stage in stages:
            out = Path(tmp) / f"out-{stage}"
            # a first small run warms numba's on-disk cache so the timed run measures steady state
            subprocess.run([sys.executable, __file__, "--child", stage, str(paths[0]), str(Path(tmp) / "warm"), "1"],
                           capture_output=True, check=True)
            r = subprocess.run([sys.executable, __file__, "--child", stage, str(Path(tmp) / "in"), str(out),
                                str(args.jobs)], capture_output=True, text=True, check=True)
            m = json.loads(r.stdout.strip().splitlines()[-1])
            recs = json.loads((out / "summary.json").read_text())["records"]
            t = {k: np.mean([x.get("timings", {}).get(k, 0.0) for x in recs]) for k in ("decode", "sca", "gca")}
            dmg = 100 * np.mean([x.get("damaged_fraction", 0.0) for x in recs])
            rate = len(paths) / m["wall"]
            results[stage] = {"photos_per_s": rate, **m, **t}
            print(f"{stage:6} {rate:9.2f} {m['wall'] / len(paths):8.2f} {1000 * t['decode']:10.0f} "
                  f"{1000 * t['sca']:8.0f} {1000 * t['gca']:8.0f} {m['rss_parent_mb']:10.0f} "
                  f"{m['rss_workers_mb']:10.0f} {dmg:10.3f}")
        if args.big and "gca" in stages:
            big = make_big(Path(tmp) / "big")
            out = Path(tmp) / "out-big"
            r = subprocess.run([sys.executable, __file__, "--child", "gca", str(big), str(out), "1"],
                               capture_output=True, text=True, check=True)
            m = json.loads(r.stdout.strip().splitlines()[-1])
            rec = json.loads((out / "summary.json").read_text())["records"][0]
            t = rec.get("timings", {})
            print(f"\n12-Mpx photo (4032x3024, BER 1e-5, {100 * rec['damaged_fraction']:.2f}% damaged), stage gca, "
                  f"1 process: {m['wall']:.1f} s wall (decode {t.get('decode', 0):.2f} s, sca {t.get('sca', 0):.2f} s, "
                  f"gca {t.get('gca', 0):.2f} s), peak RSS {m['rss_parent_mb']:.0f} MB")
        print("\n(wall time includes process start, listing, writing PNGs and summary; stage columns are the mean "
              "per-photo times inside the workers)")


if __name__ == "__main__":
    main()
