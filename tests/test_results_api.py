"""Results in Python: short reprs, summary tables, _repr_html_, and the pandas and xarray exports.

Every result type is built from small synthetic data (a 16-parameter random walk of 1201
snapshots in six windows of 200 steps); the exports are checked against the arrays they
come from.
"""

import dataclasses
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import pyengine as pe
from pyengine.estimators.probes import EvalRecord, NoiseRecord
from pyengine.landscape.results import HessianResult, LandscapeResult, box_count_surface
from pyengine.models.surfaces import fbm_surface_exact
from pyengine.results import TIDY_COLUMNS

WINDOWS = 6
#: Most lines and characters of a result's repr.
MAX_LINES, MAX_CHARS = 15, 1500
WINDOWED = ("msd", "diffusion", "beta", "msl", "path", "increments", "tails", "loss")
SINGLE = ("tail_index", "stable", "kappa", "boxcount", "variogram")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1201, 16)).cumsum(axis=0)
    return x, np.sin(x[:, 0] / 5) + 0.1 * x[:, 1], rng


@pytest.fixture(scope="module")
def results(data):
    x, loss, rng = data
    msd = pe.msd(x, window=200, lags=12)
    surface = fbm_surface_exact(64, 0.5, seed=1)
    return {
        "msd": msd,
        "diffusion": pe.fit_diffusion(msd),
        "beta": pe.log_derivative(msd, method="local"),
        "msl": pe.msl(x, loss=loss, window=200, bins=12),
        "path": pe.path_geometry(x, window=200, bins=12),
        "increments": pe.increments(x, window=200),
        "tails": pe.increment_tails(x, window=200),
        "loss": pe.loss_stats(loss, window=200),
        "tail_index": pe.tail_index(rng.standard_cauchy(4000), k1="grid"),
        "stable": pe.fit_levy_stable(rng.standard_cauchy(1000)),
        "kappa": pe.fit_kappa(rng.standard_t(3, 2000)),
        "boxcount": pe.boxcount(surface, kind="surface"),
        "variogram": pe.variogram_dimension(surface),
    }


@pytest.fixture(scope="module")
def analysis(data):
    x, loss, _ = data
    return pe.analyze(x, window=200, lags=12, loss=loss, progress=False)


def expected_quantities(name, r):
    """Every quantity of the tidy table of result ``name`` and the array it must hold."""
    return {
        "msd": lambda: {"msd": r.msd, "nonaveraged": r.nonaveraged},
        "diffusion": lambda: {"alpha": r.alpha, "alpha1": r.alpha1, "alpha2": r.alpha2, "tau0": r.tau0,
                              "rmse": r.rmse},
        "beta": lambda: {"beta": r.beta},
        "msl": lambda: {"exponent": r.exponent, "msl": r.msl},
        "path": lambda: {"lam_below": r.lam[:, 0], "lam_above": r.lam[:, 1], "fractal_dim_below": r.fractal_dim[:, 0],
                         "fractal_dim_above": r.fractal_dim[:, 1], "transverse_exponent": r.transverse_exponent,
                         "crossover": r.crossover, "dr2": r.dr2, "transverse_h": r.transverse_h,
                         "explained": r.explained},
        "increments": lambda: {"spectral_slope": r.spectral_slope, "n_moving": r.n_moving,
                               "power_mean": r.power_mean, "power_sd": r.power_sd, "acf_mean": r.acf_mean,
                               "acf_sd": r.acf_sd},
        "tails": lambda: {"alpha": r.alpha, "stable_alpha": r.stable_alpha},
        "loss": lambda: {"abs_dloss_mean": r.abs_dloss_mean, "abs_dloss_std": r.abs_dloss_std, "loss": r.loss,
                         "abs_dloss_windows": r.abs_dloss_windows, "moving_var": r.moving_var},
        "tail_index": lambda: {"alpha": r.alpha, "alpha_by_k1": r.alpha_by_k1, "inv_alpha_by_k1": r.inv_alpha_by_k1,
                               "n_degenerate": r.n_degenerate, "n_truncated": r.n_truncated},
        "stable": lambda: {k: getattr(r, k) for k in ("alpha", "scale", "loc", "llr", "vuong_z", "p_value")},
        "kappa": lambda: {k: getattr(r, k) for k in ("kappa", "nu", "scale", "loc")},
        "boxcount": lambda: {"dimension": r.dimension, "counts": r.counts},
        "variogram": lambda: {"dimension": r.dimension, "hurst": r.hurst, "log_values": r.log_values},
    }[name]()


def array_fields(r):
    return [f.name for f in dataclasses.fields(r) if isinstance(getattr(r, f.name), np.ndarray)]


# -- repr -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WINDOWED + SINGLE)
def test_repr_is_short_and_names_shapes_and_windows(results, name):
    r = results[name]
    text = repr(r)
    assert len(text.splitlines()) <= MAX_LINES and len(text) <= MAX_CHARS, text
    assert text.startswith(type(r).__name__)
    for field in array_fields(r)[:1]:  # the α-stable and κ fits hold no arrays
        value = getattr(r, field)
        assert f"{field}: {value.shape} {value.dtype}" in text
    if name in WINDOWED:
        t_w = r.t_w
        window = ", window 200" if hasattr(r, "window") else ""  # β keeps no window length
        assert f"{WINDOWS} windows, t_w {t_w[0]} … {t_w[-1]}{window}" in text.splitlines()[0]


def test_repr_gives_headline_numbers_with_se_and_flags(results):
    fit = results["diffusion"]
    text = repr(fit)
    line = next(l for l in text.splitlines() if l.strip().startswith("alpha "))
    assert f"{fit.alpha[0]:.4g} ± {fit.alpha_se[0]:.2g}" in line
    tails = repr(results["tails"])
    flagged = sum(t.flag is not None for t in results["tails"].tail)
    assert (f"{flagged} of {WINDOWS} flagged" in tails) == (flagged > 0)
    single = repr(results["tail_index"])
    assert f"alpha = {results['tail_index'].alpha:.4g} ± " in single


def test_repr_before_was_long_and_now_is_short(results):
    """IncrementsResult's arrays are no longer printed: the repr does not grow with them."""
    r = results["increments"]
    assert r.power_mean.size > 500
    assert len(repr(r)) < 800 and str(r.power_mean[0, 0])[:6] not in repr(r)


# -- summary ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WINDOWED + SINGLE)
def test_summary_has_one_row_per_window(results, name):
    r = results[name]
    table = r.summary()
    assert isinstance(table, pd.DataFrame)
    if name in WINDOWED:
        assert len(table) == WINDOWS
        np.testing.assert_array_equal(table["t_w"], r.t_w)
    else:
        assert len(table) == 1 and "t_w" not in table


def test_summary_columns_are_headline_numbers_se_words_and_flags(results):
    fit = results["diffusion"]
    table = fit.summary()
    assert list(table.columns) == ["t_w", "alpha", "alpha_se", "alpha1", "alpha1_se", "alpha2", "alpha2_se", "tau0",
                                   "rmse", "regime1", "regime2", "flag"]
    np.testing.assert_array_equal(table["alpha_se"], fit.alpha_se)
    assert list(table["regime2"]) == [w.regime_late for w in fit.windows]
    for flag, w in zip(table["flag"], fit.windows):
        reasons = [f for f in (w.whole.flag, w.early.flag, w.late.flag, w.reason) if f]
        assert pd.isna(flag) == (not reasons)
        assert all(reason in flag for reason in reasons)
    path = results["path"].summary()
    assert {"lam_below", "lam_below_se", "lam_above", "fractal_dim_above_se", "crossover"} <= set(path.columns)
    np.testing.assert_array_equal(path["lam_above"], results["path"].lam[:, 1])


def test_summary_missing_values_are_nan(results):
    tails = dataclasses.replace(results["tails"], stable=None)
    table = tails.summary()
    assert table["stable_alpha"].isna().all() and table["stable_alpha_se"].isna().all()


# -- to_pandas --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WINDOWED + SINGLE)
def test_to_pandas_rows_are_what_the_arrays_hold(results, name):
    r = results[name]
    table = r.to_pandas()
    assert tuple(table.columns) == TIDY_COLUMNS
    expected = expected_quantities(name, r)
    assert set(table["quantity"]) == set(expected)
    assert len(table) == sum(np.size(v) for v in expected.values())
    for quantity, values in expected.items():
        got = table.loc[table["quantity"] == quantity, "value"].to_numpy()
        np.testing.assert_array_equal(got, np.ravel(values).astype(np.float64), err_msg=quantity)
    assert (table["statistic"] == type(r).__name__).all()


def test_to_pandas_msd_is_long_by_window_and_lag(results):
    r = results["msd"]
    table = r.to_pandas()
    msd = table[table["quantity"] == "msd"]
    w, l = r.msd.shape
    assert len(msd) == w * l
    np.testing.assert_array_equal(msd["t_w"], np.repeat(r.t_w, l))
    np.testing.assert_array_equal(msd["x"], np.tile(r.lags, w))
    np.testing.assert_array_equal(msd["n"], r.counts.ravel())
    assert (msd["x_name"] == "lag").all() and msd["se"].isna().all() and msd["flag"].isna().all()


def test_to_pandas_carries_x_se_n_and_flags(results):
    msl = results["msl"].to_pandas()
    curve = msl[msl["quantity"] == "msl"]
    np.testing.assert_array_equal(curve["x"], results["msl"].r.ravel())
    np.testing.assert_array_equal(curve["se"], results["msl"].msl_se.ravel())
    assert (curve["x_name"] == "r").all()
    beta = results["beta"].to_pandas()
    np.testing.assert_array_equal(beta["se"], results["beta"].beta_se.ravel())
    np.testing.assert_array_equal(beta["x"], np.tile(results["beta"].tau, WINDOWS))
    fit = results["diffusion"]
    alpha2 = fit.to_pandas().query("quantity == 'alpha2'")
    np.testing.assert_array_equal(alpha2["se"], fit.alpha2_se)
    assert [None if pd.isna(f) else f for f in alpha2["flag"]] == [w.late.flag for w in fit.windows]
    assert alpha2["x"].isna().all()
    increments = results["increments"].to_pandas().query("quantity == 'power_mean'")
    np.testing.assert_array_equal(increments["x"], np.tile(results["increments"].freqs, WINDOWS))
    tail = results["tail_index"].to_pandas().query("quantity == 'alpha_by_k1'")
    np.testing.assert_array_equal(tail["x"], results["tail_index"].k1)
    np.testing.assert_array_equal(tail["n"], results["tail_index"].n_groups)


# -- to_xarray --------------------------------------------------------------------------------

#: Result, variable, dims, coordinates (name: attribute of the result) of its curves.
CURVES = [
    ("msd", "msd", ("t_w", "lag"), {"t_w": "t_w", "lag": "lags"}),
    ("msd", "counts", ("t_w", "lag"), {}),
    ("beta", "beta", ("t_w", "tau"), {"tau": "tau"}),
    ("beta", "beta_se", ("t_w", "tau"), {}),
    ("increments", "power_mean", ("t_w", "freq"), {"freq": "freqs"}),
    ("increments", "acf_mean", ("t_w", "lag"), {"lag": "lags"}),
    ("msl", "msl", ("t_w", "bin"), {"r": "r"}),
    ("msl", "msl_se", ("t_w", "bin"), {}),
    ("path", "dr2", ("t_w", "bin"), {"ds": "ds"}),
    ("path", "transverse_h", ("t_w", "tlag"), {"tlag": "transverse_lags", "transverse_dr": "transverse_dr"}),
    ("loss", "loss", ("step",), {"step": "steps"}),
    ("loss", "moving_var", ("var_step",), {"var_step": "var_steps"}),
    ("tail_index", "alpha_by_k1", ("k1",), {"k1": "k1"}),
    ("boxcount", "counts", ("size",), {"size": "sizes"}),
    ("variogram", "log_values", ("lag",), {"lag": "lags"}),
    ("variogram", "pairs", ("lag",), {}),
]


@pytest.mark.parametrize("name, var, dims, coords", CURVES)
def test_to_xarray_curves_have_dims_coords_and_values(results, name, var, dims, coords):
    r = results[name]
    ds = r.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert ds[var].dims == dims
    np.testing.assert_array_equal(ds[var].values, getattr(r, var))
    for coord, field in coords.items():
        np.testing.assert_array_equal(ds[var][coord].values, getattr(r, field))


def test_to_xarray_headline_numbers_and_bins(results):
    fit = results["diffusion"].to_xarray()
    assert fit["alpha"].dims == ("t_w",) and fit.sizes["t_w"] == WINDOWS
    np.testing.assert_array_equal(fit["alpha_se"], results["diffusion"].alpha_se)
    assert list(fit["alpha2_flag"].values) == [w.late.flag or "" for w in results["diffusion"].windows]
    path = results["path"].to_xarray()
    assert path["lam"].dims == ("t_w", "range") and list(path["range"].values) == ["below", "above"]
    np.testing.assert_array_equal(path["lam"], results["path"].lam)
    msl = results["msl"]
    ds = msl.to_xarray()
    np.testing.assert_array_equal(ds["bin_lo"], msl.edges[:-1])
    np.testing.assert_array_equal(ds["bin_hi"], msl.edges[1:])
    assert ds.attrs["window"] == 200 and ds.attrs["statistic"] == "MSLResult"
    single = results["tail_index"].to_xarray()
    assert single["alpha"].dims == () and float(single["alpha"]) == results["tail_index"].alpha


# -- HTML -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ("msd", "boxcount"))
def test_repr_html_escapes_settings(results, name):
    r = dataclasses.replace(results[name], settings={"note": "<script>alert(1)</script>"})
    page = r._repr_html_()
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert page.startswith("<div") and page.endswith("</div>")


def test_repr_html_has_the_summary_table(results):
    fit = results["diffusion"]
    page = fit._repr_html_()
    assert page.count("<tr>") == WINDOWS + 1
    assert f"{fit.alpha[0]:.4g} ± {fit.alpha_se[0]:.2g}" in page


# -- records read from a run file (built here from arrays) ------------------------------------


def test_probe_records_hessian_and_landscape():
    steps = np.arange(0, 500, 50)
    noise = NoiseRecord(steps, np.linspace(1.5, 1.9, 10), np.ones(10), np.ones(10))
    assert repr(noise).splitlines()[0] == "NoiseRecord: 10 steps, 0 … 450"
    assert list(noise.summary().columns) == ["step", "alpha"] and len(noise.summary()) == 10
    assert len(noise.to_pandas()) == 30 and noise.to_xarray()["alpha"].dims == ("step",)
    evals = EvalRecord(steps, {"test": np.ones(10)}, {"test": np.zeros(10)})
    assert set(evals.to_pandas()["quantity"]) == {"losses_test", "accuracies_test"}
    assert evals.to_xarray()["losses_test"].dims == ("step",)
    hessian = HessianResult(steps[:3], np.arange(12.0).reshape(3, 4))
    ds = hessian.to_xarray()
    assert ds["eigenvalues"].dims == ("step", "rank") and "residuals" not in ds
    assert len(hessian.to_pandas()) == 12
    z = fbm_surface_exact(16, 0.5, seed=2)
    surface, levels, note = box_count_surface(z, np.ones(z.shape, bool))
    land = LandscapeResult("final", np.linspace(-1, 1, 16), np.linspace(-1, 1, 16), z, np.ones(z.shape, bool), {},
                           surface=surface, level_sets=levels, note=note)
    assert len(repr(land).splitlines()) <= MAX_LINES
    assert land.to_xarray()["loss"].dims == ("d2", "d1")
    assert len(land.summary()) == 1 and len(land.to_pandas()) == 2 + z.size


# -- Analysis ---------------------------------------------------------------------------------


def test_analysis_repr_is_short(analysis):
    text = repr(analysis)
    assert len(text.splitlines()) <= 40 and len(text) <= 4000, text
    assert "backend" in text and f"{WINDOWS} × 200 steps, t_w 0 … 1000" in text
    for key in analysis.results:
        assert any(line.strip().startswith(key) for line in text.splitlines()), key
    assert "skipped windows: 1 snapshot(s)" in text


def test_analysis_summary_concatenates_headline_tables(analysis):
    table = analysis.summary()
    assert table.columns[0] == "statistic"
    assert set(table["statistic"]) == {"diffusion", "path", "msl", "increments", "tails", "loss"}
    for key, rows in table.groupby("statistic"):
        assert len(rows) == WINDOWS
        np.testing.assert_array_equal(rows["t_w"], analysis[key].t_w)
    diffusion = table[table["statistic"] == "diffusion"]
    np.testing.assert_array_equal(diffusion["alpha"], analysis["diffusion"].alpha)


def test_analysis_to_pandas_holds_every_result(analysis):
    table = analysis.to_pandas()
    assert tuple(table.columns) == TIDY_COLUMNS
    counts = table.groupby("statistic").size()
    assert dict(counts) == {k: len(v.to_pandas()) for k, v in analysis.results.items()}


def test_analysis_html_escapes(analysis):
    page = dataclasses.replace(analysis, skipped={"msl": "no loss <b>here</b>"})._repr_html_()
    assert "no loss &lt;b&gt;here&lt;/b&gt;" in page and "<b>here" not in page
    assert all(key in page for key in analysis.results)


# -- optional dependencies --------------------------------------------------------------------


@pytest.mark.parametrize("module, call", [("pandas", "summary"), ("pandas", "to_pandas"), ("xarray", "to_xarray")])
def test_missing_optional_dependency_says_how_to_install(results, monkeypatch, module, call):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=f"pip install {module}"):
        getattr(results["msd"], call)()


def test_to_xarray_of_grouped_results_has_a_group_dimension():
    """Whole model first, then each group; each group's slice is that group's own dataset
    (bins that differ between groups are aligned, NaN where a group has none)."""
    from pyengine.results import WHOLE_MODEL

    x = np.random.default_rng(0).standard_normal((600, 64)).cumsum(0).astype(np.float32)
    loss = np.exp(-np.arange(600) / 200) + 0.01 * np.random.default_rng(1).standard_normal(600)
    analysis = pe.analyze(x, window=300, loss=loss, groups={"a": slice(0, 32), "b": slice(32, 64)}, progress=False)
    for name in ("msd", "msl", "increments"):
        result = analysis[name]
        ds = result.to_xarray()
        assert list(ds.group.values) == [WHOLE_MODEL, "a", "b"]
        assert all(ds[v].dims[0] == "group" for v in ds.data_vars)
        for label, own in [(WHOLE_MODEL, result), *result.groups.items()]:
            alone = own.to_xarray() if label != WHOLE_MODEL else result._dataset(xr)
            for v in alone.data_vars:
                got = ds[v].sel(group=label).sel({d: alone[v][d] for d in alone[v].dims})
                np.testing.assert_array_equal(got.values, alone[v].values, err_msg=f"{name}.{v}[{label}]")
