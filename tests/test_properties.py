"""Property tests (hypothesis): broadcasting binary ops and reductions over random shapes
and dims agree with PyTorch, values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import assert_close

import smolgrad as sg

FAST = settings(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def broadcastable_pair(draw):
    """Two shapes that broadcast: start from one shape, then drop leading dims and set some
    sizes to 1 in the other."""
    shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=4))
    other = list(shape[draw(st.integers(0, len(shape))):])
    other = [1 if draw(st.booleans()) else n for n in other]
    if draw(st.booleans()):
        shape, other = other, shape
    return tuple(shape), tuple(other)


@st.composite
def shape_and_dims(draw):
    """A shape with at least one dim and a random subset of its dims (maybe negative)."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    dims = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape),
                         unique=True))
    dims = tuple(d - len(shape) if draw(st.booleans()) else d for d in dims)
    return shape, dims


def _inputs(seed: int, *shapes, positive: bool = False):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-2, 2, s).astype(np.float32) for s in shapes]
    if positive:
        arrays = [np.abs(a) + np.float32(0.5) for a in arrays]
    return [np.asarray(a, dtype=np.float32) for a in arrays]


def _compare(fn, arrays, device, torch_fn=None):
    """Forward values and the gradient of every input, against torch."""
    xs = [sg.tensor(a, device=device, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, t_out = fn(*xs), (torch_fn or fn)(*ts)
    assert_close(out, t_out)
    up = np.random.default_rng(0).standard_normal(tuple(t_out.shape)).astype(np.float32)
    (out * sg.tensor(up, device=device)).sum().backward()
    (t_out * torch.tensor(up)).sum().backward()
    for x, t in zip(xs, ts):
        assert x.grad is not None and x.grad.shape == x.shape
        assert_close(x.grad, t.grad, atol=1e-4, rtol=1e-3)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
    "maximum": lambda a, b: a.maximum(b),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(shapes=broadcastable_pair(), seed=st.integers(0, 2 ** 16))
def test_binary_broadcasting(name, shapes, seed, device):
    arrays = _inputs(seed, *shapes, positive=name in ("div", "pow"))
    _compare(BINARY[name], arrays, device)


@FAST
@given(shapes=broadcastable_pair(), seed=st.integers(0, 2 ** 16))
def test_where_broadcasting(shapes, seed, device):
    a, b = _inputs(seed, *shapes)

    def fn(x, y):
        lib = sg if isinstance(x, sg.Tensor) else torch
        return lib.where(x > y, x * 2, y)

    _compare(fn, [a, b], device)


REDUCTIONS = {
    "sum": lambda x, d, k: x.sum(d, keepdim=k),
    "mean": lambda x, d, k: x.mean(d, keepdim=k),
    "amax": lambda x, d, k: x.amax(d, keepdim=k),
    "amin": lambda x, d, k: x.amin(d, keepdim=k),
    "var": lambda x, d, k: x.var(d, keepdim=k),
    "std0": lambda x, d, k: x.std(d, correction=0, keepdim=k),
    "logsumexp": lambda x, d, k: x.logsumexp(d, keepdim=k),
    "norm": lambda x, d, k: x.norm(dim=d, keepdim=k),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@FAST
@given(case=shape_and_dims(), keepdim=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_reductions_over_random_dims(name, case, keepdim, seed, device):
    shape, dims = case
    if name == "var" and all(shape[d] == 1 for d in dims):
        dims = None  # var over only size-1 dims is 0/0; reduce everything instead
        if int(np.prod(shape)) == 1:
            return
    (a,) = _inputs(seed, shape)
    if name in ("amax", "amin"):
        a = np.round(a, 1)  # create ties, whose gradient torch splits evenly
    fn = REDUCTIONS[name]
    torch_fn = None
    if name == "norm":  # torch's x.norm takes at most 2 dims; vector_norm takes any
        def torch_fn(x):
            return torch.linalg.vector_norm(x, dim=dims, keepdim=keepdim)
    _compare(lambda x: fn(x, dims, keepdim), [a], device, torch_fn=torch_fn)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cumsum", "max", "argmax"])
@FAST
@given(case=shape_and_dims(), seed=st.integers(0, 2 ** 16))
def test_single_dim_ops(name, case, seed, device):
    shape, dims = case
    dim = dims[0]
    (a,) = _inputs(seed, shape)
    if name == "argmax":
        out = sg.tensor(a, device=device).argmax(dim)
        assert_close(out, torch.tensor(a).argmax(dim))
        return
    forms = {
        "softmax": lambda x: x.softmax(dim),
        "log_softmax": lambda x: x.log_softmax(dim),
        "cumsum": lambda x: x.cumsum(dim),
        "max": lambda x: x.max(dim).values,
    }
    _compare(forms[name], [a], device)


@FAST
@given(shapes=broadcastable_pair(), seed=st.integers(0, 2 ** 16))
def test_broadcast_then_reduce_to_each_shape(shapes, seed, device):
    """sum_to_size-like check: a broadcast product reduced back gives torch's gradients."""
    a, b = _inputs(seed, *shapes)
    _compare(lambda x, y: (x * y).sum(), [a, b], device)


@FAST
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
       k=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_matmul_broadcast_batches(shape, batch, k, seed, device):
    m = shape[0]
    n = shape[-1]
    left = tuple(batch) + (m, k)
    right = tuple(1 for _ in batch[:1]) + (k, n)
    a, b = _inputs(seed, left, right)
    _compare(lambda x, y: x @ y, [a, b], device)
