"""Recording overhead (issue 7): the demo network trained with and without a Recorder.

The demo network (``pyengine demo``) trains on the CPU without and with a
:class:`pyengine.record.Recorder` recording every step.

Repeats are interleaved and the median taken; the recorded time includes closing the
file, so every snapshot is on disk. The note gives the CPU-time overhead too (all threads
of the process: the recorder's work, the steadier number on shared cores). Target: at
most 10% overhead.

Run: ``python -m bench recorder`` or ``python -m bench.bench_recorder [--quick] [--steps 500 --repeats 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.common import Row, format_table
from pyengine.demo import DemoConfig, build, train
from pyengine.record import Recorder

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


def run(quick: bool = False) -> list[Row]:
    return measure(100, 2) if quick else measure(500, 5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 steps, 2 repeats")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    print(format_table(run(True) if args.quick else measure(args.steps, args.repeats, threads=args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
