"""Graph nodes with several outputs: a user `autograd.Function` whose forward returns a
tuple, and an engine `Function` whose forward returns a tuple of arrays, against
`torch.autograd.Function`.

One node, several outputs: `apply` returns a tuple of tensors sharing one `grad_fn`;
backward runs once, after the gradients of all its outputs are in, and receives one
gradient per output (zeros for an output no gradient reached, None with
`set_materialize_grads(False)`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import assert_close

import smolgrad as sg
from smolgrad.engine import Function, topological_order

X = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]], dtype=np.float32)
W = np.array([[1.0, -2.0, 0.5], [3.0, 1.5, -1.0]], dtype=np.float32)
V = np.array([[0.3, 0.7, -1.1], [2.0, -0.4, 0.9]], dtype=np.float32)


def double_and_square(lib, materialize: bool = True):
    """The same two-output op, (2x, x²), as a custom Function of `lib` (smolgrad or torch).
    Returns the class and the list that records the gradients each backward received."""
    received = []

    class DoubleAndSquare(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            ctx.save_for_backward(x)
            return x * 2, x * x

        @staticmethod
        def backward(ctx, g_double, g_square):
            received.append((g_double, g_square))
            (x,) = ctx.saved_tensors
            grad = 0
            if g_double is not None:
                grad = grad + g_double * 2
            if g_square is not None:
                grad = grad + g_square * 2 * x
            return grad

    return DoubleAndSquare, received


def _loss(double, square, used: str, lib):
    w = lib.tensor(W) if lib is torch else sg.tensor(W, device=double.device)
    if used == "double":
        return (double * w).sum()
    if used == "square":
        return (square * w).sum()
    return (double * w + square * square).sum()


@pytest.mark.parametrize("used", ["double", "square", "both"])
def test_gradient_from_one_or_both_outputs_matches_torch(device, used):
    op, received = double_and_square(sg)
    x = sg.tensor(X, device=device, requires_grad=True)
    double, square = op.apply(x)
    assert double.grad_fn is square.grad_fn and repr(double.grad_fn) == "<DoubleAndSquareBackward0>"
    _loss(double, square, used, sg).backward()

    t_op, t_received = double_and_square(torch)
    tx = torch.tensor(X, requires_grad=True)
    t_double, t_square = t_op.apply(tx)
    _loss(t_double, t_square, used, torch).backward()

    assert_close(x.grad, tx.grad)
    assert len(received) == len(t_received) == 1  # backward runs once for both outputs
    for got, want in zip(received[0], t_received[0]):
        assert_close(got, want)  # the unused output's gradient is zeros, as in torch


@pytest.mark.parametrize("used", ["double", "square"])
def test_without_materialize_grads_the_missing_gradient_is_none(device, used):
    op, received = double_and_square(sg, materialize=False)
    x = sg.tensor(X, device=device, requires_grad=True)
    _loss(*op.apply(x), used, sg).backward()
    t_op, t_received = double_and_square(torch, materialize=False)
    tx = torch.tensor(X, requires_grad=True)
    _loss(*t_op.apply(tx), used, torch).backward()
    assert_close(x.grad, tx.grad)
    assert [g is None for g in received[0]] == [g is None for g in t_received[0]]


def test_double_backward_through_two_outputs_matches_torch(device):
    op, _ = double_and_square(sg)
    x = sg.tensor(X, device=device, requires_grad=True)
    (g,) = sg.autograd.grad(_loss(*op.apply(x), "both", sg), x, create_graph=True)
    (g * sg.tensor(V, device=device)).sum().backward()

    t_op, _ = double_and_square(torch)
    tx = torch.tensor(X, requires_grad=True)
    (tg,) = torch.autograd.grad(_loss(*t_op.apply(tx), "both", torch), tx, create_graph=True)
    (tg * torch.tensor(V)).sum().backward()

    assert_close(g, tg)
    assert_close(x.grad, tx.grad)


def _hooked_outputs(lib, device: str):
    """x, the op's two outputs (the first with a hook that scales its gradient by 10) and
    the loss made from both, in smolgrad or torch."""
    op, _ = double_and_square(lib)
    x = (lib.tensor(X, requires_grad=True) if lib is torch else
         sg.tensor(X, device=device, requires_grad=True))
    double, square = op.apply(x)
    double.register_hook(lambda g: g * 10)
    return x, double, square, _loss(double, square, "both", lib)


def test_outputs_keep_their_own_hooks_and_retained_grads(device):
    x, double, square, loss = _hooked_outputs(sg, device)
    square.retain_grad()
    loss.backward()
    tx, t_double, t_square, t_loss = _hooked_outputs(torch, device)
    t_square.retain_grad()
    t_loss.backward()
    assert_close(square.grad, t_square.grad)
    assert double.grad is None and square.grad_fn is not None
    assert_close(x.grad, tx.grad)


def test_grad_with_respect_to_each_output(device):
    _, double, square, loss = _hooked_outputs(sg, device)
    _, t_double, t_square, t_loss = _hooked_outputs(torch, device)
    got = sg.autograd.grad(loss, [double, square])
    want = torch.autograd.grad(t_loss, [t_double, t_square])
    for g, tg in zip(got, want):
        assert_close(g, tg)


def test_in_place_change_of_one_output_is_differentiated_like_torch(device):
    op, _ = double_and_square(sg)
    x = sg.tensor(X, device=device, requires_grad=True)
    double, square = op.apply(x)
    square.mul_(3)
    (double * square).sum().backward()

    t_op, _ = double_and_square(torch)
    tx = torch.tensor(X, requires_grad=True)
    t_double, t_square = t_op.apply(tx)
    t_square.mul_(3)
    (t_double * t_square).sum().backward()
    assert_close(x.grad, tx.grad)


def test_integer_outputs_carry_no_gradient_and_get_zeros(device):
    received = []

    class ValueAndSign(sg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3, x > 0

        @staticmethod
        def backward(ctx, g_value, g_sign):
            received.append(g_sign)
            return g_value * 3

    x = sg.tensor(X, device=device, requires_grad=True)
    value, sign = ValueAndSign.apply(x)
    assert not sign.requires_grad and sign.grad_fn is None and sign.dtype == sg.bool
    value.sum().backward()
    assert_close(x.grad, torch.full(X.shape, 3.0))
    assert received[0].dtype == sg.bool and not received[0].any()  # torch: zeros too


def test_gradcheck_of_a_two_output_function():
    op, _ = double_and_square(sg)
    x = sg.tensor(X.astype(np.float64), requires_grad=True)
    assert sg.autograd.gradcheck(op.apply, (x,))
    assert sg.autograd.gradgradcheck(op.apply, (x,))


class SplitHalves(Function):
    """An engine-level op with two outputs (arrays in, a tuple of arrays out): the first
    and second half of a 1-D input. Backward puts the two gradients side by side."""

    @staticmethod
    def forward(ctx, x):
        half = x.shape[0] // 2
        return x.array[:half], x.array[half:]

    @staticmethod
    def backward(ctx, g_first, g_second):
        return sg.cat([g_first, g_second])


def test_engine_function_with_two_outputs_runs_its_node_once_in_order(device):
    x = sg.tensor([1.0, 2.0, 3.0, 4.0], device=device, requires_grad=True)
    first, second = SplitHalves.apply(x)
    node = first.grad_fn
    assert second.grad_fn is node and (first._output_nr, second._output_nr) == (0, 1)
    loss = (first * 5).sum() + (second * second).sum()
    position = {id(item): i for i, item in enumerate(topological_order([loss]))}
    assert len(position) == len(topological_order([loss]))  # the node is listed once
    assert position[id(first)] < position[id(node)] and position[id(second)] < position[id(node)]
    assert position[id(node)] < position[id(x)]
    loss.backward(retain_graph=True)
    assert x.grad.tolist() == [5.0, 5.0, 6.0, 8.0]
    x.grad = None
    second.sum().backward()  # the first output got no gradient: zeros
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(RuntimeError, match="SplitHalves: trying to backward through the "
                                           "graph a second time"):
        first.sum().backward()


def test_forward_must_return_tensors():
    class Broken(sg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x, 3

        @staticmethod
        def backward(ctx, *grads):
            return grads[0]

    with pytest.raises(TypeError, match="Broken.forward must return a Tensor or a tuple"):
        Broken.apply(sg.ones(2, requires_grad=True))
