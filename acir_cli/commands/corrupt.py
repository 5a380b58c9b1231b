"""``acir corrupt``: simulate a failing encrypted disk on JPEG files and report the damage."""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from tqdm import tqdm

from acir_core.bitflip import REGIONS, Corruption, check_ber, corrupt
from acir_core.damage import Damaged, apply_damage, parse_damage
from acir_core.errors import AcirError, InvalidParameter
from acir_core.fde import FDE_MODES, SECTOR_SIZES, SectorCipher
from acir_core.imagefile import load_rgb
from acir_core.metrics import evaluate
from acir_engine.inputs import read_bytes, read_key_file
from acir_engine.outputs import write_atomic

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "corrupt",
        help="encrypt, flip ciphertext bits, decrypt: what a failing encrypted phone/SSD does to a JPEG",
        description="Write each input's corrupted copy (same file name) and a JSON sidecar into --out, "
                    "and print how badly a standard decoder (Pillow/libjpeg-turbo) now shows it.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="JPEG files to corrupt (never modified)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--ber", type=float, default=1e-5, help="bit error rate per ciphertext bit, in [0, 0.5] (1e-5)")
    p.add_argument("--fde", choices=FDE_MODES, default="aes-cbc-essiv:sha256", help="sector encryption mode")
    p.add_argument("--seed", type=int, default=0, help="random seed: flips, lost sectors and derived key (0)")
    p.add_argument("--region", choices=REGIONS, default="scan",
                   help="scan: only sectors after the JPEG header (the paper's setting); all: anywhere")
    p.add_argument("--sector-size", type=int, choices=SECTOR_SIZES, default=512, help="bytes per sector (512)")
    p.add_argument("--first-sector", type=int, default=0, help="IV sector number of the file's first sector (0)")
    p.add_argument("--iv-large-sectors", action="store_true",
                   help="count IV sector numbers in whole sectors, not 512-byte units (dm-crypt option)")
    p.add_argument("--sector-loss", type=float, default=0.0, metavar="P",
                   help="probability that a sector is lost (replaced by random bytes) (0)")
    p.add_argument("--key-file", metavar="FILE", help="encryption key, raw bytes or hex (default: derived from seed)")
    p.add_argument("--damage", action="append", default=[], metavar="KIND[:SIZE][@AT]",
                   help="damage beyond bit flips, applied after them in the order given (repeatable): "
                        "zero:16k, lose:4k, repeat:16k (sector runs in the scan, @0.6 places one), crlf, "
                        "cut:0.5, head:8 (first sectors zeroed), headless:8 (first sectors removed); "
                        "--ber 0 for the damage alone")
    p.add_argument("--no-metrics", action="store_true", help="skip decoding and quality measurement")
    p.add_argument("--json", action="store_true", help="print one JSON record per input instead of text")
    p.set_defaults(run=run)


def _check_args(args: argparse.Namespace) -> bytes | None:
    check_ber(args.ber)
    args.damage_specs = [parse_damage(text) for text in args.damage]
    if not 0.0 <= args.sector_loss <= 1.0:
        raise InvalidParameter(f"--sector-loss must be in [0, 1], got {args.sector_loss}")
    if args.seed < 0:
        raise InvalidParameter(f"--seed must be >= 0, got {args.seed}")
    key = None
    if args.key_file:
        try:
            key = read_key_file(args.key_file)
        except AcirError as exc:
            raise InvalidParameter(exc.reason, source=exc.source) from None
        SectorCipher(args.fde, key, args.sector_size, args.first_sector)  # validates the key length now
    return key


def _damage_report(clean: bytes, damaged: bytes, source: str) -> dict:
    ref = load_rgb(clean, source)
    try:
        got = load_rgb(damaged, source)
    except AcirError as exc:  # the damage took what a decoder needs (the header, the start of the scan)
        return {"standard_decoder_complete": False, "standard_decoder_problem": exc.reason}
    report = {"standard_decoder_complete": got.complete, "standard_decoder_problem": got.problem}
    if got.rgb.shape == ref.rgb.shape:
        q = evaluate(got.rgb, ref.rgb)[0]
        report.update(y_psnr=q.y_psnr, y_ssim=q.y_ssim, rgb_psnr=q.rgb_psnr)
    return report


def _fmt_db(v: float | None) -> str:
    return "n/a" if v is None else ("inf (identical)" if math.isinf(v) else f"{v:.2f} dB")


def _print_text(src: str, dst: Path, c: Corruption, damage: Damaged | None, report: dict | None) -> None:
    p = c.params
    print(f"{src} -> {dst}")
    print(f"  fault model  {p.fde}, {p.sector_size}-byte sectors, BER {p.ber:g}, region {p.region}, "
          f"seed {p.seed}, key {'given' if p.key_source == 'given' else 'derived from seed'}")
    print(f"  ciphertext   {c.region_bits:,} bits exposed, {c.n_flips} flipped, {c.lost_sectors.size} sectors lost")
    print(f"  plaintext    {c.changed_bytes.size:,} bytes changed in {len(c.changed_runs)} runs")
    if damage is not None:
        done = ", ".join(f"{e.kind} {e.length:,} B at {e.offset:,}" for e in damage.events)
        print(f"  damage       {done} ({len(damage.data):,} bytes now)")
    if report is not None:
        state = ("raises no error (libjpeg only warns; the damage is silent)" if report["standard_decoder_complete"]
                 else f"stops with an error ({report['standard_decoder_problem']})")
        print(f"  standard decoder (Pillow/libjpeg-turbo) {state}")
        if "y_psnr" in report:
            print(f"  vs. clean    Y-PSNR {_fmt_db(report['y_psnr'])}, Y-SSIM {report['y_ssim']:.4f}")


def run(args: argparse.Namespace) -> int:
    key = _check_args(args)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidParameter("--out exists and is not a directory", source=args.out)
    failures: list[str] = []
    show_bar = len(args.inputs) > 1 and sys.stderr.isatty() and not args.json
    for src in tqdm(args.inputs, desc="corrupt", unit="file", disable=not show_bar):
        dst = out_dir / Path(src).name
        try:
            data = read_bytes(src)
            c = corrupt(data, fde=args.fde, key=key, ber=args.ber,
                        region=args.region, seed=args.seed, sector_size=args.sector_size,
                        first_sector=args.first_sector, iv_large_sectors=args.iv_large_sectors,
                        sector_loss=args.sector_loss, source=src)
            damage = apply_damage(c.data, args.damage_specs, seed=args.seed, sector_size=args.sector_size,
                                  source=src) if args.damage_specs else None
            out = damage.data if damage is not None else c.data
            report = None if args.no_metrics else _damage_report(data, out, src)
            record = {"input": src, "output": str(dst), **c.to_record(), "damage": report,
                      "faults": damage.to_record() if damage is not None else None}
            write_atomic(dst, out, protect=tuple(args.inputs))
            write_atomic(dst.with_name(dst.name + ".json"), json.dumps(record, indent=1).encode(),
                         protect=tuple(args.inputs))
        except AcirError as exc:
            failures.append(str(exc))
            print(f"acir: error: {exc}", file=sys.stderr)
            continue
        if args.json:
            summary = {k: v for k, v in record.items() if k not in ("flip_bits", "changed_runs")}
            print(json.dumps(summary))
        else:
            _print_text(src, dst, c, damage, report)
    if failures:
        print(f"acir: {len(failures)} of {len(args.inputs)} inputs failed", file=sys.stderr)
        return 1
    return 0
