"""split / chunk / tensor_split / unbind (and stack) as one graph node per call, against
PyTorch: values, gradients when only some pieces reach the loss, float64 gradcheck and
gradgradcheck, the size of the graph, and the pieces being views of the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import assert_close

import smolgrad as sg

# name -> the call, the same text for both libraries
CALLS = {
    "split_even": lambda x: x.split(2, dim=1),
    "split_uneven": lambda x: x.split(3, dim=1),
    "split_sizes_negdim": lambda x: x.split([1, 4, 2], dim=-1),
    "split_zero_size": lambda x: x.split([0, 3, 4], dim=1),
    "chunk": lambda x: x.chunk(3, dim=0),
    "chunk_negdim": lambda x: x.chunk(4, dim=-1),
    "tensor_split": lambda x: x.tensor_split(3, 1),
    "unbind": lambda x: x.unbind(1),
    "unbind_negdim": lambda x: x.unbind(-1),
    "unbind_dim0": lambda x: x.unbind(0),
}
SHAPE = (4, 7)


def _pair(device, dtype=np.float32, seed=0):
    a = np.random.default_rng(seed).standard_normal(SHAPE).astype(dtype)
    return (sg.tensor(a, requires_grad=True, device=device),
            torch.tensor(a, requires_grad=True))


def _weighted_loss(pieces, weights, lib):
    """Σ over the chosen pieces of Σ(piece · w): a loss that uses only some pieces."""
    total = 0
    for i, w in weights.items():
        total = total + (pieces[i] * lib.tensor(w, dtype=pieces[i].dtype,
                                                device=pieces[i].device)).sum()
    return total


@pytest.mark.parametrize("used", ["all", "some"])
@pytest.mark.parametrize("name", list(CALLS))
def test_values_and_gradients(name, used, device):
    call = CALLS[name]
    x, tx = _pair(device)
    pieces, tpieces = call(x), call(tx)
    assert isinstance(pieces, tuple) and len(pieces) == len(tpieces)
    for p, tp in zip(pieces, tpieces):
        assert_close(p, tp)
    chosen = range(len(tpieces)) if used == "all" else range(0, len(tpieces), 2)
    rng = np.random.default_rng(1)
    weights = {i: rng.standard_normal(tpieces[i].shape) for i in chosen}
    _weighted_loss(pieces, weights, sg).backward()
    _weighted_loss(tpieces, weights, torch).backward()
    assert_close(x.grad, tx.grad, what="gradient of the input")


@pytest.mark.parametrize("name", list(CALLS))
def test_one_node_per_call(name):
    x = sg.randn(*SHAPE, requires_grad=True)
    pieces = CALLS[name](x)
    nodes = {p.grad_fn for p in pieces}
    assert len(nodes) == 1 and None not in nodes
    assert [p._output_nr for p in pieces] == list(range(len(pieces)))


def test_stack_is_one_node_and_unbinds_back():
    xs = [sg.randn(3, 2, requires_grad=True) for _ in range(4)]
    txs = [torch.tensor(x.detach().numpy(), requires_grad=True) for x in xs]
    y, ty = sg.stack(xs, 1), torch.stack(txs, 1)
    assert_close(y, ty)
    assert type(y.grad_fn).__name__ == "Stack"
    w = np.random.default_rng(2).standard_normal(ty.shape)
    (y * sg.tensor(w, dtype=y.dtype)).sum().backward()
    (ty * torch.tensor(w, dtype=ty.dtype)).sum().backward()
    for x, tx in zip(xs, txs):
        assert_close(x.grad, tx.grad)


def test_stack_promotes_dtypes_as_torch():
    a, b = sg.ones(2, dtype=sg.int64), sg.ones(2, dtype=sg.float32)
    assert sg.stack([a, b]).dtype == sg.float32


@pytest.mark.parametrize("name", list(CALLS))
def test_gradcheck_and_gradgradcheck(name):
    x = sg.tensor(np.random.default_rng(3).standard_normal(SHAPE), requires_grad=True)

    def some_pieces(t):  # every other piece, squared so that the second derivative is not 0
        return tuple(p * p for p in CALLS[name](t)[::2])

    assert sg.autograd.gradcheck(some_pieces, (x,))
    assert sg.autograd.gradgradcheck(some_pieces, (x,))


def test_stack_gradgradcheck():
    xs = tuple(sg.tensor(np.random.default_rng(i).standard_normal((2, 3)), requires_grad=True)
               for i in range(3))

    def stacked(*ts):
        return sg.stack(list(ts), 1) ** 2

    assert sg.autograd.gradcheck(stacked, xs)
    assert sg.autograd.gradgradcheck(stacked, xs)


def test_empty_dimension_as_torch():
    assert len(sg.zeros(0).split(1)) == len(torch.zeros(0).split(1)) == 1
    assert sg.zeros(0, 3).unbind(0) == () == torch.zeros(0, 3).unbind(0)
    for chunks in (1, 3):
        ours, theirs = sg.zeros(0, 2).chunk(chunks), torch.zeros(0, 2).chunk(chunks)
        assert [tuple(p.shape) for p in ours] == [tuple(p.shape) for p in theirs]


def test_integer_input_pieces_need_no_grad():
    pieces = sg.arange(6).split(4)
    assert [p.tolist() for p in pieces] == [[0, 1, 2, 3], [4, 5]]
    assert all(p.grad_fn is None for p in pieces)


# ---------------------------------------------------------------------------------------
# The pieces are views of the input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["split_uneven", "chunk", "unbind", "unbind_negdim"])
def test_writes_go_both_ways(name, device):
    a = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    x, tx = sg.tensor(a, device=device), torch.tensor(a)
    pieces, tpieces = CALLS[name](x), CALLS[name](tx)
    pieces[1].mul_(10.0)
    tpieces[1].mul_(10.0)
    assert_close(x, tx, what="the input after writing into a piece")
    x.add_(1.0)
    tx.add_(1.0)
    for p, tp in zip(pieces, tpieces):
        assert_close(p, tp, what="a piece after writing into the input")


@pytest.mark.parametrize("name,torch_pieces", [
    ("split_uneven", lambda t: (t[:, 0:3], t[:, 3:6], t[:, 6:7])),
    ("unbind", lambda t: tuple(t[:, i] for i in range(7))),
    ("chunk_negdim", lambda t: tuple(t[:, i:i + 2] for i in range(0, 7, 2))),
])
def test_write_into_a_piece_is_copyslices(name, torch_pieces, device):
    """A recorded write into piece 1, then a loss on the input and on the pieces: the
    gradient is PyTorch's CopySlices one. PyTorch refuses in-place writes into (and use
    after a write of) the outputs of its multi-view ops under autograd, so its side takes
    the same pieces as plain slices."""
    x, tx = _pair(device)
    y, ty = x * 2.0, tx * 2.0
    pieces, tpieces = CALLS[name](y), torch_pieces(ty)
    pieces[1].mul_(x.sum())  # (a value from a piece itself would trip the version check)
    tpieces[1].mul_(tx.sum())
    assert_close(y, ty, what="the input after the write")
    for p, tp in zip(pieces, tpieces):
        assert_close(p, tp, what="a piece after the write")
    loss = (y ** 2).sum() + (pieces[0] * pieces[2].sum()).sum() + (pieces[1] ** 3).sum()
    tloss = (ty ** 2).sum() + (tpieces[0] * tpieces[2].sum()).sum() + (tpieces[1] ** 3).sum()
    loss.backward()
    tloss.backward()
    assert_close(x.grad, tx.grad, atol=1e-4, what="gradient through the write")


def test_many_pieces_backward_is_linear():
    """The old O(L²) case (one full-size zero array per piece), timed in the report only:
    here just its correctness at a size that would have been slow."""
    x = sg.randn(64, 2000, requires_grad=True)
    total = sum(p.sum() for p in x.split(1, dim=1))
    total.backward()
    assert x.grad.shape == (64, 2000) and bool((x.grad == 1).all())


@pytest.mark.parametrize("indices", [[2, 5], [1, 1, 9], [-2], [5, 2]])
def test_tensor_split_at_indices(indices, device):
    # PyTorch's index form: Python slice rules, so pieces may be empty or overlap ([5, 2])
    x, tx = _pair(device)
    pieces, tpieces = sg.tensor_split(x, indices, dim=1), torch.tensor_split(tx, indices, dim=1)
    assert len(pieces) == len(tpieces) == len(indices) + 1
    for p, tp in zip(pieces, tpieces):
        assert_close(p, tp)
    weights = {i: np.random.default_rng(i).standard_normal(tp.shape)
               for i, tp in enumerate(tpieces)}
    _weighted_loss(pieces, weights, sg).backward()
    _weighted_loss(tpieces, weights, torch).backward()
    assert_close(x.grad, tx.grad, what="gradient of the input")


def test_tensor_split_takes_a_tensor_and_checks_it():
    x = sg.arange(7.0)
    assert [p.tolist() for p in x.tensor_split(sg.tensor([2, 5]))] == [[0, 1], [2, 3, 4], [5, 6]]
    assert len(x.tensor_split(sg.tensor(3))) == 3
    with pytest.raises(RuntimeError, match=r"tensor_split: expected a 0-d or 1-d integer"):
        x.tensor_split(sg.tensor([1.5]))
    with pytest.raises(RuntimeError, match=r"tensor_split: number of sections must be"):
        x.tensor_split(0)
