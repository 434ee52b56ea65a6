"""Movement and indexing ops against PyTorch: values, gradients, float64 gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import Arr, assert_close, check_op, run_gradcheck

import smolgrad as sg


def idx(values) -> Arr:
    """An int64 index array, passed to both libraries as a tensor."""
    return Arr(np.asarray(values, dtype=np.int64))


# ---------------------------------------------------------------------------------------
# Shape changes
# ---------------------------------------------------------------------------------------

SHAPE_OPS = {
    "reshape": ((2, 3, 4), lambda x: x.reshape(4, 6)),
    "reshape_tuple": ((2, 3, 4), lambda x: x.reshape((3, -1))),
    "reshape_0d": ((), lambda x: x.reshape(1, 1)),
    "reshape_to_0d": ((1,), lambda x: x.reshape(())),
    "reshape_empty": ((0, 3), lambda x: x.reshape(3, 0)),
    "view": ((2, 3, 4), lambda x: x.view(-1)),
    "view_tuple": ((2, 3, 4), lambda x: x.view((6, 4))),
    "flatten": ((2, 3, 4), lambda x: x.flatten()),
    "flatten_range": ((2, 3, 4, 5), lambda x: x.flatten(1, 2)),
    "flatten_0d": ((), lambda x: x.flatten()),
    "unflatten": ((2, 12), lambda x: x.unflatten(1, (3, 4))),
    "unflatten_infer": ((2, 12), lambda x: x.unflatten(-1, (-1, 6))),
    "squeeze": ((1, 3, 1, 4), lambda x: x.squeeze()),
    "squeeze_dim": ((1, 3, 1, 4), lambda x: x.squeeze(2)),
    "squeeze_noop": ((2, 3), lambda x: x.squeeze(0)),
    "squeeze_dims": ((1, 3, 1, 4), lambda x: x.squeeze((0, 2))),
    "unsqueeze": ((3, 4), lambda x: x.unsqueeze(1)),
    "unsqueeze_neg": ((3, 4), lambda x: x.unsqueeze(-1)),
    "unsqueeze_0d": ((), lambda x: x.unsqueeze(0)),
    "permute": ((2, 3, 4), lambda x: x.permute(2, 0, 1)),
    "permute_tuple": ((2, 3, 4), lambda x: x.permute((1, 2, 0))),
    "transpose": ((2, 3, 4), lambda x: x.transpose(0, 2)),
    "transpose_neg": ((2, 3, 4), lambda x: x.transpose(-1, -2)),
    "t": ((3, 4), lambda x: x.t()),
    "T": ((2, 3, 4), lambda x: x.T if isinstance(x, sg.Tensor) else x.permute(2, 1, 0)),
    "mT": ((2, 3, 4), lambda x: x.mT),
    "expand": ((3, 1), lambda x: x.expand(2, 3, 4)),
    "expand_keep": ((3, 1), lambda x: x.expand(-1, 5)),
    "expand_0d": ((), lambda x: x.expand(2, 3)),
    "broadcast_to": ((3, 1), lambda x: x.broadcast_to((2, 3, 4))),
    "expand_as": ((3, 1), lambda x: x.expand_as(x.new_zeros(3, 4)) if hasattr(x, "new_zeros")
                  else x.expand(3, 4)),
    "repeat": ((2, 3), lambda x: x.repeat(2, 3)),
    "repeat_more_dims": ((2, 3), lambda x: x.repeat(2, 1, 2)),
    "repeat_0d": ((), lambda x: x.repeat(3)),
    "flip": ((2, 3, 4), lambda x: x.flip(0, 2)),
    "flip_list": ((2, 3, 4), lambda x: x.flip([-1])),
    "roll": ((2, 3, 4), lambda x: x.roll(1, 2)),
    "roll_neg": ((2, 3, 4), lambda x: x.roll(-2, 1)),
    "roll_multi": ((2, 3, 4), lambda x: x.roll((1, 2), (0, 2))),
    "roll_flat": ((2, 3, 4), lambda x: x.roll(5)),
    "tril": ((4, 5), lambda x: x.tril()),
    "tril_k": ((2, 4, 5), lambda x: x.tril(-1)),
    "triu": ((4, 5), lambda x: x.triu()),
    "triu_k": ((2, 4, 5), lambda x: x.triu(2)),
    "contiguous": ((2, 3), lambda x: x.transpose(0, 1).contiguous()),
    "movedim": ((2, 3, 4), lambda x: x.movedim(0, 2)),
    "narrow": ((5, 4), lambda x: x.narrow(0, 1, 3)),
    "repeat_interleave": ((2, 3), lambda x: x.repeat_interleave(2, dim=1)),
    "view_as": ((2, 6), lambda x: x.view_as(x.reshape(3, 4))),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_op(name, device):
    shape, fn = SHAPE_OPS[name]
    check_op(fn, shape, device=device)


def test_function_forms(device):
    check_op(lambda x: sg.reshape(x, (6,)), (2, 3), device=device,
             torch_fn=lambda x: torch.reshape(x, (6,)))
    check_op(lambda x: sg.flatten(x, 1), (2, 3, 4), device=device,
             torch_fn=lambda x: torch.flatten(x, 1))
    check_op(lambda x: sg.squeeze(x), (1, 3), device=device, torch_fn=torch.squeeze)
    check_op(lambda x: sg.unsqueeze(x, 0), (3,), device=device,
             torch_fn=lambda x: torch.unsqueeze(x, 0))
    check_op(lambda x: sg.permute(x, (1, 0)), (2, 3), device=device,
             torch_fn=lambda x: torch.permute(x, (1, 0)))
    check_op(lambda x: sg.transpose(x, 0, 1), (2, 3), device=device,
             torch_fn=lambda x: torch.transpose(x, 0, 1))
    check_op(lambda x: sg.broadcast_to(x, (2, 3)), (3,), device=device,
             torch_fn=lambda x: torch.broadcast_to(x, (2, 3)))
    check_op(lambda x: sg.flip(x, (0,)), (2, 3), device=device,
             torch_fn=lambda x: torch.flip(x, (0,)))
    check_op(lambda x: sg.roll(x, 1, 0), (2, 3), device=device,
             torch_fn=lambda x: torch.roll(x, 1, 0))
    check_op(lambda x: sg.tril(x, 1), (3, 3), device=device,
             torch_fn=lambda x: torch.tril(x, 1))
    check_op(lambda x: sg.triu(x), (3, 3), device=device, torch_fn=torch.triu)


def test_broadcast_tensors_and_shapes(device):
    check_op(lambda x, y: sg.broadcast_tensors(x, y), (2, 1), (3,), device=device,
             torch_fn=lambda x, y: torch.broadcast_tensors(x, y))
    assert sg.broadcast_shapes((3, 1), (2, 1, 4)) == torch.broadcast_shapes((3, 1), (2, 1, 4))


# ---------------------------------------------------------------------------------------
# Joining and splitting
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_stack(dim, device):
    check_op(lambda a, b, c: sg.cat([a, b, c], dim=dim), (2, 3), (2, 3), (2, 3),
             device=device, torch_fn=lambda a, b, c: torch.cat([a, b, c], dim=dim))
    check_op(lambda a, b: sg.stack((a, b), dim), (2, 3), (2, 3), device=device,
             torch_fn=lambda a, b: torch.stack((a, b), dim))


def test_cat_uneven_and_aliases(device):
    check_op(lambda a, b: sg.cat([a, b], 1), (2, 1), (2, 4), device=device,
             torch_fn=lambda a, b: torch.cat([a, b], 1))
    check_op(lambda a, b: sg.concatenate([a, b]), (1, 3), (2, 3), device=device,
             torch_fn=lambda a, b: torch.concatenate([a, b]))
    check_op(lambda a, b: sg.concat([a, b], dim=0), (0, 3), (2, 3), device=device,
             torch_fn=lambda a, b: torch.concat([a, b], dim=0))
    check_op(lambda a: sg.stack([a]), (), device=device,
             torch_fn=lambda a: torch.stack([a]))


def test_cat_promotes_dtypes(device):
    out = sg.cat([sg.tensor([1, 2], device=device), sg.tensor([0.5], device=device)])
    expected = torch.cat([torch.tensor([1, 2]), torch.tensor([0.5])])
    assert_close(out, expected)
    assert out.dtype is sg.float32


@pytest.mark.parametrize("arg,dim", [(2, 0), (3, 1), ([1, 4], 1), ((2, 2, 1), 1), (5, -1)],
                         ids=str)
def test_split(arg, dim, device):
    check_op(lambda x: x.split(arg, dim), (4, 5), device=device)
    check_op(lambda x: sg.split(x, arg, dim=dim), (4, 5), device=device,
             torch_fn=lambda x: torch.split(x, arg, dim=dim))


@pytest.mark.parametrize("chunks,dim", [(2, 0), (3, 1), (4, 1), (6, 0)], ids=str)
def test_chunk(chunks, dim, device):
    check_op(lambda x: x.chunk(chunks, dim), (4, 5), device=device)
    check_op(lambda x: sg.chunk(x, chunks, dim), (6, 2), device=device,
             torch_fn=lambda x: torch.chunk(x, chunks, dim))


def test_tensor_split_hstack_vstack(device):
    check_op(lambda x: x.tensor_split(3, 1), (2, 7), device=device)
    check_op(lambda a, b: sg.hstack([a, b]), (2, 3), (2, 1), device=device,
             torch_fn=lambda a, b: torch.hstack([a, b]))
    check_op(lambda a, b: sg.vstack([a, b]), (3,), (2, 3), device=device,
             torch_fn=lambda a, b: torch.vstack([a, b]))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unbind(dim, device):
    check_op(lambda x: x.unbind(dim), (2, 3, 4), device=device)
    check_op(lambda x: sg.unbind(x, dim), (2, 3), device=device,
             torch_fn=lambda x: torch.unbind(x, dim))


# ---------------------------------------------------------------------------------------
# pad
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad,value", [((1, 2), 0.0), ((1, 1, 2, 0), -1.5),
                                       ((0, 0, 0, 0, 1, 1), 0.0), ((-1, 2), 0.0),
                                       ((-1, -1, 1, -2), 3.0), ((0, 0), 0.0)], ids=str)
def test_pad_constant(pad, value, device):
    check_op(lambda x: sg.pad(x, pad, value=value), (2, 3, 4), device=device,
             torch_fn=lambda x: torch.nn.functional.pad(x, pad, value=value))


# ---------------------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------------------

BASIC_INDEX = [
    1,
    -1,
    slice(1, 3),
    slice(None, None, 2),
    slice(3, 0, -1),  # a negative step: smolgrad allows it (torch does not)
    (0, 1),
    (slice(None), 2),
    (Ellipsis, 1),
    (None, 1),
    (1, None, slice(0, 2)),
    (Ellipsis, None),
    (slice(1, None), Ellipsis, slice(None, 2)),
    (),
    slice(5, 10),
]


@pytest.mark.parametrize("index", BASIC_INDEX, ids=str)
def test_basic_indexing(index, device):
    if isinstance(index, slice) and index.step is not None and index.step < 0:
        # torch rejects negative steps; compare with flip instead
        check_op(lambda x: x[index], (4, 3, 2), device=device,
                 torch_fn=lambda x: x.flip(0)[0:3])
        return
    check_op(lambda x: x[index], (4, 3, 2), device=device)


def test_index_0d_and_empty(device):
    check_op(lambda x: x[None], (), device=device)
    check_op(lambda x: x[...], (), device=device)
    check_op(lambda x: x[1:1], (4, 3), device=device)
    check_op(lambda x: x[:, 0], (0, 3), device=device)


ADVANCED_INDEX = {
    "list": lambda i: [0, 2, 2, 1],
    "tensor": lambda i: i([3, 0, 0]),
    "tensor_2d": lambda i: i([[0, 1], [3, 3]]),
    "negative": lambda i: i([-1, 0, -1]),
    "pair": lambda i: (i([0, 1, 1]), i([2, 0, 0])),
    "broadcast_pair": lambda i: (i([[0], [3]]), i([1, 2])),
    "slice_then_tensor": lambda i: (slice(None), i([2, 2, 0])),
    "tensor_then_slice": lambda i: (i([1, 1]), slice(0, 2)),
    "split_by_slice": lambda i: (i([0, 1]), slice(None), i([1, 0])),
    "with_int": lambda i: (1, i([0, 2, 2])),
    "ellipsis_tensor": lambda i: (Ellipsis, i([1, 0, 1])),
}


@pytest.mark.parametrize("name", sorted(ADVANCED_INDEX))
def test_advanced_indexing(name, device):
    def run(x):
        lib = sg if isinstance(x, sg.Tensor) else torch

        def make(v):
            return lib.tensor(v)
        if lib is sg:
            def make(v):  # noqa: F811 - the index lives on the tensor's device
                return sg.tensor(v, device=device)
        return x[ADVANCED_INDEX[name](make)]

    check_op(run, (4, 3, 2), device=device)


@pytest.mark.parametrize("mask_shape", [(4,), (4, 3), (4, 3, 2)], ids=str)
def test_bool_mask_indexing(mask_shape, device):
    mask = Arr(np.random.default_rng(7).uniform(size=mask_shape) > 0.4)
    check_op(lambda x, m: x[m], (4, 3, 2), mask, device=device)


@pytest.mark.parametrize("mask_shape", [(2,), (3, 2), (4, 3, 2)], ids=str)
def test_masked_select(mask_shape, device):
    mask = Arr(np.random.default_rng(8).uniform(size=mask_shape) > 0.4)
    check_op(lambda x, m: x.masked_select(m), (4, 3, 2), mask, device=device)


def test_bool_list_and_nonzero(device):
    check_op(lambda x: x[[True, False, True, True]], (4, 3), device=device)
    a = np.array([[0.0, 1.0], [2.0, 0.0]], np.float32)
    assert_close(sg.tensor(a, device=device).nonzero(), torch.tensor(a).nonzero())
    for s, t in zip(sg.tensor(a, device=device).nonzero(as_tuple=True),
                    torch.tensor(a).nonzero(as_tuple=True)):
        assert_close(s, t)


# ---------------------------------------------------------------------------------------
# x[i] = v
# ---------------------------------------------------------------------------------------

SETITEM = {
    "int": (1, (3, 2)),
    "slice": (slice(1, 3), (2,)),
    "scalar": ((0, 1), ()),
    "list_repeat": ([0, 2, 0], (3, 2)),
    "mask": ("mask", (2,)),
    "tensor_pair": ("pair", ()),
    "ellipsis": ((Ellipsis, 0), (4, 1)),
}


@pytest.mark.parametrize("name", sorted(SETITEM))
def test_setitem_gradient_to_old_and_value(name, device):
    index, v_shape = SETITEM[name]

    def run(x, v):
        lib = sg if isinstance(x, sg.Tensor) else torch
        kw = {"device": device} if lib is sg else {}
        i = index
        if index == "mask":
            i = lib.tensor([[True, False, True], [False, False, True], [True, True, False],
                            [False, False, False]], **kw)
        elif index == "pair":
            i = (lib.tensor([0, 3], **kw), lib.tensor([1, 2], **kw))
        y = x * 2.0          # a non-leaf, so that the in-place write is allowed
        y[i] = v * 3.0
        return y * y

    if name == "list_repeat":
        # torch assigns one of the repeated writes (unspecified which): values only for
        # the value's gradient; the gradient to x is deterministic
        check_op(run, (4, 3, 2), Arr(np.ones(v_shape, np.float32)), device=device)
        return
    check_op(run, (4, 3, 2), v_shape, device=device)


def test_setitem_python_values_and_dtype(device):
    x = sg.zeros(3, 2, device=device)
    x[0] = 1.5
    x[1, 1] = 7
    x[2] = sg.tensor([1, 2], device=device)  # int value, cast to the tensor's dtype
    t = torch.zeros(3, 2)
    t[0] = 1.5
    t[1, 1] = 7
    t[2] = torch.tensor([1, 2])
    assert_close(x, t)
    assert x.dtype is sg.float32


def test_setitem_saved_tensor_error(device):
    x = sg.randn(3, device=device, requires_grad=True)
    y = x * 1.0
    z = y.exp()
    y[0] = 0.0
    w = y.sin()  # fine: sin sees the new y
    with pytest.raises(RuntimeError, match="in-place|modified"):
        (z.sum() + w.sum()).backward()
    leaf = sg.zeros(3, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf[0] = 1.0


def test_index_put(device):
    def run(x, v):
        lib = sg if isinstance(x, sg.Tensor) else torch
        kw = {"device": device} if lib is sg else {}
        i = (lib.tensor([0, 2, 0], **kw),)
        return x.index_put(i, v, accumulate=True)

    check_op(run, (4, 3), (3, 3), device=device)


# ---------------------------------------------------------------------------------------
# gather, scatter_add, index_select, take_along_dim
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim,index", [
    (0, [[0, 1, 2], [3, 0, 0]]),
    (1, [[0, 0], [2, 1], [1, 1], [0, 2]]),
    (-1, [[2], [0], [1], [1]]),
    (1, [[0, 2, 2, 1], [1, 1, 0, 0]]),   # smaller than input along another dim
], ids=str)
def test_gather(dim, index, device):
    check_op(lambda x, i: x.gather(dim, i), (4, 3), idx(index), device=device)
    check_op(lambda x, i: sg.gather(x, dim, i), (4, 3), idx(index), device=device,
             torch_fn=lambda x, i: torch.gather(x, dim, i))


@pytest.mark.parametrize("dim,index,src_shape", [
    (0, [[0, 1, 2], [0, 0, 3]], (2, 3)),
    (1, [[0, 0], [2, 1], [1, 1], [0, 2]], (4, 2)),
], ids=str)
def test_scatter_add(dim, index, src_shape, device):
    check_op(lambda x, i, s: x.scatter_add(dim, i, s), (4, 3), idx(index), src_shape,
             device=device)
    check_op(lambda x, i, s: sg.scatter_add(x, dim, i, s), (4, 3), idx(index), src_shape,
             device=device, torch_fn=lambda x, i, s: torch.scatter_add(x, dim, i, s))


def test_scatter_add_src_larger_than_index(device):
    """Only src[:2, :2] is used. torch's own backward fails here (it returns a gradient of
    index's shape), so values come from torch and gradients from finite differences."""
    index = idx([[0, 0], [2, 1]])
    check_op(lambda x, i, s: x.scatter_add(1, i, s), (4, 3), index, (3, 3), device=device,
             grad=False)
    if device == "cpu":
        rng = np.random.default_rng(0)
        arrays = [rng.standard_normal((4, 3)), index, rng.standard_normal((3, 3))]
        run_gradcheck(lambda x, i, s: x.scatter_add(1, i, s), arrays)


def test_scatter_add_inplace(device):
    def run(x, i, s):
        y = x * 1.0
        y.scatter_add_(0, i, s)
        return y

    check_op(run, (4, 3), idx([[0, 1, 2], [0, 0, 3]]), (2, 3), device=device)


@pytest.mark.parametrize("dim,index", [(0, [0, 3, 3, 1]), (1, [2, 0]), (-1, [1, 1, 1]),
                                       (0, [])], ids=str)
def test_index_select(dim, index, device):
    check_op(lambda x, i: x.index_select(dim, i), (4, 3, 2), idx(index), device=device)
    check_op(lambda x, i: sg.index_select(x, dim, i), (4, 3, 2), idx(index), device=device,
             torch_fn=lambda x, i: torch.index_select(x, dim, i))


@pytest.mark.parametrize("dim,index", [
    (1, [[0, 2], [1, 1], [2, 0], [0, 0]]),
    (0, [[3, 0, 1]]),                        # broadcasts along dim 1
    (1, [[0], [2], [1], [1]]),
    (None, [0, 11, 5, 5]),
], ids=str)
def test_take_along_dim(dim, index, device):
    check_op(lambda x, i: x.take_along_dim(i, dim), (4, 3), idx(index), device=device)
    check_op(lambda x, i: sg.take_along_dim(x, i, dim=dim), (4, 3), idx(index),
             device=device, torch_fn=lambda x, i: torch.take_along_dim(x, i, dim=dim))


def test_take_along_dim_with_argmax(device):
    check_op(lambda x: x.take_along_dim(x.argmax(1, keepdim=True), 1), (3, 5), device=device)
