"""Misuse raises a Python exception whose message names the op and the shapes, dtypes or
devices involved (SPEC §6) - never a bare NumPy error."""

from __future__ import annotations

import re

import pytest

import smolgrad as sg


def shape_text(shape) -> str:
    return re.escape(str(tuple(shape)))


# ---------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------


def test_matmul_names_both_shapes(device):
    a, b = sg.randn(2, 3, device=device), sg.randn(4, 5, device=device)
    with pytest.raises(RuntimeError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(RuntimeError, match=r"matmul.*\(2, 2, 3\).*\(3, 3, 4\)"):
        sg.randn(2, 2, 3, device=device) @ sg.randn(3, 3, 4, device=device)
    with pytest.raises(RuntimeError, match=r"matmul.*\(\).*\(2, 3\)"):
        sg.tensor(1.0, device=device) @ a
    with pytest.raises(RuntimeError, match=r"mm.*\(3,\).*\(3, 3\)"):
        sg.randn(3, device=device).mm(sg.randn(3, 3, device=device))


@pytest.mark.parametrize("op", ["+", "*", "-", "/", "<", "maximum"])
def test_binary_broadcast_mismatch(op, device):
    a, b = sg.randn(2, 3, device=device), sg.randn(4, device=device)
    fns = {"+": lambda: a + b, "*": lambda: a * b, "-": lambda: a - b, "/": lambda: a / b,
           "<": lambda: a < b, "maximum": lambda: a.maximum(b)}
    names = {"+": "add", "*": "mul", "-": "sub", "/": "div", "<": "<", "maximum": "maximum"}
    with pytest.raises(RuntimeError, match=re.escape(names[op]) + r".*\(2, 3\).*\(4,\).*"
                       r"broadcast"):
        fns[op]()


def test_where_masked_fill_lerp_broadcast(device):
    x = sg.randn(2, 3, device=device)
    with pytest.raises(RuntimeError, match=r"where.*\(3,\).*\(2,\)"):
        sg.where(sg.tensor([True, False, True], device=device), sg.randn(2, device=device),
                 sg.randn(2, device=device))
    with pytest.raises(RuntimeError, match=r"masked_fill.*\(2, 3\).*\(2,\)"):
        x.masked_fill(sg.tensor([True, False], device=device), 0.0)
    with pytest.raises(RuntimeError, match=r"lerp.*\(2,\).*\(3,\)"):
        sg.randn(2, device=device).lerp(sg.randn(3, device=device), 0.5)


def test_inplace_cannot_grow_the_tensor(device):
    x = sg.zeros(3, device=device)
    with pytest.raises(RuntimeError, match=r"add_.*\(2, 3\).*\(3,\)"):
        x.add_(sg.ones(2, 3, device=device))


@pytest.mark.parametrize("shape", [(4, 2), (5,), (-1, 4)], ids=str)
def test_bad_reshape(shape, device):
    x = sg.randn(2, 3, device=device)
    with pytest.raises(RuntimeError, match=r"reshape.*" + re.escape(str(list(shape))) +
                       r".*6 elements"):
        x.reshape(shape)
    with pytest.raises(RuntimeError, match=r"view.*6 elements"):
        x.view(*shape)


def test_reshape_two_inferred(device):
    with pytest.raises(RuntimeError, match=r"reshape.*one dimension.*-1"):
        sg.randn(2, 3, device=device).reshape(-1, -1)


def test_cat_stack_mismatch(device):
    a, b = sg.randn(2, 3, device=device), sg.randn(3, 4, device=device)
    with pytest.raises(RuntimeError, match=r"cat.*\(2, 3\).*\(3, 4\)"):
        sg.cat([a, b])
    with pytest.raises(RuntimeError, match=r"cat.*\(2, 3\).*\(3,\)"):
        sg.cat([a, sg.randn(3, device=device)])
    with pytest.raises(RuntimeError, match=r"cat.*non-empty"):
        sg.cat([])
    with pytest.raises(RuntimeError, match=r"stack.*\(2, 3\).*\(3, 4\)"):
        sg.stack([a, b])


def test_expand_permute_repeat_split(device):
    x = sg.randn(2, 3, device=device)
    with pytest.raises(RuntimeError, match=r"expand.*\(2, 3\).*\[4, 3\]"):
        x.expand(4, 3)
    with pytest.raises(RuntimeError, match=r"permute.*\[0, 0\].*\(2, 3\)"):
        x.permute(0, 0)
    with pytest.raises(RuntimeError, match=r"repeat.*\(1\).*\(2\)"):
        x.repeat(2)
    with pytest.raises(RuntimeError, match=r"split.*\[1, 1\].*3"):
        x.split([1, 1], 1)
    with pytest.raises(RuntimeError, match=r"chunk.*0"):
        x.chunk(0)
    with pytest.raises(RuntimeError, match=r"unflatten.*\[2, 2\].*3 elements"):
        x.unflatten(1, (2, 2))
    with pytest.raises(RuntimeError, match=r"pad.*\[1, 2, 3\]"):
        sg.pad(x, (1, 2, 3))
    with pytest.raises(RuntimeError, match=r"tril.*\(3,\)"):
        sg.randn(3, device=device).tril()


def test_einsum_errors(device):
    a, b = sg.randn(2, 3, device=device), sg.randn(4, 5, device=device)
    with pytest.raises(RuntimeError, match=r"einsum.*'j'.*3.*4"):
        sg.einsum("ij,jk->ik", a, b)
    with pytest.raises(RuntimeError, match=r"einsum.*2 operands, got 1"):
        sg.einsum("ij,jk->ik", a)
    with pytest.raises(RuntimeError, match=r"einsum.*'ijk'.*\(2, 3\)"):
        sg.einsum("ijk->i", a)


# ---------------------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [5, (0, 7), [0, 9], -3, (0, 0, 0)], ids=str)
def test_index_out_of_range(index, device):
    x = sg.randn(2, 3, device=device)
    with pytest.raises(IndexError, match=r"index.*\(2, 3\)"):
        x[index]


def test_index_with_tensor_out_of_range_and_bad_dtype(device):
    x = sg.randn(2, 3, device=device)
    with pytest.raises(IndexError, match=r"index.*9.*\(2, 3\)"):
        x[sg.tensor([0, 9], device=device)]
    with pytest.raises(IndexError, match=r"index.*long, int or bool.*float32"):
        x[sg.tensor([0.0], device=device)]
    with pytest.raises(IndexError, match=r"index.*\(2, 3\)"):
        x[sg.tensor([True, False, True], device=device)]


def test_gather_scatter_index_errors(device):
    x = sg.randn(2, 3, device=device)
    with pytest.raises(IndexError, match=r"gather.*dimension 1.*5"):
        x.gather(1, sg.tensor([[5]], device=device))
    with pytest.raises(RuntimeError, match=r"gather.*integer.*float32"):
        x.gather(1, sg.tensor([[0.0]], device=device))
    with pytest.raises(IndexError, match=r"scatter_add.*dimension 1.*7"):
        x.scatter_add(1, sg.tensor([[7]], device=device), sg.randn(1, 1, device=device))
    with pytest.raises(RuntimeError, match=r"index_select.*integer.*bool"):
        x.index_select(0, sg.tensor([True], device=device))
    with pytest.raises(IndexError, match=r"gather.*9"):
        x.take_along_dim(sg.tensor([[9]], device=device), 1)


def test_setitem_shape_mismatch(device):
    x = sg.zeros(2, 3, device=device)
    with pytest.raises(RuntimeError, match=r"setitem.*\(4,\).*\(2, 3\)"):
        x[0] = sg.ones(4, device=device)


# ---------------------------------------------------------------------------------------
# Dimensions
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,call", [
    ("sum", lambda x: x.sum(3)),
    ("mean", lambda x: x.mean(-3)),
    ("softmax", lambda x: x.softmax(2)),
    ("log_softmax", lambda x: x.log_softmax(5)),
    ("unsqueeze", lambda x: x.unsqueeze(4)),
    ("squeeze", lambda x: x.squeeze(3)),
    ("transpose", lambda x: x.transpose(0, 5)),
    ("cat", lambda x: sg.cat([x, x], 2)),
    ("stack", lambda x: sg.stack([x, x], 4)),
    ("gather", lambda x: x.gather(2, sg.zeros(1, 1, dtype=sg.int64, device=x.device))),
    ("cumsum", lambda x: x.cumsum(2)),
    ("argmax", lambda x: x.argmax(2)),
    ("max", lambda x: x.max(2)),
    ("var", lambda x: x.var(2)),
    ("flip", lambda x: x.flip(2)),
    ("roll", lambda x: x.roll(1, 3)),
    ("logsumexp", lambda x: x.logsumexp(2)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_dim_out_of_range(name, call, device):
    x = sg.randn(2, 3, device=device)
    with pytest.raises(IndexError, match=re.escape(name) + r".*dimension out of range"):
        call(x)


# ---------------------------------------------------------------------------------------
# dtypes and gradients
# ---------------------------------------------------------------------------------------


def test_non_float_requires_grad(device):
    with pytest.raises(RuntimeError, match=r"floating point.*int64"):
        sg.tensor([1, 2], device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"floating point.*bool"):
        sg.tensor([True], device=device).requires_grad_()
    with pytest.raises(RuntimeError, match=r"floating point.*int64"):
        sg.arange(3, device=device, requires_grad=True)


def test_dtype_errors(device):
    with pytest.raises(TypeError, match=r"unknown dtype.*complex64"):
        sg.zeros(2, dtype="complex64", device=device)
    with pytest.raises(RuntimeError, match=r"mean.*int64"):
        sg.tensor([1, 2], device=device).mean()
    with pytest.raises(RuntimeError, match=r"pow.*negative integer.*int64"):
        sg.tensor([2], device=device) ** -1
    with pytest.raises(TypeError, match=r"&.*bool.*float32"):
        sg.randn(2, device=device) & sg.randn(2, device=device)
    with pytest.raises(TypeError, match=r"add.*str"):
        sg.randn(2, device=device) + "a"


def test_backward_errors(device):
    x = sg.randn(2, 3, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward.*scalar.*\(2, 3\)"):
        (x * 2).backward()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time|retain_graph"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"item.*6 elements.*\(2, 3\)"):
        x.item()


def test_reduce_empty_errors(device):
    with pytest.raises(RuntimeError, match=r"max.*zero-size.*\(0,\)"):
        sg.zeros(0, device=device).max()
    with pytest.raises(RuntimeError, match=r"argmax.*empty.*\(0,\)"):
        sg.zeros(0, device=device).argmax()


def test_factory_errors(device):
    with pytest.raises(RuntimeError, match=r"arange.*step"):
        sg.arange(0, 5, -1, device=device)
    with pytest.raises(RuntimeError, match=r"arange.*nonzero"):
        sg.arange(0, 5, 0, device=device)
    with pytest.raises(RuntimeError, match=r"randint.*low=5.*high=2"):
        sg.randint(5, 2, (3,), device=device)
    with pytest.raises(TypeError, match=r"full.*str"):
        sg.full((2,), "a", device=device)
    with pytest.raises(ValueError, match=r"tensor.*uneven|ragged"):
        sg.tensor([[1, 2], [3]], device=device)
    with pytest.raises(ValueError, match=r"unknown device 'tpu'"):
        sg.zeros(2, device="tpu")


# ---------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------


def _other_device(device: str):
    for other in ("cpu", "mlx", "cuda"):
        if other != device and sg.is_available(other):
            return other
    return None


def test_mixing_devices_names_both(device):
    other = _other_device(device)
    if other is None:
        pytest.skip("only one device available here")
    a, b = sg.ones(3, device=device), sg.ones(3, device=other)
    pattern = rf"(?=.*'{device}')(?=.*'{other}')"
    with pytest.raises(RuntimeError, match=pattern):
        a + b
    with pytest.raises(RuntimeError, match=pattern):
        a @ b
    with pytest.raises(RuntimeError, match=pattern):
        sg.cat([a, b])
    with pytest.raises(RuntimeError, match=pattern):
        sg.where(a > 0, a, b)


def test_integer_floor_division_by_zero_raises(device):
    with pytest.raises(RuntimeError, match="integer division by zero"):
        sg.tensor([4, 5], device=device) // 0
    with pytest.raises(ZeroDivisionError):
        sg.tensor([4, 5], device=device) // sg.tensor([1, 0], device=device)
    assert (sg.tensor([4.0], device=device) // 0).tolist() == [float("inf")]


def test_mT_of_a_vector_names_itself(device):
    with pytest.raises(RuntimeError, match=r"mT: .*1-D tensor of shape \(3,\)"):
        _ = sg.ones(3, device=device).mT


def test_cat_and_stack_take_axis(device):
    x = sg.ones(2, 3, device=device)
    assert sg.cat([x, x], axis=1).shape == (2, 6) and sg.stack([x, x], axis=2).shape == (2, 3, 2)
