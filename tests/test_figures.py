"""The figures: a key to the windows (legend up to six, colour bar above), readable ticks,
uncertainty drawn where it is known, axes limited to the data, legends off the curves."""

import dataclasses
import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import pyengine as pe  # noqa: E402
from pyengine.estimators.probes import EvalRecord  # noqa: E402
from pyengine.landscape.results import surface_levels  # noqa: E402
from pyengine.results import MAX_LEGEND_WINDOWS, readable_ticks, window_legend  # noqa: E402

BAR_LABEL = "waiting time t_w (steps)"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _analysis(n_windows: int):
    x = pe.models.brownian(40 * n_windows + 1, 12, seed=n_windows)
    loss = (x**2).mean(axis=1)
    return pe.analyze(x, window=40, lags=8, loss=loss, progress=False)


@pytest.fixture(scope="module")
def few():
    return _analysis(MAX_LEGEND_WINDOWS)


@pytest.fixture(scope="module")
def many():
    return _analysis(MAX_LEGEND_WINDOWS + 2)


#: Every per-window figure: (name, draw(results, fig) -> the axes holding the key).
PER_WINDOW = {
    "msd": lambda r, fig: r["msd"].plot(ax=fig.subplots()),
    "diffusion": lambda r, fig: r["diffusion"].plot(ax=fig.subplots(), kind="curves"),
    "beta": lambda r, fig: r["beta"].plot(ax=fig.subplots()),
    "path": lambda r, fig: r["path"].plot(ax=fig.subplots()),
    "msl": lambda r, fig: r["msl"].plot(ax=fig.subplots()),
    "increments": lambda r, fig: r["increments"].plot(ax=fig.subplots(1, 2))[0],
    "loss": lambda r, fig: r["loss"].plot(ax=fig.subplots(1, 3))[1],
}


def _colorbars(fig) -> list:
    return [a for a in fig.axes if a.get_ylabel() == BAR_LABEL]


@pytest.mark.parametrize("name", sorted(PER_WINDOW))
def test_per_window_figures_have_a_colour_bar_above_six_windows_and_a_legend_up_to_six(name, few, many):
    fig = plt.figure()
    ax = PER_WINDOW[name](many.results, fig)
    assert len(many.results["msd"].t_w) > MAX_LEGEND_WINDOWS
    (bar,) = _colorbars(fig)
    t_w = [str(t) for t in many.results["msd"].t_w]
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert 2 <= len(labels) <= 7 and set(labels) <= set(t_w) and (labels[0], labels[-1]) == (t_w[0], t_w[-1])
    assert all(a.get_legend() is None for a in fig.axes)

    fig = plt.figure()
    ax = PER_WINDOW[name](few.results, fig)
    assert len(few.results["msd"].t_w) == MAX_LEGEND_WINDOWS
    assert not _colorbars(fig)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(texts) == MAX_LEGEND_WINDOWS and texts[0].startswith("$t_w$=")


def test_window_legend_colour_bar_is_right_for_uneven_waiting_times():
    fig, ax = plt.subplots()
    t_w = [0, 10, 20, 500, 510, 5000, 20000, 90000]
    bar = window_legend(ax, t_w)
    assert bar.ax in fig.axes and len(bar.cmap.colors) == len(t_w)
    labels = [t.get_text() for t in bar.ax.get_yticklabels()]
    assert labels[0] == "0" and labels[-1] == "90k"  # the last window too, long step counts written short


def _overlaps(labels) -> list:
    boxes = [t.get_window_extent() for t in labels if t.get_visible() and t.get_text()]
    return [(a, b) for a, b in itertools.combinations(boxes, 2) if a.overlaps(b)]


def _tick_labels(ax, axis: str) -> list:
    ax.figure.canvas.draw()
    target = getattr(ax, f"{axis}axis")
    lo, hi = sorted(getattr(ax, f"get_{axis}lim")())
    ticks = [t for t in target.get_major_ticks() + target.get_minor_ticks() if lo <= t.get_loc() <= hi]
    return [t.label1 for t in ticks]


def test_msl_of_a_narrow_distance_range_has_readable_ticks():
    # Stationary weights in many dimensions: every pair is at nearly the same distance, so the
    # distance axis spans a few percent of a decade (as on a large run); its labels must not
    # crowd, and there must be some.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2000))
    res = pe.analyze(x, window=50, lags=8, loss=rng.normal(size=400) ** 2, progress=False, only=["msl"])
    r = res["msl"].r[np.isfinite(res["msl"].r)]
    assert np.log10(r.max() / r.min()) < 0.2
    fig = plt.figure(figsize=(5.4, 4.2))
    ax = res["msl"].plot(ax=fig.subplots())
    fig.tight_layout()
    for axis in "xy":
        labels = _tick_labels(ax, axis)
        assert sum(bool(t.get_text()) for t in labels) >= 2
        assert not _overlaps(labels), axis


@pytest.mark.parametrize("limits", [(30, 45), (3, 80), (0.002, 0.9), (1e-6, 1e3)])
def test_readable_ticks_never_overlap_on_log_axes(limits):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.loglog(limits, limits)
    readable_ticks(ax)
    labels = _tick_labels(ax, "x")
    assert sum(bool(t.get_text()) for t in labels) >= 2 and not _overlaps(labels)


def test_step_axes_of_long_runs_have_short_labels():
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 12_500, 175_000], [1, 2, 3])
    readable_ticks(ax)
    labels = _tick_labels(ax, "x")
    assert not _overlaps(labels) and any(t.get_text().endswith("k") for t in labels)


def test_exponents_figure_has_tau0_in_its_legend_and_shows_why_t0_is_undefined():
    x = pe.models.brownian(400 * 8 + 1, 12, seed=8)
    msd = pe.msd(x, window=400, lags=30, progress=False)
    # Just below the best whole-window RMSE: no t0, but τ0 where a late range fits better.
    fit = pe.fit_diffusion(msd, threshold=0.99 * np.nanmin(pe.fit_diffusion(msd).rmse))
    assert fit.t0 is None and fit.t0_reason and np.isfinite(fit.tau0).any()
    fig, ax = plt.subplots()
    fit.plot(ax=ax, kind="exponents")
    fig.tight_layout()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("τ0") for t in texts) and any(t.startswith("α2") for t in texts)
    assert "t0: –" in ax.get_title() and fit.t0_reason[:20] in ax.get_title().replace("\n", " ")
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().y1 <= ax.get_window_extent().y0  # below the axes

    fit = pe.fit_diffusion(msd, threshold=1.0)  # every window qualifies
    fig, ax = plt.subplots()
    fit.plot(ax=ax, kind="exponents")
    assert f"t0 = {fit.t0}" in ax.get_title() and any(f"t0 = {fit.t0}" == t.get_text()
                                                         for t in ax.get_legend().get_texts())


def test_exponent_error_bars_are_the_standard_errors_of_the_table(few):
    fit = few.results["diffusion"]
    fig, ax = plt.subplots()
    fit.plot(ax=ax, kind="exponents")
    container = ax.containers[0]  # α (whole window), fits that pass the rule
    ok = np.array([w.whole.ok for w in fit.windows])
    segments = container.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segments], 2 * fit.alpha_se[ok], rtol=1e-9)


def test_distribution_y_axis_stays_within_the_measured_densities(few):
    tails = few.results["tails"]
    fig, ax = plt.subplots()
    tails.plot(ax=ax, kind="distribution")
    densities = np.concatenate([c.lines[0].get_ydata() for c in ax.containers])
    low, high = ax.get_ylim()
    assert densities.min() / 20 <= low <= densities.min() and densities.max() <= high <= densities.max() * 5


def test_spectrum_band_is_positive_and_within_a_few_decades_of_the_mean(few):
    inc = few.results["increments"]
    low, high = inc.spectrum_band()
    assert (low > 0).all() and (low <= inc.power_mean).all() and (inc.power_mean <= high).all()
    # Even when the coordinates' powers scatter 100 times their mean, the band stays close.
    wild = dataclasses.replace(inc, power_sd=100 * inc.power_mean)
    low, high = wild.spectrum_band()
    assert (low > 0).all() and np.log10(high / low).max() < 3
    fig, ax = plt.subplots()
    wild.plot(ax=ax, kind="spectrum")
    bottom, top = ax.get_ylim()
    assert np.log10(top / bottom) < np.log10(inc.power_mean.max() / inc.power_mean.min()) + 4


def test_landscape_colour_scale_resolves_the_basin():
    x = np.linspace(-1, 1, 41)
    bowl = 0.01 + 270 * np.add.outer(x**2, x**2) ** 2
    levels, norm, scale = surface_levels(bowl.ravel())
    assert scale == "log"
    # At least a quarter of the colour bands lie in the bottom 1 % of the loss range.
    assert (levels < bowl.min() + 0.01 * np.ptp(bowl)).sum() >= len(levels) // 4
    assert surface_levels(np.linspace(-1, 1, 100))[2] == "linear"
    assert surface_levels(np.r_[np.zeros(95), np.linspace(50, 100, 5)] - 1)[2] == "quantile"


def test_evaluation_legend_is_outside_the_curves():
    steps = np.arange(0, 1000, 50)
    rec = EvalRecord(steps, {"train": np.exp(-steps / 200), "test": np.exp(-steps / 300) + 0.1},
                     {"train": 1 - np.exp(-steps / 100), "test": 0.9 - np.exp(-steps / 150)})
    fig, ax = plt.subplots()
    rec.plot(ax=ax)
    fig.tight_layout()
    fig.canvas.draw()
    legend = ax.get_legend()
    assert len(legend.get_texts()) == 4
    assert legend.get_window_extent().y1 <= ax.get_window_extent().y0
