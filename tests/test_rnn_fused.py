"""The fused recurrent steps (ops.nn.LSTMStep, GRUStep; unbind and stack, one node each): first and
second derivatives by finite differences, and the layers built on them (nn.LSTM, nn.GRU,
an nn.LSTMCell loop) against PyTorch: outputs and every parameter's gradient, also when
only part of the final state reaches the loss, and a gradient of a gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nn_oracle import load_from_torch

import smolgrad as sg
import smolgrad.nn as nn
from smolgrad.ops.nn import gru_step, lstm_step


def _leaf(shape, seed, scale=1.0):
    data = np.random.default_rng(seed).standard_normal(shape) * scale
    return sg.tensor(data, dtype=sg.float64, requires_grad=True)


# -- the Functions on their own, float64 on cpu -----------------------------------------------

def test_lstm_step_gradcheck():
    a, b, c = _leaf((2, 12), 0, 1.5), _leaf((2, 12), 1, 1.5), _leaf((2, 3), 2)
    assert sg.autograd.gradcheck(lstm_step, (a, b, c))
    assert sg.autograd.gradgradcheck(lstm_step, (a, b, c))


def test_gru_step_gradcheck():
    a, b, h = _leaf((2, 9), 3, 1.5), _leaf((2, 9), 4, 1.5), _leaf((2, 3), 5)
    assert sg.autograd.gradcheck(gru_step, (a, b, h))
    assert sg.autograd.gradgradcheck(gru_step, (a, b, h))


def _split_then_stack(x):
    steps = sg.unbind(x)
    return sg.stack([s * (t + 1) for t, s in enumerate(steps)])


def test_split_and_stack_steps_gradcheck():
    x = _leaf((4, 2, 3), 6)
    assert sg.autograd.gradcheck(_split_then_stack, (x,))
    assert sg.autograd.gradgradcheck(_split_then_stack, (x,))


def test_lstm_step_one_output_used():
    """Only h' (or only c') reaches the loss: the other output's gradient is zeros."""
    a, b, c = _leaf((2, 8), 7), _leaf((2, 8), 8), _leaf((2, 2), 9)
    ta, tb, tc = (torch.tensor(t.detach().numpy(), requires_grad=True) for t in (a, b, c))
    z = ta + tb
    i, f, g, o = z.chunk(4, -1)
    c_new = f.sigmoid() * tc + i.sigmoid() * g.tanh()
    h_new = o.sigmoid() * c_new.tanh()
    for which in (0, 1):
        for t in (a, b, c):
            t.grad = None
        lstm_step(a, b, c)[which].pow(2).sum().backward()
        expected = torch.autograd.grad((h_new, c_new)[which].pow(2).sum(), (ta, tb, tc),
                                       retain_graph=True)
        for mine, theirs in zip((a, b, c), expected):
            np.testing.assert_allclose(mine.grad.numpy(), theirs.numpy(), rtol=1e-10)


def test_step_errors():
    a, c = sg.zeros(2, 8), sg.zeros(2, 2)
    with pytest.raises(RuntimeError, match=r"lstm_step: .*\(2, 8\), \(2, 6\) and \(2, 2\)"):
        lstm_step(a, sg.zeros(2, 6), c)
    with pytest.raises(RuntimeError, match=r"gru_step: .*\(N, 3·H\)"):
        gru_step(a, a, c)
    with pytest.raises(RuntimeError, match="gru_step: expected floating-point"):
        gru_step(sg.zeros(2, 6, dtype=sg.int64), sg.zeros(2, 6, dtype=sg.int64),
                 sg.zeros(2, 2, dtype=sg.int64))


def test_mixed_dtypes_promote():
    """A float64 state with float32 projections computes in float64, as the composite did."""
    h, c = lstm_step(sg.ones(1, 4), sg.ones(1, 4), sg.ones(1, 1, dtype=sg.float64))
    assert h.dtype == c.dtype == sg.float64


# -- the layers against PyTorch -----------------------------------------------------------------

def _compare(sg_module, torch_module, loss_sg, loss_torch, atol=1e-5):
    loss_torch.backward()
    loss_sg.backward()
    np.testing.assert_allclose(loss_sg.item(), loss_torch.item(), rtol=1e-5, atol=atol)
    theirs = dict(torch_module.named_parameters())
    for name, p in sg_module.named_parameters():
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), atol=atol,
                                   rtol=1e-4, err_msg=name)


def _loss(out, hidden, used):
    """The loss from the layer's results: the whole output, or only h_n, or only c_n."""
    if used == "output":
        return (out * out).mean()
    if used == "h_n":
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden
        return (h_n * h_n).sum()
    return (hidden[1] * hidden[1]).sum()


@pytest.mark.parametrize("name,used", [("LSTM", "output"), ("LSTM", "h_n"), ("LSTM", "c_n"),
                                       ("GRU", "output"), ("GRU", "h_n")])
@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2, "bidirectional": True}])
def test_layer_against_torch(device, name, used, kwargs):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(5, 6, **kwargs)
    mine = load_from_torch(getattr(nn, name)(5, 6, **kwargs), theirs, device)
    x = np.random.default_rng(1).standard_normal((7, 3, 5)).astype(np.float32)
    out_t, hidden_t = theirs(torch.tensor(x))
    out_s, hidden_s = mine(sg.tensor(x, device=device))
    np.testing.assert_allclose(out_s.detach().numpy(), out_t.detach().numpy(), atol=1e-5)
    _compare(mine, theirs, _loss(out_s, hidden_s, used), _loss(out_t, hidden_t, used))


def test_lstm_cell_loop_against_torch(device):
    """time_sequence_prediction's pattern: a cell stepped by hand, the loss on the last h."""
    torch.manual_seed(0)
    theirs = torch.nn.LSTMCell(4, 5)
    mine = load_from_torch(nn.LSTMCell(4, 5), theirs, device)
    x = np.random.default_rng(2).standard_normal((6, 3, 4)).astype(np.float32)
    h_t = c_t = torch.zeros(3, 5)
    h_s = c_s = sg.zeros(3, 5, device=device)
    for t in range(x.shape[0]):
        h_t, c_t = theirs(torch.tensor(x[t]), (h_t, c_t))
        h_s, c_s = mine(sg.tensor(x[t], device=device), (h_s, c_s))
    _compare(mine, theirs, (h_s * h_s).sum(), (h_t * h_t).sum())


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_gradient_of_gradient_against_torch(device, name):
    """A gradient penalty: d/dθ of |d(Σ output)/dx|², which needs create_graph=True through
    the fused steps' backward."""
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(3, 4)
    mine = load_from_torch(getattr(nn, name)(3, 4), theirs, device)
    x = np.random.default_rng(3).standard_normal((4, 2, 3)).astype(np.float32)
    x_t = torch.tensor(x, requires_grad=True)
    x_s = sg.tensor(x, device=device, requires_grad=True)
    (g_t,) = torch.autograd.grad(theirs(x_t)[0].sum(), x_t, create_graph=True)
    (g_s,) = sg.autograd.grad(mine(x_s)[0].sum(), x_s, create_graph=True)
    np.testing.assert_allclose(g_s.detach().numpy(), g_t.detach().numpy(), atol=1e-5)
    _compare(mine, theirs, (g_s * g_s).sum(), (g_t * g_t).sum())
