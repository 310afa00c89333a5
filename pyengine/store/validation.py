"""Validating a trajectory file: :func:`validate` and :class:`ValidationReport`."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

from pyengine.store._checks import check_structure, find_nonfinite, nonfinite_message, open_h5
from pyengine.store._format import FormatError
from pyengine.store._watchdog import probe_metadata
from pyengine.store.reader import Trajectory


@dataclass
class ValidationReport:
    """The result of :func:`validate`.

    Attributes
    ----------
    path : Path
        The file checked.
    errors : list of str
        Violations of the format, each naming the dataset, attribute or field.
    warnings : list of str
        Non-fatal findings (e.g. an interrupted append whose rows are ignored).
    n_nonfinite : int
        Number of NaN/Inf entries in ``/weights`` (0 when not scanned).
    nonfinite : list of (int, int)
        The first of them as (row, column), in row-major order.
    values_checked : bool
        Whether every weight was scanned.

    Examples
    --------
    >>> report = validate("run.h5")  # doctest: +SKIP
    >>> report.ok, report.errors  # doctest: +SKIP
    (True, [])
    """

    path: pathlib.Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_nonfinite: int = 0
    nonfinite: list[tuple[int, int]] = field(default_factory=list)
    values_checked: bool = False

    @property
    def ok(self) -> bool:
        """True when no error was found."""
        return not self.errors

    def __str__(self) -> str:
        scope = "all values checked" if self.values_checked else "weight values not scanned"
        head = f"{self.path}: {'valid' if self.ok else 'INVALID'} pyengine trajectory ({scope})"
        lines = [head] + [f"  error: {e}" for e in self.errors] + [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def validate(path: str | pathlib.Path, *, check_values: bool = True, watchdog: bool = True) -> ValidationReport:
    """Check a file against the trajectory format v1 and report every problem.

    Parameters
    ----------
    path : str or Path
        The file.
    check_values : bool
        Scan every weight for NaN/Inf (reads the whole matrix once, in column blocks).
        Steps and losses are always checked.
    watchdog : bool
        Read the metadata in a child process first, killed after a timeout, so that a
        corrupted file on which HDF5 loops forever is reported, not waited for (see
        :func:`pyengine.store.open_trajectory`).

    Returns
    -------
    ValidationReport
        ``.ok`` is False when the file violates the format; a file that is not HDF5 at
        all, or whose metadata is damaged, gives a report with that error.

    Raises
    ------
    FileNotFoundError
        No such file.

    Examples
    --------
    >>> print(validate("run.h5"))  # doctest: +SKIP
    run.h5: valid pyengine trajectory (all values checked)
    """
    report = ValidationReport(pathlib.Path(path))
    try:
        if watchdog:
            probe_metadata(path)
        with open_h5(path) as f:
            layout = check_structure(f)
    except FormatError as exc:
        report.errors.append(str(exc))
        return report
    report.errors.extend(layout.errors)
    report.warnings.extend(layout.warnings)
    if check_values and layout.readable:
        _scan_weights(report, watchdog)
    return report


def _scan_weights(report: ValidationReport, watchdog: bool) -> None:
    with Trajectory(report.path, validate=False, watchdog=watchdog) as traj:
        report.n_nonfinite, report.nonfinite = find_nonfinite(traj.blocks())
    report.values_checked = True
    if report.n_nonfinite:
        report.errors.append(nonfinite_message(report.n_nonfinite, report.nonfinite))
