"""The paper's Table 1 protocol (design.md §5) over a dataset from ``acir generate``: for every
row, restore with each stage and measure Y-PSNR/SSIM at 2048×1024, 1024×512 and 512×256 (bicubic
down-sampling of both sides); mean over rows (seeds) per BER.

Stages: robust decode, paper SCA, aware SCA (no fill), aware SCA + thumbnail fill, and the full
pipeline (aware SCA + fill + GCA). Identical images (infinite PSNR) count as 100 dB."""
from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

import fsspec

from acir_core.errors import BadInput
from acir_core.jpeg.decoder import decode
from acir_core.metrics import evaluate as measure
from acir_core.sca.compensate import compensate, decode_for
from acir_engine.samples import SCORED_IMAGES, Config, corrupt_stage, expand, prepare
from pipelines.dataset import iter_rows
from training.data.example import example_from_bytes
from training.infer import TileOptions, run_tiles

STAGES = tuple(s for s in SCORED_IMAGES if s != "pillow") + ("gca",)  # what evaluation scores
SCALES = (4, 2, 1)  # 512x256, 1024x512, 2048x1024 for the paper's 2048x1024 photos
COLUMNS = ["sample_id", "ber", "clean_jpeg", "corrupted_jpeg", "thumbnail_jpeg", "split"]


@dataclass(kw_only=True)
class EvalReport:
    """``table[ber][stage][scale] = (mean Y-PSNR, mean Y-SSIM)``; ``rows`` per-sample numbers."""

    table: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)  # mean per-image time of each stage
    rows: list = field(default_factory=list)
    unchanged_outside_mask: bool = True

    def to_json(self) -> str:
        return json.dumps({"table": self.table, "counts": self.counts, "seconds": self.seconds,
                           "unchanged_outside_mask": self.unchanged_outside_mask, "rows": self.rows}, indent=1)

    def markdown(self) -> str:
        lines = []
        for ber, stages in self.table.items():
            lines.append(f"BER {ber} ({self.counts[ber]} samples), Y-PSNR dB / SSIM")
            lines.append("")
            lines.append("| stage | " + " | ".join(next(iter(stages.values()))) + " |")
            lines.append("|---|---|---|---|")
            for stage, by_scale in stages.items():
                cells = [f"{p:.2f} / {s:.4f}" for p, s in by_scale.values()]
                lines.append(f"| {stage} | " + " | ".join(cells) + " |")
            lines.append("")
        lines.append("mean seconds per image: " + ", ".join(f"{k} {v:.3f}" for k, v in self.seconds.items()))
        return "\n".join(lines)


def _cap(v: float) -> float:
    return 100.0 if math.isinf(v) else v


def _rows(path: str, split: str | None, ber: float | None, bers: tuple[float, ...], seeds: int,
          size: tuple[int, int] = (2048, 1024)):
    fs, _, paths = fsspec.get_fs_token_paths(path)
    if len(paths) == 1 and fs.isdir(paths[0]):
        yield from iter_rows(path, columns=COLUMNS, split=split, ber=ber)
        return
    if not paths:
        raise BadInput("no dataset folder or photos match", source=path)
    cfg = Config(width=size[0], height=size[1], bers=tuple(bers), variants=seeds)
    for p in sorted(paths):
        uri = p if "://" not in path else fs.unstrip_protocol(p)
        prepared = prepare(uri, fs.cat_file(p), cfg)
        for sample in expand(prepared, cfg):
            s = corrupt_stage(sample, cfg)
            yield {"sample_id": s.sample_id, "ber": s.ber, "clean_jpeg": prepared.jpeg,
                   "corrupted_jpeg": s.corrupted, "thumbnail_jpeg": b"", "split": prepared.split}


def evaluate_dataset(path: str, model=None, device: str = "cpu", split: str | None = None,
                     ber: float | None = None, limit: int = 0, tiles: TileOptions | None = None,
                     progress: bool = True, bers: tuple[float, ...] = (1e-5,), seeds: int = 3,
                     size: tuple[int, int] = (2048, 1024)) -> EvalReport:
    """``path``: a dataset folder from ``acir generate``, or a glob of clean photos that are
    prepared and corrupted here exactly as the pipeline would (``bers`` x ``seeds`` samples each).
    ``model``: a GCANet (``training.checkpoint.load_model``); None skips the GCA stage."""
    rows = list(_rows(path, split, ber, bers, seeds, size))
    if limit:
        rows = rows[:limit]
    per = defaultdict(lambda: defaultdict(list))
    times = defaultdict(list)
    report = EvalReport()
    scale_names: list[str] = []
    it = rows
    if progress:
        from tqdm import tqdm

        it = tqdm(rows, unit="img", dynamic_ncols=True)
    for row in it:
        name = row["sample_id"]
        t = time.perf_counter()
        ex = example_from_bytes(row["corrupted_jpeg"], row["clean_jpeg"], name)
        if ex is None:  # no embedded thumbnail: use the stored one
            from pipelines.dataset import decode_image

            thumb = decode_image(row["thumbnail_jpeg"])
            if thumb is None:
                raise BadInput("sample has no thumbnail (embedded or stored); GCA evaluation needs one", source=name)
            ex = example_from_bytes(row["corrupted_jpeg"], row["clean_jpeg"], name, thumb)
        times["aware_fill"].append(time.perf_counter() - t)
        outputs = {"robust": decode(row["corrupted_jpeg"], "robust", source=name).rgb}
        t = time.perf_counter()
        outputs["paper_sca"] = compensate(decode_for(row["corrupted_jpeg"], "paper", name), None, method="paper").rgb
        times["paper_sca"].append(time.perf_counter() - t)
        outputs["aware_sca"] = ex.aware
        outputs["aware_fill"] = ex.sca
        if model is not None:
            t = time.perf_counter()
            net_in = ex if model.config.sca_input == "aware" else replace(ex, sca=outputs["paper_sca"])
            outputs["gca"] = run_tiles(model, net_in.sca, net_in.thumb_up, net_in.mask, device=device, options=tiles)
            times["gca"].append(time.perf_counter() - t)
            if model.config.use_mask and not np.array_equal(outputs["gca"][~ex.mask], ex.sca[~ex.mask]):
                report.unchanged_outside_mask = False
        key = f"{row['ber']:g}"
        rec = {"sample_id": name, "ber": row["ber"], "filled_fraction": float(ex.mask.mean())}
        for stage, img in outputs.items():
            q = measure(img, ex.clean, SCALES)
            scale_names = scale_names or [f"{x.width}x{x.height}" for x in q]
            per[key][stage].append([(_cap(x.y_psnr), x.y_ssim) for x in q])
            rec[stage] = {f"{x.width}x{x.height}": [_cap(x.y_psnr), x.y_ssim] for x in q}
        report.rows.append(rec)
    for key in sorted(per, key=float):
        report.counts[key] = len(per[key]["robust"])
        report.table[key] = {}
        for stage in STAGES:
            if stage not in per[key]:
                continue
            arr = np.asarray(per[key][stage])  # samples × scales × (psnr, ssim)
            report.table[key][stage] = {n: (float(arr[:, i, 0].mean()), float(arr[:, i, 1].mean()))
                                        for i, n in enumerate(scale_names)}
    report.seconds = {k: float(np.mean(v)) for k, v in times.items()}
    return report
