"""``acir``: parse the command line, set up logging, run one subcommand, map failures to exit codes.

Exit codes: 0 everything succeeded; 1 at least one record (input file) failed, the others were
still processed; 2 usage error (bad option value, wrong key length, unknown command).
"""
from __future__ import annotations

import argparse
import logging
import sys

from acir_core import __version__
from acir_core.jit import announce_compiles
from acir_core.process import tune_process
from acir_core.errors import AcirError, InvalidParameter
from acir_cli.commands import corrupt, decode, fde, generate, metrics, restore, sca, thumbnail, train, warmup

EXIT_RECORD_FAILED, EXIT_USAGE = 1, 2
COMMANDS = (restore, corrupt, decode, sca, metrics, thumbnail, fde, generate, train, warmup)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit 2, as argparse does, plus a hint
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="acir",
        description="Bring bit-corrupted JPEG photos back: simulate storage faults, measure damage, restore.",
        epilog="Exit codes: 0 ok, 1 some input failed (others still processed), 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"acir {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "command", None) != "generate":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args = extra + list(args.args)  # the pipeline parses its own and Beam's options
    _setup_logging(args.verbose)
    tune_process()  # one BLAS thread, photo-sized buffers kept in the heap (acir_core.process)
    announce_compiles(sys.stderr)  # says once when kernels compile (first use on this machine)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except InvalidParameter as exc:
        print(f"acir: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AcirError as exc:
        print(f"acir: error: {exc}", file=sys.stderr)
        return EXIT_RECORD_FAILED
    except KeyboardInterrupt:
        print("acir: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
