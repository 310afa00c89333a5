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


def _cmd_demo(args: argparse.Namespace) -> int:
    from pyengine.demo import main

    return main(args)


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
    p = sub.add_parser("demo", help="train a small ResNet on scikit-learn's digits, record every step, analyse the run")
    p.add_argument("--out", default="pyengine-demo", help="output directory (default: %(default)s)")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps, all recorded (default: %(default)s)")
    p.add_argument("--width", type=int, default=16, help="channels of the first stage (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="minibatch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate of plain SGD (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of init, split and batches (default: %(default)s)")
    p.add_argument("--no-shortcut", action="store_true", help="remove the shortcut connections (Chen et al.'s noshort)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"pyengine {args.command}: error: {exc}", file=sys.stderr)
        return 1
