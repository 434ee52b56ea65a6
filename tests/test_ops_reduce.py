"""Reductions against PyTorch: values, gradients (ties included), stability, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import Arr, assert_close, check_op

import smolgrad as sg

# (shape, dim) pairs; every case also runs with keepdim=True
DIM_CASES = [
    ((), None),
    ((5,), 0),
    ((5,), None),
    ((2, 3, 4), None),
    ((2, 3, 4), 1),
    ((2, 3, 4), -1),
    ((2, 3, 4), (0, 2)),
    ((0, 3), 1),
]
NONEMPTY = [c for c in DIM_CASES if 0 not in c[0]]
KEEP = [False, True]


def _call(name, dim, keepdim, **kw):
    """x.name() for a full reduction, x.name(dim, keepdim=...) otherwise (torch's forms)."""
    def fn(x):
        if dim is None:
            return getattr(x, name)(**kw)
        return getattr(x, name)(dim, keepdim=keepdim, **kw)

    return fn


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("shape,dim", DIM_CASES, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean(name, shape, dim, keepdim, device):
    if name == "mean" and 0 in shape:
        # the mean over an empty axis is NaN in both; the gradient has no elements
        check_op(_call(name, dim, keepdim), shape, device=device, gradcheck=False)
        return
    check_op(_call(name, dim, keepdim), shape, device=device)


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("shape,dim", [c for c in DIM_CASES if not isinstance(c[1], tuple)],
                         ids=str)
def test_prod(shape, dim, keepdim, device):
    check_op(_call("prod", dim, keepdim), shape, device=device, low=0.5, high=1.5)


@pytest.mark.parametrize("zeros", [[1], [0, 2], [0, 1, 2]], ids=str)
def test_prod_with_zeros(zeros, device):
    a = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4)).astype(np.float32)
    a[zeros, 1] = 0.0
    a[1, zeros] = 0.0

    def fn(x):
        return x.prod(0), x.prod(1, keepdim=True), x.prod()

    x = sg.tensor(a, device=device, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    for s, t in zip(fn(x), fn(tx)):
        assert_close(s, t)
    sum(o.sum() for o in fn(x)).backward()
    sum(o.sum() for o in fn(tx)).backward()
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("shape,dim", NONEMPTY, ids=str)
@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin(name, shape, dim, keepdim, device):
    if dim is None:
        check_op(lambda x: getattr(x, name)(), shape, device=device)
    else:
        check_op(lambda x: getattr(x, name)(dim, keepdim), shape, device=device)


@pytest.mark.parametrize("name", ["amax", "amin", "max", "min"])
def test_ties_split_like_torch(name, device):
    a = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, -1.0, 5.0]],
                 np.float32)
    data = Arr(a)
    float_in = sg.tensor(a, device=device, requires_grad=True)
    t_in = torch.tensor(a, requires_grad=True)
    forms = [lambda x: getattr(x, name)()]
    if name in ("amax", "amin"):
        forms += [lambda x: getattr(x, name)(1), lambda x: getattr(x, name)(0, keepdim=True),
                  lambda x: getattr(x, name)((0, 1))]
    for form in forms:
        float_in.grad, t_in.grad = None, None
        form(float_in).sum().backward()
        form(t_in).sum().backward()
        assert_close(float_in.grad, t_in.grad, what=f"{name} grad with ties")
    del data


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((2, 3, 4), 1), ((2, 3, 4), -1)], ids=str)
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_dim_values_indices(name, shape, dim, keepdim, device):
    check_op(lambda x: getattr(x, name)(dim, keepdim), shape, device=device)
    check_op(lambda x: getattr(x, name)(dim=dim, keepdim=keepdim).values, shape,
             device=device)
    x = sg.randn(*shape, device=device)
    out = getattr(x, name)(dim, keepdim=keepdim)
    assert out.indices.dtype is sg.int64
    values, indices = out
    assert values.shape == indices.shape


def test_max_dim_ties_gradient_to_one_index(device):
    a = np.array([[3.0, 3.0, 1.0], [0.0, 2.0, 2.0]], np.float32)
    check_op(lambda x: x.max(1).values, Arr(a), device=device, grad=False)
    x = sg.tensor(a, device=device, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    x.max(1).values.sum().backward()
    tx.max(1).values.sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(x.max(1).indices, tx.max(1).indices)


def test_max_min_full_and_elementwise(device):
    check_op(lambda x: x.max(), (3, 4), device=device)
    check_op(lambda x: sg.min(x), (3, 4), device=device, torch_fn=torch.min)
    check_op(lambda x, y: sg.max(x, y), (3, 4), (4,), device=device, torch_fn=torch.max)
    check_op(lambda x, y: x.min(y), (3, 1), (4,), device=device)


def test_reduce_empty_without_identity_raises(device):
    x = sg.zeros(0, 3, device=device)
    for name in ("amax", "max", "amin", "min"):
        with pytest.raises((RuntimeError, IndexError), match=name.lstrip("a") + "|empty"):
            getattr(x, name)()
    assert x.amax(1).shape == (0,)  # reducing a non-empty axis of an empty tensor is fine


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((5,), None), ((2, 3, 4), 1),
                                       ((2, 3, 4), -1), ((2, 3, 4), None), ((), None)],
                         ids=str)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name, shape, dim, keepdim, device):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 3, shape).astype(np.float32)  # ties: the first index wins
    out = getattr(sg.tensor(a, device=device), name)(dim, keepdim=keepdim)
    expected = getattr(torch.tensor(a), name)(dim, keepdim=keepdim)
    assert out.dtype is sg.int64
    assert_close(out, expected)


CORRECTION_CASES = [
    ((5,), None, 1),
    ((2, 3, 4), 1, 1),
    ((2, 3, 4), (0, 2), 0),
    ((2, 3, 4), -1, 2),
    ((2, 3, 4), None, 0),
]


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("shape,dim,correction", CORRECTION_CASES, ids=str)
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std(name, shape, dim, correction, keepdim, device):
    check_op(lambda x: getattr(x, name)(dim, correction=correction, keepdim=keepdim),
             shape, device=device)


def test_var_std_unbiased_and_positional(device):
    check_op(lambda x: x.var(1, unbiased=False), (3, 4), device=device)
    check_op(lambda x: x.std(unbiased=True), (3, 4), device=device)
    check_op(lambda x: x.var(), (6,), device=device)
    check_op(lambda x: sg.var_mean(x, 1), (3, 4), device=device, torch_fn=lambda x:
             torch.var_mean(x, 1))
    check_op(lambda x: sg.std_mean(x, 0, correction=0), (3, 4), device=device,
             torch_fn=lambda x: torch.std_mean(x, 0, correction=0))


def test_var_of_one_element_is_nan_like_torch(device):
    with np.errstate(all="ignore"):
        check_op(lambda x: x.var(), (1,), device=device, grad=False)


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((2, 3, 4), 1), ((2, 3, 4), (0, 2)),
                                       ((2, 3, 4), -1), ((), 0)], ids=str)
def test_logsumexp(shape, dim, keepdim, device):
    check_op(lambda x: x.logsumexp(dim, keepdim=keepdim), shape, device=device)


@pytest.mark.parametrize("shape,dim", [((5,), 0), ((2, 3, 4), 1), ((2, 3, 4), -1),
                                       ((), 0), ((0, 3), 1)], ids=str)
@pytest.mark.parametrize("name", ["cumsum", "softmax", "log_softmax"])
def test_cumsum_softmax_log_softmax(name, shape, dim, device):
    check_op(lambda x: getattr(x, name)(dim), shape, device=device)
    check_op(lambda x: getattr(sg, name)(x, dim=dim), shape, device=device,
             torch_fn=lambda x: getattr(torch, name)(x, dim=dim))


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_stable_for_huge_logits(name, device):
    """Finite, and as exact as float32 allows: the reference is torch in float64 (torch's own
    float32 logsumexp gradient loses ~2e-4 relative at 1e4 by rounding its output first)."""
    a = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4 - 1.0, 3.0]], np.float32)
    x = sg.tensor(a, device=device, requires_grad=True)
    tx = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    out, t_out = getattr(x, name)(1), getattr(tx, name)(1)
    assert np.isfinite(out.detach().numpy()).all()
    assert_close(out, t_out.float())
    up = np.random.default_rng(0).standard_normal(t_out.shape)
    (out * sg.tensor(up, dtype=sg.float32, device=device)).sum().backward()
    (t_out * torch.tensor(up)).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    assert_close(x.grad, tx.grad.float())


def test_logsumexp_row_of_minus_inf(device):
    inf = float("inf")
    a = [[-inf, -inf, -inf], [0.0, -inf, 1.0], [inf, 0.0, 1.0]]
    x = sg.tensor(a, device=device, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    out = x.logsumexp(1)
    assert out[0].item() == -inf
    assert_close(out, tx.logsumexp(1))
    out[1].backward()
    tx.logsumexp(1)[1].backward()
    assert_close(x.grad, tx.grad)
    assert_close(x.log_softmax(1)[1:2], tx.log_softmax(1)[1:2])
    assert_close(x.softmax(1)[1:2], tx.softmax(1)[1:2])


def test_softmax_dtype_argument(device):
    x = sg.tensor([[1.0, 2.0]], device=device)
    assert x.softmax(-1, dtype=sg.float64).dtype is sg.float64
    assert sg.log_softmax(x, 1, dtype=sg.float64).dtype is sg.float64


NORM_CASES = [
    ("fro", None), (2, None), (2, 1), (1, 0), (float("inf"), 1), (float("-inf"), None),
    (3, -1), (0.5, None), (0, 1), ("fro", (0, 1)),
]


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("p,dim", NORM_CASES, ids=str)
def test_norm(p, dim, keepdim, device):
    # p=0 counts non-zeros: its gradient is zero everywhere, also in torch
    check_op(lambda x: x.norm(p, dim, keepdim), (3, 4), device=device, positive=p == 0.5)


def test_norm_at_zero_has_zero_gradient(device):
    x = sg.zeros(3, device=device, requires_grad=True)
    tx = torch.zeros(3, requires_grad=True)
    x.norm().backward()
    tx.norm().backward()
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("keepdim", KEEP)
@pytest.mark.parametrize("shape,dim", [((), None), ((5,), 0), ((2, 3, 4), 1),
                                       ((2, 3, 4), None), ((0, 3), 1), ((0, 3), None)],
                         ids=str)
@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any(name, shape, dim, keepdim, device):
    a = np.random.default_rng(6).uniform(size=shape) > 0.3
    kwargs = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    for arr in (a, a.astype(np.float32)):
        out = getattr(sg.tensor(arr, device=device), name)(**kwargs)
        expected = getattr(torch.tensor(arr), name)(**kwargs)
        assert out.dtype is sg.bool
        assert_close(out, expected)


def test_sum_dtypes_follow_torch(device):
    for data in ([1, 2, 3], [True, False, True], [1.5, 2.0]):
        out = sg.tensor(data, device=device).sum()
        expected = torch.tensor(data).sum()
        assert out.dtype.name == str(expected.dtype).split(".")[-1]
        assert out.item() == expected.item()
    x = sg.tensor([1, 2, 3], device=device)
    assert x.sum(dtype=sg.float32).dtype is sg.float32
    assert x.prod().dtype is sg.int64
    assert x.cumsum(0).dtype is sg.int64
    assert x.float().mean().dtype is sg.float32
    assert x.mean(dtype=sg.float64).dtype is sg.float64
    assert x.amax().dtype is sg.int64


def test_mean_of_int_raises(device):
    with pytest.raises(RuntimeError, match="mean.*int64"):
        sg.tensor([1, 2], device=device).mean()


def test_count_nonzero(device):
    a = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]], np.float32)
    assert_close(sg.tensor(a, device=device).count_nonzero(), torch.tensor(a).count_nonzero())
    assert_close(sg.count_nonzero(sg.tensor(a, device=device), dim=1),
                 torch.count_nonzero(torch.tensor(a), dim=1))


# ---------------------------------------------------------------------------------------
# Second derivatives (create_graph=True) against torch
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "var", "norm",
                                  "prod", "amax", "cumsum"])
def test_second_derivative(name, device):
    forms = {
        "softmax": lambda x: x.softmax(-1),
        "log_softmax": lambda x: x.log_softmax(1),
        "logsumexp": lambda x: x.logsumexp(1),
        "var": lambda x: x.var(0),
        "norm": lambda x: x.norm(dim=1),
        "prod": lambda x: x.prod(1),
        "amax": lambda x: x.amax(1) * x.sum(1),
        "cumsum": lambda x: x.cumsum(1) ** 2,
    }
    a = np.random.default_rng(11).uniform(0.5, 1.5, (3, 4)).astype(np.float32)
    w = np.random.default_rng(12).standard_normal(forms[name](torch.tensor(a)).shape)
    x = sg.tensor(a, device=device, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    sw, tw = sg.tensor(w, dtype=sg.float32, device=device), torch.tensor(w, dtype=torch.float32)
    (g,) = sg.autograd.grad((forms[name](x) * sw).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad((forms[name](tx) * tw).sum(), tx, create_graph=True)
    assert_close(g, tg)
    (gg,) = sg.autograd.grad((g * g.exp()).sum(), x)
    (tgg,) = torch.autograd.grad((tg * tg.exp()).sum(), tx)
    assert_close(gg, tgg, atol=1e-4, rtol=1e-4)


def test_gradgradcheck_softmax_family():
    x = sg.tensor(np.random.default_rng(13).standard_normal((2, 3)), dtype=sg.float64,
                  requires_grad=True)
    for fn in (lambda t: t.softmax(1), lambda t: t.log_softmax(0), lambda t: t.logsumexp(1)):
        assert sg.autograd.gradgradcheck(fn, (x,))


def test_softmax_family_of_int_gives_float(device):
    x = sg.tensor([[1, 2, 3]], device=device)
    tx = torch.tensor([[1.0, 2.0, 3.0]])
    for name in ("softmax", "log_softmax", "logsumexp"):
        out = getattr(x, name)(1)
        assert out.dtype is sg.float32
        assert_close(out, getattr(tx, name)(1))


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, -1])
def test_sort(dim, descending, device):
    check_op(lambda x: x.sort(dim=dim, descending=descending).values, (4, 5), device=device)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    ours = sg.tensor(x, device=device).sort(dim=dim, descending=descending)
    theirs = torch.tensor(x).sort(dim=dim, descending=descending)
    assert ours.indices.tolist() == theirs.indices.tolist()
    assert sg.tensor(x, device=device).argsort(dim=dim, descending=descending).tolist() == \
        theirs.indices.tolist()


@pytest.mark.parametrize("largest", [True, False])
def test_topk(largest, device):
    check_op(lambda x: x.topk(2, dim=1, largest=largest).values, (3, 6), device=device)
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    ours = sg.topk(sg.tensor(x, device=device), 3, largest=largest)
    theirs = torch.topk(torch.tensor(x), 3, largest=largest)
    assert ours.indices.tolist() == theirs.indices.tolist()
    with pytest.raises(RuntimeError, match=r"topk: k \(7\) is out of range"):
        sg.topk(sg.tensor(x, device=device), 7)


KEEPDIMS_OPS = ["sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "prod", "var",
                "std", "logsumexp", "all", "any"]


@pytest.mark.parametrize("form", ["method", "function"])
@pytest.mark.parametrize("name", KEEPDIMS_OPS + ["var_mean", "std_mean"])
def test_keepdims_alias(name, form, device):
    """keepdims= is accepted as PyTorch accepts it (NumPy's spelling of keepdim=)."""
    if form == "method" and name.endswith("_mean"):
        pytest.skip("var_mean / std_mean are functions only, as in PyTorch")
    call = (lambda x: getattr(x, name)(1, keepdims=True)) if form == "method" else (
        lambda x: getattr(sg if isinstance(x, sg.Tensor) else torch, name)(x, 1, keepdims=True))
    check_op(call, (2, 3), device=device, grad=False)


@pytest.mark.parametrize("name", KEEPDIMS_OPS)
def test_keepdim_and_keepdims_together_name_the_op(name, device):
    x = sg.ones(2, 3, device=device)
    with pytest.raises(TypeError, match=rf"^{name}\(\).*keepdim"):
        getattr(x, name)(1, keepdim=True, keepdims=True)


def test_norm_takes_no_keepdims_as_pytorch():
    with pytest.raises(TypeError):
        torch.ones(2).norm(dim=0, keepdims=True)
    with pytest.raises(TypeError, match="keepdims"):
        sg.ones(2).norm(dim=0, keepdims=True)
