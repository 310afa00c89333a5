"""Result objects of the heavy-tail estimators: small dataclasses with ``to_dict()``."""

from __future__ import annotations

import dataclasses

import numpy as np

from pyengine.fits import quality_flag
from pyengine.results import Result


@dataclasses.dataclass(frozen=True, repr=False)
class TailIndexResult(Result):
    """Mohammadi tail-index estimate (Şimşekli et al. 2019, Eq. 15).

    Attributes
    ----------
    alpha : float
        The estimate α̂ (the median over ``k1`` when several group sizes were used); NaN
        when no group size gave a positive difference (see ``reason``).
    alpha_se : float
        Standard error of α̂: by the delta method (ignoring the correlation between the
        two means; the median of the per-K1 values for a grid), or, for the increments of
        a trajectory, the jackknife over parameter groups (``se_method``).
    alpha_range : tuple of float
        Inter-quartile range of α̂ over ``k1`` (both ends equal α̂ for one K1).
    k1, alpha_by_k1, inv_alpha_by_k1, alpha_se_by_k1 : arrays of shape (n_k1,)
        Per group size: K1, α̂, 1/α̂ and the standard error of α̂.
    n_used, n_zero, n_nonfinite : int
        Samples used, and zeros and non-finite values left out (rows in the
        multivariate form).
    n_groups, n_degenerate, n_truncated : arrays of shape (n_k1,)
        Per K1: groups used, groups whose sum was 0 or overflowed (left out), and samples
        left over in incomplete groups (dropped).
    multivariate : bool
        Whether rows were treated as vectors (norms) rather than entries as scalars.
    reason : str
        Empty when every K1 gave an estimate; otherwise why some did not.
    """

    alpha: float
    alpha_se: float
    alpha_range: tuple
    k1: np.ndarray
    alpha_by_k1: np.ndarray
    inv_alpha_by_k1: np.ndarray
    alpha_se_by_k1: np.ndarray
    n_used: int
    n_zero: int
    n_nonfinite: int
    n_groups: np.ndarray
    n_degenerate: np.ndarray
    n_truncated: np.ndarray
    multivariate: bool
    reason: str = ""
    se_method: str = "delta"

    _rows = None
    _headline = {"alpha": "alpha_se"}
    _flags = {"alpha": "flag"}
    _curves = {"alpha_by_k1": ("k1",), "inv_alpha_by_k1": ("k1",), "n_degenerate": ("k1",), "n_truncated": ("k1",)}
    _se = {"alpha_by_k1": "alpha_se_by_k1"}
    _n = {"alpha_by_k1": "n_groups"}

    @property
    def flag(self) -> str | None:
        """Why α̂ fails the quality rule of :mod:`pyengine.fits` (groups as points), or None."""
        groups = int(np.min(self.n_groups)) if np.size(self.n_groups) else 0
        return quality_flag(self.alpha, self.alpha_se, groups)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "flag": self.flag}


@dataclasses.dataclass(frozen=True, repr=False)
class StableFit(Result):
    """Maximum-likelihood fit of a symmetric α-stable law S(α, β=0, scale, loc).

    Attributes
    ----------
    alpha, scale, loc : float
        Estimates; the characteristic function is exp(i·loc·t − |scale·t|^α).
    ci : dict of str to (float, float)
        95 % confidence intervals from the observed information (``"alpha"``,
        ``"scale"``, ``"loc"``); the α interval is clipped to the fitted range [0.5, 2].
    alpha_se, scale_se, loc_se : float
        Standard errors from the observed information.
    loglik : float
        Maximised log-likelihood.
    llr : float
        Log-likelihood ratio of the stable fit against the Gaussian fit (positive: the
        stable law fits better).
    vuong_z : float
        Vuong's statistic llr / (√n · sd of the per-sample log ratios).
    p_value : float
        Two-sided p-value of Vuong's test (small: the two models are distinguishable and
        the sign of ``llr`` says which is closer).
    n : int
        Samples used (non-finite values are dropped).
    start : tuple of float
        McCulloch quantile estimate (α, scale, loc) the optimiser started from.
    at_bound : bool
        Whether α̂ sits on the edge of the fitted range [0.5, 2].
    """

    alpha: float
    scale: float
    loc: float
    ci: dict
    alpha_se: float
    scale_se: float
    loc_se: float
    loglik: float
    llr: float
    vuong_z: float
    p_value: float
    n: int
    start: tuple
    at_bound: bool

    _rows = None
    _headline = {"alpha": "alpha_se", "scale": "scale_se", "loc": "loc_se", "llr": None, "vuong_z": None,
                 "p_value": None}


@dataclasses.dataclass(frozen=True, repr=False)
class KappaFit(Result):
    """Student-t / power-law κ (q-Gaussian) fit of a tensor's entries.

    p(w) ∝ (1 + (w − loc)² / (ν scale²))^−κ with κ = (ν + 1) / 2.

    Attributes
    ----------
    kappa : float
        Tail index κ; ``inf`` when the entries look Gaussian (ν at its upper bound).
    ci : tuple of float
        95 % confidence interval of κ (observed information on log ν).
    nu, scale, loc : float
        The Student-t parameters.
    n : int
        Entries used (non-finite values dropped).
    loglik : float
        Maximised log-likelihood.
    """

    kappa: float
    ci: tuple
    nu: float
    scale: float
    loc: float
    n: int
    loglik: float

    _rows = None
    _headline = {"kappa": None, "nu": None, "scale": None, "loc": None}
