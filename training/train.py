"""The training loop: Adam (paper: lr 2e-4, β 0.6/0.999), bf16 autocast on CUDA, checkpoint and
resume, a CSV log (and TensorBoard scalars when tensorboard is installed), a wall-time budget so
a run fits a 10-minute GPU slot, deterministic seeds."""
from __future__ import annotations

import csv
import logging
import math
import os
import time
from dataclasses import dataclass

import fsspec
import numpy as np
import torch
from torch.utils.data import DataLoader

from acir_core.errors import BadInput, InvalidParameter
from acir_engine.samples import Config
from training.archs.gca import GCANet, count_parameters
from training.archs.pix2pix import MultiscaleDiscriminator
from training.checkpoint import export_weights, load_dict, load_model, save_atomic
from training.config import RunConfig, style_config
from training.data.cache import CachedCrops, build_cache
from training.data.crops import CropSampler
from training.data.onthefly import OnTheFlyCrops
from training.data.shards import ShardCrops, collate_crops
from training.losses.objective import Objective

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    steps: int
    seconds: float
    samples_per_second: float
    last_loss: float
    val_psnr_masked: float
    checkpoint: str
    weights: str
    weights_bytes: int


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def build_dataset(cfg: RunConfig):
    d = cfg.data
    if d.cache and os.path.exists(d.cache):
        return CachedCrops(d.cache, cfg.train.seed)
    source = _source_dataset(cfg)
    if d.cache:
        n = build_cache(source, d.cache, d.cache_passes, d.workers)
        log.info("built crop cache %s: %d crops", d.cache, n)
        return CachedCrops(d.cache, cfg.train.seed)
    return source


def _source_dataset(cfg: RunConfig):
    d = cfg.data
    sampler = CropSampler(size=d.crop, per_image=d.crops_per_image, damage_fraction=d.damage_fraction)
    if d.source == "shards":
        return ShardCrops(d.path, d.split, sampler, cfg.train.seed, sca_input=cfg.model.sca_input)
    fs, _, paths = fsspec.get_fs_token_paths(d.path)
    uris = [p if "://" in d.path else os.path.abspath(p) for p in sorted(paths)]
    if not uris:
        raise BadInput("no photos match", source=d.path)
    if "://" in d.path:
        uris = [fs.unstrip_protocol(p) for p in uris]
    try:
        width, height = (int(v) for v in d.size.lower().split("x"))
    except ValueError:
        raise InvalidParameter(f"[data] size must be WxH, got {d.size!r}") from None
    styles = tuple(style_config(t) for t in d.styles)
    return OnTheFlyCrops(uris, d.bers, sampler, cfg.train.seed, Config(width=width, height=height), d.ber_range,
                         styles)


def validation_batches(cfg: RunConfig) -> list[dict]:
    """Fixed crops (seeded) from ``[data] val_path``; an empty list when none is configured."""
    d = cfg.data
    if not d.val_path:
        return []
    ds = ShardCrops(d.val_path, None, CropSampler(size=d.crop, per_image=d.crops_per_image, damage_fraction=1.0), seed=12345, min_damage=1e-6)
    n = min(d.val_images, len(ds))
    return [collate_crops([ds[i]]) for i in np.linspace(0, len(ds) - 1, n).astype(int)] if n else []


def masked_psnr(out: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (RGB, 8-bit scale) over the damaged pixels only: what the network changes."""
    se = (((out.float() - clean) * 127.5) ** 2 * mask).sum()
    n = mask.sum() * 3
    return float(10 * torch.log10(255.0 ** 2 / (se / n.clamp_min(1)))) if n > 0 else float("nan")


def _autocast(device: str, enabled: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled and device == "cuda")


def train(cfg: RunConfig, progress: bool = True) -> TrainResult:
    t_cfg = cfg.train
    device = pick_device(t_cfg.device)
    torch.manual_seed(t_cfg.seed)
    np.random.seed(t_cfg.seed)
    model = GCANet(cfg.model).to(device)
    disc = MultiscaleDiscriminator(cfg.model.in_channels + 3).to(device) if cfg.loss.gan > 0 else None
    vgg = None
    if t_cfg.vgg_weights:
        from training.losses.perceptual import VGGLoss

        vgg = VGGLoss(t_cfg.vgg_weights).to(device)
    objective = Objective(cfg.loss, disc, vgg)
    betas = (t_cfg.beta1, t_cfg.beta2)
    opt_g = torch.optim.Adam(model.parameters(), lr=t_cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=t_cfg.lr, betas=betas) if disc is not None else None
    ckpt_path = os.path.join(t_cfg.out, "last.pt")
    step, epoch, best = 0, 0, -math.inf
    if os.path.exists(ckpt_path):
        state = load_dict(ckpt_path)
        model.load_state_dict(state["model"])
        opt_g.load_state_dict(state["opt_g"])
        if disc is not None and "disc" in state:
            disc.load_state_dict(state["disc"])
            opt_d.load_state_dict(state["opt_d"])
        step, epoch, best = int(state["step"]), int(state["epoch"]), float(state.get("best", -math.inf))
        log.info("resumed from %s at step %d", ckpt_path, step)
    elif t_cfg.init_weights:
        start, _ = load_model(t_cfg.init_weights)
        if start.config != model.config:
            raise InvalidParameter(f"[train] init_weights: a network of another shape ({start.config}) than [model] "
                                   f"({model.config})")
        model.load_state_dict(start.state_dict())
        log.info("starting from the weights of %s", t_cfg.init_weights)
    log.info("GCANet %s: %d parameters on %s", cfg.model, count_parameters(model), device)

    dataset = build_dataset(cfg)
    val = validation_batches(cfg)
    os.makedirs(t_cfg.out, exist_ok=True)
    log_path = os.path.join(t_cfg.out, "log.csv")
    new_log = not os.path.exists(log_path)
    log_file = open(log_path, "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(["step", "epoch", "seconds", "samples_per_s", "loss", "charbonnier", "edge", "gan",
                         "feature_matching", "vgg", "d_loss", "val_psnr_masked"])
    tb = None
    try:
        from torch.utils.tensorboard import SummaryWriter

        tb = SummaryWriter(os.path.join(t_cfg.out, "tb"))
    except Exception:  # tensorboard is optional: the CSV log is always written
        tb = None

    def evaluate_val() -> float:
        if not val:
            return float("nan")
        model.eval()
        vals = []
        with torch.no_grad(), _autocast(device, t_cfg.bf16):
            for b in val:
                b = {k: v.to(device) for k, v in b.items()}
                r = model(b["sca"], b["thumb"], b["mask"] if cfg.model.use_mask else None)
                vals.append(masked_psnr(r["out"], b["clean"], b["mask"]))
        model.train()
        return float(np.nanmean(vals))

    def checkpoint(val_psnr: float) -> None:
        nonlocal best
        state = {"model": model.state_dict(), "opt_g": opt_g.state_dict(), "step": step, "epoch": epoch,
                 "best": max(best, val_psnr) if not math.isnan(val_psnr) else best, "config": cfg.to_dict()}
        if disc is not None:
            state.update(disc=disc.state_dict(), opt_d=opt_d.state_dict())
        save_atomic(state, ckpt_path)
        meta = {"step": step, "val_psnr_masked": val_psnr, "config": cfg.to_dict()}
        export_weights(model, os.path.join(t_cfg.out, "weights-last.pt"), meta)
        if math.isnan(val_psnr) or val_psnr > best:
            best = val_psnr if not math.isnan(val_psnr) else best
            export_weights(model, os.path.join(t_cfg.out, "weights-best.pt"), meta)

    start = time.perf_counter()
    seen = 0
    last_loss = float("nan")
    val_psnr = float("nan")
    budget = t_cfg.max_minutes * 60 if t_cfg.max_minutes > 0 else math.inf
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=t_cfg.steps, initial=step, unit="step", dynamic_ncols=True)
    model.train()
    stop = step >= t_cfg.steps
    while not stop:
        dataset.set_epoch(epoch)
        g = torch.Generator().manual_seed(t_cfg.seed * 1000 + epoch)
        # a cached item is one crop: keep the crops per step what images_per_batch x crops_per_image say
        per_step = cfg.data.images_per_batch * (cfg.data.crops_per_image if isinstance(dataset, CachedCrops) else 1)
        if len(dataset) < per_step:  # drop_last would give no batch, and the loop no end
            raise InvalidParameter(f"[data] gives {len(dataset)} items, fewer than one step takes ({per_step}: "
                                   f"images_per_batch{' x crops_per_image' if isinstance(dataset, CachedCrops) else ''})")
        loader = DataLoader(dataset, batch_size=per_step, shuffle=True, generator=g,
                            num_workers=cfg.data.workers, collate_fn=collate_crops, drop_last=True,
                            persistent_workers=False, pin_memory=device == "cuda")
        for batch in loader:
            b = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            mask = b["mask"] if cfg.model.use_mask else None
            cond = torch.cat([b["sca"], b["thumb"]] + ([b["mask"]] if cfg.model.use_mask else []), 1)
            with _autocast(device, t_cfg.bf16):
                result = model(b["sca"], b["thumb"], mask)
                # with the mask pass-through only damaged pixels can change: the loss looks there
                loss, parts = objective.generator(cond, result, b["clean"], mask)
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            d_loss = float("nan")
            if disc is not None:
                with _autocast(device, t_cfg.bf16):
                    dl = objective.discriminator(cond, result["out"], b["clean"])
                opt_d.zero_grad(set_to_none=True)
                dl.backward()
                opt_d.step()
                d_loss = float(dl.detach())
            step += 1
            seen += b["sca"].shape[0]
            last_loss = float(loss.detach())
            elapsed = time.perf_counter() - start
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.3f}")
            at_ckpt = step % t_cfg.checkpoint_every == 0 or step >= t_cfg.steps or elapsed > budget
            if at_ckpt:
                val_psnr = evaluate_val()
            if step % t_cfg.log_every == 0 or at_ckpt:
                row = [step, epoch, round(elapsed, 2), round(seen / elapsed, 2), last_loss] + \
                      [parts.get(k, float("nan")) for k in ("charbonnier", "edge", "gan", "feature_matching", "vgg")] + \
                      [d_loss, val_psnr if at_ckpt else float("nan")]
                writer.writerow(row)
                log_file.flush()
                if tb is not None:
                    tb.add_scalar("loss/total", last_loss, step)
                    for k, v in parts.items():
                        tb.add_scalar(f"loss/{k}", v, step)
                    if at_ckpt and not math.isnan(val_psnr):
                        tb.add_scalar("val/psnr_masked", val_psnr, step)
            if at_ckpt:
                checkpoint(val_psnr)
            if step >= t_cfg.steps or elapsed > budget:
                stop = True
                break
        epoch += 1
    if bar is not None:
        bar.close()
    log_file.close()
    if tb is not None:
        tb.close()
    seconds = time.perf_counter() - start
    weights = os.path.join(t_cfg.out, "weights-best.pt")
    return TrainResult(steps=step, seconds=seconds, samples_per_second=seen / max(seconds, 1e-9), last_loss=last_loss,
                       val_psnr_masked=val_psnr, checkpoint=ckpt_path, weights=weights,
                       weights_bytes=os.path.getsize(weights) if os.path.exists(weights) else 0)
