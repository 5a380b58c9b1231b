"""``acir fde encrypt|decrypt``: sector-encrypt a file as a disk would, or decrypt a raw image."""
from __future__ import annotations

import argparse
from pathlib import Path

from acir_core.errors import AcirError, InvalidParameter
from acir_core.fde import FDE_MODES, SECTOR_SIZES, SectorCipher
from acir_engine.inputs import read_bytes, read_key_file
from acir_engine.outputs import write_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fde", help="sector encryption (dm-crypt/Android FDE/LUKS modes) of whole files")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(p))
    for name, helptext in (("encrypt", "encrypt a file into whole sectors (last one zero-padded)"),
                           ("decrypt", "decrypt whole sectors (e.g. a carved raw image) back to a file")):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("input", metavar="IN")
        a.add_argument("--out", required=True, metavar="FILE")
        a.add_argument("--fde", choices=FDE_MODES, default="aes-cbc-essiv:sha256")
        a.add_argument("--key-file", metavar="FILE", help="key as raw bytes or hex text (not needed for 'none')")
        a.add_argument("--sector-size", type=int, choices=SECTOR_SIZES, default=512)
        a.add_argument("--first-sector", type=int, default=0, help="IV sector number of the first sector (0)")
        a.add_argument("--iv-large-sectors", action="store_true", help="IV counts whole sectors, not 512-byte units")
        if name == "decrypt":
            a.add_argument("--length", type=int, help="keep only the first N bytes (the file's true size)")
        a.set_defaults(run=run, action=name)


def run(args: argparse.Namespace) -> int:
    if args.fde != "none" and not args.key_file:
        raise InvalidParameter(f"--key-file is required for --fde {args.fde}")
    try:
        key = read_key_file(args.key_file) if args.key_file else b""
    except AcirError as exc:
        raise InvalidParameter(exc.reason, source=exc.source) from None
    cipher = SectorCipher(args.fde, key, args.sector_size, args.first_sector, args.iv_large_sectors)
    data = read_bytes(args.input)
    if args.action == "encrypt":
        out = cipher.encrypt(data)
    else:
        try:
            out = cipher.decrypt(data, getattr(args, "length", None))
        except InvalidParameter as exc:  # a wrong-sized input is this record's problem, not a usage error
            raise AcirError(exc.reason, source=args.input) from None
    write_atomic(Path(args.out), out, protect=(args.input,))
    print(f"{args.input}: {args.action}ed {len(data):,} -> {len(out):,} bytes ({args.fde}, "
          f"{args.sector_size}-byte sectors) -> {args.out}")
    return 0
