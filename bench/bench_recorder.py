"""Recording overhead: the demo network (issue 7) and an 11 M-parameter ResNet-18 (issue 22).

The demo network (``pyengine demo``) trains on the CPU without and with a
:class:`pyengine.record.Recorder` recording every step. Target: at most 10% overhead.

A ResNet-18-sized network (11.2 M parameters, CIFAR-style 3×32×32 inputs, random data)
trains without recording, recording every parameter, a CountSketch (``sketch=65536``) and a
1% sample (``sample=0.01``), on the CPU (and on the GPU when there is one): step time
overhead against no recording, the recorder's own time per step in the training thread,
and bytes on disk per step. Target: sketching at ≤ 5% step overhead.

Repeats are interleaved and the median taken; the recorded time includes closing the
file, so every snapshot is written to the operating system (for the ResNet-18, the
write-back to the disk that follows is left out: ``os.sync()`` between runs). The note gives the CPU-time overhead too (all threads
of the process: the recorder's work, the steadier number on shared cores).

Run: ``python -m bench recorder`` or ``python -m bench.bench_recorder [--quick] [--steps 500 --repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.common import Row, format_table
from pyengine.demo import BasicBlock, DemoConfig, build, train
from pyengine.record import Recorder
from pyengine.store import open_trajectory

SUITE = "recorder"


def time_training(config: DemoConfig, path: Path | None, compression: str | None = None) -> tuple[float, float]:
    """Wall-clock and CPU seconds to train ``config.steps`` steps, recording to ``path`` when given.

    Building the model and loading the data are not timed.
    """
    model, optimizer, data = build(config)
    start, cpu = time.perf_counter(), time.process_time()
    if path is None:
        train(model, optimizer, data, config)
    else:
        with Recorder(model, path, optimizer=optimizer, compression=compression, overwrite=True) as rec:
            train(model, optimizer, data, config, rec)
    return time.perf_counter() - start, time.process_time() - cpu


def measure(steps: int = 500, repeats: int = 5, width: int = 16, batch_size: int = 64,
            compressions: tuple = (None, "lz4"), threads: int = 1) -> list[Row]:
    """Median training time with recording (one row per compression) against training without."""
    config = DemoConfig(steps=steps, width=width, batch_size=batch_size)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    times: dict[str | None, list[tuple[float, float]]] = {c: [] for c in ("off", *compressions)}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.h5"
            time_training(DemoConfig(steps=20, width=width, batch_size=batch_size), path)  # warm-up
            for _ in range(repeats):
                times["off"].append(time_training(config, None))
                for compression in compressions:
                    times[compression].append(time_training(config, path, compression))
    finally:
        torch.set_num_threads(old_threads)
    wall = {c: statistics.median(w for w, _ in t) for c, t in times.items()}
    cpu = {c: statistics.median(u for _, u in t) for c, t in times.items()}
    n_params = sum(p.numel() for p in build(config)[0].parameters())
    rows = []
    for c in compressions:
        overhead = wall[c] / wall["off"] - 1
        rows.append(Row(SUITE, f"demo ResNet P={n_params}, {steps} steps, record every step ({c or 'raw'})", wall[c],
                        "training without recording", wall["off"], "≤ 10% overhead", overhead <= 0.10,
                        f"overhead {overhead:+.1%} wall, {cpu[c] / cpu['off'] - 1:+.1%} CPU; "
                        f"{1e3 * wall[c] / steps:.2f} ms/step; median of {repeats}, {threads} torch thread(s)"))
    return rows


class ResNet18(nn.Module):
    """ResNet-18 for 3×32×32 inputs (He et al. 2016; the CIFAR stem): 11,173,962 parameters."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        blocks, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(c_in, c_out, stride, True), BasicBlock(c_out, c_out, 1, True)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))


#: The ResNet-18 modes: Recorder keyword arguments (None: no recording).
MODES = {"off": None, "full": {}, "sketch=65536": {"sketch": 65536}, "sample=0.01": {"sample": 0.01}}


class _TimedRecorder:
    """Counts the seconds the training thread spends in ``rec.step``."""

    def __init__(self, rec: Recorder) -> None:
        self.rec, self.seconds = rec, 0.0

    def step(self, loss: torch.Tensor) -> None:
        start = time.perf_counter()
        self.rec.step(loss)
        self.seconds += time.perf_counter() - start


def time_resnet(steps: int, batch_size: int, device: str, path: Path,
                mode: dict | None) -> tuple[float, float, float, float, int]:
    """Wall, CPU and in-``rec.step`` seconds of ``steps`` training steps (closing the file
    included), the seconds to set the recorder up and open its file (not in the step
    time: once per run), and the bytes per snapshot (row, checksums, step and loss)."""
    torch.manual_seed(0)
    model = ResNet18().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=gen).to(device)

    def one_step(rec) -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if rec is not None:
            rec.step(loss)

    for _ in range(2):  # warm-up, not recorded
        one_step(None)
    setup = time.perf_counter()
    timed = None if mode is None else _TimedRecorder(Recorder(model, path, optimizer=opt, overwrite=True,
                                                              **mode).open())
    setup = time.perf_counter() - setup
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        one_step(timed)
    if timed is not None:
        timed.rec.close()
    _sync(device)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    row = 0
    if mode is not None:
        with open_trajectory(path) as traj:
            crc = traj.file["weights_crc32"].shape[1] * 4 if "weights_crc32" in traj.file else 0
            row = traj.n_params * traj.dtype.itemsize + crc + 16
    return wall, cpu, 0.0 if timed is None else timed.seconds, setup, row


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_resnet(steps: int = 20, repeats: int = 5, batch_size: int = 16, device: str = "cpu",
                   threads: int = 1) -> list[Row]:
    """Median step time of the ResNet-18 recorded in each mode of MODES against no recording."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    got: dict[str, list[tuple[float, float, float, float, int]]] = {m: [] for m in MODES}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "resnet.h5"
            names = list(MODES)
            for r in range(repeats):  # interleaved, the order rotated each repeat
                for name in names[r % len(names):] + names[: r % len(names)]:
                    got[name].append(time_resnet(steps, batch_size, device, path, MODES[name]))
                    path.unlink(missing_ok=True)
                    os.sync()  # the page cache's write-back of one run does not slow the next
    finally:
        torch.set_num_threads(old_threads)
    med = {m: [statistics.median(r[i] for r in runs) for i in range(5)] for m, runs in got.items()}
    off = med["off"]
    rows = []
    for name in list(MODES)[1:]:
        wall, cpu, in_step, setup, row = med[name]
        overhead = wall / off[0] - 1
        target = "≤ 5% overhead" if name.startswith("sketch") else ""
        rows.append(Row(SUITE, f"ResNet-18 P=11,173,962 on {device}, batch {batch_size}, {steps} steps, record "
                               f"every step ({name})", wall, "training without recording", off[0], target,
                        overhead <= 0.05 if target else None,
                        f"overhead {overhead:+.1%} wall, {cpu / off[1] - 1:+.1%} CPU; {1e3 * wall / steps:.0f} ms/step "
                        f"against {1e3 * off[0] / steps:.0f}; rec.step {1e3 * in_step / steps:.1f} ms/step "
                        f"({in_step / off[0]:.1%} of the step); {row / 1e6:.3g} MB per snapshot; set-up and file "
                        f"creation {setup:.2f} s once; median of {repeats}, {threads} torch thread(s)",
                        row, "bytes/step"))
    return rows


def run(quick: bool = False) -> list[Row]:
    if quick:
        return measure(100, 2) + measure_resnet(4, 1, batch_size=4)
    rows = measure(500, 5) + measure_resnet()
    if torch.cuda.is_available():
        rows += measure_resnet(200, 3, batch_size=128, device="cuda")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 steps, 2 repeats")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--resnet", action="store_true", help="only the ResNet-18 cases (--steps, --repeats)")
    parser.add_argument("--device", default="cpu", help="device of the ResNet-18 cases")
    args = parser.parse_args(argv)
    if args.resnet:
        rows = measure_resnet(args.steps, args.repeats, device=args.device, threads=args.threads)
    else:
        rows = run(True) if args.quick else measure(args.steps, args.repeats, threads=args.threads)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
