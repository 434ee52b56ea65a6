"""Loss functions against PyTorch: every reduction, weights, ignore_index, label smoothing,
class-probability targets, extra dims, stability for huge logits, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import Arr, assert_close, check_op

import smolgrad as sg
import smolgrad.nn.functional as F

REDUCTIONS = ["mean", "sum", "none"]


def _fns(name, **kw):
    return (lambda *a: getattr(F, name)(*a, **kw)), (lambda *a: getattr(TF, name)(*a, **kw))


def _targets(shape, classes, ignore=None, seed=0):
    t = np.random.default_rng(seed).integers(0, classes, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


def _class_weight(c, seed=1):
    return Arr(np.random.default_rng(seed).uniform(0.5, 2.0, c).astype(np.float32))


# ---------------------------------------------------------------------------------------
# cross_entropy and nll_loss
# ---------------------------------------------------------------------------------------

# (input shape, target shape): (N, C), extra dims (N, C, d1, d2), unbatched (C,)
CE_SHAPES = [((6, 5), (6,)), ((2, 4, 3, 2), (2, 3, 2)), ((5,), ())]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("ignore", [None, 1])
@pytest.mark.parametrize("shapes", CE_SHAPES, ids=str)
def test_cross_entropy_class_indices(shapes, ignore, smoothing, weighted, reduction, device):
    x_shape, t_shape = shapes
    c = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    if ignore is not None and t_shape == ():
        ignore = None  # a single target that is ignored makes the mean 0 / 0 in both
    target = Arr(_targets(t_shape, c, ignore))
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    if ignore is not None:
        kw["ignore_index"] = ignore
    specs = (x_shape, target) + ((_class_weight(c),) if weighted else ())
    fn, tfn = _fns("cross_entropy", **kw)
    check_op(fn, *specs, device=device, torch_fn=tfn, low=-3, high=3,
             gradcheck=(reduction == "mean" and len(x_shape) == 2))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("x_shape", [(4, 5), (2, 3, 2, 2), (5,)], ids=str)
def test_cross_entropy_class_probabilities(x_shape, smoothing, weighted, reduction, device):
    """Soft targets: gradients flow to the target too, as in PyTorch."""
    c = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    rng = np.random.default_rng(2)
    probs = rng.uniform(0.1, 1.0, x_shape).astype(np.float32)
    probs /= probs.sum(axis=0 if len(x_shape) == 1 else 1, keepdims=True)
    specs = (x_shape, probs) + ((_class_weight(c),) if weighted else ())
    fn, tfn = _fns("cross_entropy", reduction=reduction, label_smoothing=smoothing)
    check_op(fn, *specs, device=device, torch_fn=tfn, gradcheck=(reduction == "sum"))


def test_cross_entropy_all_ignored_mean_is_nan(device):
    x = sg.zeros(3, 4, device=device)
    t = sg.tensor([-100, -100, -100], device=device)
    assert np.isnan(F.cross_entropy(x, t).item())
    assert np.isnan(TF.cross_entropy(torch.zeros(3, 4), torch.tensor([-100] * 3)).item())


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_stable_for_huge_logits(smoothing, device):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [3e4, 3e4, -3e4]], np.float32)
    t = np.array([1, 2, 0])
    xs = sg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ls = F.cross_entropy(xs, sg.tensor(t, device=device), label_smoothing=smoothing)
    lt = TF.cross_entropy(xt, torch.tensor(t), label_smoothing=smoothing)
    assert np.isfinite(ls.item())
    ls.backward()
    lt.backward()
    assert_close(ls, lt, rtol=1e-5)
    assert_close(xs.grad, xt.grad)
    assert np.isfinite(xs.grad.numpy()).all()


def test_cross_entropy_fused_gradient_matches_composition(device):
    """The fused CrossEntropy op against log_softmax + indexing, weights and smoothing on."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    t = np.array([0, 4, 2, -100, 1, 3])
    w = rng.uniform(0.5, 2, 5).astype(np.float32)
    eps = 0.1
    a = sg.tensor(x, device=device, requires_grad=True)
    b = sg.tensor(x, device=device, requires_grad=True)
    ws = sg.tensor(w, device=device)
    F.cross_entropy(a, sg.tensor(t, device=device), weight=ws, label_smoothing=eps).backward()
    logp = b.log_softmax(dim=1)
    keep = t != -100
    rows, tk = np.arange(6)[keep], t[keep]
    wt = ws[sg.tensor(tk, device=device)]
    nll = -(logp[sg.tensor(rows, device=device), sg.tensor(tk, device=device)] * wt)
    smooth = -(logp[sg.tensor(rows, device=device)] * ws).sum(dim=1) / 5
    ((1 - eps) * nll + eps * smooth).sum().div(wt.sum()).backward()
    assert_close(a.grad, b.grad, atol=1e-6)


def test_cross_entropy_double_backward():
    """Fused op: logp is recomputed with Tensor ops under create_graph."""
    rng = np.random.default_rng(4)
    x = sg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    t = sg.tensor([0, 3, 1])
    w = sg.tensor(rng.uniform(0.5, 2, 4))
    assert sg.autograd.gradgradcheck(
        lambda a: F.cross_entropy(a, t, weight=w, label_smoothing=0.2), (x,))
    assert sg.autograd.gradgradcheck(
        lambda a: F.cross_entropy(a, t, reduction="none", ignore_index=3), (x,))


def test_cross_entropy_errors_name_the_problem():
    x = sg.zeros(3, 5)
    with pytest.raises(IndexError, match=r"cross_entropy: target 7 is out of bounds for 5 "
                                         r"classes .*\(3, 5\)"):
        F.cross_entropy(x, sg.tensor([0, 7, 1]))
    with pytest.raises(IndexError, match="target -2 is out of bounds"):
        F.cross_entropy(x, sg.tensor([0, -2, 1]))
    with pytest.raises(RuntimeError, match=r"expected target of shape \(3,\) .* got \(4,\)"):
        F.cross_entropy(x, sg.tensor([0, 1, 1, 2]))
    with pytest.raises(RuntimeError, match="must be an integer"):
        F.cross_entropy(x, sg.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(RuntimeError, match=r"weight must have shape \(5,\)"):
        F.cross_entropy(x, sg.tensor([0, 1, 1]), weight=sg.ones(4))
    with pytest.raises(ValueError, match="reduction must be"):
        F.cross_entropy(x, sg.tensor([0, 1, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, sg.tensor([0, 1, 1]), label_smoothing=1.5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 2])
@pytest.mark.parametrize("shapes", CE_SHAPES, ids=str)
def test_nll_loss(shapes, ignore, weighted, reduction, device):
    x_shape, t_shape = shapes
    c = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    if ignore is not None and t_shape == ():
        ignore = None
    target = Arr(_targets(t_shape, c, ignore, seed=5))
    kw = dict(reduction=reduction)
    if ignore is not None:
        kw["ignore_index"] = ignore
    specs = (x_shape, target) + ((_class_weight(c),) if weighted else ())
    fn, tfn = _fns("nll_loss", **kw)
    check_op(fn, *specs, device=device, torch_fn=tfn, gradcheck=(len(x_shape) == 2))


def test_nll_loss_target_out_of_range():
    with pytest.raises(IndexError, match="nll_loss: target 3 is out of bounds for 3 classes"):
        F.nll_loss(sg.zeros(2, 3), sg.tensor([0, 3]))


# ---------------------------------------------------------------------------------------
# Regression losses
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kw", [("mse_loss", {}), ("l1_loss", {}),
                                     ("smooth_l1_loss", {}), ("smooth_l1_loss", dict(beta=0.5)),
                                     ("smooth_l1_loss", dict(beta=0.0)), ("huber_loss", {}),
                                     ("huber_loss", dict(delta=0.4))], ids=str)
def test_regression_losses(name, kw, reduction, device):
    fn, tfn = _fns(name, reduction=reduction, **kw)
    check_op(fn, (3, 5), (3, 5), device=device, torch_fn=tfn)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_regression_losses_weighted(name, reduction, device):
    w = Arr(np.random.default_rng(6).uniform(0.1, 2, (3, 5)).astype(np.float32))

    def fn(lib):
        return lambda x, y, w: getattr(lib, name)(x, y, reduction=reduction, weight=w)

    check_op(fn(F), (3, 5), (3, 5), w, device=device, torch_fn=fn(TF))


def test_mse_loss_broadcasts_target_like_torch(device):
    fn, tfn = _fns("mse_loss")
    with pytest.warns(UserWarning):  # torch warns about the size mismatch; smolgrad doesn't
        check_op(fn, (3, 4), (1, 4), device=device, torch_fn=tfn)


def test_legacy_size_average_and_reduce(device):
    fn = lambda x, y: F.mse_loss(x, y, size_average=False)  # noqa: E731
    tfn = lambda x, y: TF.mse_loss(x, y, size_average=False)  # noqa: E731
    check_op(fn, (3, 4), (3, 4), device=device, torch_fn=tfn)


def test_regression_loss_errors():
    with pytest.raises(RuntimeError, match=r"mse_loss: target of shape \(4,\) cannot be "
                                           r"broadcast to input of shape \(3,\)"):
        F.mse_loss(sg.zeros(3), sg.zeros(4))
    with pytest.raises(ValueError, match="reduction must be"):
        F.l1_loss(sg.zeros(3), sg.zeros(3), reduction="max")


# ---------------------------------------------------------------------------------------
# Binary cross-entropy
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(weighted, reduction, device):
    rng = np.random.default_rng(7)
    p = rng.uniform(0.05, 0.95, (4, 3)).astype(np.float32)
    y = rng.uniform(0, 1, (4, 3)).astype(np.float32)
    specs = (p, y) + ((Arr(rng.uniform(0.5, 2, (4, 3)).astype(np.float32)),) if weighted
                      else ())

    def fn(lib):
        return lambda x, t, *w: lib.binary_cross_entropy(x, t, *w, reduction=reduction)

    check_op(fn(F), *specs, device=device, torch_fn=fn(TF), gradcheck=reduction == "sum")


def test_binary_cross_entropy_at_zero_and_one(device):
    """log clamps at -100 (finite loss) and the gradient divides by max(x(1-x), 1e-12)."""
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0], np.float32)
    xs = sg.tensor(p, device=device, requires_grad=True)
    xt = torch.tensor(p, requires_grad=True)
    ls = F.binary_cross_entropy(xs, sg.tensor(y, device=device), reduction="sum")
    lt = TF.binary_cross_entropy(xt, torch.tensor(y), reduction="sum")
    ls.backward()
    lt.backward()
    assert_close(ls, lt)
    assert_close(xs.grad, xt.grad, rtol=1e-5)


def test_binary_cross_entropy_input_range_error():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(sg.tensor([0.5, 1.5]), sg.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target size \(3,\) must be the same as input size"):
        F.binary_cross_entropy(sg.tensor([0.5, 0.5]), sg.tensor([0.0, 1.0, 1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos", [False, True])
def test_bce_with_logits(pos, weighted, reduction, device):
    rng = np.random.default_rng(8)
    y = rng.uniform(0, 1, (4, 3)).astype(np.float32)
    extra = []
    if weighted:
        extra.append(Arr(rng.uniform(0.5, 2, (4, 3)).astype(np.float32)))
    if pos:
        extra.append(Arr(rng.uniform(0.5, 3, (3,)).astype(np.float32)))

    def fn(lib):
        def call(x, t, *rest):
            rest = list(rest)
            w = rest.pop(0) if weighted else None
            pw = rest.pop(0) if pos else None
            return lib.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw,
                                                        reduction=reduction)
        return call

    check_op(fn(F), (4, 3), y, *extra, device=device, torch_fn=fn(TF), low=-4, high=4)


def test_bce_with_logits_stable_and_exact_at_zero(device):
    x = np.array([-1e4, -50.0, 0.0, 0.0, 50.0, 1e4], np.float32)
    y = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0], np.float32)
    xs = sg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ls = F.binary_cross_entropy_with_logits(xs, sg.tensor(y, device=device), reduction="sum")
    lt = TF.binary_cross_entropy_with_logits(xt, torch.tensor(y), reduction="sum")
    ls.backward()
    lt.backward()
    assert_close(ls, lt)
    assert_close(xs.grad, xt.grad)


# ---------------------------------------------------------------------------------------
# KL divergence
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(log_target, reduction, device):
    rng = np.random.default_rng(9)
    logq = np.log(rng.dirichlet(np.ones(5), 4)).astype(np.float32)
    p = rng.dirichlet(np.ones(5), 4).astype(np.float32)
    target = np.log(p).astype(np.float32) if log_target else p
    fn, tfn = _fns("kl_div", reduction=reduction, log_target=log_target)
    check_op(fn, logq, target, device=device, torch_fn=tfn, gradcheck=reduction == "sum")


def test_kl_div_zero_target_contributes_zero(device):
    """y = 0 gives 0 · log 0 = 0 (not NaN) in the value and the input's gradient."""
    rng = np.random.default_rng(10)
    logq = np.log(rng.dirichlet(np.ones(5), 4)).astype(np.float32)
    p = rng.dirichlet(np.ones(5), 4).astype(np.float32)
    p[0, 2] = 0.0
    fn, tfn = _fns("kl_div", reduction="batchmean")
    check_op(fn, logq, Arr(p), device=device, torch_fn=tfn)
