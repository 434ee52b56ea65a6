"""float16 / bfloat16 reductions, norm layers and losses against PyTorch's.

PyTorch accumulates reductions of low-precision tensors in float32 and rounds the result
once to the input's dtype. The inputs here are chosen so that accumulating in float16
itself would be visibly wrong: means of values near 100 over 1000 elements (the float16
sum overflows past 65504), sums and cumulative sums of thousands of values near 1 (past
2048 float16 cannot add 1), variances of values near 1000 (whose squares, 10⁶, are past
float16's range), losses whose sum passes 65504 before the mean divides it back down.
Each op runs in smolgrad and in PyTorch in the same dtype on the same values, and in
PyTorch in float64 for the exact result; smolgrad's forward value and gradients must be
as accurate as PyTorch's (see `_assert_accurate`), which fails by orders of magnitude
for an op that accumulates in the low dtype.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import to_numpy

import smolgrad as sg
import smolgrad.nn as nn
import smolgrad.nn.functional as F

# one unit in the last place of a value in [1, 2)
EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}
DTYPES = ["float16", "bfloat16"]


def _dtype_or_skip(dtype: str, device: str):
    try:
        sg.zeros(1, dtype=getattr(sg, dtype), device=device)
    except TypeError:
        pytest.skip(f"{device} has no {dtype}")
    return getattr(sg, dtype), getattr(torch, dtype)


def _assert_accurate(ours, theirs, exact, dtype: str, what: str, ulps: float = 2.0) -> None:
    """`ours` is PyTorch's low-precision result `theirs` or better: inf and NaN exactly
    where the exact result (float64 math on the same rounded inputs) rounded to `dtype`
    has them, and elsewhere at least as close to the exact result as PyTorch's, or within
    `ulps` units in the last place of the result's largest value.

    Where PyTorch computes in float32 and rounds once, its error is half a unit, and
    `ours` must be within `ulps` units. Where PyTorch works in the low dtype itself (the
    backward of var, a product, the sum inside a float16 cross-entropy, which overflows
    to inf), `ours` may be more accurate, never less."""
    a, b, e = (to_numpy(t.double()).astype(np.float64) for t in (ours, theirs, exact))
    rounded = to_numpy(exact.to(getattr(torch, dtype)).double())
    assert a.shape == b.shape == e.shape, f"{what}: shape {a.shape}, torch's {b.shape}"
    finite = np.isfinite(rounded)
    np.testing.assert_array_equal(a[~finite], rounded[~finite], err_msg=f"{what}: inf/nan")
    if not finite.any():
        return
    scale = np.abs(e[finite]).max()
    torch_error = np.abs(b - e)[finite & np.isfinite(b)]
    bound = max(torch_error.max(initial=0.0), ulps * EPS[dtype] * scale)
    worst = np.abs(a - e)[finite].max()
    assert worst <= bound, (f"{what}: error {worst:.3g} from the exact result, PyTorch's "
                            f"{torch_error.max(initial=0.0):.3g} ({ulps} units: "
                            f"{ulps * EPS[dtype] * scale:.3g})")


def _inputs(arrays, device, sg_dtype, torch_dtype):
    """The same values (rounded once to the low dtype) as smolgrad and torch leaves, and
    as float64 torch leaves for the exact result."""
    ours = [sg.tensor(a, device=device).to(sg_dtype).requires_grad_() for a in arrays]
    theirs = [torch.tensor(a).to(torch_dtype).requires_grad_() for a in arrays]
    exact = [t.detach().double().requires_grad_() for t in theirs]
    return ours, theirs, exact


def _backward(outs, device, sg_dtype, torch_dtype) -> None:
    """Backpropagate the same random upstream gradient (rounded to the low dtype) from
    each of (ours, torch's, exact)."""
    ours, theirs, exact = outs
    up = torch.tensor(np.random.default_rng(1).standard_normal(tuple(theirs.shape)))
    up = up.to(torch_dtype)
    (ours * sg.tensor(up.double().numpy(), device=device).to(sg_dtype)).sum().backward()
    (theirs * up).sum().backward()
    (exact * up.double()).sum().backward()


def _run(fn, arrays, device, dtype, extra=(), ulps=2.0, grad_ulps=4.0):
    """Compare fn(lib, F, *inputs, *extra) forward and the gradient of every input."""
    sg_dtype, torch_dtype = _dtype_or_skip(dtype, device)
    ours, theirs, exact = _inputs(arrays, device, sg_dtype, torch_dtype)
    extra_ours = [sg.tensor(e, device=device) if isinstance(e, np.ndarray) else e
                  for e in extra]
    extra_theirs = [torch.tensor(e) if isinstance(e, np.ndarray) else e for e in extra]
    outs = (fn(sg, F, *ours, *extra_ours), fn(torch, TF, *theirs, *extra_theirs),
            fn(torch, TF, *exact, *extra_theirs))
    assert outs[0].dtype is sg_dtype, f"result dtype {outs[0].dtype}, torch's {outs[1].dtype}"
    _assert_accurate(*outs, dtype, "forward", ulps)
    _backward(outs, device, sg_dtype, torch_dtype)
    for i, (x, t, e) in enumerate(zip(ours, theirs, exact)):
        assert x.grad.dtype is sg_dtype, f"input {i}: gradient dtype {x.grad.dtype}"
        _assert_accurate(x.grad, t.grad, e.grad, dtype, f"gradient of input {i}", grad_ulps)


RNG = np.random.default_rng(0)
NEAR_ONE = RNG.uniform(0.5, 1.5, (2048, 3)).astype(np.float32)
NEAR_100 = (100 + RNG.standard_normal((4, 1000))).astype(np.float32)
NEAR_1000 = (1000 + 10 * RNG.standard_normal((4, 300))).astype(np.float32)
LOGITS = RNG.uniform(-1, 1, (4, 2048)).astype(np.float32)

# name -> (fn(lib, F, *inputs), input arrays)
REDUCTIONS = {
    "sum": (lambda lib, F, x: x.sum(), [NEAR_ONE[:, :2]]),
    "sum_dim0": (lambda lib, F, x: x.sum(0), [NEAR_ONE]),
    "sum_dim1_keepdim": (lambda lib, F, x: lib.sum(x.mT, 1, keepdim=True), [NEAR_ONE]),
    "mean": (lambda lib, F, x: x.mean(), [NEAR_100[0]]),
    "mean_dim": (lambda lib, F, x: x.mean(1), [NEAR_100]),
    "mean_dim0": (lambda lib, F, x: x.mean(0), [NEAR_100.T]),
    "var": (lambda lib, F, x: x.var(), [NEAR_1000[0]]),
    "var_dim": (lambda lib, F, x: x.var(1, correction=0), [NEAR_1000]),
    "std": (lambda lib, F, x: x.std(), [NEAR_1000[0]]),
    "std_dim0": (lambda lib, F, x: x.std(0), [NEAR_1000.T]),
    "var_mean": (lambda lib, F, x: lib.var_mean(x, 1)[0] + lib.var_mean(x, 1)[1],
                 [NEAR_1000]),
    "std_mean": (lambda lib, F, x: lib.std_mean(x, 0)[0] * lib.std_mean(x, 0)[1],
                 [NEAR_100.T]),
    "norm": (lambda lib, F, x: x.norm(), [NEAR_ONE]),
    "norm_dim0": (lambda lib, F, x: x.norm(dim=0), [NEAR_ONE]),
    "norm_p1": (lambda lib, F, x: x.norm(p=1, dim=0), [NEAR_ONE]),
    "norm_p3": (lambda lib, F, x: x.norm(p=3, dim=0), [NEAR_ONE]),
    "logsumexp": (lambda lib, F, x: x.logsumexp(1), [LOGITS]),
    "logsumexp_dim0": (lambda lib, F, x: lib.logsumexp(x, 0), [LOGITS.T]),
    "cumsum_dim0": (lambda lib, F, x: x.cumsum(0), [NEAR_ONE]),
    "cumsum_dim1": (lambda lib, F, x: x.cumsum(1), [NEAR_ONE.T]),
    "softmax": (lambda lib, F, x: x.softmax(1), [LOGITS]),
    "softmax_dim0": (lambda lib, F, x: F.softmax(x, 0), [LOGITS.T]),
    "log_softmax": (lambda lib, F, x: x.log_softmax(1), [LOGITS]),
    "log_softmax_dim0": (lambda lib, F, x: F.log_softmax(x, dim=0), [LOGITS.T]),
    "prod": (lambda lib, F, x: x.prod(0), [(1 + NEAR_ONE[:600] / 1000).astype(np.float32)]),
    "amax": (lambda lib, F, x: x.amax(1), [NEAR_100]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction(name, dtype, device):
    fn, arrays = REDUCTIONS[name]
    _run(fn, arrays, device, dtype)


def test_issue_example_mean_of_full(device):
    """sg.full((1000,), 100., dtype=float16).mean() was inf: the float16 sum overflowed."""
    x = sg.full((1000,), 100.0, dtype=sg.float16, device=device)
    assert x.mean().item() == 100.0
    assert x.mean().dtype is sg.float16


W = RNG.uniform(0.5, 1.5, (8, 256)).astype(np.float32)
PRODUCTS = {
    "matmul": (lambda lib, F, x, y: x @ y, [NEAR_ONE.T.copy(), NEAR_ONE]),
    "matmul_batched": (lambda lib, F, x, y: x.reshape(3, 1, -1) @ y.reshape(1, -1, 3),
                       [NEAR_ONE.T.copy(), NEAR_ONE.T.copy()]),
    "einsum": (lambda lib, F, x, y: lib.einsum("ki,kj->ij", x, y), [NEAR_ONE, NEAR_ONE]),
    "linear": (lambda lib, F, x, w, b: F.linear(x, w, b),
               [NEAR_ONE.reshape(-1, 6), W[:, :6], W[:, 0]]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", PRODUCTS)
def test_products(name, dtype, device):
    """Dot products of 2048 terms near 1 (and bias gradients summed over 1024 rows)."""
    fn, arrays = PRODUCTS[name]
    _run(fn, arrays, device, dtype, ulps=2, grad_ulps=4)


NORMS = {
    "layer_norm": (lambda lib, F, x, w, b: F.layer_norm(x, (300,), w, b),
                   [NEAR_1000, W[0, :300].repeat(2)[:300], W[1, :300].repeat(2)[:300]]),
    "layer_norm_no_affine": (lambda lib, F, x: F.layer_norm(x, (4, 300)), [NEAR_1000]),
    "group_norm": (lambda lib, F, x, w, b: F.group_norm(x, 2, w, b),
                   [NEAR_100.reshape(2, 4, 500), W[0, :4], W[1, :4]]),
    "batch_norm_train": (lambda lib, F, x, w, b: F.batch_norm(x, None, None, w, b,
                                                              training=True),
                         [NEAR_1000.T.copy(), W[0, :4], W[1, :4]]),
    "batch_norm_eval": (lambda lib, F, x, w: F.batch_norm(
        x, lib.full((4,), 1000.0, dtype=x.dtype, device=x.device),
        lib.full((4,), 100.0, dtype=x.dtype, device=x.device), w, training=False),
        [NEAR_1000.T.copy(), W[0, :4]]),
    "rms_norm": (lambda lib, F, x, w: F.rms_norm(x, (1000,), w),
                 [NEAR_100, W[0].repeat(4)[:1000]]),
}


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_bias_gradient_over_many_rows(dtype, device):
    """The bias gradient sums 4096 ones: 4096 in PyTorch (2048 when summed in float16)."""
    sg_dtype, _ = _dtype_or_skip(dtype, device)
    x = sg.ones(4096, 3, dtype=sg_dtype, device=device)
    w = sg.ones(2, 3, dtype=sg_dtype, device=device, requires_grad=True)
    b = sg.zeros(2, dtype=sg_dtype, device=device, requires_grad=True)
    F.linear(x, w, b).sum().backward()
    assert b.grad.tolist() == [4096.0, 4096.0] and b.grad.dtype is sg_dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NORMS)
def test_norm_functions(name, dtype, device):
    fn, arrays = NORMS[name]
    _run(fn, arrays, device, dtype, ulps=2, grad_ulps=6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_default_eps_is_the_input_dtypes(dtype, device):
    """eps=None means the machine epsilon of the input's dtype, not of float32 (in which
    the math runs): visible for inputs whose mean square is near that epsilon."""
    sg_dtype, torch_dtype = _dtype_or_skip(dtype, device)
    (x,), (t,), _ = _inputs([NEAR_100 / 3000], device, sg_dtype, torch_dtype)
    ours, ref = F.rms_norm(x, (1000,)), TF.rms_norm(t, (1000,))
    exact = TF.rms_norm(t.double(), (1000,), eps=torch.finfo(torch_dtype).eps)
    _assert_accurate(ours, ref, exact, dtype, "forward")


def test_issue_example_layer_norm(device):
    """Half layer_norm of [1000, 1010, 990, 1005] was off by 0.034 from PyTorch's."""
    x = [1000.0, 1010.0, 990.0, 1005.0]
    ours = F.layer_norm(sg.tensor(x, dtype=sg.float16, device=device), (4,))
    ref = TF.layer_norm(torch.tensor(x, dtype=torch.float16), (4,))
    assert ours.dtype is sg.float16
    np.testing.assert_array_equal(to_numpy(ours.detach()), to_numpy(ref))


def _module_pair(name: str):
    if name == "LayerNorm":
        return nn.LayerNorm(300), torch.nn.LayerNorm(300), NEAR_1000
    if name == "GroupNorm":
        return nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), NEAR_100.reshape(2, 4, 500)
    if name == "BatchNorm1d":
        return nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4), NEAR_1000.T.reshape(100, 4, 3)
    if name == "BatchNorm2d":
        return (nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4),
                NEAR_1000.T.reshape(25, 4, 3, 4))
    return nn.RMSNorm(1000), torch.nn.RMSNorm(1000), NEAR_100


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["LayerNorm", "GroupNorm", "BatchNorm1d", "BatchNorm2d",
                                  "RMSNorm"])
def test_norm_layers(name, dtype, device):
    """The layers in low precision (module.to(dtype)): output, input and parameter
    gradients, and BatchNorm's running statistics after a training step and in eval."""
    sg_dtype, torch_dtype = _dtype_or_skip(dtype, device)
    ours, theirs, data = _module_pair(name)
    ours = ours.to(device=device, dtype=sg_dtype)
    theirs, exact = copy.deepcopy(theirs).to(torch_dtype), theirs.double()
    (x,), (t,), (e,) = _inputs([data], device, sg_dtype, torch_dtype)
    outs = (ours(x), theirs(t), exact(e))
    assert outs[0].dtype is sg_dtype
    _assert_accurate(*outs, dtype, "forward")
    _backward(outs, device, sg_dtype, torch_dtype)
    _assert_accurate(x.grad, t.grad, e.grad, dtype, "input gradient", 6)
    for (pname, p), tp, ep in zip(ours.named_parameters(), theirs.parameters(),
                                  exact.parameters()):
        _assert_accurate(p.grad, tp.grad, ep.grad, dtype, f"{pname} gradient", 6)
    for (bname, b), tb, eb in zip(ours.named_buffers(), theirs.buffers(), exact.buffers()):
        _assert_accurate(b, tb, eb, dtype, f"buffer {bname}")
    if name.startswith("BatchNorm"):
        for m in (ours, theirs, exact):
            m.eval()
        _assert_accurate(ours(x), theirs(t), exact(e), dtype, "eval forward")


# Each loss sums to more than float16's 65504 before the mean divides it back down. (On
# CPU, PyTorch's float16 cross_entropy, nll_loss and kl_div 'batchmean' then give inf.)
TARGET_CLASSES = RNG.integers(0, 8, 2000)
PROBS = RNG.uniform(0.05, 0.95, (2048, 4)).astype(np.float32)
ONES = np.ones((2048, 4), np.float32)
LOSSES = {
    "cross_entropy": (lambda lib, F, x, t: F.cross_entropy(x, t),
                      [100 * LOGITS.reshape(-1, 8)], [TARGET_CLASSES[:1024]]),
    "cross_entropy_smoothing": (lambda lib, F, x, t: F.cross_entropy(x, t,
                                                                      label_smoothing=0.1),
                                [100 * LOGITS.reshape(-1, 8)], [TARGET_CLASSES[:1024]]),
    "cross_entropy_probs": (lambda lib, F, x, p: F.cross_entropy(x, p),
                            [100 * LOGITS.reshape(-1, 4), PROBS], []),
    "nll_loss": (lambda lib, F, x, t: F.nll_loss(x, t),
                 [-NEAR_100.reshape(-1, 2)], [TARGET_CLASSES % 2]),
    "mse_loss": (lambda lib, F, x, y: F.mse_loss(x, y),
                 [NEAR_100.T, NEAR_100.T + 10 * LOGITS[:, :1000].T], []),
    "l1_loss": (lambda lib, F, x, y: F.l1_loss(x, y), [NEAR_100.T, -NEAR_100.T], []),
    "smooth_l1_loss": (lambda lib, F, x, y: F.smooth_l1_loss(x, y),
                       [NEAR_100.T, -NEAR_100.T], []),
    "huber_loss": (lambda lib, F, x, y: F.huber_loss(x, y, delta=30.0),
                   [NEAR_100.T, NEAR_100.T + 30 * LOGITS[:, :1000].T], []),
    "binary_cross_entropy": (lambda lib, F, x, y: F.binary_cross_entropy(x, y),
                             [PROBS / 3000, ONES], []),
    "binary_cross_entropy_with_logits": (
        lambda lib, F, x, y: F.binary_cross_entropy_with_logits(x, y),
        [-20 * LOGITS.reshape(-1, 4) - 10, ONES], []),
    "kl_div": (lambda lib, F, x, y: F.kl_div(x, y, reduction="batchmean"),
               [np.log(PROBS) - 30, PROBS[::-1].copy()], []),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LOSSES)
def test_losses(name, dtype, device):
    fn, arrays, extra = LOSSES[name]
    _run(fn, arrays, device, dtype, extra=extra, ulps=2, grad_ulps=4)
