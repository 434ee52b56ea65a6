"""Factories, dtype inference and type promotion, against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import assert_close

import smolgrad as sg


def dtype_name(d) -> str:
    return d.name if isinstance(d, sg.dtype) else str(d).split(".")[-1]


def same_dtype(s, t) -> bool:
    return dtype_name(s.dtype) == dtype_name(t.dtype)


# ---------------------------------------------------------------------------------------
# zeros ones full empty eye: sizes as varargs or a tuple; dtype= device= requires_grad=
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
@pytest.mark.parametrize("size", [((),), (3,), (2, 3), ((2, 3),), ([4, 1],), (0, 2)], ids=str)
def test_sized_factories(name, size, device):
    out = getattr(sg, name)(*size, device=device)
    expected = getattr(torch, name)(*size)
    assert out.shape == tuple(expected.shape)
    assert out.dtype is sg.float32
    assert out.device == device
    assert not out.requires_grad
    if name in ("zeros", "ones"):
        assert_close(out, expected)


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_factory_keywords(name, device):
    out = getattr(sg, name)(2, 3, dtype=sg.float64 if device != "mlx" else sg.float32,
                            device=device, requires_grad=True)
    assert out.requires_grad and out.is_leaf and out.grad_fn is None
    assert out.dtype is (sg.float64 if device != "mlx" else sg.float32)
    (out * 2).sum().backward()
    assert out.grad.shape == (2, 3)


def test_bool_and_int_factories(device):
    assert_close(sg.ones(2, 2, dtype=sg.bool, device=device), torch.ones(2, 2, dtype=torch.bool))
    assert_close(sg.zeros(3, dtype=sg.int64, device=device), torch.zeros(3, dtype=torch.int64))
    assert_close(sg.zeros((2,), dtype=sg.int32, device=device),
                 torch.zeros((2,), dtype=torch.int32))
    with pytest.raises(RuntimeError, match="floating point"):
        sg.zeros(2, dtype=sg.int64, device=device, requires_grad=True)


@pytest.mark.parametrize("size,value", [((2, 3), 1.5), ((2,), 7), ((3,), True), ((), 2.0),
                                        ([2, 2], -1)], ids=str)
def test_full(size, value, device):
    out = sg.full(size, value, device=device)
    expected = torch.full(size, value)
    assert_close(out, expected)
    assert same_dtype(out, expected)
    assert sg.full(size, value, dtype=sg.float32, device=device).dtype is sg.float32


@pytest.mark.parametrize("args", [(3,), (3, 4), (0,)], ids=str)
def test_eye(args, device):
    assert_close(sg.eye(*args, device=device), torch.eye(*args))
    assert sg.eye(2, dtype=sg.int64, device=device).dtype is sg.int64


@pytest.mark.parametrize("args,kwargs", [
    ((5,), {}), ((2, 7), {}), ((1, 10, 3), {}), ((0.0, 1.0, 0.25), {}), ((5, 0, -1), {}),
    ((0, 1, 0.1), {}), ((3,), {"dtype": "float32"}), ((-2.5, 2.5), {}), ((4, 4), {}),
    ((1.5,), {}), ((10, 2, -3), {}),
], ids=str)
def test_arange(args, kwargs, device):
    t_kwargs = {k: getattr(torch, v) for k, v in kwargs.items()}
    s_kwargs = {k: getattr(sg, v) for k, v in kwargs.items()}
    out = sg.arange(*args, device=device, **s_kwargs)
    expected = torch.arange(*args, **t_kwargs)
    assert same_dtype(out, expected), (out.dtype, expected.dtype)
    assert_close(out, expected)


@pytest.mark.parametrize("args", [(0, 1, 5), (-1.0, 1.0, 1), (2, 10, 4), (0, 1, 0), (3, -3, 7)],
                         ids=str)
def test_linspace(args, device):
    out = sg.linspace(*args, device=device)
    expected = torch.linspace(*args)
    assert out.dtype is sg.float32
    assert_close(out, expected)


def test_randint(device):
    out = sg.randint(3, 10, (4, 5), device=device)
    assert out.shape == (4, 5) and out.dtype is sg.int64
    values = out.numpy()
    assert values.min() >= 3 and values.max() < 10
    out = sg.randint(5, size=(100,), device=device)
    assert out.numpy().min() >= 0 and out.numpy().max() < 5
    assert sg.randint(0, 2, (3,), dtype=sg.int32, device=device).dtype is sg.int32


def test_random_distributions(device):
    u = sg.rand(20000, device=device).numpy()
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.02
    n = sg.randn(20000, device=device).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1.0) < 0.03


def test_manual_seed_reproducible(device):
    sg.manual_seed(123)
    a = [sg.rand(5, device=device).numpy(), sg.randn(2, 3, device=device).numpy(),
         sg.randint(0, 100, (4,), device=device).numpy()]
    sg.manual_seed(123)
    b = [sg.rand(5, device=device).numpy(), sg.randn(2, 3, device=device).numpy(),
         sg.randint(0, 100, (4,), device=device).numpy()]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    sg.manual_seed(124)
    assert not np.array_equal(sg.rand(5, device=device).numpy(), a[0])


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "rand_like", "randn_like",
                                  "empty_like"])
def test_like_factories(name, device):
    x = sg.zeros(2, 3, device=device)
    out = getattr(sg, name)(x)
    assert out.shape == (2, 3) and out.dtype is sg.float32 and out.device == device
    out = getattr(sg, name)(x, dtype=sg.float32, requires_grad=True)
    assert out.requires_grad
    if name in ("zeros_like", "ones_like"):
        assert_close(out.detach(), getattr(torch, name)(torch.zeros(2, 3)))
        i = getattr(sg, name)(sg.tensor([1, 2], device=device))
        assert i.dtype is sg.int64


def test_full_like(device):
    x = sg.zeros(2, 3, device=device)
    assert_close(sg.full_like(x, 2.5), torch.full_like(torch.zeros(2, 3), 2.5))
    i = sg.full_like(sg.tensor([1, 2], device=device), 7)
    assert i.dtype is sg.int64 and i.tolist() == [7, 7]


# ---------------------------------------------------------------------------------------
# from_numpy, sg.tensor, sg.Tensor
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "int64", "bool"])
def test_from_numpy_any_dtype(dtype):
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    out = sg.from_numpy(a)
    expected = torch.from_numpy(a)
    assert same_dtype(out, expected)
    assert out.device == "cpu"
    assert_close(out, expected)


@pytest.mark.parametrize("view", ["transposed", "strided", "negative_stride", "broadcast",
                                  "fortran"])
def test_from_numpy_non_contiguous(view):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    arrays = {
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "negative_stride": base[::-1],
        "broadcast": np.broadcast_to(base[:1], (3, 6)),
        "fortran": np.asfortranarray(base),
    }
    a = arrays[view]
    out = sg.from_numpy(a)
    assert out.shape == a.shape
    np.testing.assert_array_equal(out.numpy(), a)
    (out.requires_grad_() * 2).sum().backward()
    assert out.grad.shape == a.shape


@pytest.mark.parametrize("data", [1.5, 3, True, [1, 2], [1.0, 2], [[True], [False]],
                                  [[1, 2], [3, 4]], [], [1, 2.5, True], 0.0],
                         ids=str)
def test_tensor_dtype_inference(data, device):
    out = sg.tensor(data, device=device)
    expected = torch.tensor(data)
    assert same_dtype(out, expected), (out.dtype, expected.dtype)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected)


def test_tensor_from_arrays_and_tensors(device):
    for a in (np.array([1, 2], np.int32), np.array([1.0], np.float64), np.array(True)):
        assert same_dtype(sg.tensor(a, device=device), torch.tensor(a))
    src = sg.tensor([1.0, 2.0], device=device)
    copy = sg.tensor(src)
    assert copy.device == device
    assert copy.tolist() == [1.0, 2.0] and copy is not src
    assert sg.tensor(3, dtype=sg.float32, device=device).dtype is sg.float32
    t = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    assert t.requires_grad and t.is_leaf
    a = np.array([1.0, 2.0], np.float32)
    shared = sg.tensor(a)
    a[0] = 100.0
    assert shared.tolist() == [1.0, 2.0], "sg.tensor must copy its input"
    assert sg.tensor([sg.tensor(1.0), sg.tensor(2.0)], device=device).tolist() == [1.0, 2.0]


def test_tensor_class_defaults_to_float32(device):
    for data in ([1, 2, 3], [[True, False]], np.array([1, 2], np.int64), [2.5]):
        out = sg.Tensor(data, device=device)
        assert out.dtype is sg.float32
        assert_close(out, torch.Tensor(data))


# ---------------------------------------------------------------------------------------
# Type promotion (SPEC §7): the result dtypes of torch
# ---------------------------------------------------------------------------------------


def _pair(dtype: str, shape) -> tuple:
    if dtype == "bool":
        a = np.ones(shape, dtype=bool)
    else:
        a = np.full(shape, 3, dtype=dtype)
    return a


PROMO_DTYPES = ["bool", "int32", "int64", "float16", "float32", "float64"]


@pytest.mark.parametrize("op", ["+", "/", "max"])
@pytest.mark.parametrize("a_dtype", PROMO_DTYPES)
@pytest.mark.parametrize("b_dtype", PROMO_DTYPES)
@pytest.mark.parametrize("b_ndim", [0, 1], ids=["b0d", "b1d"])
def test_tensor_tensor_promotion(op, a_dtype, b_dtype, b_ndim, device):
    if not _has_float64(device) and "float64" in (a_dtype, b_dtype):
        pytest.skip(f"device '{device}' has no float64")
    if op == "-" and "bool" in (a_dtype, b_dtype):
        pytest.skip("torch forbids subtracting bools")
    fns = {"+": lambda x, y: x + y, "*": lambda x, y: x * y, "-": lambda x, y: x - y,
           "/": lambda x, y: x / y, "max": lambda x, y: x.maximum(y)}
    fn = fns[op]
    a = _pair(a_dtype, (2,))
    b = _pair(b_dtype, () if b_ndim == 0 else (2,))
    out = fn(sg.tensor(a, device=device), sg.tensor(b, device=device))
    expected = fn(torch.tensor(a), torch.tensor(b))
    assert same_dtype(out, expected), f"{a_dtype} {op} {b_dtype}: {out.dtype} vs {expected.dtype}"
    assert_close(out, expected)


@pytest.mark.parametrize("scalar", [2, 2.5, True])
@pytest.mark.parametrize("t_dtype", PROMO_DTYPES)
@pytest.mark.parametrize("op", ["+", "/", "r-", "**"])
def test_tensor_scalar_promotion(op, t_dtype, scalar, device):
    if not _has_float64(device) and t_dtype == "float64":
        pytest.skip(f"device '{device}' has no float64")
    if t_dtype == "bool" and op in ("r-", "**"):
        pytest.skip("torch forbids these on bools")
    if isinstance(scalar, bool) and op in ("r-",):
        pytest.skip("torch forbids subtracting bools")
    fns = {"+": lambda x: x + scalar, "*": lambda x: x * scalar, "/": lambda x: x / scalar,
           "r-": lambda x: scalar - x, "r/": lambda x: scalar / x, "**": lambda x: x ** scalar}
    a = _pair(t_dtype, (3,))
    out = fns[op](sg.tensor(a, device=device))
    expected = fns[op](torch.tensor(a))
    assert same_dtype(out, expected), f"{t_dtype} {op} {scalar!r}: {out.dtype} vs {expected.dtype}"
    assert_close(out, expected, rtol=1e-3)


def test_spec_promotion_examples(device):
    f = sg.ones(2, device=device)
    i = sg.tensor([1, 2], device=device)
    assert (f * 2.5).dtype is sg.float32           # float32 tensor with Python float
    assert (i * 2.5).dtype is sg.float32           # int tensor with Python float
    assert (i / i).dtype is sg.float32             # int / int true division
    assert (i / 2).dtype is sg.float32
    assert (i // 2).dtype is sg.int64
    assert (i + sg.tensor(1.5, device=device)).dtype is sg.float32  # 0-d float wins the kind
    if device != "mlx":
        d0 = sg.tensor(1.0, dtype=sg.float64, device=device)
        assert (f + d0).dtype is sg.float32        # 0-d does not widen within a kind
        assert (f + d0.reshape(1)).dtype is sg.float64


def test_promotion_gradient_dtype(device):
    """The gradient of each input comes back in that input's dtype."""
    if not _has_float64(device):
        pytest.skip(f"device '{device}' has no float64")
    a = sg.ones(3, device=device, requires_grad=True)
    b = sg.ones(3, dtype=sg.float64, device=device, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype is sg.float32 and b.grad.dtype is sg.float64


def test_from_numpy_big_endian():
    a = np.arange(4, dtype=">f4")
    out = sg.from_numpy(a)
    assert out.dtype is sg.float32
    assert out.tolist() == [0.0, 1.0, 2.0, 3.0]


def _has_float64(device: str) -> bool:
    from smolgrad.arrays import get_backend

    return get_backend(device).has_float64


def test_random_factories_follow_a_generator(device):
    for fn, args in ((sg.rand, (3, 4)), (sg.randn, (5,))):
        a = fn(*args, device=device, generator=sg.Generator().manual_seed(7))
        b = fn(*args, device=device, generator=sg.Generator().manual_seed(7))
        c = fn(*args, device=device, generator=sg.Generator().manual_seed(8))
        assert a.shape == tuple(args) and a.tolist() == b.tolist() != c.tolist()
    g1, g2 = sg.Generator().manual_seed(3), sg.Generator().manual_seed(3)
    assert sg.randint(0, 10, (20,), device=device, generator=g1).tolist() == \
        sg.randint(0, 10, (20,), device=device, generator=g2).tolist()
    perm = sg.randperm(10, device=device, generator=g1)
    assert sorted(perm.tolist()) == list(range(10)) and perm.dtype is sg.int64
    with pytest.raises(TypeError, match="sg.Generator"):
        sg.rand(2, generator=object())
