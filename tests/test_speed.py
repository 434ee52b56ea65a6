"""The fast paths stay correct: the fused Linear node, the one-node backward rules, and the
engine's shortcuts give what PyTorch (and the slow composite) gives, first and second
derivatives included. Plus budgets on the number of graph nodes a training step records,
so that a change which silently brings the overhead back fails here."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from oracle import assert_close, check_op, run_gradcheck

import smolgrad as sg
import smolgrad.nn.functional as F
from smolgrad.engine import Function
from smolgrad.ops import nn as ops_nn

LINEAR_CASES = [((4, 3), (5, 3), True), ((4, 3), (5, 3), False), ((2, 3, 4), (6, 4), True),
                ((2, 2, 3, 4), (2, 4), True), ((1, 7), (1, 7), True)]


@pytest.mark.parametrize("x_shape,w_shape,bias", LINEAR_CASES, ids=str)
def test_fused_linear_matches_torch(x_shape, w_shape, bias, device):
    specs = (x_shape, w_shape) + (((w_shape[0],),) if bias else ())
    check_op(F.linear, *specs, device=device, torch_fn=torch.nn.functional.linear)


def test_linear_takes_the_fused_node(device):
    x = sg.randn(3, 4, device=device)
    w = sg.randn(5, 4, device=device, requires_grad=True)
    b = sg.randn(5, device=device, requires_grad=True)
    assert isinstance(F.linear(x, w, b).grad_fn, ops_nn.Linear)
    # mixed dtypes keep the composite (which promotes)
    if sg.device(device).type == "cpu":
        w64 = sg.randn(5, 4, dtype=sg.float64, device=device, requires_grad=True)
        assert not isinstance(F.linear(x, w64).grad_fn, ops_nn.Linear)


@pytest.mark.parametrize("x_shape,w_shape,bias", LINEAR_CASES[:3], ids=str)
def test_fused_linear_equals_composite(x_shape, w_shape, bias, device):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in
              (x_shape, w_shape) + (((w_shape[0],),) if bias else ())]
    grads = []
    for fused in (True, False):
        ts = [sg.tensor(a, device=device, requires_grad=True) for a in arrays]
        if fused:
            y = ops_nn.Linear.apply(ts[0], ts[1], ts[2] if bias else None)
        else:
            y = ts[0] @ ts[1].mT + (ts[2] if bias else 0)
        (y * y).sum().backward()
        grads.append([y] + [t.grad for t in ts])
    for a, b in zip(*grads):
        assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_fused_linear_gradcheck():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 4), (5, 4), (5,))]
    run_gradcheck(lambda x, w, b: ops_nn.Linear.apply(x, w, b), arrays)


def test_fused_linear_double_backward_matches_torch(device):
    """A Hessian-vector product through two layers: second derivatives of the fused node."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((6, 4), (5, 4), (5,),
                                                                  (2, 5), (2,))]
    v = [rng.standard_normal(a.shape).astype(np.float32) for a in arrays[1:]]

    def hvp(lib, to_tensor):
        x, w1, b1, w2, b2 = (to_tensor(a, i > 0) for i, a in enumerate(arrays))
        out = lib.nn.functional.linear(lib.tanh(lib.nn.functional.linear(x, w1, b1)), w2, b2)
        loss = (out * out).sum()
        params = [w1, b1, w2, b2]
        gs = lib.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * to_tensor(vi, False)).sum() for g, vi in zip(gs, v))
        return lib.autograd.grad(dot, params)

    ours = hvp(sg, lambda a, g: sg.tensor(a, device=device, requires_grad=g))
    theirs = hvp(torch, lambda a, g: torch.tensor(a, requires_grad=g))
    for a, b in zip(ours, theirs):
        assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_first_and_second_derivatives(name, device):
    x_np = np.linspace(-3, 3, 13, dtype=np.float32)
    x_np[6] = 0.25  # keep relu away from its kink
    xs = sg.tensor(x_np, device=device, requires_grad=True)
    xt = torch.tensor(x_np, requires_grad=True)
    ys, yt = getattr(sg, name)(xs), getattr(torch, name)(xt)
    (gs,) = sg.autograd.grad((ys * ys).sum(), [xs], create_graph=True)
    (gt,) = torch.autograd.grad((yt * yt).sum(), [xt], create_graph=True)
    assert_close(gs, gt)
    (hs,) = sg.autograd.grad(gs.sum(), [xs])
    (ht,) = torch.autograd.grad(gt.sum(), [xt])
    assert_close(hs, ht, atol=1e-4)


# ---------------------------------------------------------------------------------------
# Node budgets: how many Function.apply calls one training step makes
# ---------------------------------------------------------------------------------------


def _count_applies(step) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    original = Function.apply.__func__

    def counting(cls, *args, **kwargs):
        counts[cls.__name__] += 1
        return original(cls, *args, **kwargs)

    Function.apply = classmethod(counting)
    try:
        step()
    finally:
        Function.apply = classmethod(original)
    return counts


@pytest.mark.parametrize("workload,budget", [("W1", 30), ("W2", 30)])
def test_training_step_node_budget(workload, budget):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from workloads import WORKLOADS

    make, _, tiny = WORKLOADS[workload]
    step = make(sg, dict(tiny))
    step()
    counts = _count_applies(step)
    assert sum(counts.values()) <= budget, counts


# ---------------------------------------------------------------------------------------
# BLAS threads: only products big enough get them (smolgrad/arrays/blas_threads.py)
# ---------------------------------------------------------------------------------------


class _FakeBlas:
    """Stands in for a threadpoolctl library controller; records the thread counts set."""

    def __init__(self, threads):
        self.threads = threads
        self.seen = []

    def get_num_threads(self):
        return self.threads

    def set_num_threads(self, n):
        self.threads = n
        self.seen.append(n)


@pytest.mark.parametrize("shape_a,shape_b,threads_during", [
    ((8, 8), (8, 8), 16),                      # tiny: left to the BLAS (one thread anyway)
    ((64, 4, 144), (144, 7744), 1),            # per-matrix 4.5 M multiply-adds: one thread
    ((1024, 1024), (1024, 1024), 8),           # 2^30 multiply-adds: 2^30 / 2^27 threads
    ((4096, 4096), (4096, 64), 8),             # 2^30 again, non-square
    ((2048, 2048), (2048, 2048), 16),          # 2^33: all 16 (never more than set)
])
def test_blas_threads_follow_product_size(shape_a, shape_b, threads_during):
    from smolgrad.arrays.blas_threads import ThreadLimitedMatmul

    blas = _FakeBlas(16)
    seen_inside = []

    def fake_matmul(a, b):
        seen_inside.append(blas.threads)
        return "product"

    matmul = ThreadLimitedMatmul(fake_matmul)
    matmul._blas, matmul._looked = [blas], True
    a, b = np.empty(shape_a, np.float32), np.empty(shape_b, np.float32)
    assert matmul(a, b) == "product"
    assert seen_inside == [threads_during]
    assert blas.threads == 16                  # restored after the product


def test_cpu_matmul_goes_through_the_thread_rule():
    """The NumPy backend's matmul is the thread-limited one, and it computes the product."""
    from smolgrad.arrays import get_backend
    from smolgrad.arrays.blas_threads import ThreadLimitedMatmul

    b = get_backend("cpu")
    assert isinstance(b.matmul, ThreadLimitedMatmul)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 40, 90)), rng.standard_normal((90, 100))
    np.testing.assert_allclose(b.matmul(x, y), x @ y, rtol=1e-12)
