"""Learning-rate schedulers against PyTorch: the lrs (and cycled momenta) of every step."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import smolgrad as sg
import smolgrad.optim as optim
from smolgrad.io import load, save
from smolgrad.optim import lr_scheduler as sched

STEPS = 25


def _optimizers(device, name="SGD", **kwargs):
    """Two-group optimizers (lrs 0.1 and 0.02) in smolgrad and torch."""
    kwargs = kwargs or {"momentum": 0.9}
    sg_params = [{"params": [sg.zeros(2, device=device, requires_grad=True)]},
                 {"params": [sg.zeros(3, device=device, requires_grad=True)], "lr": 0.02}]
    t_params = [{"params": [torch.zeros(2, requires_grad=True)]},
                {"params": [torch.zeros(3, requires_grad=True)], "lr": 0.02}]
    return (getattr(optim, name)(sg_params, lr=0.1, **kwargs),
            getattr(torch.optim, name)(t_params, lr=0.1, **kwargs))


def _make(lib, opt, kind):
    """The same scheduler set-up in either library (`lib` is smolgrad.optim or torch.optim)."""
    S = lib.lr_scheduler
    if kind == "step":
        return S.StepLR(opt, step_size=4, gamma=0.5)
    if kind == "multistep":
        return S.MultiStepLR(opt, milestones=[3, 7, 7, 12], gamma=0.3)
    if kind == "exponential":
        return S.ExponentialLR(opt, gamma=0.9)
    if kind == "cosine":
        return S.CosineAnnealingLR(opt, T_max=8, eta_min=0.001)
    if kind == "linear":
        return S.LinearLR(opt, start_factor=0.2, end_factor=0.9, total_iters=6)
    if kind == "lambda":
        return S.LambdaLR(opt, lr_lambda=[lambda e: 0.95 ** e, lambda e: 1 / (1 + e)])
    if kind == "constant":
        return S.ConstantLR(opt, factor=0.5, total_iters=4)
    if kind == "polynomial":
        return S.PolynomialLR(opt, total_iters=10, power=2.0)
    if kind == "onecycle":
        return S.OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=STEPS + 1)
    if kind == "onecycle_linear_3phase":
        return S.OneCycleLR(opt, max_lr=0.8, epochs=2, steps_per_epoch=13,
                            anneal_strategy="linear", three_phase=True, pct_start=0.25)
    if kind == "sequential":
        warm = S.LinearLR(opt, start_factor=0.1, total_iters=5)
        cos = S.CosineAnnealingLR(opt, T_max=15)
        return S.SequentialLR(opt, schedulers=[warm, cos], milestones=[5])
    if kind == "sequential3":
        a = S.ConstantLR(opt, factor=0.5, total_iters=3)
        b = S.ExponentialLR(opt, gamma=0.8)
        c = S.StepLR(opt, step_size=3, gamma=0.5)
        return S.SequentialLR(opt, schedulers=[a, b, c], milestones=[4, 10])
    if kind == "multiplicative":
        return S.MultiplicativeLR(opt, lr_lambda=lambda e: 0.9 if e % 2 else 1.05)
    if kind == "warm_restarts":
        return S.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=2, eta_min=0.01)
    if kind == "warm_restarts_1":
        return S.CosineAnnealingWarmRestarts(opt, T_0=6)
    if kind == "chained":
        return S.ChainedScheduler([S.LinearLR(opt, start_factor=0.25, total_iters=4),
                                   S.ExponentialLR(opt, gamma=0.9)])
    raise ValueError(kind)


KINDS = ["step", "multistep", "exponential", "cosine", "linear", "lambda", "constant",
         "polynomial", "onecycle", "onecycle_linear_3phase", "sequential", "sequential3",
         "multiplicative", "warm_restarts", "warm_restarts_1", "chained"]


def _assert_same(sg_opt, t_opt, sg_s, t_s, where):
    assert sg_s.get_last_lr() == pytest.approx(t_s.get_last_lr(), rel=1e-12, abs=1e-15), where
    for sg_group, t_group in zip(sg_opt.param_groups, t_opt.param_groups):
        assert sg_group["lr"] == pytest.approx(t_group["lr"], rel=1e-12, abs=1e-15), where
        for key in ("momentum", "betas"):
            if key in t_group:
                assert sg_group[key] == pytest.approx(t_group[key], rel=1e-12), (where, key)
    if hasattr(t_s, "last_epoch"):  # ChainedScheduler has none
        assert sg_s.last_epoch == t_s.last_epoch, where


@pytest.mark.parametrize("kind", KINDS)
def test_lrs_match_torch(device, kind):
    sg_opt, t_opt = _optimizers(device)
    sg_s, t_s = _make(optim, sg_opt, kind), _make(torch.optim, t_opt, kind)
    _assert_same(sg_opt, t_opt, sg_s, t_s, "after construction")
    for step in range(STEPS):
        sg_opt.step()
        t_opt.step()
        sg_s.step()
        t_s.step()
        _assert_same(sg_opt, t_opt, sg_s, t_s, f"step {step + 1}")


def test_onecycle_cycles_adam_beta1(device):
    sg_opt, t_opt = _optimizers(device, "Adam", betas=(0.9, 0.99))
    sg_s = sched.OneCycleLR(sg_opt, max_lr=0.3, total_steps=20, base_momentum=0.8)
    t_s = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=0.3, total_steps=20,
                                              base_momentum=0.8)
    for step in range(19):
        t_opt.step()
        sg_s.step()
        t_s.step()
        _assert_same(sg_opt, t_opt, sg_s, t_s, f"step {step + 1}")
    assert sg_opt.param_groups[0]["betas"][1] == 0.99
    sg_s.step()
    with pytest.raises(ValueError, match="Tried to step 21 times"):
        sg_s.step()


@pytest.mark.parametrize("kind", ["step", "multistep", "cosine", "lambda", "onecycle",
                                  "sequential", "sequential3", "warm_restarts", "chained"])
def test_state_dict_round_trip_resumes(device, kind, tmp_path):
    """Save optimizer + scheduler after 7 steps; fresh ones loaded from the file continue
    exactly like the uninterrupted run."""
    sg_opt, t_opt = _optimizers(device)
    sg_s, t_s = _make(optim, sg_opt, kind), _make(torch.optim, t_opt, kind)
    for _ in range(7):
        sg_opt.step()
        sg_s.step()
        t_opt.step()
        t_s.step()
    save({"optimizer": sg_opt.state_dict(), "scheduler": sg_s.state_dict()},
         tmp_path / "ckpt.safetensors")
    checkpoint = load(tmp_path / "ckpt.safetensors")
    fresh_opt, _ = _optimizers(device)
    fresh_s = _make(optim, fresh_opt, kind)
    fresh_opt.load_state_dict(checkpoint["optimizer"])
    fresh_s.load_state_dict(checkpoint["scheduler"])
    assert fresh_s.get_last_lr() == pytest.approx(t_s.get_last_lr(), rel=1e-12)
    for step in range(8, STEPS):
        fresh_opt.step()
        fresh_s.step()
        t_opt.step()
        t_s.step()
        _assert_same(fresh_opt, t_opt, fresh_s, t_s, f"resumed step {step}")


def test_state_dict_contents(device):
    sg_opt, _ = _optimizers(device)
    s = sched.LambdaLR(sg_opt, lr_lambda=lambda e: 0.5 ** e)
    state = s.state_dict()
    assert "optimizer" not in state
    assert state["lr_lambdas"] == [None, None]
    assert state["base_lrs"] == [0.1, 0.02]
    assert state["last_epoch"] == 0
    assert sg_opt.param_groups[0]["initial_lr"] == 0.1


@pytest.mark.parametrize("kind", ["exponential", "cosine", "linear", "polynomial"])
def test_resume_with_last_epoch(device, kind):
    """Building a scheduler with last_epoch=k (groups holding initial_lr) matches torch."""
    sg_opt, t_opt = _optimizers(device)
    for opt in (sg_opt, t_opt):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    S, T = sched, torch.optim.lr_scheduler
    args = {"exponential": ("ExponentialLR", dict(gamma=0.9)),
            "cosine": ("CosineAnnealingLR", dict(T_max=10)),
            "linear": ("LinearLR", dict(start_factor=0.5, total_iters=8)),
            "polynomial": ("PolynomialLR", dict(total_iters=12))}[kind]
    sg_s = getattr(S, args[0])(sg_opt, last_epoch=4, **args[1])
    t_s = getattr(T, args[0])(t_opt, last_epoch=4, **args[1])
    _assert_same(sg_opt, t_opt, sg_s, t_s, "after construction")
    for step in range(10):
        t_opt.step()
        sg_s.step()
        t_s.step()
        _assert_same(sg_opt, t_opt, sg_s, t_s, f"step {step}")


def test_resume_without_initial_lr_raises(device):
    sg_opt, _ = _optimizers(device)
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(sg_opt, step_size=2, last_epoch=3)


@pytest.mark.parametrize("kind", ["step", "multistep", "exponential", "cosine", "linear",
                                  "warm_restarts", "warm_restarts_1"])
def test_step_with_epoch_uses_closed_form(device, kind):
    sg_opt, t_opt = _optimizers(device)
    sg_s, t_s = _make(optim, sg_opt, kind), _make(torch.optim, t_opt, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (3, 9, 4, 16):
            sg_s.step(epoch)
            t_s.step(epoch)
            _assert_same(sg_opt, t_opt, sg_s, t_s, f"epoch {epoch}")


def test_scheduler_drives_training(device):
    """The lr the optimizer uses is the scheduled one."""
    w = sg.tensor([1.0], device=device, requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    s = sched.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        opt.zero_grad()
        w.sum().backward()  # gradient 1
        opt.step()
        s.step()
    assert w.item() == pytest.approx(1.0 - (1.0 + 0.5 + 0.25))
    assert s.get_last_lr() == [0.125]


def test_errors(device):
    sg_opt, _ = _optimizers(device)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        sched.StepLR("not an optimizer", step_size=1)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        sched.LambdaLR(sg_opt, lr_lambda=[lambda e: 1.0])
    with pytest.raises(ValueError, match="total_steps"):
        sched.OneCycleLR(sg_opt, max_lr=1.0)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        sched.LinearLR(sg_opt, start_factor=0)
    with pytest.raises(ValueError, match="one more than the number of milestone"):
        a = sched.ExponentialLR(sg_opt, gamma=0.9)
        sched.SequentialLR(sg_opt, schedulers=[a], milestones=[3])
    no_momentum = optim.Adagrad([sg.zeros(1, device=device, requires_grad=True)])
    with pytest.raises(ValueError, match="momentum or beta1"):
        sched.OneCycleLR(no_momentum, max_lr=1.0, total_steps=10)
    assert math.isfinite(sg_opt.param_groups[0]["lr"])


@pytest.mark.parametrize("kwargs", [dict(), dict(mode="max", factor=0.5, patience=2),
                                    dict(patience=1, cooldown=2, threshold_mode="abs",
                                         threshold=0.05, min_lr=[0.01, 0.005])])
def test_reduce_lr_on_plateau(device, kwargs):
    sg_opt, t_opt = _optimizers(device)
    sg_s = sched.ReduceLROnPlateau(sg_opt, **kwargs)
    t_s = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kwargs)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.89, 0.97, 0.99, 0.99, 1.0, 0.5, 0.6] * 3
    for i, metric in enumerate(metrics):
        t_opt.step()
        sg_s.step(metric)
        t_s.step(metric)
        _assert_same(sg_opt, t_opt, sg_s, t_s, f"epoch {i}")
    assert sg_s.num_bad_epochs == t_s.num_bad_epochs and sg_s.best == t_s.best
