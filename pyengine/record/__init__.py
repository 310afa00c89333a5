"""Record a PyTorch training run into a trajectory file: :class:`Recorder` and its probes.

Examples
--------
>>> from pyengine.record import Recorder, EvalProbe
>>> with Recorder(model, "run.h5", optimizer=opt, probes=[EvalProbe((x_test, y_test))]) as rec:  # doctest: +SKIP
...     for x, y in loader:
...         opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step()
...         rec.step(loss)
"""

from pyengine.record._params import param_kind, select_params
from pyengine.record.probes import EvalProbe, NoiseProbe, Probe, preserved_training_state
from pyengine.record.recorder import Recorder
from pyengine.record.reduce import Sample, Sketch

__all__ = [
    "EvalProbe",
    "NoiseProbe",
    "Probe",
    "Recorder",
    "Sample",
    "Sketch",
    "param_kind",
    "preserved_training_state",
    "select_params",
]
