"""matmul (broadcasting, 1-D rules), einsum, outer, mm/bmm/mv/dot, and dtype casts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import assert_close, check_op

import smolgrad as sg

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4,)),            # dot: a 0-d result
    ((4,), (4, 5)),          # vector @ matrix
    ((3, 4), (4,)),          # matrix @ vector
    ((2, 3, 4), (4, 5)),
    ((2, 1, 3, 4), (4, 5)),  # rows times one matrix: computed as one 2-D product
    ((2, 0, 4), (4, 3)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 5)),       # 1-D with a batch
    ((2, 3, 4), (4,)),
    ((0, 4), (4, 5)),
    ((3, 0), (0, 5)),        # empty inner dimension: zeros
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes, device):
    check_op(lambda x, y: x @ y, *shapes, device=device)
    check_op(lambda x, y: sg.matmul(x, y), *shapes, device=device, torch_fn=torch.matmul)


def test_matmul_method_and_aliases(device):
    check_op(lambda x, y: x.matmul(y), (3, 4), (4, 2), device=device)
    check_op(lambda x, y: x.mm(y), (3, 4), (4, 2), device=device)
    check_op(lambda x, y: sg.mm(x, y), (3, 4), (4, 2), device=device, torch_fn=torch.mm)
    check_op(lambda x, y: x.bmm(y), (2, 3, 4), (2, 4, 2), device=device)
    check_op(lambda x, y: x.mv(y), (3, 4), (4,), device=device)
    check_op(lambda x, y: x.dot(y), (4,), (4,), device=device)


def test_rmatmul_with_ndarray(device):
    w = sg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    out = np.array([[1.0, 0.0]], dtype=np.float32) @ w
    assert isinstance(out, sg.Tensor)
    assert out.tolist() == [[1.0, 2.0]]


def test_matmul_int_and_mixed_dtypes(device):
    a = [[1, 2], [3, 4]]
    assert_close(sg.tensor(a, device=device) @ sg.tensor(a, device=device),
                 torch.tensor(a) @ torch.tensor(a))
    out = sg.tensor(a, device=device) @ sg.tensor([[0.5], [1.0]], device=device)
    assert out.dtype is sg.float32


@pytest.mark.parametrize("shapes", [((3,), (4,)), ((1,), (5,)), ((0,), (2,))], ids=str)
def test_outer(shapes, device):
    check_op(lambda x, y: x.outer(y), *shapes, device=device)
    check_op(lambda x, y: sg.outer(x, y), *shapes, device=device, torch_fn=torch.outer)


EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(3,), (3,)]),
    ("ij,kj->ik", [(2, 3), (4, 3)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ij,k->ijk", [(2, 3), (4,)]),          # an outer product with a free axis
    ("ijk->i", [(2, 3, 4)]),
    ("ij,jk", [(3, 4), (4, 5)]),            # implicit output: the sorted free letters
    ("ab,bc->ca", [(2, 3), (3, 4)]),
    ("ij,j->i", [(3, 4), (1,)]),            # a size-1 axis that broadcasts
]


@pytest.mark.parametrize("spec,shapes", EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum(spec, shapes, device):
    check_op(lambda *xs: sg.einsum(spec, *xs), *shapes, device=device,
             torch_fn=lambda *xs: torch.einsum(spec, *xs))


def test_einsum_list_operands(device):
    check_op(lambda x, y: sg.einsum("ij,jk->ik", [x, y]), (2, 3), (3, 2), device=device,
             torch_fn=lambda x, y: torch.einsum("ij,jk->ik", [x, y]))


@pytest.mark.parametrize("spec,shapes", [("ii->i", [(3, 3)]), ("ii->", [(3, 3)]),
                                         ("iij->j", [(2, 2, 3)]),
                                         ("ij,ii->j", [(3, 2), (3, 3)])], ids=str)
def test_einsum_repeated_subscripts(spec, shapes, device):
    """Diagonals and traces: the gradient lands on the diagonal only."""
    check_op(lambda *xs: sg.einsum(spec, *xs), *shapes, device=device,
             torch_fn=lambda *xs: torch.einsum(spec, *xs))


@pytest.mark.parametrize("spec,shapes", [("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
                                         ("b...,b->...", [(2, 3, 4), (2,)]),
                                         ("...i->...", [(2, 3)])], ids=str)
def test_einsum_ellipsis(spec, shapes, device):
    check_op(lambda *xs: sg.einsum(spec, *xs), *shapes, device=device,
             torch_fn=lambda *xs: torch.einsum(spec, *xs))


# ---------------------------------------------------------------------------------------
# dtype conversions
# ---------------------------------------------------------------------------------------


def _f64(x):
    return torch.float64 if isinstance(x, torch.Tensor) else sg.float64


CASTS = {
    "double_float": lambda x: (x.double() * 2).float(),
    "float": lambda x: x.float() * 3,
    "to_dtype": lambda x: x.to(_f64(x)).sum(0),
    "to_kw": lambda x: x.to(dtype=_f64(x)),
    "to_like": lambda x: x.to(x.double()),
}


@pytest.mark.parametrize("name", sorted(CASTS))
def test_cast_gradients(name, device):
    if name != "float" and not _has_float64(device):
        pytest.skip(f"device '{device}' has no float64")
    # finite differences through a float32 cast are too coarse for gradcheck
    check_op(CASTS[name], (3, 4), device=device, gradcheck="float" not in name)


def test_half_gradient_reaches_float32_source_in_float32(device):
    x = sg.randn(3, 4, device=device, requires_grad=True)
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    h = x.half()
    assert h.dtype is sg.float16
    (h * h).sum().backward()
    (tx.half() * tx.half()).sum().backward()
    assert x.grad.dtype is sg.float32
    assert_close(x.grad, tx.grad, atol=1e-2, rtol=1e-2)


def test_int_and_bool_casts(device):
    a = np.array([-1.7, 0.0, 0.4, 2.9], np.float32)
    x, tx = sg.tensor(a, device=device), torch.tensor(a)
    assert_close(x.long(), tx.long())
    assert_close(x.int(), tx.int())
    assert_close(x.bool(), tx.bool())
    assert_close(x.to(sg.int64), tx.to(torch.int64))
    assert_close(x.type_as(sg.tensor([1], device=device)), tx.type_as(torch.tensor([1])))
    # casting a tensor that requires grad to an integer type cuts the graph (as torch)
    y = sg.tensor(a, device=device, requires_grad=True).long()
    assert not y.requires_grad


def test_to_device_same_device_and_cpu(device):
    x = sg.randn(2, 3, device=device, requires_grad=True)
    assert x.to(device) is x
    y = x.cpu()
    assert y.device == "cpu"
    (y * 2).sum().backward()
    assert x.grad.device == device
    assert_close(x.grad, torch.full((2, 3), 2.0))


def test_clone_gradient(device):
    check_op(lambda x: x.clone() * 2, (3,), device=device)


# ---------------------------------------------------------------------------------------
# Second derivatives: a matmul chain, and a Hessian-vector product of a small MLP
# ---------------------------------------------------------------------------------------


def test_second_derivative_matmul_chain(device):
    rng = np.random.default_rng(14)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (4, 5), (5, 2))]
    xs = [sg.tensor(a, device=device, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]

    def f(a, b, c):
        return ((a @ b).tanh() @ c).pow(2).sum()

    gs = sg.autograd.grad(f(*xs), xs, create_graph=True)
    tgs = torch.autograd.grad(f(*ts), ts, create_graph=True)
    for g, tg in zip(gs, tgs):
        assert_close(g, tg, atol=1e-4)
    penalty = sum((g * g).sum() for g in gs)
    t_penalty = sum((g * g).sum() for g in tgs)
    hs = sg.autograd.grad(penalty, xs)
    ths = torch.autograd.grad(t_penalty, ts)
    for h, th in zip(hs, ths):
        assert_close(h, th, atol=1e-3, rtol=1e-3)


def test_mlp_hessian_vector_product(device):
    """Hv for loss(W1, b1, W2) = mean((tanh(x @ W1 + b1) @ W2 - y)²), raw tensor ops."""
    rng = np.random.default_rng(15)
    data = {"x": (8, 3), "y": (8, 2), "W1": (3, 6), "b1": (6,), "W2": (6, 2)}
    arrays = {k: rng.standard_normal(s).astype(np.float32) for k, s in data.items()}
    vs = [rng.standard_normal(data[k]).astype(np.float32) for k in ("W1", "b1", "W2")]

    def hvp(lib, make):
        x, y = make(arrays["x"], False), make(arrays["y"], False)
        params = [make(arrays[k], True) for k in ("W1", "b1", "W2")]
        w1, b1, w2 = params
        loss = ((((x @ w1 + b1).tanh() @ w2) - y) ** 2).mean()
        grads = lib.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * make(v, False)).sum() for g, v in zip(grads, vs))
        return loss, grads, lib.autograd.grad(dot, params)

    sg_loss, sg_g, sg_hv = hvp(sg, lambda a, rg: sg.tensor(a, device=device, requires_grad=rg))
    t_loss, t_g, t_hv = hvp(torch, lambda a, rg: torch.tensor(a, requires_grad=rg))
    assert_close(sg_loss, t_loss)
    for a, b in zip(sg_g, t_g):
        assert_close(a, b)
    for a, b in zip(sg_hv, t_hv):
        assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_gradgradcheck_matmul_einsum():
    rng = np.random.default_rng(16)
    a = sg.tensor(rng.standard_normal((2, 3)), dtype=sg.float64, requires_grad=True)
    b = sg.tensor(rng.standard_normal((3,)), dtype=sg.float64, requires_grad=True)
    assert sg.autograd.gradgradcheck(lambda x, y: (x @ y).tanh(), (a, b))
    assert sg.autograd.gradgradcheck(lambda x, y: sg.einsum("ij,j->i", x.exp(), y), (a, b))


def _has_float64(device: str) -> bool:
    from smolgrad.arrays import get_backend

    return get_backend(device).has_float64
