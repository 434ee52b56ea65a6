"""SPEC §1, §2, §3, §6, §7 read sentence by sentence: the Tensor, autograd semantics, op
names in both forms, misuse errors and the details code written against the SPEC relies on.
Each test checks one sentence (or one PyTorch behaviour the SPEC defers to) against torch."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from oracle import assert_close

import smolgrad as sg

# --------------------------------------------------------------------------------------
# §1 Tensor: construction, attributes, methods
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [1.5, 1, True, [1, 2.0], [[True, False]], [], [[1, 2]]])
def test_tensor_infers_dtype_like_torch(device, data):
    t = sg.tensor(data, device=device)
    assert t.dtype.name == str(torch.tensor(data).dtype).split(".")[-1]
    assert t.shape == tuple(torch.tensor(data).shape)


def test_size_dim_and_out_of_range(device):
    x = sg.zeros(2, 3, device=device)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3 and x.size(dim=0) == 2
    with pytest.raises(IndexError, match=r"size: dimension out of range.*\(2, 3\)"):
        x.size(2)
    with pytest.raises(IndexError, match="size"):
        sg.tensor(1.0, device=device).size(0)


def test_T_and_mT_shapes_like_torch(device):
    for shape in [(), (3,), (2, 3), (2, 3, 4)]:
        x = sg.zeros(shape, device=device)
        assert x.T.shape == shape[::-1]
    assert sg.zeros(2, 3, 4, device=device).mT.shape == (2, 4, 3)


def test_grad_assignment_checks_dtype(device):
    x = sg.ones(2, requires_grad=True, device=device)
    x.grad = None
    assert x.grad is None
    with pytest.raises(RuntimeError, match="dtype float16.*float32"):
        x.grad = sg.ones(2, dtype=sg.float16, device=device)
    x.grad = sg.ones(2, device=device)
    assert x.grad.dtype == sg.float32


# --------------------------------------------------------------------------------------
# §2 autograd semantics
# --------------------------------------------------------------------------------------


def test_grad_mode_bare_decorators_and_threads(device):
    @sg.no_grad
    def off():
        return sg.is_grad_enabled(), (sg.ones(1, requires_grad=True, device=device) * 2)

    @sg.enable_grad
    def on():
        return sg.is_grad_enabled()

    enabled, y = off()
    assert enabled is False and not y.requires_grad and sg.is_grad_enabled()
    with sg.no_grad():
        assert on() is True and sg.is_grad_enabled() is False
        seen = []
        worker = threading.Thread(target=lambda: seen.append(sg.is_grad_enabled()))
        worker.start()
        worker.join()
        assert seen == [True]  # grad mode is per thread


def test_custom_function_with_several_outputs(device):
    class ExpAndSquare(sg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a.exp(), a * a, a > 0

        @staticmethod
        def backward(ctx, g_exp, g_sq, g_mask):
            (a,) = ctx.saved_tensors
            assert g_mask.dtype == sg.bool and not g_mask.any()  # zeros, as in PyTorch
            return g_exp * a.exp() + g_sq * 2 * a

    a_np = np.array([[0.5, -1.0], [2.0, 0.1]], dtype=np.float32)
    a = sg.tensor(a_np, requires_grad=True, device=device)
    e, sq, mask = ExpAndSquare.apply(a)
    assert mask.dtype == sg.bool and e.shape == sq.shape == (2, 2)
    (e * 3 + sq).sum().backward()
    ta = torch.tensor(a_np, requires_grad=True)
    (ta.exp() * 3 + ta * ta).sum().backward()
    assert_close(a.grad, ta.grad)
    b = sg.tensor(a_np, requires_grad=True, device=device)
    ExpAndSquare.apply(b)[1].sum().backward()  # an unused output gets a zero gradient
    assert_close(b.grad, 2 * ta.detach())


def test_autograd_backward_function(device):
    x = sg.tensor([1.0, 2.0], requires_grad=True, device=device)
    sg.autograd.backward([(x * x).sum(), x * 3], [None, sg.ones(2, device=device)])
    assert_close(x.grad, torch.tensor([5.0, 7.0]))


def test_gradcheck_runs_float32_inputs_in_float64(device):
    if not sg.zeros(1, device=device).backend.has_float64:
        pytest.skip("no float64 on this device")
    x = sg.randn(3, requires_grad=True, device=device)
    assert sg.autograd.gradcheck(lambda a: a * a * a, (x,), eps=1e-6, atol=1e-5, rtol=1e-3)
    assert x.dtype == sg.float32 and x.grad is None  # the caller's tensor is untouched

    class WrongGrad(sg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 3

    assert sg.autograd.gradcheck(WrongGrad.apply, (x,), raise_exception=False) is False


# --------------------------------------------------------------------------------------
# §1/§7 factories
# --------------------------------------------------------------------------------------


def test_factories_take_size_keyword_and_torch_forms(device):
    assert sg.zeros(size=(2, 3), device=device).shape == (2, 3)
    assert sg.ones(size=[4], device=device).shape == (4,)
    assert sg.rand(size=(2,), device=device).shape == (2,)
    assert sg.arange(end=4, device=device).tolist() == [0, 1, 2, 3]
    r = sg.randint(5, (3, 2), device=device)  # randint(high, size)
    assert r.shape == (3, 2) and r.dtype == sg.int64 and 0 <= r.min().item() <= r.max().item() < 5
    with pytest.raises(TypeError, match="rand.*int64"):
        sg.rand(2, dtype=sg.int64, device=device)
    with pytest.raises(TypeError, match="unexpected keyword"):
        sg.zeros(2, dtyp=sg.float32, device=device)


def test_from_numpy_zero_d_and_non_array():
    t = sg.from_numpy(np.array(3.0))
    assert t.shape == () and t.dtype == sg.float64 and t.item() == 3.0
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        sg.from_numpy([1, 2])


# --------------------------------------------------------------------------------------
# §3/§6/§7: op forms, misuse errors that name the op, type promotion
# --------------------------------------------------------------------------------------


def test_where_condition_only_contains_and_eq_none(device):
    x = sg.tensor([[1.0, -2.0], [3.0, 0.0]], device=device)
    tx = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    for got, want in zip(sg.where(x > 0), torch.where(tx > 0)):
        assert got.tolist() == want.tolist()
    assert (3.0 in x) is True and (7.0 in x) is False
    assert (x == None) is False and (x != None) is True  # noqa: E711 - the point of the test


def test_neg_of_bool_names_the_op(device):
    with pytest.raises(TypeError, match="neg: .*bool.*logical_not"):
        -(sg.ones(2, device=device) > 0)


def test_inplace_cannot_change_dtype(device):
    x = sg.ones(2, dtype=sg.int64, device=device)
    with pytest.raises(RuntimeError, match="add_: result type float32 .* int64"):
        x += 1.5
    assert x.tolist() == [1, 1]  # unchanged, not silently truncated


def test_fill_on_non_leaf_keeps_it_in_the_graph(device):
    x = sg.ones(3, requires_grad=True, device=device)
    y = x * 2
    y.zero_()
    assert y.requires_grad and y.tolist() == [0.0, 0.0, 0.0]
    (y * 3 + x).sum().backward()
    tx = torch.ones(3, requires_grad=True)
    ty = tx * 2
    ty.zero_()
    (ty * 3 + tx).sum().backward()
    assert_close(x.grad, tx.grad)


def test_backward_gradient_on_another_device():
    if not sg.is_available("mlx"):
        pytest.skip("needs a second device")
    y = sg.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="backward: gradient is on device 'mlx'.*'cpu'"):
        y.backward(sg.ones(2, device="mlx"))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda d: sg.zeros(-1, device=d), RuntimeError, r"zeros: negative dimension -1"),
    (lambda d: sg.ones(2.5, device=d), TypeError, r"ones: sizes must be integers"),
    (lambda d: sg.tensor(None, device=d), TypeError, r"tensor: could not infer dtype"),
    (lambda d: sg.tensor([object()], device=d), (TypeError, RuntimeError),
     r"tensor: could not convert"),
    (lambda d: sg.cat(sg.ones(2, device=d)), TypeError, r"cat: expected a list or tuple"),
    (lambda d: sg.stack([sg.ones(2, device=d), [1, 2]]), TypeError, r"stack: .*element 1"),
    (lambda d: sg.outer(sg.ones(2, 2, device=d), sg.ones(3, device=d)), RuntimeError,
     r"outer: expected 1-D .*\(2, 2\)"),
    (lambda d: sg.ones(2, device=d) + None, TypeError, r"add: unsupported operand .*NoneType"),
    (lambda d: sg.ones(2, 3, device=d) @ sg.ones(4, 5, device=d), RuntimeError,
     r"matmul: .*\(2, 3\).*\(4, 5\)"),
    (lambda d: sg.ones(2, device=d)[sg.tensor([0.5], device=d)], IndexError, r"index"),
])
def test_misuse_raises_a_clear_error(device, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(device)


def test_numpy_scalars_promote_like_python_numbers(device):
    f = sg.ones(2, device=device)
    i = sg.ones(2, dtype=sg.int64, device=device)
    assert (f * np.float64(2.0)).dtype == sg.float32  # np.float64 is a Python float
    assert (i * np.float32(2.5)).dtype == sg.float32 and (i * np.float32(2.5)).tolist() == [2.5,
                                                                                          2.5]
    assert (np.int64(3) * f).dtype == sg.float32
