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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyengine", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pyengine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("backends", help="list the compute backends available here and why others are not")
    p.set_defaults(func=_cmd_backends)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"pyengine {args.command}: error: {exc}", file=sys.stderr)
        return 1
