"""Elementwise ops against PyTorch: values, gradients, float64 gradcheck, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import Arr, assert_close, check_op

import smolgrad as sg

UNARY_SHAPES = [(), (5,), (2, 3), (0, 3), (2, 1, 4)]
BINARY_SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3, 1), (1, 4)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((2, 1, 3), (4, 1)),
    ((0, 3), (3,)),
]


# ---------------------------------------------------------------------------------------
# Unary math
# ---------------------------------------------------------------------------------------

# (name, input range options) - each op is called as a method with the same name in both
UNARY = {
    "neg": {},
    "abs": {},
    "exp": {},
    "tanh": {},
    "sigmoid": {},
    "relu": {},
    "sin": {},
    "cos": {},
    "erf": {},
    "expm1": {},
    "log": {"positive": True},
    "log1p": {"positive": True},
    "sqrt": {"positive": True},
    "rsqrt": {"positive": True},
    "reciprocal": {"positive": True},
    "sign": {},
    "floor": {},
    "ceil": {},
    "round": {},
    "square": {},
}


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_method(name, shape, device):
    check_op(lambda x: getattr(x, name)(), shape, device=device, **UNARY[name])


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "abs", "neg",
                                  "sin", "cos", "relu", "erf", "rsqrt", "floor"])
def test_unary_function_form(name, device):
    opts = UNARY[name]
    check_op(lambda x: getattr(sg, name)(x), (2, 3), device=device,
             torch_fn=lambda x: getattr(torch, name)(x), **opts)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "tanh", "sigmoid"])
def test_unary_on_int_gives_float(name, device):
    x = sg.tensor([1, 2, 3], device=device)
    tx = torch.tensor([1, 2, 3])
    assert_close(getattr(x, name)(), getattr(tx, name)())
    assert getattr(x, name)().dtype is sg.float32


def test_round_decimals(device):
    check_op(lambda x: x.round(decimals=2), (3, 4), device=device, low=-5, high=5)


def test_round_half_to_even(device):
    vals = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
    assert_close(sg.tensor(vals, device=device).round(), torch.tensor(vals).round())


def test_abs_relu_sign_at_zero(device):
    """PyTorch: d|x|/dx = 0 and drelu/dx = 0 at x = 0."""
    for name in ("abs", "relu"):
        x = sg.tensor([-1.0, 0.0, 2.0], device=device, requires_grad=True)
        tx = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
        getattr(x, name)().sum().backward()
        getattr(tx, name)().sum().backward()
        assert_close(x.grad, tx.grad)


def test_sigmoid_extreme_values_finite(device):
    vals = [-1e4, -100.0, 0.0, 100.0, 1e4]
    x = sg.tensor(vals, device=device, requires_grad=True)
    tx = torch.tensor(vals, requires_grad=True)
    x.sigmoid().sum().backward()
    tx.sigmoid().sum().backward()
    assert_close(x.sigmoid(), tx.sigmoid())
    assert_close(x.grad, tx.grad)


# ---------------------------------------------------------------------------------------
# Binary arithmetic and reflected forms
# ---------------------------------------------------------------------------------------


BINARY = {
    "add": (lambda x, y: x + y, {}),
    "sub": (lambda x, y: x - y, {}),
    "mul": (lambda x, y: x * y, {}),
    "div": (lambda x, y: x / y, {"positive": True}),
    "pow": (lambda x, y: x ** y, {"positive": True}),
    "maximum": (lambda x, y: x.maximum(y), {}),
    "minimum": (lambda x, y: x.minimum(y), {}),
    "logaddexp": (lambda x, y: x.logaddexp(y), {}),
    "add_alpha": (lambda x, y: x.add(y, alpha=2.5), {}),
    "sub_alpha": (lambda x, y: x.sub(y, alpha=-0.5), {}),
}


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name, shapes, device):
    fn, opts = BINARY[name]
    check_op(fn, *shapes, device=device, **opts)


def test_logaddexp_extremes(device):
    """Finite for huge inputs (e^1000 alone is inf); PyTorch's values and gradients at
    equal infinities, mixed infinities and NaN; the function form as torch.logaddexp."""
    inf, nan = float("inf"), float("nan")
    xs = [1000.0, -1000.0, 0.0, inf, -inf, inf, 3.0, 88.0]
    ys = [0.0, -1000.0, 0.0, inf, -inf, -inf, nan, 89.0]
    x = sg.tensor(xs, device=device, requires_grad=True)
    y = sg.tensor(ys, device=device, requires_grad=True)
    tx, ty = torch.tensor(xs, requires_grad=True), torch.tensor(ys, requires_grad=True)
    z, tz = sg.logaddexp(x, y), torch.logaddexp(tx, ty)
    z.sum().backward()
    tz.sum().backward()
    assert_close(z, tz)
    assert_close(x.grad, tx.grad, what="d/dx")
    assert_close(y.grad, ty.grad, what="d/dy")


@pytest.mark.parametrize("shapes", [((2, 3), (3,)), ((3, 1), (1, 4))], ids=str)
def test_remainder_and_floordiv(shapes, device):
    # values away from the jumps of floor so that finite differences are meaningful
    check_op(lambda x, y: x % y, *shapes, device=device, low=0.6, high=3.0, gradcheck=False)
    # PyTorch has no derivative for floor_divide: compare values only
    check_op(lambda x, y: x // y, *shapes, device=device, low=0.6, high=3.0, grad=False)
    check_op(lambda x, y: x.remainder(y), *shapes, device=device, low=0.6, high=3.0,
             gradcheck=False)


def test_remainder_sign_follows_divisor(device):
    a, b = [-7.0, 7.0, -7.0, 7.0, 5.5], [3.0, -3.0, -3.0, 3.0, 2.0]
    assert_close(sg.tensor(a, device=device) % sg.tensor(b, device=device),
                 torch.tensor(a) % torch.tensor(b))
    assert_close(sg.tensor(a, device=device) // sg.tensor(b, device=device),
                 torch.tensor(a) // torch.tensor(b))
    ia, ib = [-7, 7, -7, 7], [3, -3, -3, 3]
    assert_close(sg.tensor(ia, device=device) // sg.tensor(ib, device=device),
                 torch.tensor(ia) // torch.tensor(ib))
    assert_close(sg.tensor(ia, device=device) % sg.tensor(ib, device=device),
                 torch.tensor(ia) % torch.tensor(ib))
    assert_close(sg.tensor(a, device=device) % 2.5, torch.tensor(a) % 2.5)
    assert_close(7 // sg.tensor(b, device=device), 7 // torch.tensor(b))
    assert_close(7.5 % sg.tensor(b, device=device), 7.5 % torch.tensor(b))


SCALAR_FORMS = {
    "x+s": lambda x: x + 1.5,
    "s+x": lambda x: 1.5 + x,
    "x-s": lambda x: x - 2,
    "s-x": lambda x: 2 - x,
    "x*s": lambda x: x * -3.0,
    "s*x": lambda x: 3 * x,
    "x/s": lambda x: x / 4.0,
    "s/x": lambda x: 2.0 / x,
    "x**s": lambda x: x ** 3,
    "x**0.5": lambda x: x ** 0.5,
    "x**0": lambda x: x ** 0,
    "x**-1.5": lambda x: x ** -1.5,
    "s**x": lambda x: 2.0 ** x,
    "-x": lambda x: -x,
    "+x": lambda x: +x,
    "abs(x)": lambda x: abs(x),
    "pow(x,2)": lambda x: x.pow(2),
}


@pytest.mark.parametrize("shape", [(), (2, 3)], ids=str)
@pytest.mark.parametrize("name", sorted(SCALAR_FORMS))
def test_scalar_and_reflected(name, shape, device):
    check_op(SCALAR_FORMS[name], shape, device=device, positive=True)


def test_pow_zero_base(device):
    """d(x^y)/dy at x = 0 is 0 (not NaN) and d(0^2)/dx = 0, as PyTorch."""
    x = sg.tensor([0.0, 1.0, 2.0], device=device, requires_grad=True)
    y = sg.tensor([2.0, 2.0, 0.5], device=device, requires_grad=True)
    tx = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
    ty = torch.tensor([2.0, 2.0, 0.5], requires_grad=True)
    (x ** y).sum().backward()
    (tx ** ty).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(y.grad, ty.grad)


def test_ndarray_operand(device):
    """A NumPy array on the left of a Tensor calls the Tensor's reflected operator."""
    x = sg.tensor([1.0, 2.0], device=device)
    out = np.array([3.0, 4.0], dtype=np.float32) * x
    assert isinstance(out, sg.Tensor)
    assert out.tolist() == [3.0, 8.0]


# ---------------------------------------------------------------------------------------
# clamp, where, masked_fill, lerp
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
def test_clamp_scalars(shape, device):
    check_op(lambda x: x.clamp(-0.5, 0.7), shape, device=device)
    check_op(lambda x: x.clamp(min=-0.3), shape, device=device)
    check_op(lambda x: x.clamp(max=0.2), shape, device=device)
    check_op(lambda x: x.clip(-1, 1), shape, device=device)


def test_clamp_tensor_bounds(device):
    # bounds as tensors (broadcasting): gradient reaches x and the bounds where they bind
    check_op(lambda x, lo, hi: x.clamp(lo, hi + 1.0), (3, 4), (4,), (3, 1), device=device)
    check_op(lambda x, lo: sg.clamp(x, min=lo), (3, 4), (4,), device=device,
             torch_fn=lambda x, lo: torch.clamp(x, min=lo))


def test_clamp_int(device):
    x = sg.tensor([-3, 0, 5], device=device)
    out = x.clamp(-1, 2)
    assert out.dtype is sg.int64
    assert out.tolist() == [-1, 0, 2]


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), ()),
                                    ((2, 1, 4), (3, 1), (4,))], ids=str)
def test_where(shapes, device):
    rng = np.random.default_rng(1)
    cond = Arr(rng.uniform(size=shapes[0]) > 0.5)
    check_op(lambda c, x, y: sg.where(c, x, y), cond, shapes[1], shapes[2], device=device,
             torch_fn=lambda c, x, y: torch.where(c, x, y))
    check_op(lambda c, x, y: x.where(c, y), cond, shapes[1], shapes[2], device=device)


def test_where_scalars(device):
    rng = np.random.default_rng(2)
    cond = Arr(rng.uniform(size=(3, 4)) > 0.5)
    check_op(lambda c, x: sg.where(c, x, 0.0), cond, (3, 4), device=device,
             torch_fn=lambda c, x: torch.where(c, x, 0.0))
    check_op(lambda c, x: sg.where(c, 1.5, x), cond, (4,), device=device,
             torch_fn=lambda c, x: torch.where(c, 1.5, x))
    c = sg.tensor([True, False], device=device)
    assert_close(sg.where(c, 1.0, 2.0), torch.where(torch.tensor([True, False]), 1.0, 2.0))


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1))],
                         ids=str)
def test_masked_fill(shapes, device):
    mask = Arr(np.random.default_rng(3).uniform(size=shapes[1]) > 0.5)
    check_op(lambda x, m: x.masked_fill(m, -1.5), shapes[0], mask, device=device)
    check_op(lambda x, m: x.masked_fill(m, float("-inf")).exp(), shapes[0], mask,
             device=device, gradcheck=False)


def test_masked_fill_tensor_value(device):
    mask = Arr(np.array([True, False, True]))
    check_op(lambda x, m, v: x.masked_fill(m, v), (2, 3), mask, (), device=device)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,))], ids=str)
def test_lerp(shapes, device):
    check_op(lambda a, b: a.lerp(b, 0.3), *shapes, device=device)
    check_op(lambda a, b, w: a.lerp(b, w), *shapes, shapes[1], device=device)


# ---------------------------------------------------------------------------------------
# Comparisons and logical ops
# ---------------------------------------------------------------------------------------

COMPARE = {
    "==": lambda x, y: x == y,
    "!=": lambda x, y: x != y,
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2,))], ids=str)
@pytest.mark.parametrize("name", sorted(COMPARE))
def test_comparisons(name, shapes, device):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 3, shapes[0]).astype(np.float32)  # small ints: many ties
    b = rng.integers(0, 3, shapes[1]).astype(np.float32)
    fn = COMPARE[name]
    x = sg.tensor(a, device=device, requires_grad=True)
    out = fn(x, sg.tensor(b, device=device))
    assert out.dtype is sg.bool
    assert not out.requires_grad
    assert_close(out, fn(torch.tensor(a), torch.tensor(b)))
    assert_close(fn(x, 1.0), fn(torch.tensor(a), 1.0))
    assert_close(fn(1, x), fn(1, torch.tensor(a)))


def test_comparisons_mixed_dtypes(device):
    i = sg.tensor([1, 2, 3], device=device)
    f = sg.tensor([1.5, 2.0, 2.5], device=device)
    ti, tf = torch.tensor([1, 2, 3]), torch.tensor([1.5, 2.0, 2.5])
    assert_close(i < f, ti < tf)
    assert_close(i == 2.0, ti == 2.0)
    assert_close(i >= 2, ti >= 2)


def test_logical_ops(device):
    a = [True, True, False, False]
    b = [True, False, True, False]
    x, y = sg.tensor(a, device=device), sg.tensor(b, device=device)
    tx, ty = torch.tensor(a), torch.tensor(b)
    assert_close(x & y, tx & ty)
    assert_close(x | y, tx | ty)
    assert_close(x ^ y, tx ^ ty)
    assert_close(~x, ~tx)
    assert_close(sg.logical_and(x, y), torch.logical_and(tx, ty))
    assert_close(sg.logical_or(x, y), torch.logical_or(tx, ty))
    assert_close(sg.logical_xor(x, y), torch.logical_xor(tx, ty))
    assert_close(sg.logical_not(x), torch.logical_not(tx))
    # logical ops on numbers: nonzero is true
    f = sg.tensor([0.0, 1.5, -2.0, 0.0], device=device)
    tf = torch.tensor([0.0, 1.5, -2.0, 0.0])
    assert_close(sg.logical_and(f, x), torch.logical_and(tf, tx))
    assert_close(sg.logical_not(f), torch.logical_not(tf))
    assert_close(x & True, tx & True)


def test_isnan_isinf_isfinite(device):
    vals = [0.0, float("nan"), float("inf"), -float("inf"), 1.0]
    x, tx = sg.tensor(vals, device=device), torch.tensor(vals)
    assert_close(x.isnan(), tx.isnan())
    assert_close(x.isinf(), tx.isinf())
    assert_close(x.isfinite(), tx.isfinite())


# ---------------------------------------------------------------------------------------
# In-place forms
# ---------------------------------------------------------------------------------------


def test_inplace_arithmetic_gradient(device):
    def fn(x, y):
        z = x * 1.0
        z += y
        z *= y
        z -= 1.0
        z /= 2.0
        return z.clamp_(-1.0, 1.0)

    check_op(fn, (3, 4), (4,), device=device)


def test_inplace_keeps_dtype(device):
    x = sg.tensor([1, 2, 3], device=device)
    x += 2
    assert x.dtype is sg.int64
    assert x.tolist() == [3, 4, 5]


def test_rounded_division_modes(device):
    a, b = [-7.0, 7.0, -7.5, 7.5], [2.0, -2.0, 2.0, 2.0]
    for mode in ("floor", "trunc"):
        assert_close(sg.tensor(a, device=device).div(sg.tensor(b, device=device),
                                                     rounding_mode=mode),
                     torch.tensor(a).div(torch.tensor(b), rounding_mode=mode))
        ia, ib = [-7, 7, -8, 2 ** 40 + 1], [2, -2, 3, 3]
        out = sg.tensor(ia, device=device).div(sg.tensor(ib, device=device), rounding_mode=mode)
        assert out.dtype is sg.int64
        assert_close(out, torch.tensor(ia).div(torch.tensor(ib), rounding_mode=mode))
    check_op(lambda x, y: x.div(y, rounding_mode="trunc"), (3,), (3,), device=device,
             positive=True, gradcheck=False)


def test_where_two_scalars_dtype(device):
    c = sg.tensor([True, False], device=device)
    tc = torch.tensor([True, False])
    for a, b in ((1, 2), (1.0, 2), (1.5, 2.5)):
        assert_close(sg.where(c, a, b), torch.where(tc, a, b))


def test_maximum_minimum_ties_split(device):
    check_op(lambda x, y: x.maximum(y), Arr(np.array([1.0, 2.0, 3.0], np.float32)),
             Arr(np.array([1.0, 0.0, 3.0], np.float32)), device=device, grad=False)
    x = sg.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = sg.tensor([1.0, 0.0, 3.0], device=device, requires_grad=True)
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ty = torch.tensor([1.0, 0.0, 3.0], requires_grad=True)
    (x.maximum(y) + 2 * x.minimum(y)).sum().backward()
    (tx.maximum(ty) + 2 * tx.minimum(ty)).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(y.grad, ty.grad)


# ---------------------------------------------------------------------------------------
# Second derivatives (create_graph=True) against torch
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "exp", "log", "sin", "sqrt", "erf",
                                  "reciprocal", "rsqrt", "expm1", "log1p"])
def test_second_derivative(name, device):
    a = np.random.default_rng(9).uniform(0.2, 1.8, (5,)).astype(np.float32)
    x = sg.tensor(a, device=device, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    (g,) = sg.autograd.grad(getattr(x, name)().sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad(getattr(tx, name)().sum(), tx, create_graph=True)
    assert_close(g, tg)
    assert g.requires_grad
    (gg,) = sg.autograd.grad((g * g).sum(), x)
    (tgg,) = torch.autograd.grad((tg * tg).sum(), tx)
    assert_close(gg, tgg, atol=1e-4, rtol=1e-4)


def test_second_derivative_binary(device):
    rng = np.random.default_rng(10)
    a, b = (rng.uniform(0.5, 1.5, (3, 4)).astype(np.float32) for _ in range(2))

    def f(x, y):
        return (x * y / (x + y) + x ** y - y.maximum(x * 0.9)).sum()

    x, y = (sg.tensor(v, device=device, requires_grad=True) for v in (a, b))
    tx, ty = (torch.tensor(v, requires_grad=True) for v in (a, b))
    gx, gy = sg.autograd.grad(f(x, y), [x, y], create_graph=True)
    tgx, tgy = torch.autograd.grad(f(tx, ty), [tx, ty], create_graph=True)
    assert_close(gx, tgx)
    assert_close(gy, tgy)
    hx, hy = sg.autograd.grad((gx.sin() + gy * gx).sum(), [x, y])
    thx, thy = torch.autograd.grad((tgx.sin() + tgy * tgx).sum(), [tx, ty])
    assert_close(hx, thx, atol=1e-4)
    assert_close(hy, thy, atol=1e-4)


def test_isclose_allclose_equal_match_torch(device):
    a = [1.0, 2.0, float("nan"), 1e-9]
    b = [1.0 + 1e-6, 2.1, float("nan"), 0.0]
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1}):
        ours = sg.isclose(sg.tensor(a, device=device), sg.tensor(b, device=device), **kw)
        assert ours.tolist() == torch.isclose(torch.tensor(a), torch.tensor(b), **kw).tolist()
    x = sg.tensor([1.0, 2.0], device=device)
    assert sg.allclose(x, x + 1e-7) and not sg.allclose(x, x + 1e-3)
    assert x.allclose(x) and sg.equal(x, x) and not sg.equal(x, x[:1])


@pytest.mark.parametrize("call", [lambda p: p.add_(None, alpha=-0.1),
                                  lambda p: p.data.sub_(None, alpha=0.1)])
def test_alpha_with_a_missing_operand_names_the_op(call):
    # the idiom `p.data.add_(p.grad, alpha=-lr)` with a parameter that got no gradient
    with pytest.raises(TypeError, match=r"(add|sub): unsupported operand of type NoneType"):
        call(sg.ones(3))
