"""The ``pyengine`` command line: ``pyengine {info,bench,...} --help``.

Exit codes: 0 success, 1 the input was rejected (bad file or arguments; the message says
why), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import sys

from pyengine import __version__


def _cmd_backends(args: argparse.Namespace) -> int:
    from pyengine.dispatch import backends

    for status in backends().values():
        print(status)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from pyengine.store import describe

    print(describe(args.file, check_values=args.check_values))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyengine", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pyengine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("backends", help="list the compute backends available here and why others are not")
    p.set_defaults(func=_cmd_backends)
    p = sub.add_parser("info", help="summarize a trajectory file and validate it (exit 1 if invalid)")
    p.add_argument("file", help="trajectory file (HDF5)")
    p.add_argument("--check-values", action="store_true", help="also scan every weight for NaN/Inf (reads the whole file)")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"pyengine {args.command}: error: {exc}", file=sys.stderr)
        return 1
