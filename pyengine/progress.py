"""Progress of long work: a bar on a terminal, a log line every few seconds elsewhere.

Every phase of a job (the pass over the weights, the statistics' conclusions, the
figures, the report) shows its progress the same way, through :func:`progress_bar`:

- ``progress=None`` (the default of the Python API): a tqdm bar when stderr is a
  terminal, nothing otherwise;
- ``progress=True`` (the command line, unless ``--quiet``): a bar on a terminal, else one
  line on stderr every ``LOG_SECONDS`` with the fraction done, the time spent and an
  estimate of the time left (for logs of batch jobs and CI);
- ``progress=False``: nothing.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

__all__ = ["progress_bar", "LOG_SECONDS"]

#: Seconds between two progress lines when stderr is not a terminal.
LOG_SECONDS = 5.0


def _clock(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


class _LogLines:
    """A tqdm-like counter that writes a line to stderr every LOG_SECONDS, and one at the end."""

    def __init__(self, desc: str, total: float, unit: str) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.done = 0.0
        self.start = self.last = time.monotonic()

    def update(self, n: float = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= LOG_SECONDS and self.done < self.total:  # the last line comes at the end
            self.last = now
            self._write(now)

    def _write(self, now: float) -> None:
        spent = now - self.start
        fraction = self.done / self.total if self.total else 1.0
        left = f", about {_clock(spent / fraction - spent)} left" if 0 < fraction < 1 else ""
        print(f"{self.desc}: {100 * fraction:.0f}% ({self.done:,.0f} of {self.total:,.0f} {self.unit}), "
              f"{_clock(spent)} spent{left}", file=sys.stderr, flush=True)

    def __enter__(self) -> "_LogLines":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self._write(time.monotonic())


def progress_bar(progress: bool | None, desc: str, total: float, unit: str = "items"):
    """A context manager whose ``update(n)`` counts progress of one phase (module docstring).

    Examples
    --------
    >>> with progress_bar(False, "analyze: figures", total=3, unit="figures") as bar:
    ...     bar.update()
    """
    terminal = sys.stderr.isatty()
    if progress is True and not terminal:
        return _LogLines(desc, total, unit)
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "params",
                disable=not (terminal if progress is None else progress and terminal))
