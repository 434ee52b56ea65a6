"""`sg.amp.GradScaler` against `torch.amp.GradScaler("cpu")`: the same iterations, with
overflowing gradients on some of them, give the same parameters, scales, growth trackers,
skipped steps and state dicts; misuse fails in both."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import smolgrad as sg

# inf/NaN losses are the point here: NumPy's overflow warnings are expected
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

W = np.array([[0.5, -0.25, 0.125], [0.75, 0.5, -1.0]], dtype=np.float32)
B = np.array([0.1, -0.2], dtype=np.float32)
X = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0], [0.0, 1.0, 1.0], [-1.0, 0.25, 0.5]],
             dtype=np.float32)
Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, -1.0]], dtype=np.float32)


def _pair(lib, **scaler_kwargs):
    """A Linear(3, 2) with fixed weights, SGD with momentum, and a "cpu" GradScaler."""
    model = lib.nn.Linear(3, 2)
    with lib.no_grad():
        model.weight.copy_(lib.tensor(W))
        model.bias.copy_(lib.tensor(B))
    optimizer = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = lib.amp.GradScaler("cpu", **scaler_kwargs)
    return model, optimizer, scaler


def _iteration(lib, model, optimizer, scaler, overflow: bool, clip: bool = False) -> None:
    """One training step; `overflow` makes the loss (so every gradient) inf."""
    optimizer.zero_grad()
    output = model(lib.tensor(X))
    loss = ((output - lib.tensor(Y)) ** 2).mean()
    if overflow:
        loss = loss * float("inf")
    scaler.scale(loss).backward()
    if clip:
        scaler.unscale_(optimizer)
        lib.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    scaler.step(optimizer)
    scaler.update()


def _numbers(model) -> list:
    return [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("clip", [False, True])
def test_matches_torch_over_iterations_with_overflows(clip):
    kwargs = dict(init_scale=2.0**10, growth_factor=4.0, backoff_factor=0.25, growth_interval=3)
    ours, theirs = _pair(sg, **kwargs), _pair(torch, **kwargs)
    overflows = [False, True, False, False, False, True, True, False, False, False, False]
    for step, overflow in enumerate(overflows):
        before = _numbers(ours[0])
        _iteration(sg, *ours, overflow, clip)
        _iteration(torch, *theirs, overflow, clip)
        unchanged = all((a == b).all() for a, b in zip(before, _numbers(ours[0])))
        assert unchanged == overflow, step  # a step is skipped exactly on overflow
        assert ours[2].get_scale() == theirs[2].get_scale(), step
        assert ours[2]._get_growth_tracker() == theirs[2]._get_growth_tracker(), step
        for mine, real in zip(_numbers(ours[0]), _numbers(theirs[0])):
            np.testing.assert_allclose(mine, real, rtol=1e-5, atol=1e-6)
    assert ours[2].state_dict() == theirs[2].state_dict()
    assert ours[2].get_scale() != 2.0**10  # it did move


def test_gradients_after_unscale_are_the_true_gradients():
    ours, theirs = _pair(sg), _pair(torch)
    for lib, (model, optimizer, scaler) in ((sg, ours), (torch, theirs)):
        loss = ((model(lib.tensor(X)) - lib.tensor(Y)) ** 2).mean()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    for mine, real in zip(ours[0].parameters(), theirs[0].parameters()):
        np.testing.assert_allclose(mine.grad.numpy(), real.grad.numpy(), rtol=1e-6)
    assert ours[2].get_scale() == theirs[2].get_scale() == 2.0**16


def test_nan_gradient_skips_the_step_and_backs_off():
    for lib in (sg, torch):
        model, optimizer, scaler = _pair(lib)
        loss = ((model(lib.tensor(X)) - lib.tensor(Y)) ** 2).mean() * float("nan")
        scaler.scale(loss).backward()
        before = _numbers(model)
        assert scaler.step(optimizer) is None
        scaler.update()
        assert all((a == b).all() for a, b in zip(before, _numbers(model))), lib.__name__
        assert scaler.get_scale() == 2.0**15


def test_scale_keeps_the_nesting_of_outputs():
    scaler = sg.amp.GradScaler("cpu", init_scale=8.0)
    a, b, c = sg.tensor(1.0), sg.tensor([2.0]), sg.tensor(3.0)
    scaled = scaler.scale([a, (b, c)])
    their = torch.amp.GradScaler("cpu", init_scale=8.0).scale(
        [torch.tensor(1.0), (torch.tensor([2.0]), torch.tensor(3.0))])
    assert type(scaled) is list and type(scaled[1]) is tuple
    assert [scaled[0].item(), scaled[1][0].tolist(), scaled[1][1].item()] == \
        [their[0].item(), their[1][0].tolist(), their[1][1].item()]
    with pytest.raises(ValueError, match="GradScaler.scale: outputs must be a Tensor"):
        scaler.scale("loss")


def test_state_dict_round_trip_and_empty_state_dict():
    ours, theirs = _pair(sg, growth_interval=2), _pair(torch, growth_interval=2)
    for _ in range(3):
        _iteration(sg, *ours, overflow=False)
        _iteration(torch, *theirs, overflow=False)
    assert ours[2].state_dict() == theirs[2].state_dict()
    fresh = sg.amp.GradScaler("cpu")
    fresh.load_state_dict(ours[2].state_dict())
    assert fresh.state_dict() == ours[2].state_dict()
    for lib in (sg, torch):
        with pytest.raises(RuntimeError):
            lib.amp.GradScaler("cpu").load_state_dict({})


def _scaled_backward(lib, model, scaler):
    loss = ((model(lib.tensor(X)) - lib.tensor(Y)) ** 2).mean()
    scaler.scale(loss).backward()


@pytest.mark.parametrize("misuse", ["unscale_twice", "step_twice", "unscale_after_step",
                                    "update_before_step", "step_without_scale"])
def test_misuse_raises_in_both(misuse):
    for lib in (sg, torch):
        model, optimizer, scaler = _pair(lib)
        if misuse != "step_without_scale":
            _scaled_backward(lib, model, scaler)
        with pytest.raises((RuntimeError, AssertionError)) as error:
            if misuse == "unscale_twice":
                scaler.unscale_(optimizer)
                scaler.unscale_(optimizer)
            elif misuse == "step_twice":
                scaler.step(optimizer)
                scaler.step(optimizer)
            elif misuse == "unscale_after_step":
                scaler.step(optimizer)
                scaler.unscale_(optimizer)
            elif misuse == "update_before_step":
                scaler.update()
            else:
                scaler.step(optimizer)
        if lib is sg:
            assert "GradScaler." in str(error.value)


def test_closure_is_refused_when_enabled():
    for lib in (sg, torch):
        model, optimizer, scaler = _pair(lib)
        _scaled_backward(lib, model, scaler)
        with pytest.raises(RuntimeError, match="losure"):
            scaler.step(optimizer, closure=lambda: None)


def test_float16_gradients_are_refused():
    for lib in (sg, torch):
        param = lib.nn.Parameter(lib.ones(2, dtype=lib.float16))
        optimizer = lib.optim.SGD([param], lr=0.1)
        scaler = lib.amp.GradScaler("cpu")
        scaler.scale((param.float() * 2).sum()).backward()
        with pytest.raises(ValueError, match="(?i)unscale fp16|unscale float16"):
            scaler.unscale_(optimizer)


def test_update_with_new_scale():
    for lib in (sg, torch):
        model, optimizer, scaler = _pair(lib)
        _scaled_backward(lib, model, scaler)
        scaler.step(optimizer)
        scaler.update(128.0)
        assert scaler.get_scale() == 128.0
        _scaled_backward(lib, model, scaler)
        scaler.step(optimizer)
        scaler.update(lib.tensor(64.0))
        assert scaler.get_scale() == 64.0


def test_cuda_scaler_without_cuda_is_disabled_like_torch():
    if sg.cuda.is_available():
        pytest.skip("a GPU is present: the cuda GradScaler is enabled here")
    for lib in (sg, torch):
        with pytest.warns(UserWarning, match="CUDA is not available"):
            scaler = lib.amp.GradScaler()  # device "cuda" by default
        assert not scaler.is_enabled()
        loss = lib.tensor(2.0)
        assert scaler.scale(loss) is loss
        assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}
        model, optimizer, _ = _pair(lib)
        _scaled_backward(lib, model, scaler)
        before = _numbers(model)
        scaler.step(optimizer)  # a plain optimizer step
        scaler.update()
        assert any((a != b).any() for a, b in zip(before, _numbers(model)))


def test_deprecated_cuda_amp_names_warn_like_torch():
    for lib in (sg, torch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lib.cuda.amp.GradScaler(enabled=False)
            lib.cuda.amp.autocast(enabled=False)
        categories = [w.category for w in caught]
        assert categories.count(FutureWarning) == 2, lib.__name__


def test_growth_that_would_overflow_is_not_taken():
    for lib in (sg, torch):
        model, optimizer, scaler = _pair(lib, init_scale=2.0**127, growth_interval=1)
        loss = (model(lib.tensor(X)) ** 2).mean() * 1e-30  # scaled, still finite
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        assert scaler.get_scale() == 2.0**127 and math.isfinite(scaler.get_scale())
        assert scaler._get_growth_tracker() == 0


def test_bad_factors_are_refused():
    with pytest.raises(ValueError, match="growth_factor must be > 1.0"):
        sg.amp.GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(ValueError, match="backoff_factor must be < 1.0"):
        sg.amp.GradScaler("cpu", backoff_factor=1.5)
