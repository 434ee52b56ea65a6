"""Edge values where a gradient (or an error) is a matter of convention: PyTorch's.

0⁰ in pow, variances with no degrees of freedom, NaN through relu / maximum / minimum /
clamp / max, binary cross-entropy's input check and target gradient at 0 and 1, kl_div's
target gradient at 0. Each case runs the same values through smolgrad and PyTorch and
compares the values and every gradient, infinities and NaNs included.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import assert_close

import smolgrad as sg
import smolgrad.nn.functional as F

NAN, INF = math.nan, math.inf


def _compare(fn, values, device, torch_fn=None):
    """fn(*tensors) in both libraries from the same lists of values; its output (summed
    for the backward) and the gradient of every input must be PyTorch's exactly, with
    NaN and ±inf in the same places."""
    ours = [sg.tensor(v, device=device, requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    out, ref = fn(*ours), (torch_fn or fn)(*theirs)
    assert_close(out.detach(), ref, what="value")
    out.sum().backward()
    ref.sum().backward()
    for i, (x, t) in enumerate(zip(ours, theirs)):
        assert_close(x.grad, t.grad, what=f"gradient of input {i}")


# -- pow --------------------------------------------------------------------------------

def test_pow_tensor_exponent_at_zero_to_the_zero(device):
    """d(x^y)/dx at 0⁰ is 0 in PyTorch (x⁰ is constant); y · x^(y-1) gives 0 · inf = NaN."""
    base = [0.0, 0.0, 0.0, 2.0, -1.0, 0.0]
    exponent = [0.0, 1.0, -1.0, 0.0, 2.0, 0.5]
    _compare(lambda x, y: x ** y, [base, exponent], device)


def test_pow_number_exponents_at_zero(device):
    _compare(lambda x: x ** 0.0 + x ** 0.5 + x ** 2, [[0.0, 1.0, 4.0]], device)


def test_pow_number_base(device):
    _compare(lambda y: 0.0 ** y + 2.0 ** y, [[0.0, 1.0, -1.0]], device)


# -- var / std with correction >= n ----------------------------------------------------

@pytest.mark.parametrize("correction", [2, 3], ids=lambda c: f"correction={c}")
@pytest.mark.parametrize("name", ["var", "std"])
def test_no_degrees_of_freedom_over_all_elements(name, correction, device):
    """var over all elements with correction >= n is inf; its gradient is inf (NaN where
    x is the mean), as PyTorch's."""
    _compare(lambda x: getattr(x, name)(correction=correction), [[1.0, 2.0]], device)
    _compare(lambda x: getattr(x, name)(correction=correction), [[3.0, 3.0]], device)


@pytest.mark.parametrize("correction", [2, 3], ids=lambda c: f"correction={c}")
@pytest.mark.parametrize("name", ["var", "std"])
def test_no_degrees_of_freedom_over_a_dim(name, correction, device):
    """Over a given dim PyTorch's gradient is 2 (x - mean) / (n - correction) as written:
    ±inf at n = correction, finite (negative scale) past it."""
    _compare(lambda x: getattr(x, name)(1, correction=correction),
             [[[1.0, 2.0], [3.0, 3.0]]], device)


def test_var_of_one_element(device):
    _compare(lambda x: x.var(), [[5.0]], device)
    _compare(lambda x: x.var(correction=0) + x.std(0, correction=0), [[5.0]], device)


# -- NaN through relu, maximum, minimum, clamp, max ------------------------------------

def test_relu_passes_the_gradient_at_nan(device):
    _compare(lambda x: x.relu(), [[NAN, 1.0, -1.0, 0.0]], device)


def test_relu_double_backward_at_nan(device):
    def first_grad(lib, x):
        (g,) = lib.autograd.grad(x.relu().sum(), x, create_graph=True)
        return g

    x = sg.tensor([NAN, 1.0, -1.0], device=device, requires_grad=True)
    t = torch.tensor([NAN, 1.0, -1.0], requires_grad=True)
    assert_close(first_grad(sg, x).detach(), first_grad(torch, t), what="gradient")


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_with_nan(name, device):
    """A NaN on either side: PyTorch gives both inputs the whole gradient."""
    x = [NAN, 1.0, NAN, 2.0, 3.0]
    y = [0.0, NAN, NAN, 2.0, 1.0]
    _compare(lambda a, b: getattr(a, name)(b), [x, y], device)


def test_maximum_with_a_number(device):
    _compare(lambda a: a.maximum(sg.tensor(0.0, device=device))
             if isinstance(a, sg.Tensor) else a.maximum(torch.tensor(0.0)),
             [[NAN, -1.0, 0.0, 2.0]], device)


def test_clamp_with_nan(device):
    _compare(lambda x: x.clamp(0.0, 2.0) + x.clamp(min=0.0) + x.clamp(max=2.0),
             [[NAN, 1.0, 5.0, -1.0]], device)
    _compare(lambda x, lo, hi: x.clamp(lo, hi),
             [[NAN, 1.0, 5.0], [0.0, NAN, 0.0], [2.0, 2.0, NAN]], device)


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin"])
def test_max_over_all_elements_with_nan(name, device):
    """max()/min() send a NaN result's gradient to the NaN entries; amax/amin's is NaN."""
    _compare(lambda x: getattr(x, name)(), [[NAN, 1.0, 5.0, NAN]], device)


# -- binary cross-entropy and kl_div ---------------------------------------------------

def test_binary_cross_entropy_rejects_nan_input(device):
    x = sg.tensor([NAN, 0.5], device=device)
    y = sg.tensor([1.0, 0.0], device=device)
    with pytest.raises(RuntimeError) as ours:
        F.binary_cross_entropy(x, y)
    with pytest.raises(RuntimeError) as theirs:
        TF.binary_cross_entropy(torch.tensor([NAN, 0.5]), torch.tensor([1.0, 0.0]))
    assert str(theirs.value) in str(ours.value)


def test_binary_cross_entropy_target_gradient_at_zero_and_one(device):
    """d/dy at input 0 or 1 is ±inf in PyTorch (log 0 is not clamped there)."""
    x = [0.3, 0.3, 0.0, 1.0, 0.0, 1.0, 0.5]
    y = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.5]
    _compare(lambda a, b: F.binary_cross_entropy(a, b, reduction="none"), [x, y], device,
             torch_fn=lambda a, b: TF.binary_cross_entropy(a, b, reduction="none"))


def test_kl_div_target_gradient_at_zero(device):
    """d/dy of y log y at y = 0 is NaN in PyTorch (log 0 + 1); a negative target is NaN."""
    x = [-1.0, -2.0, -0.5, -3.0, -1.0]
    y = [0.0, 0.5, 1.0, 0.0, -1.0]
    _compare(lambda a, b: F.kl_div(a, b, reduction="none"), [x, y], device,
             torch_fn=lambda a, b: TF.kl_div(a, b, reduction="none"))
    y_log = [-INF, -0.7, 0.0, -1.0, -2.0]
    _compare(lambda a, b: F.kl_div(a, b, reduction="none", log_target=True), [x, y_log],
             device,
             torch_fn=lambda a, b: TF.kl_div(a, b, reduction="none", log_target=True))


def test_log_of_zero_and_negatives_is_silent_as_pytorch(device):
    # IEEE answers (-inf, NaN) without NumPy's "divide by zero encountered in log" warning
    import warnings

    x = sg.tensor([0.0, -1.0, 4.0], device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = [x.log().tolist(), x.log2().tolist(), x.log10().tolist()]
    want = [torch.tensor([0.0, -1.0, 4.0]).log().tolist(),
            torch.tensor([0.0, -1.0, 4.0]).log2().tolist(),
            torch.tensor([0.0, -1.0, 4.0]).log10().tolist()]
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-6)
