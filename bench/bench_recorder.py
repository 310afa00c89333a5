"""Overhead of recording every step of the demo network (``pyengine demo``) on the CPU.

Trains the demo ResNet for N steps without and with a :class:`pyengine.record.Recorder`
(repeats interleaved, median taken; the recorded time includes closing the file, so
every snapshot is on disk), and prints a table of wall-clock and CPU time (all threads
of the process: the CPU overhead is the recorder's work, and is the steadier number on
shared cores). Target: at most 10% overhead.

Run: ``python bench/bench_recorder.py [--steps 500 --repeats 5 --json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pyengine.demo import DemoConfig, build, train
from pyengine.record import Recorder


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
            compressions: tuple = (None, "lz4"), threads: int = 1) -> list[dict]:
    """Median training time without and with recording, per compression setting.

    Returns
    -------
    list of dict
        One row per setting: ``mode``, ``seconds`` and ``cpu_seconds`` (medians),
        ``ms_per_step``, ``overhead`` and ``cpu_overhead`` (relative to no recording),
        plus the run settings.

    Examples
    --------
    >>> rows = measure(steps=50, repeats=1)  # doctest: +SKIP
    >>> rows[1]["overhead"] < 0.1  # doctest: +SKIP
    True
    """
    config = DemoConfig(steps=steps, width=width, batch_size=batch_size)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    modes = ["none", *[f"record ({c or 'raw'})" for c in compressions]]
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.h5"
            time_training(DemoConfig(steps=20, width=width, batch_size=batch_size), path)  # warm-up
            for _ in range(repeats):
                times["none"].append(time_training(config, None))
                for mode, compression in zip(modes[1:], compressions):
                    times[mode].append(time_training(config, path, compression))
    finally:
        torch.set_num_threads(old_threads)
    wall = {mode: statistics.median(w for w, _ in t) for mode, t in times.items()}
    cpu = {mode: statistics.median(c for _, c in t) for mode, t in times.items()}
    n_params = sum(p.numel() for p in build(config)[0].parameters())
    return [{"mode": mode, "seconds": wall[mode], "cpu_seconds": cpu[mode], "ms_per_step": 1e3 * wall[mode] / steps,
             "overhead": wall[mode] / wall["none"] - 1, "cpu_overhead": cpu[mode] / cpu["none"] - 1,
             "steps": steps, "repeats": repeats, "n_params": n_params, "threads": threads} for mode in modes]


def print_table(rows: list[dict]) -> None:
    print(f"demo ResNet, P = {rows[0]['n_params']}, {rows[0]['steps']} steps, median of {rows[0]['repeats']}, "
          f"{rows[0]['threads']} torch thread(s)")
    print(f"{'mode':<14} {'wall s':>7} {'ms/step':>8} {'overhead':>9} {'CPU s':>7} {'CPU overhead':>13}")
    for r in rows:
        print(f"{r['mode']:<14} {r['seconds']:7.2f} {r['ms_per_step']:8.2f} {100 * r['overhead']:8.1f}% "
              f"{r['cpu_seconds']:7.2f} {100 * r['cpu_overhead']:12.1f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = measure(args.steps, args.repeats, threads=args.threads)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
