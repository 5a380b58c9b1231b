"""``acir generate`` and ``acir dataset info``: the Beam dataset pipeline and its reader."""
from __future__ import annotations

import argparse
import json

from acir_core.errors import AcirError


def _need_beam():
    try:
        from pipelines import dataset, generate  # noqa: F401
    except ImportError as exc:
        raise AcirError(f"the dataset pipeline needs the 'beam' extra: pip install 'acir[beam]' ({exc})") from None
    return generate, dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "generate",
        help="Beam pipeline: clean photos -> Parquet shards of corrupted/decoded/compensated samples",
        description="All options of pipelines.generate (run 'acir generate --help-pipeline' for them) plus any "
                    "Apache Beam option (--runner, --direct_num_workers, --dask_client_address, --project, ...).",
        add_help=False,
    )
    g.add_argument("--help-pipeline", action="store_true", help="show the pipeline's own options")
    g.add_argument("args", nargs=argparse.REMAINDER)
    g.set_defaults(run=run_generate)
    d = sub.add_parser("dataset", help="inspect a generated dataset")
    actions = d.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(d))
    i = actions.add_parser("info", help="counts, BER histogram, mean Y-PSNR per stage, size; optional previews")
    i.add_argument("path", metavar="PATH")
    i.add_argument("--previews", metavar="DIR", help="write a few side-by-side preview PNGs here")
    i.add_argument("--json", action="store_true")
    i.set_defaults(run=run_info)


def run_generate(args: argparse.Namespace) -> int:
    generate, _ = _need_beam()
    if args.help_pipeline or not args.args:
        generate.build_parser().print_help()
        return 0 if args.help_pipeline else 2
    manifest = generate.run(args.args)
    c = manifest["counts"]
    photos = c.get("prepare", "?")
    print(f"{manifest['output']}: {c.get('rows', 0)} rows from {photos} photos, "
          f"{c.get('dead_letters', 0)} dead letters, {manifest['seconds']} s ({manifest['runner']})")
    per_stage = {k: v for k, v in c.items() if k not in ("rows", "dead_letters")}
    if per_stage:
        print("  records per stage: " + ", ".join(f"{k} {v}" for k, v in sorted(per_stage.items())))
    for name, d in manifest.get("distributions", {}).items():
        scale = 1e-6 if name.endswith("_ppm") else 1.0
        label = name.replace("_ppm", " fraction")
        print(f"  {label}: mean {d['mean'] * scale:.4g}, min {d['min'] * scale:.4g}, max {d['max'] * scale:.4g}")
    return 1 if c.get("dead_letters", 0) else 0


def run_info(args: argparse.Namespace) -> int:
    _, dataset = _need_beam()
    inf = dataset.info(args.path)
    if args.previews:
        dataset.write_previews(args.path, args.previews)
    if args.json:
        print(json.dumps(inf.as_dict(), default=str))
        return 0
    print(f"{args.path}: {inf.rows} rows, {inf.images} photos, {inf.bytes_on_disk / 2**20:.1f} MiB, "
          f"{inf.dead_letters} dead letters")
    print(f"  splits {inf.splits}; rows per BER {inf.bers}; mean damaged fraction {100 * inf.damaged_fraction:.2f}%")
    for ber, stages in inf.mean_y_psnr.items():
        print(f"  BER {ber}: " + ", ".join(f"{s} {v:.2f} dB" for s, v in stages.items()))
    return 0
