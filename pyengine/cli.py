"""The ``pyengine`` command line: ``pyengine {info,analyze,report,compare,import,demo,bench,backends} --help``.

Exit codes: 0 success, 1 the input was rejected (bad file or arguments; the message says
why), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from pyengine._version import __version__

SELF_CONTAINED_HELP = "also write report-self-contained.html: the report with its figures embedded, one file to mail"


def _cmd_backends(args: argparse.Namespace) -> int:
    from pyengine.dispatch import backends

    for status in backends().values():
        print(status)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from pyengine.store import describe, verify

    print(describe(args.file, check_values=args.check_values))
    if not args.verify:
        return 0
    report = verify(args.file)
    print(report, file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from pyengine.demo import main

    return main(args)


def _window(text: str) -> int | str | None:
    if text in ("auto", "all"):
        return None if text == "all" else "auto"
    if not text.isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps >= 2, 'auto' or 'all', got {text!r}")
    return int(text)


def _lags(text: str):
    if text == "all":
        return None
    parts = text.split(",") if "," in text else [text]
    if not all(p.strip().isdigit() and int(p) >= 1 for p in parts if p.strip()):
        raise argparse.ArgumentTypeError(f"expected a count of log-spaced lags >= 1, a comma list of steps >= 1, "
                                         f"or 'all', got {text!r}")
    values = [int(p) for p in parts if p.strip()]
    return values if "," in text else values[0]


def _threshold(text: str) -> float | str:
    if text == "data":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive RMSE threshold or 'data', got {text!r}")
    return value


def _names(text: str) -> list[str]:
    from pyengine.analyses import PUBLIC

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PUBLIC]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown statistic(s) {', '.join(unknown) or text!r}; choose from "
                                         f"{', '.join(PUBLIC)}")
    return names


def _regex(text: str) -> str:
    import re

    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression ({exc}): {text!r}") from None
    return text


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _cmd_analyze(args: argparse.Namespace) -> int:
    import pyengine as pe
    from pyengine.output import check_output

    out = args.out or f"{pathlib.Path(args.file).stem}-analysis"
    check_output(out, inputs=[args.file])  # before the work, not after it
    analysis = pe.analyze(args.file, window=args.window, lags=args.lags, origins=args.origins, method=args.method,
                          threshold=args.threshold, only=args.only, skip=args.skip or (), backend=args.backend,
                          workers=args.workers, block_cols=args.block_cols, progress=not args.quiet,
                          scheduler=args.dask, nonfinite=args.nonfinite, groups=args.groups)
    out = analysis.save(out, progress=not args.quiet, self_contained=args.self_contained)
    print(f"results: {out / 'results.json'}\nreport:  {out / 'index.html'}")
    if args.self_contained:
        from pyengine.report import SELF_CONTAINED

        print(f"mailable report: {out / SELF_CONTAINED}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pyengine.report import SELF_CONTAINED, render

    index = render(args.dir, self_contained=args.self_contained)
    print(f"report: {index}")
    if args.self_contained:
        print(f"mailable report: {index.parent / SELF_CONTAINED}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from pyengine.store import import_checkpoints

    params = [p.strip() for p in args.params.split(",") if p.strip()] if args.params else None
    result = import_checkpoints(args.src, args.out, step_regex=args.step_regex, params=params,
                                compression=args.compression, sample=args.sample, sketch=args.sketch,
                                overwrite=args.overwrite, progress=not args.quiet)
    print(result)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from pyengine.compare import compare
    from pyengine.output import check_output

    check_output(args.out, inputs=args.items)  # before analysing any file, not after
    comparison = compare(args.items, by=args.by, window=args.window, lags=args.lags, threshold=args.threshold,
                         backend=args.backend, progress=not args.quiet)
    index = comparison.save(args.out, self_contained=args.self_contained)
    print(comparison.headline())
    print(f"report: {index}")
    return 0


def _bench_suites() -> list[str]:
    """The suites of the source checkout this command runs from (bench/bench_*.py), if any."""
    return sorted(p.stem.removeprefix("bench_") for p in pathlib.Path("bench").glob("bench_*.py"))


def _cmd_bench(args: argparse.Namespace) -> int:
    if not _bench_suites():
        print("pyengine bench: the benchmarks live in the source checkout's bench/ folder; run it from there "
              "(or `python -m bench`)", file=sys.stderr)
        return 1
    if "" not in sys.path:
        sys.path.insert(0, "")  # the source checkout we are run from
    from bench.__main__ import main as bench_main

    return bench_main(args.suites + (["--quick"] if args.quick else []))


def build_parser() -> argparse.ArgumentParser:
    from pyengine.analyses import STATISTICS

    parser = argparse.ArgumentParser(
        prog="pyengine",
        description="Statistics of SGD training trajectories: anomalous diffusion, fractal geometry, heavy tails.",
        epilog="Exit codes: 0 success; 1 the input was rejected (the message says why); 2 usage error. "
               "`pyengine COMMAND --help` explains each command.")
    parser.add_argument("--version", action="version", version=f"pyengine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("backends", help="list the compute backends available here and why others are not")
    p.set_defaults(func=_cmd_backends)
    p = sub.add_parser("info", help="summarize a trajectory file and validate it (exit 1 if invalid)")
    p.add_argument("file", help="trajectory file (HDF5)")
    p.add_argument("--check-values", action="store_true",
                   help="also scan every weight for NaN/Inf (reads the whole file)")
    p.add_argument("--verify", action="store_true",
                   help="also compare every weight with the checksums stored when it was written (reads the whole "
                        "file; exit 1 on a mismatch)")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("analyze", help="run every analysis of a trajectory in one pass; write results, figures, report",
                       description="Run the statistics of the table below in one pass over the weights; write "
                                   "results.json, figures and index.html to --out.",
                       epilog="statistics (for --only and --skip):\n" + "\n".join(
                           f"  {s.name:<11} {s.summary}" for s in STATISTICS if not s.internal),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="trajectory file (HDF5)")
    p.add_argument("--out", default=None,
                   help="output directory: new, empty, or an earlier pyengine output (never one holding other "
                        "files); default: FILE's name without .h5, plus -analysis, in the current directory")
    p.add_argument("--window", type=_window, default="auto",
                   help="window length T in steps, 'auto' (fits the run) or 'all' (default: %(default)s)")
    p.add_argument("--lags", type=_lags, default=48,
                   help="MSD lags: a count of log-spaced lags, a comma list of steps, or 'all' (default: %(default)s)")
    p.add_argument("--origins", choices=("window", "within"), default="window",
                   help="'window': Chen et al. Eq. 3, endpoints may pass the window; 'within': both inside")
    p.add_argument("--method", choices=("auto", "spectral", "lagband"), default="auto", help="MSD method")
    p.add_argument("--threshold", type=_threshold, default=0.03,
                   help="RMSE threshold of the τ0/t0 rule, or 'data' (Chen et al.'s SD of all RMSEs) "
                        "(default: %(default)s)")
    p.add_argument("--only", type=_names, default=None, metavar="NAMES",
                   help="comma list of statistics to run (default: all; see below)")
    p.add_argument("--skip", type=_names, default=None, metavar="NAMES", help="comma list of statistics to leave out")
    p.add_argument("--groups", choices=("tensor", "layer", "kind"), default=None,
                   help="also every statistic per group of parameters from the file's parameter table: each tensor, "
                        "each layer (module prefix) or each kind (weight/bias/norm/other), with a heat map in the "
                        "report")
    p.add_argument("--backend", choices=("auto", "cuda", "cpp", "numba", "numpy"), default="auto",
                   help="compute backend (see `pyengine backends`)")
    p.add_argument("--workers", type=_positive, default=1, help="column blocks computed at once (default: %(default)s)")
    p.add_argument("--block-cols", type=_positive, default=None,
                   help="parameters per block (default: from the memory budget)")
    p.add_argument("--dask", metavar="ADDRESS", default=None, help="run on a Dask cluster (scheduler address)")
    p.add_argument("--nonfinite", choices=("raise", "skip"), default="raise",
                   help="NaN/Inf weights: stop with their location (default), or leave those parameters out")
    p.add_argument("--quiet", action="store_true",
                   help="no progress (default: a bar on a terminal, else a line on stderr every few seconds)")
    p.add_argument("--self-contained", action="store_true",
                   help=SELF_CONTAINED_HELP)
    p.set_defaults(func=_cmd_analyze)
    p = sub.add_parser("report", help="re-render the HTML report of an analysis output directory")
    p.add_argument("dir", help="directory written by `pyengine analyze`")
    p.add_argument("--self-contained", action="store_true",
                   help=SELF_CONTAINED_HELP)
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("import", help="write checkpoints on disk (PyTorch, safetensors, npz) as a trajectory file",
                       description="Write each checkpoint of SRC as one snapshot of the trajectory file OUT: PyTorch "
                                   "state dicts (.pt .pth .bin .ckpt, read with torch.load(weights_only=True)), "
                                   "safetensors, .npz/.npy, or Hugging Face checkpoint folders.")
    p.add_argument("src", metavar="SRC",
                   help="a folder of checkpoints (or of checkpoint folders), or a glob such as 'ckpts/*.pt' "
                        "(quoted); taken in natural order of names (ckpt-2 before ckpt-10)")
    p.add_argument("out", metavar="OUT",
                   help="the trajectory file to write (HDF5); an existing file is refused without --overwrite")
    p.add_argument("--step-regex", metavar="REGEX", default=None, type=_regex,
                   help="the step in each checkpoint's path: the group 'step', the first group or the whole match "
                        "(default: the stored global_step/step, else the last number in the name)")
    p.add_argument("--params", metavar="KINDS", default=None,
                   help="comma list of kinds (weight, bias, norm, other) or name globs to keep (default: every float "
                        "tensor; BatchNorm running statistics are 'other')")
    p.add_argument("--compression", choices=("lz4", "gzip"), default=None, help="lossless compression of /weights")
    reduce = p.add_mutually_exclusive_group()
    reduce.add_argument("--sample", metavar="F", type=float, default=None,
                        help="keep a seeded fraction F of the coordinates, stratified per tensor, as "
                             "Recorder(sample=F)")
    reduce.add_argument("--sketch", metavar="K", type=int, default=None,
                        help="store a seeded CountSketch of K columns, as Recorder(sketch=K)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--quiet", action="store_true",
                   help="no progress (default: a bar on a terminal, else a line on stderr every few seconds)")
    p.set_defaults(func=_cmd_import)
    p = sub.add_parser("compare", help="compare runs (result folders or trajectory files) on one HTML page",
                       description="Compare runs: labels from the stored training settings that differ, seeds "
                                   "grouped (mean ± SE across seeds), trends against numeric settings; write "
                                   "index.html, figures and comparison.json to --out (docs/compare.md).")
    p.add_argument("items", nargs="+", metavar="RUN",
                   help="a result folder of `pyengine analyze` (read back), its results.json, or a trajectory file "
                        "(analysed with the settings below)")
    p.add_argument("--out", default="pyengine-comparison",
                   help="output directory: new, empty, or an earlier pyengine output (default: %(default)s)")
    p.add_argument("--by", type=lambda text: [n.strip() for n in text.split(",") if n.strip()], default=None,
                   metavar="NAMES", help="comma list of settings to compare by; runs equal in them are averaged "
                                         "(default: every setting that differs, except seeds)")
    p.add_argument("--window", type=_window, default="auto", help="for trajectory files: as in analyze")
    p.add_argument("--lags", type=_lags, default=48, help="for trajectory files: as in analyze")
    p.add_argument("--threshold", type=_threshold, default=0.03, help="for trajectory files: as in analyze")
    p.add_argument("--backend", choices=("auto", "cuda", "cpp", "numba", "numpy"), default="auto",
                   help="for trajectory files: as in analyze")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.add_argument("--self-contained", action="store_true",
                   help="also write report-self-contained.html: the page with its figures embedded")
    p.set_defaults(func=_cmd_compare)
    p = sub.add_parser("demo", help="train a small ResNet on scikit-learn's digits, record every step, analyse the run")
    p.add_argument("--out", default="pyengine-demo", help="output directory (default: %(default)s)")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps, all recorded (default: %(default)s)")
    p.add_argument("--width", type=int, default=16, help="channels of the first stage (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="minibatch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate of plain SGD (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of init, split and batches (default: %(default)s)")
    p.add_argument("--no-shortcut", action="store_true", help="remove the shortcut connections (Chen et al.'s noshort)")
    p.add_argument("--hessian-every", type=int, default=500,
                   help="steps between Hessian top-20 probes, 0 for none (default: %(default)s)")
    p.add_argument("--surface-grid", type=int, default=31,
                   help="points per side of the final loss surface, 0 for none (default: %(default)s)")
    p.add_argument("--sweep", action="append", default=None, metavar="FIELD=V1,V2,…",
                   help="train one run per value (any DemoConfig field: batch_size, lr, width, shortcut, steps …; "
                        "repeat for a grid) into subfolders of --out, then compare them")
    p.add_argument("--seeds", type=_positive, default=1,
                   help="runs per setting, seeds --seed, --seed + 1, …; with more than 1, compared (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("bench", help="run the benchmarks side by side with peers (from the source checkout)",
                       epilog="suites here: " + (", ".join(_bench_suites()) or "none (run from the source checkout)")
                              + ". The peers need the bench extra: pip install 'pyengine[bench]'.")
    p.add_argument("suites", nargs="*", help="suites to run (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"pyengine {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # an optional dependency: say which extra brings it
        extra = _EXTRAS.get((exc.name or "").split(".")[0], "")
        hint = f"; install it with: pip install 'pyengine[{extra}]'" if extra else ""
        print(f"pyengine {args.command}: error: {exc}{hint}", file=sys.stderr)
        return 1


#: Optional modules and the extra of pyproject.toml that installs them.
_EXTRAS = {"distributed": "dask", "dask": "dask", "tidynamics": "bench", "torch": "torch", "sklearn": "demo",
           "numba": "numba", "cupy": "cuda", "pandas": "test", "xarray": "test"}
