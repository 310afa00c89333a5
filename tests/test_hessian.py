"""Hessian top-k eigenvalues by Lanczos, against dense eigendecompositions."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch.func import functional_call  # noqa: E402

from pyengine.landscape import (  # noqa: E402
    HessianProbe,
    hessian_result,
    hessian_spectrum,
    hessian_topk,
    hessian_vector_product,
    lanczos_topk,
)
from pyengine.record import Recorder  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")

def _mlp(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).to(dtype)


def _data(seed=0, n=64, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, generator=gen, dtype=dtype), torch.randint(0, 4, (n,), generator=gen)


def exact_hessian(model, data) -> np.ndarray:
    """The whole P × P Hessian of the cross-entropy, in the order of ``named_parameters()``."""
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    sizes = [p.numel() for p in params]

    def loss(flat):
        parts = {n: c.view_as(p) for n, c, p in zip(names, flat.split(sizes), params)}
        return F.cross_entropy(functional_call(model, parts, (data[0],)), data[1])

    return torch.autograd.functional.hessian(loss, torch.cat([p.reshape(-1) for p in params]), vectorize=True).numpy()


def _dense_eigenvalues(model, data):
    return np.linalg.eigvalsh(exact_hessian(model, data))[::-1]


def test_lanczos_matches_dense_hessian():
    model, data = _mlp(), _data()
    dense = _dense_eigenvalues(model, data)
    p = sum(q.numel() for q in model.parameters())
    lanczos = hessian_topk(model, F.cross_entropy, data, k=20)  # at most 4k + 40 = 120 < P = 244 products
    assert p == 244
    assert np.max(np.abs(lanczos - dense[:20]) / np.abs(dense[:20])) <= 1e-4


def test_hessian_vector_product_over_batches():
    model, data = _mlp(), _data()
    params = list(model.parameters())
    v = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    whole = hessian_vector_product(model, F.cross_entropy, data, params, batch_size=64)(v)
    batched = hessian_vector_product(model, F.cross_entropy, data, params, batch_size=24)(v)
    torch.testing.assert_close(batched, whole, rtol=1e-10, atol=1e-12)


def test_lanczos_finds_repeated_eigenvalues():
    vals = torch.tensor([5.0, 5.0, 5.0, 3.0, 2.0] + [0.0] * 45, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(50, 50, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    a = q @ torch.diag(vals) @ q.T
    out = lanczos_topk(lambda v: a @ v, 50, k=5)
    np.testing.assert_allclose(out.eigenvalues, [5, 5, 5, 3, 2], atol=1e-10)
    assert out.residuals.max() < 1e-8


def test_lanczos_checks_arguments():
    with pytest.raises(ValueError, match="k must be in"):
        lanczos_topk(lambda v: v, 5, k=6)
    with pytest.raises(ValueError, match="iters must be in"):
        lanczos_topk(lambda v: v, 50, k=5, iters=3)


def test_hessian_leaves_model_state():
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.BatchNorm1d(8), torch.nn.Dropout(0.5),
                                torch.nn.Linear(8, 4)).double().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    eig = hessian_topk(model, F.cross_entropy, _data(), k=3)
    assert eig.shape == (3,) and eig[0] >= eig[1] >= eig[2]
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_probe_in_recorder_and_spectrum_at_snapshots(tmp_path):
    model, (x, y) = _mlp(dtype=torch.float32), _data(dtype=torch.float32)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "run.h5"
    probe = HessianProbe((x[:32], y[:32]), k=4, every=3, iters=20)
    with Recorder(model, path, optimizer=opt, probes=[probe]) as rec:
        for _ in range(6):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            rec.step(loss)
    res = hessian_result(path)
    assert res.steps.tolist() == [3, 6] and res.eigenvalues.shape == (2, 4)
    assert res.settings["k"] == 4 and res.settings["method"] == "lanczos"
    assert np.all(np.diff(res.eigenvalues, axis=1) <= 0)
    # the same spectrum from the stored snapshot (recorded float32 weights, same data and seed)
    again = hessian_spectrum(model, F.cross_entropy, (x[:32], y[:32]), path, [5], k=4, iters=20)
    np.testing.assert_allclose(again.eigenvalues[0], res.eigenvalues[1], rtol=1e-4)
    assert hessian_result(path).steps.tolist() == [6]
    assert res.to_dict()["k"] == 4


def test_hessian_result_absent(tmp_path):
    from pyengine.store import write_trajectory

    path = write_trajectory(tmp_path / "t.h5", np.zeros((3, 4)))
    assert hessian_result(path) is None
