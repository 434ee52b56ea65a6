"""Convolutions and pooling against PyTorch: values, gradients, double backward, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import assert_close, check_op

import smolgrad as sg
import smolgrad.nn.functional as F


def _fns(name, **kw):
    """The same call for smolgrad (F.name) and PyTorch (TF.name), with keyword arguments."""
    return (lambda *a: getattr(F, name)(*a, **kw)), (lambda *a: getattr(TF, name)(*a, **kw))


# (input shape, weight shape, keyword arguments); odd sizes throughout
CONV2D_CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), {}),
    ((2, 3, 7, 9), (4, 3, 3, 3), dict(padding=1)),
    ((1, 2, 8, 7), (3, 2, 2, 3), dict(stride=2, padding=(1, 0))),
    ((2, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                                      groups=2)),
    ((1, 3, 6, 6), (3, 1, 3, 3), dict(padding=1, groups=3)),         # depthwise
    ((2, 2, 7, 7), (4, 2, 3, 3), dict(dilation=2, padding=2)),
    ((1, 2, 9, 9), (2, 2, 3, 3), dict(stride=3)),
    ((1, 2, 5, 6), (3, 2, 1, 1), {}),                                 # 1x1
    ((2, 3, 5, 7), (3, 3, 3, 3), dict(padding="same")),
    ((1, 2, 6, 5), (2, 2, 4, 2), dict(padding="same", dilation=(1, 3))),  # even kernel
    ((1, 2, 6, 5), (2, 2, 3, 3), dict(padding="valid")),
    ((2, 6, 5, 5), (4, 3, 3, 3), dict(groups=2, stride=2, padding=1)),
]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("x_shape,w_shape,kw", CONV2D_CASES, ids=str)
def test_conv2d(x_shape, w_shape, kw, bias, device):
    fn, tfn = _fns("conv2d", **kw)
    specs = (x_shape, w_shape) + (((w_shape[0],),) if bias else ())
    check_op(fn, *specs, device=device, torch_fn=tfn, gradcheck=False, atol=1e-4)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(dilation=2, groups=2)],
                         ids=str)
def test_conv2d_gradcheck(kw, device):
    """The fused Conv2d's gradient against finite differences in float64 (and torch)."""
    fn, tfn = _fns("conv2d", **kw)
    check_op(fn, (1, 2, 5, 6), (2, 1 if kw.get("groups") else 2, 2, 3), (2,), device=device,
             torch_fn=tfn)


def test_conv2d_unbatched(device):
    fn, tfn = _fns("conv2d", padding=1)
    check_op(fn, (3, 5, 6), (2, 3, 3, 3), device=device, torch_fn=tfn, gradcheck=False)


CONV1D_CASES = [
    ((2, 3, 11), (4, 3, 3), {}),
    ((2, 3, 11), (4, 3, 3), dict(stride=2, padding=1)),
    ((1, 4, 10), (6, 2, 4), dict(dilation=2, groups=2, padding=(3,))),
    ((2, 2, 9), (2, 2, 4), dict(padding="same")),
    ((3, 7), (2, 3, 3), dict(padding=1)),                             # unbatched
]


@pytest.mark.parametrize("x_shape,w_shape,kw", CONV1D_CASES, ids=str)
def test_conv1d(x_shape, w_shape, kw, device):
    fn, tfn = _fns("conv1d", **kw)
    check_op(fn, x_shape, w_shape, (w_shape[0],), device=device, torch_fn=tfn,
             gradcheck=False)


# (input shape, weight shape (C_in, C_out / groups, KH, KW), keyword arguments)
CONVT_CASES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), {}),
    ((1, 4, 5, 4), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 3, 3), (4, 1, 3, 3), dict(stride=(2, 3), groups=2, output_padding=(1, 2))),
    ((1, 2, 4, 4), (2, 2, 2, 3), dict(dilation=2, padding=(1, 2))),
    ((1, 2, 3, 4), (2, 3, 4, 4), dict(stride=2, padding=1)),          # the usual 2x upsample
]


@pytest.mark.parametrize("x_shape,w_shape,kw", CONVT_CASES, ids=str)
def test_conv_transpose2d(x_shape, w_shape, kw, device):
    fn, tfn = _fns("conv_transpose2d", **kw)
    bias = (w_shape[1] * kw.get("groups", 1),)
    check_op(fn, x_shape, w_shape, bias, device=device, torch_fn=tfn, gradcheck=False,
             atol=1e-4)


def test_conv_transpose2d_gradcheck(device):
    fn, tfn = _fns("conv_transpose2d", stride=2, padding=1, output_padding=1)
    check_op(fn, (1, 2, 3, 3), (2, 2, 3, 3), device=device, torch_fn=tfn)


def test_conv2d_double_backward_matches_torch(device):
    """A gradient penalty: d/dW of ||d(Σ conv(x, W)²)/dx||², through create_graph."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 6, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    kw = dict(stride=2, padding=1)
    outs = []
    for lib, fn in ((sg, F.conv2d), (torch, TF.conv2d)):
        xs = lib.tensor(x, requires_grad=True)
        ws = lib.tensor(w, requires_grad=True)
        y = fn(xs, ws, **kw)
        (gx,) = lib.autograd.grad((y * y).sum(), xs, create_graph=True)
        (gx * gx).sum().backward()
        outs.append((gx, ws.grad, xs.grad))
    for mine, theirs in zip(outs[0], outs[1]):
        assert_close(mine, theirs, atol=1e-3, rtol=1e-4)


def test_conv2d_gradgradcheck():
    """Second derivatives of the conv family (Conv2d, ConvTranspose2d, weight grad) in
    float64 against finite differences."""
    rng = np.random.default_rng(2)
    x = sg.tensor(rng.standard_normal((1, 2, 4, 5)), requires_grad=True)
    w = sg.tensor(rng.standard_normal((2, 1, 2, 2)), requires_grad=True)
    assert sg.autograd.gradgradcheck(lambda a, b: F.conv2d(a, b, stride=(1, 2), groups=2),
                                     (x, w))
    y = sg.tensor(rng.standard_normal((1, 2, 3, 3)), requires_grad=True)
    assert sg.autograd.gradgradcheck(
        lambda a, b: F.conv_transpose2d(a, b, stride=2, groups=2), (y, w))


# ---------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------

MAXPOOL_CASES = [
    ((2, 3, 7, 9), dict(kernel_size=2)),
    ((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 9, 8), dict(kernel_size=(3, 2), stride=(2, 1), dilation=(2, 1))),
    ((1, 2, 7, 7), dict(kernel_size=2, ceil_mode=True)),
    ((1, 2, 8, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((3, 6, 5), dict(kernel_size=2, stride=1)),                       # unbatched
]


@pytest.mark.parametrize("x_shape,kw", MAXPOOL_CASES, ids=str)
def test_max_pool2d(x_shape, kw, device):
    fn, tfn = _fns("max_pool2d", **kw)
    check_op(fn, x_shape, device=device, torch_fn=tfn, gradcheck=False)


def test_max_pool2d_gradcheck(device):
    fn, tfn = _fns("max_pool2d", kernel_size=3, stride=2, padding=1)
    check_op(fn, (1, 2, 5, 6), device=device, torch_fn=tfn)


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=2, dilation=2, ceil_mode=True)], ids=str)
def test_max_pool2d_return_indices(kw, device):
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 8)).astype(np.float32)
    out, idx = F.max_pool2d(sg.tensor(x, device=device), return_indices=True, **kw)
    t_out, t_idx = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    assert_close(out, t_out)
    assert idx.dtype == sg.int64
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())


def test_max_pool2d_ties_send_gradient_to_one_position(device):
    """PyTorch gives the whole gradient to one maximum per window (no split on ties)."""
    x = np.ones((1, 1, 4, 4), np.float32)
    xs = sg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    F.max_pool2d(xs, 2).sum().backward()
    TF.max_pool2d(xt, 2).sum().backward()
    assert_close(xs.grad, xt.grad)


AVGPOOL_CASES = [
    ((2, 3, 7, 9), dict(kernel_size=2)),
    ((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ((1, 2, 7, 7), dict(kernel_size=2, ceil_mode=True)),
    ((1, 2, 8, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 8, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False)),
    ((1, 2, 6, 6), dict(kernel_size=(2, 3), divisor_override=5)),
    ((3, 6, 5), dict(kernel_size=2, stride=1)),                       # unbatched
]


@pytest.mark.parametrize("x_shape,kw", AVGPOOL_CASES, ids=str)
def test_avg_pool2d(x_shape, kw, device):
    fn, tfn = _fns("avg_pool2d", **kw)
    check_op(fn, x_shape, device=device, torch_fn=tfn, gradcheck=False)


def test_avg_pool2d_gradcheck(device):
    fn, tfn = _fns("avg_pool2d", kernel_size=3, stride=2, padding=1, count_include_pad=False)
    check_op(fn, (1, 2, 5, 6), device=device, torch_fn=tfn)


def test_pooling_double_backward(device):
    """Pool backward passes are Tensor ops (Fold2d/Unfold2d), so they differentiate again."""
    if device != "cpu":
        pytest.skip("float64 finite differences run on cpu")
    rng = np.random.default_rng(4)
    x = sg.tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    assert sg.autograd.gradgradcheck(lambda a: F.avg_pool2d(a, 3, 2, 1), (x,))
    assert sg.autograd.gradgradcheck(lambda a: F.max_pool2d(a, 3, 2, 1) ** 2, (x,))


@pytest.mark.parametrize("x_shape,size", [((2, 3, 7, 9), (3, 4)), ((1, 2, 6, 6), (2, 3)),
                                          ((1, 2, 5, 7), 1), ((1, 2, 5, 7), (None, 3)),
                                          ((2, 5, 4), (3, 3)), ((1, 1, 3, 4), (5, 6))],
                         ids=str)
def test_adaptive_avg_pool2d(x_shape, size, device):
    fn, tfn = _fns("adaptive_avg_pool2d", output_size=size)
    check_op(fn, x_shape, device=device, torch_fn=tfn, gradcheck=x_shape[-1] < 6)


# ---------------------------------------------------------------------------------------
# Errors name the op and the shapes
# ---------------------------------------------------------------------------------------


def test_conv2d_wrong_channels_names_shapes(device):
    x = sg.zeros(2, 3, 8, 8, device=device)
    w = sg.zeros(4, 2, 3, 3, device=device)
    with pytest.raises(RuntimeError, match=r"conv2d.*2 channels.*\(4, 2, 3, 3\).*"
                                           r"\(2, 3, 8, 8\)"):
        F.conv2d(x, w)


def test_conv_errors(device):
    x = sg.zeros(1, 2, 4, 4, device=device)
    with pytest.raises(RuntimeError, match="conv2d.*larger than the padded input"):
        F.conv2d(x, sg.zeros(1, 2, 5, 5, device=device))
    with pytest.raises(ValueError, match="'same' is not supported for strided"):
        F.conv2d(x, sg.zeros(1, 2, 3, 3, device=device), stride=2, padding="same")
    with pytest.raises(RuntimeError, match="conv2d: expected a 3-D .* or 4-D"):
        F.conv2d(sg.zeros(4, 4, device=device), sg.zeros(1, 1, 3, 3, device=device))
    with pytest.raises(RuntimeError, match="not divisible by groups=2"):
        F.conv2d(x, sg.zeros(3, 1, 3, 3, device=device), groups=2)
    with pytest.raises(RuntimeError, match="bias must have shape"):
        F.conv2d(x, sg.zeros(3, 2, 3, 3, device=device), sg.zeros(2, device=device))
    with pytest.raises(RuntimeError, match="conv1d: expected input with 3 channels"):
        F.conv1d(sg.zeros(1, 2, 9, device=device), sg.zeros(1, 3, 3, device=device))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, sg.zeros(2, 2, 3, 3, device=device), stride=2,
                           output_padding=2)
    with pytest.raises(RuntimeError, match="conv_transpose2d: expected input with 3"):
        F.conv_transpose2d(x, sg.zeros(3, 2, 3, 3, device=device))
    with pytest.raises(RuntimeError, match="should be at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(RuntimeError, match="max_pool2d: expected floating point"):
        F.max_pool2d(sg.zeros(1, 1, 4, 4, dtype=sg.int64, device=device), 2)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)],
                         ids=str)
def test_max_pool2d_nan_and_ties_pick_as_torch(kw, device):
    """NaN wins its window (the last NaN, as PyTorch's kernel picks it) and ties go to the
    first maximum, in values and indices; the gradient of a tie reaches one position."""
    x = np.random.default_rng(5).standard_normal((1, 2, 6, 6)).astype(np.float32)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[0, 1, 5, 5] = np.nan
    x[0, 1, 2:4, 2:4] = 7.0                                   # a four-way tie
    xs = sg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out, idx = F.max_pool2d(xs, return_indices=True, **kw)
    t_out, t_idx = TF.max_pool2d(xt, return_indices=True, **kw)
    np.testing.assert_array_equal(out.detach().numpy(), t_out.detach().numpy())  # NaN == NaN
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    x = np.nan_to_num(x, nan=0.5)                              # gradients: ties only
    xs = sg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    (F.max_pool2d(xs, **kw) ** 2).sum().backward()
    (TF.max_pool2d(xt, **kw) ** 2).sum().backward()
    assert_close(xs.grad, xt.grad)


def test_conv_output_is_a_view_and_chains(device):
    """conv2d returns (N, O, Ho, Wo) as a view of its channels-first product; the next conv,
    pooling, flatten and the backward pass read it correctly (against torch)."""
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in ((3, 2, 9, 9), (4, 2, 3, 3), (4,), (5, 4, 3, 3), (5,))]

    def net(lib, fn, x, w1, b1, w2, b2):
        h = fn.max_pool2d(fn.relu(fn.conv2d(x, w1, b1, padding=1)), 2)
        return fn.conv2d(h, w2, b2, stride=2).flatten(1)

    ours = [sg.tensor(a, device=device, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ys, yt = net(sg, F, *ours), net(torch, TF, *theirs)
    assert_close(ys, yt, atol=1e-4)
    (ys * ys).sum().backward()
    (yt * yt).sum().backward()
    for a, b in zip(ours, theirs):
        assert_close(a.grad, b.grad, atol=1e-3, rtol=1e-4)
