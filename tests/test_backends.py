"""The backends behind one seam: NumPy (cpu), MLX (mlx), CuPy (cuda).

1. Every backend offers the whole interface that NumpyBackend defines.
2. The primitives that libraries spell or check differently (indexing, scatter, windows,
   0-d reductions, masks, bounds) give NumPy's answers on every device.
3. The same MLP, same weights, same batches, trained with SGD on every available device,
   gives the same losses (float32 tolerance).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import smolgrad as sg
from smolgrad import dtypes as dt
from smolgrad.arrays import get_backend
from smolgrad.arrays.numpy_backend import NumpyBackend

AVAILABLE = [d for d in ("cpu", "mlx", "cuda") if sg.is_available(d)]


def _interface() -> set:
    """Public names of the backend interface: NumpyBackend's methods and library functions."""
    methods = {n for n, _ in inspect.getmembers(NumpyBackend, inspect.isfunction)
               if not n.startswith("_")}
    return methods | set(NumpyBackend.LIBRARY_FUNCTIONS)


def _np(a) -> np.ndarray:
    """A backend array as NumPy (float32 for bfloat16)."""
    for name in AVAILABLE:
        b = get_backend(name)
        if b.is_array(a):
            return b.to_numpy(a)
    return np.asarray(a)


# -- 1. the interface ---------------------------------------------------------------------


def test_every_backend_offers_the_whole_interface(device):
    b = get_backend(device)
    missing = sorted(n for n in _interface() if not callable(getattr(b, n, None)))
    assert not missing, f"backend {b!r} lacks {missing}"
    assert isinstance(getattr(b, "lazy", False), bool)
    assert b.device == device


def test_cupy_backend_imports_lazily_and_explains_what_is_missing():
    """The module imports without CuPy; constructing the backend says what to install."""
    from smolgrad.arrays import cupy_backend

    assert issubclass(cupy_backend.CupyBackend, NumpyBackend)
    if "cuda" in AVAILABLE:
        pytest.skip("CuPy and a GPU are present")
    with pytest.raises(RuntimeError, match="cuda.*cupy.*NVIDIA GPU"):
        cupy_backend.CupyBackend()
    assert sg.is_available("cuda") is False


# -- 2. primitives that libraries spell or check differently ------------------------------


def test_dtype_round_trip(device):
    b = get_backend(device)
    for d in (dt.bool_, dt.int32, dt.int64, dt.float16, dt.float32, dt.float64,
              dt.bfloat16):
        if (d is dt.bfloat16 and not b.has_bfloat16) or (d is dt.float64 and not b.has_float64):
            with pytest.raises(TypeError, match=device):
                b.native(d)
            continue
        a = b.asarray([0, 1, 2], d)
        assert b.dtype_of(a) is d
        assert sg.tensor([1, 0], dtype=d, device=device).dtype is d


def test_asarray_keeps_numpy_dtypes_and_copies(device):
    b = get_backend(device)
    host = np.array([1.5, 2.5])
    a = b.asarray(host)
    if b.has_float64:
        assert b.dtype_of(a) is dt.float64
    assert b.dtype_of(b.asarray(np.arange(3))) is dt.int64
    assert b.dtype_of(b.asarray(np.zeros((0, 3), bool))) is dt.bool_
    assert _np(b.all(b.asarray(np.zeros((0, 3), bool)))) == np.True_  # empty: all() is True


def test_setitem_and_index_add_return_new_arrays(device):
    b = get_backend(device)
    x = b.asarray(np.zeros((3, 4), np.float32))
    idx = b.asarray(np.array([0, 2, 0]))
    y = b.setitem(x, (idx, slice(1, 3)), 5.0)
    z = b.index_add(x, (idx,), b.asarray(np.ones((3, 4), np.float32)))
    assert not _np(x).any(), "the input array was mutated"
    expected = np.zeros((3, 4), np.float32)
    expected[[0, 2, 0], 1:3] = 5.0
    np.testing.assert_array_equal(_np(y), expected)
    np.testing.assert_array_equal(_np(z)[:, 0], [2.0, 0.0, 1.0])  # repeats accumulate


def test_index_add_for_every_dtype(device):
    b = get_backend(device)
    for d in (dt.int32, dt.int64, dt.float32):
        x = b.zeros((4,), d)
        out = b.index_add(x, (b.asarray(np.array([1, 1, 3])),), b.asarray([2, 3, 4], d))
        np.testing.assert_array_equal(_np(out), [0, 5, 0, 4])


def test_bool_masks_and_mixed_advanced_indexing(device):
    host = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = sg.tensor(host, device=device)
    mask = host > 10
    np.testing.assert_array_equal(x[sg.tensor(mask, device=device)].numpy(), host[mask])
    rows = sg.tensor([0, 2], device=device)
    np.testing.assert_array_equal(x[:, rows, 1:].numpy(), host[:, [0, 2], 1:])
    np.testing.assert_array_equal(x[1, ..., sg.tensor([-1, 0], device=device)].numpy(),
                                  host[1, ..., [-1, 0]])
    y = x.clone()
    y[sg.tensor(mask, device=device)] = 0.0
    np.testing.assert_array_equal(y.numpy(), np.where(mask, 0, host))


def test_out_of_bounds_indices_raise(device):
    """NumPy raises; MLX would read past the end and CuPy would wrap: all must raise."""
    x = sg.zeros(2, 3, device=device)
    with pytest.raises(IndexError, match="out of bounds"):
        x[2]
    with pytest.raises(IndexError, match="out of bounds"):
        x[-3]
    with pytest.raises(IndexError, match="out of bounds"):
        x[:, sg.tensor([0, 3], device=device)]
    with pytest.raises(IndexError, match="out of bounds"):
        x.gather(1, sg.tensor([[0, 5]], device=device))


def test_scatter_add_and_gather_match_numpy(device):
    b = get_backend(device)
    index = np.array([[0, 2, 2], [1, 1, 0]])
    src = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = b.scatter_add(b.zeros((3, 3), dt.float32), 0, b.asarray(index), b.asarray(src))
    expected = np.zeros((3, 3), np.float32)
    for i in range(2):
        for j in range(3):
            expected[index[i, j], j] += src[i, j]
    np.testing.assert_array_equal(_np(out), expected)
    got = b.take_along_axis(b.asarray(expected), b.asarray(index), 0)
    np.testing.assert_array_equal(_np(got), np.take_along_axis(expected, index, 0))


def test_sliding_windows_match_numpy(device):
    b = get_backend(device)
    host = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    x = b.transpose(b.asarray(host), (0, 2, 1))  # a non-contiguous input
    got = b.sliding_windows(x, (2, 3), (1, 2))
    want = np.lib.stride_tricks.sliding_window_view(host.transpose(0, 2, 1), (2, 3),
                                                    axis=(1, 2))
    np.testing.assert_array_equal(_np(got), want)


def test_reductions_of_0d_arrays_and_index_dtypes(device):
    """NumPy lets axis 0 mean "everything" on a 0-d array; arg-reductions give int64."""
    b = get_backend(device)
    s = b.asarray(np.float32(3.0))
    for name in ("sum", "prod", "max", "min", "any", "all"):
        assert _np(getattr(b, name)(s, axis=0)) == _np(getattr(np, name)(np.float32(3.0)))
    np.testing.assert_array_equal(_np(b.cumsum(s, axis=0)), [3.0])
    m = b.asarray(np.array([[1.0, 5.0, 2.0]], np.float32))
    assert b.dtype_of(b.argmax(m, axis=1)) is dt.int64
    assert b.dtype_of(b.argmin(m, axis=1)) is dt.int64
    np.testing.assert_array_equal(_np(b.argmax(m, axis=1)), [1])


def test_logsumexp_nonzero_xor_erf_round_int_matmul(device):
    b = get_backend(device)
    x = b.asarray(np.array([[-np.inf, -np.inf], [1000.0, 1000.0]], np.float32))
    np.testing.assert_allclose(_np(b.logsumexp(x, 1)), [-np.inf, 1000 + np.log(2)], rtol=1e-6)
    nz = b.nonzero(b.asarray(np.array([[0, 3], [4, 0]])))
    assert [_np(i).tolist() for i in nz] == [[0, 1], [1, 0]]
    t, f = b.asarray(np.array([True, False])), b.asarray(np.array([True, True]))
    np.testing.assert_array_equal(_np(b.logical_xor(t, f)), [False, True])
    v = b.asarray(np.array([-1.0, 0.3, 2.0], np.float32))
    np.testing.assert_allclose(_np(b.erf(v)), [-0.8427008, 0.3286268, 0.9953223], rtol=1e-5)
    np.testing.assert_array_equal(_np(b.round(b.asarray(np.array([0.5, 1.5, 2.5])))),
                                  [0.0, 2.0, 2.0])  # half to even, as NumPy and PyTorch
    ai = np.array([[1, 2], [3, 4]], np.int64)
    np.testing.assert_array_equal(_np(b.matmul(b.asarray(ai), b.asarray(ai))), ai @ ai)
    np.testing.assert_array_equal(_np(b.matmul(b.asarray(ai[0]), b.asarray(ai))), ai[0] @ ai)


def test_same_seed_same_numbers(device):
    sg.manual_seed(123)
    a = sg.randn(5, device=device).numpy()
    sg.manual_seed(123)
    b = sg.randn(5, device=device).numpy()
    np.testing.assert_array_equal(a, b)
    if device == "mlx":  # documented: MLX draws with NumPy's generator, like cpu
        sg.manual_seed(123)
        np.testing.assert_array_equal(sg.randn(5).numpy(), a)


# -- 3. the same training on every backend ------------------------------------------------


def _train_mlp(device: str, steps: int = 10) -> tuple:
    """A 2-layer MLP trained with plain SGD written in tensor ops; returns (losses, W1)."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.5, (4, 16)).astype(np.float32)
    b1 = np.zeros(16, np.float32)
    w2 = rng.normal(0, 0.5, (16, 3)).astype(np.float32)
    b2 = np.zeros(3, np.float32)
    params = [sg.tensor(p, device=device, requires_grad=True) for p in (w1, b1, w2, b2)]
    losses = []
    for _ in range(steps):
        xb = sg.tensor(rng.normal(size=(8, 4)).astype(np.float32), device=device)
        yb = sg.tensor(rng.integers(0, 3, 8), device=device)
        h = (xb @ params[0] + params[1]).relu()
        logits = h @ params[2] + params[3]
        logp = logits.log_softmax(dim=1)
        loss = -logp.gather(1, yb.unsqueeze(1)).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with sg.no_grad():
            for p in params:
                p -= 0.1 * p.grad
        losses.append(loss.item())
    return np.array(losses), params[0].detach().numpy()


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs two backends")
def test_same_mlp_same_losses_on_every_backend():
    ref_losses, ref_w1 = _train_mlp("cpu")
    assert ref_losses[-1] < ref_losses[0], "the reference run did not learn"
    for device in AVAILABLE[1:]:
        losses, w1 = _train_mlp(device)
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6,
                                   err_msg=f"losses on {device}")
        np.testing.assert_allclose(w1, ref_w1, rtol=1e-4, atol=1e-5,
                                   err_msg=f"weights on {device}")


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs two backends")
def test_same_nn_model_same_losses_on_every_backend():
    """nn.Linear + F.cross_entropy + optim.SGD(momentum): one state dict, every backend."""
    from smolgrad import nn, optim
    from smolgrad.nn import functional as F

    sg.manual_seed(0)
    state = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).state_dict()
    data = np.random.default_rng(3)
    batches = [(data.normal(size=(6, 5)).astype(np.float32), data.integers(0, 2, 6))
               for _ in range(10)]
    runs = {}
    for device in AVAILABLE:
        model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).to(device)
        model.load_state_dict(state)
        opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        losses = []
        for x, y in batches:
            loss = F.cross_entropy(model(sg.tensor(x, device=device)),
                                   sg.tensor(y, device=device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs[device] = losses
    for device, losses in runs.items():
        np.testing.assert_allclose(losses, runs["cpu"], rtol=1e-5, atol=1e-6,
                                   err_msg=f"losses on {device}")


# -- MLX laziness -------------------------------------------------------------------------


@pytest.mark.skipif("mlx" not in AVAILABLE, reason="needs MLX")
def test_mlx_is_evaluated_after_backward_and_after_each_step(monkeypatch):
    """MLX only records work until something asks for numbers. smolgrad asks after each
    backward (the gradients) and each optimizer step (parameters and optimizer state), so
    a training loop's pending graph never outgrows one step."""
    from smolgrad import nn, optim
    from smolgrad.nn import functional as F

    backend = get_backend("mlx")
    assert backend.lazy is True
    evaluated = []
    real_eval = backend.eval

    def recording_eval(*arrays):
        evaluated.append(arrays)
        real_eval(*arrays)

    monkeypatch.setattr(backend, "eval", recording_eval)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to("mlx")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = F.cross_entropy(model(sg.randn(5, 4, device="mlx")),
                           sg.randint(0, 3, (5,), device="mlx"))
    loss.backward()
    grads = {id(p.grad.array) for p in model.parameters()}
    assert len(evaluated) == 1 and grads <= {id(a) for a in evaluated[0]}
    opt.step()
    params = {id(p.array) for p in model.parameters()}
    assert len(evaluated) == 2 and params <= {id(a) for a in evaluated[1]}
    momentum = [v for st in opt.state.values() for v in st.values() if isinstance(v, sg.Tensor)]
    assert momentum and {id(v.array) for v in momentum} <= {id(a) for a in evaluated[1]}


@pytest.mark.skipif("mlx" not in AVAILABLE, reason="needs MLX")
@pytest.mark.parametrize("norm", ["BatchNorm1d", "functional"])
def test_mlx_memory_stays_flat_with_running_statistics(norm):
    """State updated in the forward pass (BatchNorm's running mean/var) must be evaluated
    too: otherwise each step's graph, holding that step's input batch, stays attached to
    the buffers and memory grows by one batch per step."""
    import mlx.core as mx

    from smolgrad import nn, optim
    from smolgrad.nn import functional as F

    if norm == "BatchNorm1d":
        model = nn.Sequential(nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(),
                              nn.Linear(64, 4)).to("mlx")
        forward = model
    else:
        model = nn.Sequential(nn.Linear(128, 64), nn.Linear(64, 4)).to("mlx")
        stats = (sg.zeros(64, device="mlx"), sg.ones(64, device="mlx"))

        def forward(x):
            h = F.batch_norm(model[0](x), *stats, training=True)
            return model[1](h.relu())

    opt = optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)

    def step():
        x = sg.tensor(rng.normal(size=(256, 128)).astype(np.float32), device="mlx")
        loss = F.cross_entropy(forward(x), sg.randint(0, 4, (256,), device="mlx"))
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    mx.clear_cache()
    before = mx.get_active_memory()
    for _ in range(20):
        step()
    mx.clear_cache()
    grown = mx.get_active_memory() - before
    batch = 256 * 128 * 4
    assert grown < 3 * batch, f"active memory grew by {grown} bytes over 20 steps"
