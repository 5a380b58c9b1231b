"""Dataset pipeline throughput: Beam runners against a plain Python loop over the same functions.

Photos from ``../shared/datasets/eval`` (or generated stand-ins), the default dataset settings
(2048x1024, q75 4:2:0, EXIF thumbnail, aes-cbc-essiv:sha256, BER 1e-5, one variant). Measured in
one run: the plain loop (``acir_engine.samples.process``), DirectRunner in-process, DirectRunner
multi_processing with 2 workers, and DaskRunner on a 2-worker LocalCluster; images per second and
the ratio to the loop; the per-stage time split from the loop; peak memory (max RSS) of the loop's
process and of the workers.

The loop is timed twice: in a fresh Python process, clock started before the interpreter, as a
user's script runs (imports and numba cache loads included, which every runner worker pays too),
and warm, in this process after a first photo; both with one BLAS thread, as acir's workers run. Ratios are given against
both; with few photos the runners' start-up weighs heavily against the warm loop.

``--variants N`` makes N corrupted samples of each photo (the training set is made with 4), so a
run holds more work per photo and start-up weighs less. ``--marginal`` also runs everything on a
quarter of the photos and reports each configuration's marginal rate (the samples the full run
adds over the time it adds) and its fixed cost per run: a dataset of thousands of photos runs at
the marginal rate, while a 24-photo run is a few seconds of start-up in twenty.

    python benchmarks/bench_pipeline.py [--images 8] [--variants 1] [--repeat 3] [--marginal] [--photos DIR]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from acir_core.process import tune_process
from pipelines import generate, stages

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "datasets" / "eval"
VARIANTS = 1  # set from --variants


def inputs(n: int, folder: Path, source: Path = EVAL) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = sorted(source.glob("*.jpg"))[:n]
    if not paths:
        sys.path.insert(0, str(REPO / "tests"))
        from conftest import photo_like

        for i in range(n):
            Image.fromarray(photo_like(2048, 1024, seed=i)).save(folder / f"gen{i}.jpg", quality=92)
        return sorted(folder.glob("*.jpg"))
    for p in paths:
        shutil.copy(p, folder / p.name)
    return sorted(folder.glob("*.jpg"))


def loop(paths: list[Path], cfg: stages.Config) -> tuple[float, dict]:
    split = {k: 0.0 for k in ("prepare", "corrupt", "decode", "sca", "metrics", "encode")}
    t0 = time.perf_counter()
    for p in paths:
        data = p.read_bytes()
        t = time.perf_counter()
        prepared = stages.prepare(str(p), data, cfg)
        split["prepare"] += time.perf_counter() - t
        for s in stages.expand(prepared, cfg):
            for name, fn in (("corrupt", stages.corrupt_stage), ("decode", stages.decode_stage),
                             ("sca", stages.sca_stage), ("metrics", stages.metrics_stage)):
                t = time.perf_counter()
                s = fn(s, cfg)
                split[name] += time.perf_counter() - t
            t = time.perf_counter()
            stages.encode_row(s, cfg)
            split["encode"] += time.perf_counter() - t
    return time.perf_counter() - t0, split


def cold_loop(glob: str, variants: int) -> float:
    """The loop in a fresh interpreter, wall clock from before it starts to after it exits."""
    code = ("import glob, sys; from acir_core.process import tune_process; tune_process()\n"
            "from acir_engine import samples as stages; cfg = stages.Config(variants=int(sys.argv[2]))\n"
            "for p in sorted(glob.glob(sys.argv[1])): stages.process(p, open(p, 'rb').read(), cfg)")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, glob, str(variants)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def beam_run(paths_glob: str, out: str, extra: list[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    generate.run(["--input", paths_glob, "--output", out, "--ber", "1e-5", "--variants", str(VARIANTS), *extra])
    return time.perf_counter() - t


def dask_run(glob: str, out: str) -> tuple[float, float] | None:
    """DaskRunner on a fresh 2-worker LocalCluster (started before the clock): (seconds, worker MiB)."""
    try:
        import distributed
    except ImportError:
        return None
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        client.run(lambda: None)  # workers up before the clock starts
        t = beam_run(glob, out, ["--runner", "apache_beam.runners.dask.dask_runner.DaskRunner",
                                 "--dask_client_address", cluster.scheduler_address])
        rss = max(client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024).values())
        for c in list(distributed.client._global_clients.values()):
            c.close()
    return t, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of all configurations, interleaved; each reports its fastest round "
                         "(shared machines are noisy: CPU steal moves single runs by tens of percent)")
    ap.add_argument("--photos", type=Path, default=EVAL,
                    help="folder of clean JPEGs to take the first --images of (default ../shared/datasets/eval, "
                         "24 photos; ../shared/datasets/train has 326 for dataset-sized runs)")
    ap.add_argument("--variants", type=int, default=1, help="corrupted samples per photo (training sets: 4)")
    ap.add_argument("--marginal", action="store_true",
                    help="also time every configuration on a quarter of the photos and report the rate of "
                         "the samples the full run adds (start-up and end costs cancel)")
    args = ap.parse_args()
    global VARIANTS
    VARIANTS = args.variants
    tmp = Path(tempfile.mkdtemp(prefix="acir-bench-pipeline-"))
    try:
        paths = inputs(args.images, tmp / "in", args.photos)
        n = len(paths)
        tune_process()  # as every acir entry point and pipeline worker does (acir_core.process)
        cfg = stages.Config(variants=args.variants)
        stages.process(str(paths[0]), paths[0].read_bytes(), cfg)  # compile/load numba outside the timings
        glob = str(tmp / "in" / "*.jpg")
        names = ["plain Python loop (1 process, warm)", "DirectRunner in-process", "DirectRunner multi_processing x2",
                 "DaskRunner, LocalCluster x2", "plain Python loop (fresh process)"]
        sets = {"all": (paths, glob)}
        if args.marginal:
            few = max(1, n // 4)
            (tmp / "few").mkdir()
            for q in paths[:few]:
                shutil.copy(q, tmp / "few" / q.name)
            sets["few"] = (sorted((tmp / "few").glob("*.jpg")), str(tmp / "few" / "*.jpg"))
        times: dict[str, dict[str, list[float]]] = {key: {k: [] for k in names} for key in sets}
        split, dask_rss, rss_children = {}, None, 0.0
        for r in range(args.repeat):
            for key, (ps, g) in sets.items():
                t_loop, split_r = loop(ps, cfg)
                times[key][names[0]].append(t_loop)
                if key == "all" and (not split or t_loop <= min(times[key][names[0]])):
                    split = split_r
                times[key][names[1]].append(beam_run(g, str(tmp / "o1"), [
                    "--direct_num_workers", "1", "--direct_running_mode", "in_memory"]))
                times[key][names[2]].append(beam_run(g, str(tmp / "o2"), [
                    "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]))
                if r == 0 and key == "all":  # children so far = the multi_processing workers (Dask's come later)
                    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                d = dask_run(g, str(tmp / "o3"))
                if d is None:
                    times[key].pop(names[3], None)
                else:
                    times[key][names[3]].append(d[0])
                    dask_rss = max(dask_rss or 0.0, d[1])
                time.sleep(5)  # the LocalCluster's processes take a few seconds to exit: not on the next clock
                times[key][names[4]].append(cold_loop(g, args.variants))
        rss_loop = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if names[3] not in times["all"]:
            print("dask.distributed not installed: DaskRunner skipped")
        best = {k: min(v) for k, v in times["all"].items()}
        t_loop, t_cold = best[names[0]], best[names[4]]
        print(f"dataset pipeline benchmark: {n} photos of {args.photos.name}/ -> 2048x1024 q75 samples at BER 1e-5 ({args.variants} variant(s) each), "
              f"{os.cpu_count()} cores, fastest of {args.repeat} interleaved round(s)")
        samples = n * args.variants
        print(f"{'configuration':<36} {'seconds':>8} {'samples/s':>9} {'vs fresh loop':>14} {'vs warm loop':>13}"
              "   all rounds (s)")
        for name in [names[4], *names[:4]]:
            if name not in best:
                continue
            t = best[name]
            rounds = " ".join(f"{x:.1f}" for x in times["all"][name])
            print(f"{name:<36} {t:>8.1f} {samples / t:>9.3f} {t_cold / t:>13.2f}x {t_loop / t:>12.2f}x   {rounds}")
        rate2 = max(samples / t for name, t in best.items() if "x2" in name)
        fixed = 0.0
        marginal_run = "few" in times
        if marginal_run:
            # the rate of the samples the larger run adds: what each configuration pays once per run
            # (worker start-up, graph translation, shard finalisation, the last bundle's idle worker)
            # cancels, leaving the rate a long job runs at
            extra = samples - len(sets["few"][0]) * args.variants
            best_few = {k: min(v) for k, v in times["few"].items()}
            marginal = {k: extra / max(best[k] - best_few[k], 1e-9) for k in best if k in best_few}
            fixed_of = {k: best[k] - samples / marginal[k] for k in marginal}
            n_few = len(sets["few"][0])
            print(f"marginal rate, {n_few} -> {n} photos ({extra} samples more; fastest rounds):")
            print(f"{'configuration':<36} {'samples/s':>9} {'vs warm loop':>13} {'fixed cost (s)':>15}   "
                  f"{n_few}-photo rounds (s)")
            for name in [names[4], *names[:4]]:
                if name not in marginal:
                    continue
                rounds = " ".join(f"{x:.1f}" for x in times["few"][name])
                print(f"{name:<36} {marginal[name]:>9.3f} {marginal[name] / marginal[names[0]]:>12.2f}x "
                      f"{fixed_of[name]:>15.1f}   {rounds}")
            two = max((k for k in marginal if "x2" in k), key=lambda k: marginal[k])
            rate2, fixed = marginal[two], fixed_of[two]
        total = sum(split.values())
        print("per-stage split of the loop: " + ", ".join(
            f"{k} {100 * v / total:.0f}% ({1000 * v / samples:.0f} ms/sample)" for k, v in split.items()))
        print(f"peak RSS: loop process {rss_loop:.0f} MiB, multi_processing workers {rss_children:.0f} MiB"
              + (f", Dask workers {dask_rss:.0f} MiB" if dask_rss else ""))
        print(f"paper's Cityscapes training set (2975 photos, 1 sample each) at the best 2-worker "
              f"{'marginal ' if marginal_run else ''}rate ({rate2:.3f} samples/s"
              f"{f', plus {fixed:.0f} s once' if marginal_run else ''}): "
              f"{(fixed + 2975 / rate2) / 3600:.1f} h on this machine")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
