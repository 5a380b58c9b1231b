"""``acir train`` and ``acir evaluate``: the GCA network (needs the ``train`` extra: torch)."""
from __future__ import annotations

import argparse
import sys

from acir_core.errors import InvalidParameter
from acir_engine.outputs import write_atomic


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InvalidParameter("this command needs PyTorch: pip install 'acir[train]'") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the GCA network from a TOML config (resumes from its out folder)",
                       description="Trains the coarse-guided pix2pix + Laplacian pyramid fusion network on crops "
                                   "around the damage. Writes last.pt (resumable), weights-best.pt / weights-last.pt "
                                   "(bf16, loadable with --checkpoint) and log.csv into [train] out.")
    p.add_argument("--config", required=True, metavar="CONFIG.toml")
    p.add_argument("--steps", type=int, help="override [train] steps")
    p.add_argument("--max-minutes", type=float, help="override [train] max_minutes (stop and checkpoint)")
    p.add_argument("--out", help="override [train] out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_train)

    e = sub.add_parser("evaluate", help="Table-1 protocol: mean Y-PSNR/SSIM at three scales per stage and BER",
                       description="Restores every row of a dataset made by `acir generate` with each stage (robust "
                                   "decode, paper SCA, aware SCA, aware SCA + fill, full pipeline with GCA) and prints "
                                   "mean Y-PSNR/SSIM at 1/4, 1/2 and full size.")
    e.add_argument("--checkpoint", default="default", metavar="CKPT",
                   help="weights or training checkpoint ('default': the packaged gca-v2.pt; 'none': skip GCA)")
    e.add_argument("--data", required=True, metavar="PATH",
                   help="dataset folder from `acir generate`, or a glob of clean photos to prepare and corrupt here "
                        "the pipeline's way (local, gs://, memory://)")
    e.add_argument("--bers", type=float, nargs="+", default=[1e-5], help="with photos: BERs to corrupt at (1e-5)")
    e.add_argument("--seeds", type=int, default=3, help="with photos: seeds per photo and BER (3)")
    e.add_argument("--size", default="2048x1024", help="with photos: frame them to WxH first (2048x1024)")
    e.add_argument("--split", help="only rows of this split")
    e.add_argument("--ber", type=float, help="only rows of this BER")
    e.add_argument("--limit", type=int, default=0, help="at most this many rows")
    e.add_argument("--device", default="cpu", help="cpu or cuda")
    e.add_argument("--json", metavar="FILE", help="also write the table and per-sample numbers as JSON")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(run=run_evaluate)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InvalidParameter(f"--size must look like 2048x1024, got {text!r}") from None
    return w, h


def run_train(args: argparse.Namespace) -> int:
    _need_torch()
    from dataclasses import replace

    from training.config import load_config
    from training.train import train

    cfg = load_config(args.config)
    over = {k: v for k, v in (("steps", args.steps), ("max_minutes", args.max_minutes), ("out", args.out))
            if v is not None}
    if over:
        cfg = replace(cfg, train=replace(cfg.train, **over))
    r = train(cfg, progress=not args.no_progress and sys.stderr.isatty())
    print(f"trained to step {r.steps} in {r.seconds:.0f} s ({r.samples_per_second:.1f} crops/s), last loss "
          f"{r.last_loss:.4f}, validation PSNR in the mask {r.val_psnr_masked:.2f} dB; checkpoint {r.checkpoint}, "
          f"weights {r.weights} ({r.weights_bytes / 2**20:.1f} MiB)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    model = None
    if args.checkpoint != "none":
        _need_torch()
        from training.checkpoint import load_model

        model, _ = load_model(None if args.checkpoint == "default" else args.checkpoint, args.device)
    from training.evaluate import evaluate_dataset

    report = evaluate_dataset(args.data, model, args.device, args.split, args.ber, args.limit,
                              progress=not args.no_progress and sys.stderr.isatty(), bers=tuple(args.bers),
                              seeds=args.seeds, size=_size(args.size))
    print(report.markdown())
    if model is not None and model.config.use_mask:
        print("pixels outside what the fill took from the thumbnail unchanged by GCA: "
              + ("yes" if report.unchanged_outside_mask else "NO"))
    if args.json:
        write_atomic(args.json, report.to_json().encode())
    return 0
