"""The ops real PyTorch programs need beyond the core set (issue 10): multinomial,
histogram, histc, unique, log10/log2, nelement, new_*, Tensor.type and the legacy
constructors (FloatTensor, LongTensor, ...). Each is compared with PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import smolgrad as sg
from tests.oracle import assert_close, check_op, to_numpy

# ---------------------------------------------------------------------------------------
# log10, log2
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["log10", "log2"])
@pytest.mark.parametrize("shape", [(5,), (2, 3), ()])
def test_log10_log2_values_and_gradients(device, name, shape):
    check_op(lambda x: getattr(x, name)(), shape, device=device, positive=True)
    check_op(lambda x: getattr(sg, name)(x), shape, device=device, positive=True,
             torch_fn=lambda x: getattr(torch, name)(x))


@pytest.mark.parametrize("name", ["log10", "log2"])
def test_log10_log2_exact_powers_and_integers(device, name):
    data = [1, 2, 8, 10, 100, 1000, 1024]
    ours = getattr(sg.tensor(data, device=device), name)()
    theirs = getattr(torch.tensor(data), name)()
    assert ours.dtype == sg.float32  # integers give the default float, as in PyTorch
    exact = sg.zeros(1, device=device).backend.has_float64  # computed through float64
    assert_close(ours, theirs, atol=0, rtol=0 if exact else 2e-7)
    check_op(lambda x: getattr(x, name)(), (4,), device=device, dtype="float64", positive=True)


def test_log10_second_derivative():
    x = sg.tensor([0.5, 2.0, 30.0], dtype=sg.float64, requires_grad=True)
    tx = torch.tensor([0.5, 2.0, 30.0], dtype=torch.float64, requires_grad=True)
    (g,) = sg.autograd.grad(x.log10().sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad(tx.log10().sum(), tx, create_graph=True)
    g.sum().backward()
    tg.sum().backward()
    assert_close(x.grad, tx.grad, atol=1e-12, rtol=1e-10)


# ---------------------------------------------------------------------------------------
# multinomial
# ---------------------------------------------------------------------------------------

CHI2_999 = {2: 13.82, 3: 16.27, 4: 18.47}  # chi-square quantile 0.999 by degrees of freedom


def _chi_square(index: np.ndarray, probabilities: np.ndarray) -> float:
    """Pearson's statistic of observed category counts against expected probabilities
    (categories of probability 0 must never occur)."""
    counts = np.bincount(index.ravel(), minlength=len(probabilities))
    expected = probabilities * index.size
    assert not counts[probabilities == 0].any(), "a zero-weight category was drawn"
    seen = probabilities > 0
    return float(((counts[seen] - expected[seen]) ** 2 / expected[seen]).sum())


def test_multinomial_with_replacement_frequencies(device):
    weights = [1.0, 0.0, 2.0, 3.0, 4.0]  # unnormalised, one category impossible
    out = sg.multinomial(sg.tensor(weights, device=device), 20000, replacement=True)
    assert out.shape == (20000,) and out.dtype == sg.int64 and out.device == device
    p = np.array(weights) / sum(weights)
    assert _chi_square(to_numpy(out), p) < CHI2_999[3]


def test_multinomial_rows_with_replacement(device):
    weights = np.array([[0.1, 0.2, 0.3, 0.4, 0.0], [5.0, 0.0, 0.0, 1.0, 4.0]])
    out = sg.tensor(weights, dtype=sg.float32, device=device).multinomial(8000, True)
    assert out.shape == (2, 8000)
    for row, w in zip(to_numpy(out), weights):
        p = w / w.sum()
        assert _chi_square(row, p) < CHI2_999[int((p > 0).sum()) - 1]


def test_multinomial_without_replacement_is_sequential_sampling(device):
    """Without replacement the first draw follows p and the second follows
    P(second = j) = Σ_i p_i · p_j / (1 - p_i), j ≠ i; every row's indices are distinct."""
    p = np.array([0.1, 0.2, 0.3, 0.4])
    rows = sg.tensor(np.tile(p, (6000, 1)), dtype=sg.float32, device=device)
    out = to_numpy(sg.multinomial(rows, 2))
    assert out.shape == (6000, 2) and (out[:, 0] != out[:, 1]).all()
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(4) if i != j)
                       for j in range(4)])
    assert _chi_square(out[:, 0], p) < CHI2_999[3]
    assert _chi_square(out[:, 1], second) < CHI2_999[3]


def test_multinomial_without_replacement_all_and_zero_weights(device):
    everything = to_numpy(sg.multinomial(sg.rand(3, 7, device=device) + 0.1, 7))
    assert all(sorted(row) == list(range(7)) for row in everything)
    # more samples than non-zero weights: the zero-weight categories come last (PyTorch)
    out = to_numpy(sg.multinomial(sg.tensor([0.0, 1.0, 0.0], device=device), 3))
    torch_out = torch.multinomial(torch.tensor([0.0, 1.0, 0.0]), 3).numpy()
    assert out[0] == torch_out[0] == 1 and sorted(out) == sorted(torch_out)


def test_multinomial_generator_reproducible(device):
    w = sg.tensor([[1.0, 2.0, 3.0, 4.0]] * 3, device=device)
    for replacement in (True, False):
        draw = [sg.multinomial(w, 4, replacement, generator=sg.Generator().manual_seed(seed))
                for seed in (7, 7, 8)]
        assert to_numpy(draw[0]).tolist() == to_numpy(draw[1]).tolist()
        assert to_numpy(draw[0]).tolist() != to_numpy(draw[2]).tolist()
    sg.manual_seed(3)
    a = sg.multinomial(w, 50, True)
    sg.manual_seed(3)
    b = sg.multinomial(w, 50, True)
    assert to_numpy(a).tolist() == to_numpy(b).tolist()


def test_multinomial_dtypes_and_shapes_as_torch(device):
    for dtype in (sg.float16, sg.float32, sg.float64):
        out = sg.multinomial(sg.tensor([1.0, 2.0], dtype=dtype, device=device), 1)
        assert out.shape == (1,) and out.dtype == sg.int64
    empty = sg.multinomial(sg.ones(0, 3, device=device), 2)
    assert empty.shape == tuple(torch.multinomial(torch.ones(0, 3), 2).shape)
    w = sg.tensor([0.0, 3.0], device=device, requires_grad=True)
    assert not sg.multinomial(w, 2, True).requires_grad
    assert to_numpy(sg.multinomial(w, 2, True)).tolist() == [1, 1]


MULTINOMIAL_ERRORS = [
    ([1.0, 2.0], (3,), {}),                                    # more than C, no replacement
    ([1.0, -2.0], (1,), {}), ([1.0, math.inf], (1,), {}), ([1.0, math.nan], (1,), {}),
    ([0.0, 0.0], (1,), {}), ([[0.0, 0.0], [1.0, 1.0]], (1,), {"replacement": True}),
    ([1, 2], (1,), {}),                                        # integer weights
    ([1.0, 2.0], (0,), {}), ([1.0, 2.0], (-1,), {}), ([1.0, 2.0], (1.5,), {}),
    (1.0, (1,), {}), ([[[1.0]]], (1,), {}),                    # 0-d, 3-D
    ([1.0, 2.0], (1,), {"generator": 3}),
]


@pytest.mark.parametrize("data, args, kwargs", MULTINOMIAL_ERRORS)
def test_multinomial_errors_as_torch(device, data, args, kwargs):
    with pytest.raises(Exception) as theirs:
        torch.multinomial(torch.tensor(data), *args, **kwargs)
    with pytest.raises(type(theirs.value)):
        sg.multinomial(sg.tensor(data, device=device), *args, **kwargs)


def test_multinomial_category_limit_as_torch():
    with pytest.raises(RuntimeError, match="2\\^24"):
        torch.multinomial(torch.ones(2**24 + 1), 1, True)
    with pytest.raises(RuntimeError, match="2\\^24"):
        sg.multinomial(sg.ones(2**24 + 1), 1, True)


# ---------------------------------------------------------------------------------------
# histogram, histc
# ---------------------------------------------------------------------------------------


def _data(rng, n=500, dtype="float32", on_edges=False):
    """Random values; with `on_edges`, also values that sit exactly on bin edges."""
    x = rng.normal(size=n)
    if on_edges:
        x = np.concatenate([x, np.linspace(-2, 2, 41), [0.1, 0.3, -0.7]])
    return x.astype(dtype)


def _both(x: np.ndarray, device):
    return sg.tensor(x, device=device), torch.from_numpy(x.copy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", [
    {"bins": 10}, {"bins": 7, "range": (-2.0, 2.0)}, {"bins": 40, "range": (-1.0, 0.5)},
    {"bins": 3, "range": (0.3, 0.3)}, {"bins": 5, "density": True},
    {"bins": 6, "range": (-1.5, 2.5), "density": True},
])
def test_histogram_matches_torch(device, dtype, kwargs):
    x, tx = _both(_data(np.random.default_rng(1), dtype=dtype), device)
    hist, edges = sg.histogram(x, **kwargs)
    t_hist, t_edges = torch.histogram(tx, **kwargs)
    # PyTorch's vectorised linspace may round a middle edge differently: within a few
    # ulps of the range's larger end
    ulp = np.finfo(dtype).eps * float(t_edges.abs().max())
    assert_close(edges, t_edges, atol=4 * ulp, rtol=0, what="bin_edges")
    assert_close(edges[[0, -1]], t_edges[[0, -1]], atol=0, rtol=0, what="outer edges")
    assert_close(hist, t_hist, atol=1e-6, rtol=1e-6, what="hist")
    assert hist.dtype.name == dtype and edges.dtype.name == dtype


@pytest.mark.parametrize("bins, range_", [(8, (-2.0, 2.0)), (16, (-2.0, 2.0)), (4, (0.0, 1.0))])
def test_histogram_values_on_edges(device, bins, range_):
    """Edges that are exact binary fractions, and data sitting on them: each value on an
    inner edge counts in the bin to its right, the last edge in the last bin."""
    x, tx = _both(_data(np.random.default_rng(6), on_edges=True), device)
    ours, theirs = sg.histogram(x, bins, range=range_), torch.histogram(tx, bins, range=range_)
    assert_close(ours.bin_edges, theirs.bin_edges, atol=0, rtol=0)
    assert_close(ours.hist, theirs.hist, atol=0, rtol=0)
    counted = np.histogram(to_numpy(x), bins, range=range_)[0]  # a third opinion
    np.testing.assert_array_equal(to_numpy(ours.hist), counted)


def test_histogram_weights_edges_tensor_and_method(device):
    rng = np.random.default_rng(2)
    x, tx = _both(_data(rng), device)
    w, tw = _both(rng.uniform(0, 2, size=x.shape).astype(np.float32), device)
    for density in (False, True):
        ours = x.histogram(8, weight=w, density=density)
        theirs = tx.histogram(8, weight=tw, density=density)
        assert_close(ours.hist, theirs.hist, atol=1e-5, rtol=1e-5)
    edges, t_edges = _both(np.array([-3.0, -1.0, -0.5, 0.0, 0.1, 2.0], np.float32), device)
    for weight in (None, (w, tw)):
        ours = sg.histogram(x, edges, weight=None if weight is None else weight[0])
        theirs = torch.histogram(tx, t_edges, weight=None if weight is None else weight[1])
        assert_close(ours[0], theirs[0], atol=1e-5, rtol=1e-5)
        assert_close(ours[1], theirs[1], atol=0, rtol=0)


@pytest.mark.parametrize("data, kwargs", [
    ([], {"bins": 2}), ([1.0, 1.0], {"bins": 3}), ([[1.0, 2.0], [3.0, 4.0]], {"bins": 2}),
    ([1.0, math.inf, 3.0, 4.0], {"bins": 2, "range": (0.0, 4.0)}),
    ([1.0, math.nan, 3.0, 4.0], {"bins": 2, "range": (0.0, 4.0)}),
    ([5.0, 6.0], {"bins": 2, "range": (0.0, 4.0)}),
])
def test_histogram_edge_cases_as_torch(device, data, kwargs):
    ours = sg.histogram(sg.tensor(data, dtype=sg.float32, device=device), **kwargs)
    theirs = torch.histogram(torch.tensor(data, dtype=torch.float32), **kwargs)
    assert_close(ours.hist, theirs.hist, atol=0, rtol=0)
    assert_close(ours.bin_edges, theirs.bin_edges, atol=0, rtol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", [
    {}, {"bins": 10}, {"bins": 7, "min": -2, "max": 2}, {"bins": 40, "min": -1, "max": 0.5},
    {"bins": 4, "min": 0.3, "max": 0.3}, {"bins": 3, "min": -0.9, "max": 1.7},
])
def test_histc_matches_torch(device, dtype, kwargs):
    x, tx = _both(_data(np.random.default_rng(3), dtype=dtype, on_edges=True), device)
    assert_close(sg.histc(x, **kwargs), torch.histc(tx, **kwargs), atol=0, rtol=0)
    assert_close(x.histc(**kwargs), tx.histc(**kwargs), atol=0, rtol=0)


@pytest.mark.parametrize("data, kwargs", [
    ([], {"bins": 3}), ([1.0, 1.0], {"bins": 3}), ([0.0, 0.0], {"bins": 3}),
    ([[1.0, 2.0], [3.0, 5.0]], {"bins": 4, "min": 1, "max": 5}),
    ([1.0, math.nan, 3.0, 4.0], {"bins": 2, "min": 0, "max": 4}),
    ([1.0, math.inf, 3.0, 4.0], {"bins": 2, "min": 0, "max": 4}),
])
def test_histc_edge_cases_as_torch(device, data, kwargs):
    ours = sg.histc(sg.tensor(data, dtype=sg.float32, device=device), **kwargs)
    assert_close(ours, torch.histc(torch.tensor(data, dtype=torch.float32), **kwargs),
                 atol=0, rtol=0)


HISTOGRAM_ERRORS = [
    ("histogram", [1.0, 2.0], (3,), {"range": (3.0, 2.0)}),
    ("histogram", [1.0, 2.0], (0,), {}), ("histogram", [1, 2], (3,), {}),
    ("histogram", [1.0, math.nan], (2,), {}), ("histogram", [1.0, math.inf], (2,), {}),
    ("histogram", [1.0, 2.0], (2,), {"range": (0.0, math.inf)}),
    ("histc", [1.0, 2.0], (3,), {"min": 3, "max": 2}), ("histc", [1.0, 2.0], (0,), {}),
    ("histc", [1, 2], (3,), {}), ("histc", [1.0, math.nan], (2,), {}),
    ("histc", [1.0, math.inf], (2,), {}),
]


@pytest.mark.parametrize("op, data, args, kwargs", HISTOGRAM_ERRORS)
def test_histogram_errors_as_torch(device, op, data, args, kwargs):
    with pytest.raises(Exception) as theirs:
        getattr(torch, op)(torch.tensor(data), *args, **kwargs)
    expected = type(theirs.value)
    if expected is NotImplementedError:  # PyTorch's "not implemented for 'Long'"
        expected = RuntimeError  # (a subclass): ours says it wants a floating point input
    with pytest.raises(expected):
        getattr(sg, op)(sg.tensor(data, device=device), *args, **kwargs)


def test_histogram_weight_and_edges_checked(device):
    x = sg.tensor([1.0, 2.0, 3.0], device=device)
    with pytest.raises(RuntimeError, match="weight"):
        sg.histogram(x, 2, weight=sg.tensor([1.0, 2.0], device=device))
    with pytest.raises(RuntimeError, match="dtype"):
        sg.histogram(x, 2, weight=sg.tensor([1, 2, 3], device=device))
    with pytest.raises(RuntimeError, match="bins .*dtype"):
        sg.histogram(x, sg.tensor([0, 2, 5], device=device))


# ---------------------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------------------

UNIQUE_INPUTS = [
    [3, 1, 2, 3, 1], [[2.5, -1.0], [2.5, 0.0]], [True, False, True], 5, [],
    [3.0, math.nan, math.nan, 1.0], np.random.default_rng(4).integers(0, 6, (4, 5)).tolist(),
]


@pytest.mark.parametrize("data", UNIQUE_INPUTS)
@pytest.mark.parametrize("return_inverse", [False, True])
@pytest.mark.parametrize("return_counts", [False, True])
def test_unique_matches_torch(device, data, return_inverse, return_counts):
    x, tx = sg.tensor(data, device=device), torch.tensor(data)
    kwargs = {"return_inverse": return_inverse, "return_counts": return_counts}
    ours, theirs = sg.unique(x, **kwargs), torch.unique(tx, **kwargs)
    if not (return_inverse or return_counts):
        ours, theirs = (ours,), (theirs,)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert_close(a, b, atol=0, rtol=0)
        assert a.dtype.name == str(b.dtype).removeprefix("torch.")


@pytest.mark.parametrize("shape, dim", [((6, 3), 0), ((6, 3), 1), ((3, 4, 2), 1), ((3, 4, 2), -1),
                                        ((0, 3), 0), ((5,), 0)])
def test_unique_dim_matches_torch(device, shape, dim):
    values = np.random.default_rng(5).integers(0, 2, shape)
    if len(shape) == 2 and shape[0] > 2:
        values[2] = values[0]  # a repeated slice for certain
    x, tx = sg.tensor(values, device=device), torch.tensor(values)
    ours = x.unique(dim=dim, return_inverse=True, return_counts=True)
    theirs = tx.unique(dim=dim, return_inverse=True, return_counts=True)
    for a, b in zip(ours, theirs):
        assert_close(a, b, atol=0, rtol=0)


def test_unique_sorted_false_and_errors(device):
    x = sg.tensor([3, 1, 2, 3], device=device)
    assert_close(x.unique(sorted=False), torch.tensor([3, 1, 2, 3]).unique(sorted=False),
                 atol=0, rtol=0)
    with pytest.raises(IndexError):
        sg.unique(sg.ones(2, 2, device=device), dim=2)
    with pytest.raises(RuntimeError, match="0-sized"):
        sg.unique(sg.ones(3, 0, device=device), dim=0)
    assert not sg.unique(sg.ones(3, device=device, requires_grad=True)).requires_grad


# ---------------------------------------------------------------------------------------
# nelement, new_*, type, legacy constructors
# ---------------------------------------------------------------------------------------


def test_nelement(device):
    for shape in [(), (0,), (2, 3, 4)]:
        assert sg.zeros(shape, device=device).nelement() == torch.zeros(shape).nelement()


NEW_CALLS = [
    ("new_zeros", (2, 3), {}), ("new_zeros", ((2, 3),), {}), ("new_zeros", ([4],), {}),
    ("new_zeros", (), {"size": (2,)}), ("new_ones", (2,), {"dtype": "float16"}),
    ("new_ones", ((),), {}), ("new_full", ((2,), 3), {}), ("new_full", ((2, 2), 3.5), {}),
    ("new_full", ((3,), 2), {"requires_grad": True}), ("new_empty", (2,), {}),
    ("new_tensor", ([1, 2],), {}), ("new_tensor", ([1.5, 2],), {}), ("new_tensor", (3,), {}),
    ("new_tensor", ([1.5, 2],), {"dtype": "float64"}), ("new_tensor", ([0, 1, 2],), {}),
    ("new_tensor", ([1, 2],), {"requires_grad": True}),
]


@pytest.mark.parametrize("source", [[1.5], [2], [True]])
@pytest.mark.parametrize("method, args, kwargs", NEW_CALLS)
def test_new_factories_match_torch(device, source, method, args, kwargs):
    x, tx = sg.tensor(source, device=device), torch.tensor(source)
    sg_kwargs, t_kwargs = dict(kwargs), dict(kwargs)
    if "dtype" in kwargs:
        sg_kwargs["dtype"] = getattr(sg, kwargs["dtype"])
        t_kwargs["dtype"] = getattr(torch, kwargs["dtype"])
    try:
        theirs = getattr(tx, method)(*args, **t_kwargs)
    except RuntimeError as e:  # e.g. requires_grad on an integer dtype
        with pytest.raises(type(e)):
            getattr(x, method)(*args, **sg_kwargs)
        return
    ours = getattr(x, method)(*args, **sg_kwargs)
    assert ours.device == device and ours.requires_grad == theirs.requires_grad
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    if method != "new_empty":
        assert_close(ours, theirs, atol=0, rtol=0)
    assert ours.shape == tuple(theirs.shape)


def test_new_factories_device_override_and_missing_size(device):
    x = sg.tensor([1.0], device=device)
    assert x.new_zeros(2, device="cpu").device == "cpu"
    with pytest.raises(TypeError, match="size"):
        x.new_zeros()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "bool"])
def test_type_names_match_torch(dtype):
    ours = sg.zeros(2, dtype=getattr(sg, dtype)).type()
    assert ours == torch.zeros(2, dtype=getattr(torch, dtype)).type()


def test_type_on_other_devices(device):
    assert sg.zeros(1, device=device).type() == {"cpu": "torch.FloatTensor",
                                                "mlx": "torch.mlx.FloatTensor",
                                                "cuda": "torch.cuda.FloatTensor"}[device]


@pytest.mark.parametrize("target", ["int64", "torch.LongTensor", "LongTensor-type",
                                    "torch.DoubleTensor", "float32", "torch.BoolTensor"])
def test_type_converts_as_torch(device, target):
    data = [1.5, -2.0, 0.0]
    x, tx = sg.tensor(data, device=device), torch.tensor(data)
    if target.endswith("-type"):
        ours, theirs = x.type(sg.LongTensor), tx.type(torch.LongTensor)
    elif target.startswith("torch."):
        ours, theirs = x.type(target), tx.type(target)
    else:
        ours, theirs = x.type(getattr(sg, target)), tx.type(getattr(torch, target))
    assert_close(ours, theirs, atol=0, rtol=0)
    assert ours.type().split(".")[-1] == theirs.type().split(".")[-1]
    if target.startswith("torch.") or target.endswith("-type"):
        assert ours.device == "cpu"  # a CPU type name moves the tensor to the CPU, as torch
    else:
        assert ours.device == device


def test_type_keeps_identity_gradient_and_rejects_nonsense():
    x = sg.tensor([1.5], requires_grad=True)
    assert x.type(sg.float32) is x and x.type("torch.FloatTensor") is x
    y = x.type(sg.float64)
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == sg.float32
    for bad in ("foo", "LongTensor", "torch.int64", float, int):
        with pytest.raises(ValueError):
            torch.tensor([1.5]).type(bad)
        with pytest.raises(ValueError):
            x.type(bad)


LEGACY = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "BoolTensor"]


@pytest.mark.parametrize("name", LEGACY)
@pytest.mark.parametrize("args", [([1, 0, 2],), ([[1.7, 2.0], [-3.2, 0.0]],), (),
                                  (np.array([1.0, 2.0]),), ((2, 3),)])
def test_legacy_constructors_from_data(name, args):
    ours, theirs = getattr(sg, name)(*args), getattr(torch, name)(*args)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert_close(ours, theirs, atol=0, rtol=0)
    assert isinstance(ours, getattr(sg, name)) and ours.device == "cpu"


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_constructors_from_sizes_and_isinstance(name):
    ours, theirs = getattr(sg, name)(2, 3), getattr(torch, name)(2, 3)
    assert ours.shape == tuple(theirs.shape) and ours.type() == theirs.type()
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    others = [n for n in LEGACY if n != name]
    assert not any(isinstance(ours, getattr(sg, n)) for n in others)
    assert isinstance(ours, tuple(getattr(sg, n) for n in others) + (getattr(sg, name),))
    same = sg.FloatTensor(2)
    assert sg.FloatTensor(same) is same


def test_legacy_constructor_errors():
    for make in (lambda m: m.FloatTensor(2.5), lambda m: m.FloatTensor(m.tensor([1, 2]))):
        with pytest.raises(TypeError):
            make(torch)
        with pytest.raises(TypeError):
            make(sg)
    with pytest.raises(RuntimeError):
        torch.FloatTensor(-1)
    with pytest.raises(RuntimeError):
        sg.FloatTensor(-1)
    with pytest.raises(TypeError, match="uint8"):
        sg.ByteTensor([1, 2])
    assert not isinstance(sg.tensor([1.0], device="cpu"), sg.LongTensor)
