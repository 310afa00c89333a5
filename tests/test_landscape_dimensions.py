"""Landscape results report the madogram dimension beside the box-counting dimension (no torch)."""

import json

import numpy as np
import pytest

from pyengine import models
from pyengine.landscape import landscape_results
from pyengine.landscape._store import write_group
from pyengine.landscape.results import VARIOGRAM_ORDER, LandscapeResult, box_count_surface
from pyengine.models.surfaces import fbm_surface_exact


def _stored(path, name, loss, done=None):
    ny, nx = loss.shape
    data = {"x": np.linspace(-1, 1, nx), "y": np.linspace(-1, 1, ny), "loss": loss}
    if done is not None:
        data["done"] = done
    write_group(path, f"landscape/{name}", data, {"directions": "random"})


@pytest.fixture
def trajectory(tmp_path):
    return models.write_synthetic(tmp_path / "run.h5", "brownian", 10, 4, seed=0)


def test_variogram_beside_box_counting(trajectory):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rough = fbm_surface_exact(101, 0.3, seed=4) + 10.0   # known dimension 2.7
    grid = np.linspace(-1, 1, 101)
    bowl = np.add.outer(grid**2, 2 * grid**2)            # smooth: dimension 2
    partial = bowl.copy()
    partial[50:] = np.nan
    _stored(trajectory, "rough", rough)
    _stored(trajectory, "bowl", bowl)
    _stored(trajectory, "partial", partial, np.isfinite(partial))
    res = landscape_results(trajectory)
    assert VARIOGRAM_ORDER == 1 and res["rough"].variogram.method == "madogram"
    assert res["rough"].variogram.dimension == pytest.approx(2.7, abs=4 * res["rough"].variogram.dimension_se)
    assert res["bowl"].variogram.dimension == pytest.approx(2.0, abs=0.02)
    assert res["rough"].surface.dimension < 2.7 - 0.1   # box counting underestimates rough surfaces
    assert res["partial"].variogram is None and "incomplete" in res["partial"].note
    doc = json.loads(json.dumps(res["rough"].to_dict(), allow_nan=False))
    assert doc["variogram"]["dimension"] == pytest.approx(res["rough"].variogram.dimension)
    assert doc["variogram"]["dimension_se"] > 0 and doc["surface"]["kind"] == "surface"
    assert json.loads(json.dumps(res["partial"].to_dict(), allow_nan=False))["variogram"] is None
    fig, axes = plt.subplots(1, 2)
    res["rough"].plot(axes)
    legend = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert any(t.startswith("surface, madogram (lags 1–2): D = 2.") for t in legend)
    assert any(t.startswith("surface: D = ") for t in legend)
    res["partial"].plot(axes)
    plt.close(fig)


def test_variogram_is_computed_for_results_built_elsewhere():
    # loss_surface builds LandscapeResult from box_count_surface directly: the property still works.
    loss = fbm_surface_exact(33, 0.5, seed=1)
    done = np.ones(loss.shape, bool)
    surface, levels, note = box_count_surface(loss, done)
    res = LandscapeResult("s", np.arange(33.0), np.arange(33.0), loss, done, {}, None, None, surface, levels, note)
    assert res.variogram is res.variogram  # computed once
    assert res.variogram.dimension == pytest.approx(2.5, abs=4 * res.variogram.dimension_se)
    small = LandscapeResult("t", np.arange(8.0), np.arange(8.0), loss[:8, :8], done[:8, :8], {},
                            *[None, None], *box_count_surface(loss[:8, :8], done[:8, :8]))
    assert small.surface is None and small.variogram is None and "too small" in small.note
