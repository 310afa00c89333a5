"""The demo run: a small ResNet on scikit-learn's digits, recorded every step, then analysed.

``pyengine demo`` trains a ResNet-style CNN (or the same network without shortcut
connections, as in Chen et al. 2022) with plain SGD on the 8×8 handwritten digits
bundled with scikit-learn (no download), records every step with
:class:`pyengine.record.Recorder` (test loss and gradient-noise probes included), runs
the analysis (:func:`pyengine.analyze`) and writes the outputs and the HTML report to
one directory.

Examples
--------
>>> from pyengine.demo import DemoConfig, run_demo
>>> result = run_demo("demo-out", DemoConfig(steps=300))  # doctest: +SKIP
>>> result.trajectory  # doctest: +SKIP
PosixPath('demo-out/run.h5')
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from pyengine.landscape import HessianProbe, loss_surface
from pyengine.output import claim_output
from pyengine.record import EvalProbe, NoiseProbe, Recorder

#: Samples of the training set used by the gradient-noise probe.
NOISE_PROBE_SAMPLES = 512


@dataclass
class DemoConfig:
    """Settings of the demo run.

    Attributes
    ----------
    steps : int
        Optimizer steps (every one is recorded).
    width : int
        Channels of the first stage (the second has twice as many).
    batch_size : int
        Minibatch size b.
    lr : float
        Learning rate of plain SGD (no momentum, no weight decay).
    seed : int
        Seeds the initialisation, the train/test split and the minibatch order.
    shortcut : bool
        ResNet (True) or the same network without shortcut connections (False).
    eval_every, noise_every, hessian_every : int
        Steps between test-loss probes, gradient-noise probes and Hessian top-k probes
        (0: no Hessian probe).
    hessian_k : int
        Eigenvalues per Hessian probe (Chen et al.: 20).
    hessian_density, hessian_density_steps : int
        SLQ start vectors and Lanczos steps of each Hessian probe's spectral density and
        trace (0 vectors: none); the Hessian probe also aligns the Hessian with the noise
        probe's covariance when both run (docs/landscape.md).
    noise_cov_k : int
        Eigenvalues of the gradient-noise covariance stored per noise probe.
    noise_cov_batch_size : int, optional
        Batch size of the gradients whose covariance is decomposed (default the training
        batch size: 8 gradients of the 512 probe samples; 1: the 512 per-sample gradients,
        about 5 s more per noise probe).
    surface_grid : int
        Points per side of the loss surface through the final weights (0: none).
    threads : int
        Torch intra-op threads while training: the network is so small that one thread
        is fastest, and it leaves a core to the recorder's writer thread.
    """

    steps: int = 3000
    width: int = 16
    batch_size: int = 64
    lr: float = 0.1
    seed: int = 0
    shortcut: bool = True
    eval_every: int = 50
    noise_every: int = 250
    hessian_every: int = 500
    hessian_k: int = 20
    hessian_density: int = 2
    hessian_density_steps: int = 20
    noise_cov_k: int = 20
    noise_cov_batch_size: int | None = None
    surface_grid: int = 31
    threads: int = 1


@dataclass
class DemoResult:
    """Where the demo wrote its outputs, and how long it took.

    Attributes
    ----------
    trajectory : Path
        The recorded run.
    report : Path
        The HTML report of the analysis (``index.html`` beside ``results.json`` and the figures).
    train_seconds, analysis_seconds : float
        Wall-clock times of training (with recording) and of the analysis.
    test_accuracy : float
        Accuracy on the held-out digits at the end.
    """

    trajectory: pathlib.Path
    report: pathlib.Path
    train_seconds: float
    analysis_seconds: float
    test_accuracy: float


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm; with ``shortcut``, the input is added back.

    The shortcut is the identity, or a 1×1 convolution with batch norm when the shape
    changes (He et al. 2016, option B). Without it the block is a plain two-layer stack
    ("noshort" networks of Chen et al.).

    Examples
    --------
    >>> BasicBlock(4, 8, stride=2, shortcut=True)(torch.zeros(1, 4, 8, 8)).shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module | None = None
        if shortcut and (stride != 1 or c_in != c_out):
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        elif shortcut:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class DigitsResNet(nn.Module):
    """A small ResNet for 1×8×8 images: stem, two blocks at 8×8, one block at 4×4, linear head.

    Parameters
    ----------
    width : int
        Channels of the stem and first stage; the second stage has ``2 * width``.
    shortcut : bool
        Keep the shortcut connections (ResNet) or remove them (the "noshort" variant).
    n_classes : int

    Examples
    --------
    >>> sum(p.numel() for p in DigitsResNet(16).parameters())
    24378
    """

    def __init__(self, width: int = 16, shortcut: bool = True, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = nn.Sequential(BasicBlock(width, width, 1, shortcut), BasicBlock(width, width, 1, shortcut))
        self.layer2 = BasicBlock(width, 2 * width, 2, shortcut)
        self.fc = nn.Linear(2 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer2(self.layer1(self.stem(x)))
        return self.fc(out.mean(dim=(2, 3)))


def load_data(seed: int = 0, test_fraction: float = 0.2) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's 1797 handwritten digits as tensors, split at random into train and test.

    Returns
    -------
    dict
        ``{"train": (x, y), "test": (x, y)}``; x of shape (n, 1, 8, 8) float32 scaled to
        [0, 1], y int64 labels 0–9.

    Examples
    --------
    >>> data = load_data()
    >>> data["train"][0].shape, data["test"][0].shape
    (torch.Size([1438, 1, 8, 8]), torch.Size([359, 1, 8, 8]))
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}


def minibatches(n: int, batch_size: int, steps: int, seed: int) -> Iterator[torch.Tensor]:
    """Indices of ``steps`` minibatches: epochs of a seeded shuffle, last partial batch dropped.

    Examples
    --------
    >>> [b.tolist() for b in minibatches(4, 2, 3, seed=0)]  # doctest: +SKIP
    [[2, 0], [1, 3], [3, 1]]
    """
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}] (the training set size), got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    done = 0
    while done < steps:
        order = torch.randperm(n, generator=gen)
        for i in range(0, min(n // batch_size, steps - done) * batch_size, batch_size):
            yield order[i:i + batch_size]
        done += min(n // batch_size, steps - done)


def check_config(config: DemoConfig, n_train: int | None = None) -> None:
    """Refuse settings no run can use (ValueError naming the setting); with ``n_train``, also a
    batch larger than the training set."""
    for name, value in (("steps", config.steps), ("width", config.width), ("batch_size", config.batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")
    if n_train is not None and config.batch_size > n_train:
        raise ValueError(f"batch_size must be in [1, {n_train}] (the training set size), got {config.batch_size}")


def build(config: DemoConfig) -> tuple[nn.Module, torch.optim.Optimizer, dict]:
    """The seeded model, its plain-SGD optimizer and the data of a demo run.

    Examples
    --------
    >>> model, opt, data = build(DemoConfig(width=8))
    >>> type(opt).__name__
    'SGD'
    """
    check_config(config)
    torch.manual_seed(config.seed)
    model = DigitsResNet(config.width, config.shortcut)
    return model, torch.optim.SGD(model.parameters(), lr=config.lr), load_data(config.seed)


def train(model: nn.Module, optimizer: torch.optim.Optimizer, data: dict, config: DemoConfig,
          recorder: Recorder | None = None, progress: bool = False) -> float:
    """Train for ``config.steps`` steps of plain SGD on cross-entropy; returns the last loss.

    Examples
    --------
    >>> model, opt, data = build(DemoConfig(steps=5, width=4))
    >>> train(model, opt, data, DemoConfig(steps=5, width=4)) > 0
    True
    """
    from tqdm import tqdm

    x, y = data["train"]
    batches = minibatches(len(x), config.batch_size, config.steps, config.seed)
    loss = torch.tensor(float("nan"))
    model.train()
    bar = tqdm(batches, total=config.steps, desc="training", unit="step", disable=not progress, mininterval=0.5)
    for idx in bar:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        if recorder is not None:
            _name_probes(bar, recorder)
            recorder.step(loss)
    return float(loss.detach())


def _name_probes(bar, recorder: Recorder) -> None:
    """Say on the training bar which probes the coming step runs (a Hessian probe takes seconds)."""
    if bar.disable:
        return
    due = [p.group for p in recorder.probes if p.due(recorder.global_step + 1)]
    desc = f"training + {', '.join(due)} probe" if due else "training"
    if bar.desc != desc:
        bar.set_description(desc, refresh=bool(due))


def run_demo(out: str | pathlib.Path, config: DemoConfig | None = None, progress: bool = True) -> DemoResult:
    """Train and record the demo network, then analyse the run; outputs go to ``out``.

    Writes ``out/run.h5`` (replacing an earlier one) and the analysis in ``out/report/``
    (see :func:`analyse_and_report`).

    Parameters
    ----------
    out : str or Path
        Output directory: new, empty, or an earlier demo output (created if needed; a folder
        holding other files is refused).
    config : DemoConfig, optional
        Run settings; default :class:`DemoConfig()` (about a minute on two CPU cores).
    progress : bool
        Show a progress bar while training.

    Returns
    -------
    DemoResult

    Examples
    --------
    >>> run_demo("demo-out", DemoConfig(steps=100, width=8)).report  # doctest: +SKIP
    PosixPath('demo-out/report/index.html')
    """
    config = config or DemoConfig()
    out = claim_output(out, ["run.h5", "report"])  # refuses a folder holding files of the user's
    path = out / "run.h5"
    model, optimizer, data = build(config)
    settings = {**asdict(config), "dataset": "sklearn.datasets.load_digits", "dataset_size": len(data["train"][0]),
                "test_size": len(data["test"][0]), "loss": "cross_entropy"}
    x, y = data["train"]
    n_noise = min(NOISE_PROBE_SAMPLES, len(x)) // config.batch_size * config.batch_size
    probes = [EvalProbe({"train": data["train"], "test": data["test"]}, every=config.eval_every)]
    noise = None
    if n_noise >= 2 * config.batch_size:
        noise = NoiseProbe((x[:n_noise], y[:n_noise]), config.batch_size, every=config.noise_every, n_samples=256,
                           seed=config.seed, cov_k=config.noise_cov_k, cov_batch_size=config.noise_cov_batch_size)
        probes.append(noise)
    if config.hessian_every:
        probes.append(HessianProbe((x[:n_noise], y[:n_noise]), k=config.hessian_k, every=config.hessian_every,
                                   seed=config.seed, density=config.hessian_density,
                                   density_steps=config.hessian_density_steps, noise=noise))
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    start = time.perf_counter()
    try:
        with Recorder(model, path, optimizer=optimizer, settings=settings, probes=probes, overwrite=True) as rec:
            train(model, optimizer, data, config, rec, progress)
        if config.surface_grid:
            loss_surface(model, F.cross_entropy, data["test"], grid=config.surface_grid, path=path, name="final",
                         seed=config.seed, progress=progress)
    finally:
        torch.set_num_threads(threads)
    train_seconds = time.perf_counter() - start
    accuracy = _accuracy(model, data["test"])
    start = time.perf_counter()
    report = analyse_and_report(path, out / "report", progress)
    return DemoResult(path, report, train_seconds, time.perf_counter() - start, accuracy)


def analyse_and_report(path: str | pathlib.Path, out: str | pathlib.Path, progress: bool = False) -> pathlib.Path:
    """Analyse a recorded run and write the results and the HTML report to the directory ``out``.

    The one place where the demo calls the analysis: :func:`pyengine.analyze` with its
    defaults (``window="auto"``: windows of 500 steps on the default 3000-step run), saved
    with figures and ``index.html``.

    Parameters
    ----------
    path : str or Path
        A trajectory file.
    out : str or Path
        Output directory (replaced if it holds an earlier pyengine output).

    Returns
    -------
    Path
        ``out/index.html``.

    Examples
    --------
    >>> analyse_and_report("demo-out/run.h5", "demo-out/report")  # doctest: +SKIP
    PosixPath('demo-out/report/index.html')
    """
    import pyengine as pe

    return pe.analyze(path, progress=progress).save(out, progress=progress) / "index.html"


@dataclass
class SweepResult:
    """Where a demo sweep wrote its runs and their comparison.

    Attributes
    ----------
    runs : list of DemoResult
        One per setting and seed, in the order trained.
    configs : list of DemoConfig
    comparison : Path
        The comparison page (``out/comparison/index.html``).
    """

    runs: list
    configs: list
    comparison: pathlib.Path


def parse_sweep(text: str) -> tuple[str, list]:
    """``"FIELD=V1,V2,…"`` as (field, values), the values converted to the DemoConfig field's type.

    Examples
    --------
    >>> parse_sweep("batch_size=16,64,256")
    ('batch_size', [16, 64, 256])
    >>> parse_sweep("shortcut=true,false")
    ('shortcut', [True, False])
    """
    types = {f.name: f.type for f in fields(DemoConfig)}
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in types:
        raise ValueError(f"--sweep expects FIELD=V1,V2,… with FIELD one of {', '.join(types)}, got {text!r}")
    words = [v.strip() for v in values.split(",") if v.strip()]
    if not words:
        raise ValueError(f"--sweep {name}: no values given ({text!r})")
    try:
        converted = [_convert(types[name], w) for w in words]
    except ValueError:
        raise ValueError(f"--sweep {name}: expected {types[name]} values, got {values!r}") from None
    if len(set(converted)) != len(converted):
        raise ValueError(f"--sweep {name}: a value is repeated in {values!r}")
    return name, converted


def _convert(kind: str, word: str):
    if kind == "bool":
        if word.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(word)
        return word.lower() in ("true", "1", "yes")
    return int(word) if kind == "int" else float(word)


def sweep_configs(base: DemoConfig, sweep: dict, seeds: int = 1) -> list[DemoConfig]:
    """Every combination of the swept values (the grid, first field slowest), each with
    ``seeds`` seeds (``base.seed``, ``base.seed + 1``, …); the other settings from ``base``.

    Examples
    --------
    >>> [(c.batch_size, c.seed) for c in sweep_configs(DemoConfig(), {"batch_size": [16, 64]}, seeds=2)]
    [(16, 0), (16, 1), (64, 0), (64, 1)]
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if "seed" in sweep and seeds > 1:
        raise ValueError("sweep either the seed or --seeds, not both")
    grid = [{}]
    for name, values in sweep.items():
        grid = [{**point, name: v} for point in grid for v in values]
    return [replace(base, **point, **({"seed": base.seed + k} if seeds > 1 else {}))
            for point in grid for k in range(seeds)]


def _folder_name(config: DemoConfig, names: list[str]) -> str:
    """The subfolder of a sweep's run: ``batch_size-16_seed-1``."""
    parts = [f"{n}-{getattr(config, n)}" for n in names]
    return "_".join(parts) or "run"


def run_sweep(out: str | pathlib.Path, base: DemoConfig | None = None, sweep: dict | None = None, seeds: int = 1,
              progress: bool = True) -> SweepResult:
    """Train, record and analyse one demo run per swept setting and seed, then compare them.

    Each run is a :func:`run_demo` output in a subfolder of ``out`` named by its settings
    (``out/batch_size-16_seed-0/run.h5`` and ``report/``); the comparison of their
    analyses (:func:`pyengine.compare`, read back from the result folders) goes to
    ``out/comparison/``. The runs are trained one at a time.

    Parameters
    ----------
    out : str or Path
        Output directory: new, empty, or an earlier demo sweep (a folder holding other files
        is refused before anything is trained).
    base : DemoConfig, optional
        The settings of every run, but the swept ones.
    sweep : dict of str to list, optional
        DemoConfig field → values (:func:`parse_sweep`); several fields make a grid.
    seeds : int
        Runs per setting, with seeds ``base.seed``, ``base.seed + 1``, …
    progress : bool

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> run_sweep("sweep", DemoConfig(steps=400, width=8), {"batch_size": [16, 64, 256]}, seeds=2)  # doctest: +SKIP
    """
    from pyengine.compare import compare

    base, sweep = base or DemoConfig(), dict(sweep or {})
    configs = sweep_configs(base, sweep, seeds)
    n_train = len(load_data(base.seed)["train"][0])  # the split's size does not depend on the seed
    for config in configs:  # every setting checked before the first run is trained
        check_config(config, n_train)
    names = list(sweep) + (["seed"] if seeds > 1 else [])
    folders = [_folder_name(c, names) for c in configs]
    out = claim_output(out, [*folders, "comparison"])
    runs = []
    for i, (config, folder) in enumerate(zip(configs, folders)):
        if progress:
            print(f"run {i + 1} of {len(configs)}: {folder}", flush=True)
        runs.append(run_demo(out / folder, config, progress=progress))
    comparison = compare([out / folder / "report" for folder in folders]).save(out / "comparison")
    return SweepResult(runs, configs, comparison)


def _accuracy(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(data[0]).argmax(dim=1) == data[1]).float().mean())


def main(args) -> int:
    """Entry point of ``pyengine demo`` (see :mod:`pyengine.cli`): run, then print where the outputs are."""
    config = DemoConfig(steps=args.steps, width=args.width, batch_size=args.batch_size, lr=args.lr,
                        seed=args.seed, shortcut=not args.no_shortcut, hessian_every=args.hessian_every,
                        surface_grid=args.surface_grid)
    if getattr(args, "sweep", None) or getattr(args, "seeds", 1) > 1:
        return _main_sweep(args, config)
    result = run_demo(args.out, config, progress=not args.quiet)
    print(f"trained {config.steps} steps in {result.train_seconds:.1f} s "
          f"(test accuracy {result.test_accuracy:.3f}), analysis {result.analysis_seconds:.1f} s")
    print(f"trajectory: {result.trajectory}")
    print(f"report:     {result.report}")
    return 0


def _main_sweep(args, base: DemoConfig) -> int:
    """``pyengine demo --sweep FIELD=V1,V2 [--seeds N]``: the runs, then their comparison."""
    sweep = dict(parse_sweep(text) for text in args.sweep or [])
    if len(sweep) != len(args.sweep or []):
        raise ValueError("--sweep: each field may be swept once")
    result = run_sweep(args.out, base, sweep, args.seeds, progress=not args.quiet)
    for config, run in zip(result.configs, result.runs):
        print(f"{run.report.parent.parent.name}: trained {config.steps} steps in {run.train_seconds:.1f} s "
              f"(test accuracy {run.test_accuracy:.3f}), analysis {run.analysis_seconds:.1f} s")
    print(f"comparison: {result.comparison}")
    return 0
