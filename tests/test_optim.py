"""Optimizers against PyTorch: 20 steps from the same start on the same loss give the same
parameters, for every optimizer and option combination; plus groups, state dicts, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import assert_close

import smolgrad as sg
import smolgrad.optim as optim
from smolgrad.arrays import get_backend
from smolgrad.io import load, save

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.01, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, amsgrad=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.2, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6, maximize=True)),
]


def _start(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w": rng.standard_normal((4, 3)).astype(np.float32),
        "b": rng.standard_normal((3,)).astype(np.float32),
        "x": rng.standard_normal((8, 4)).astype(np.float32),
        "y": rng.standard_normal((8, 3)).astype(np.float32),
    }


def _loss(w, b, x, y):
    """A small regression loss plus a quartic term, so gradients change every step."""
    pred = x @ w + b
    return ((pred - y) ** 2).mean() + 0.1 * (w ** 4).sum()


class _Pair:
    """The same model in smolgrad and torch, so both can step and be compared."""

    def __init__(self, device, name, kwargs, groups=None, seed=0):
        data = _start(seed)
        self.device = device
        self.sg_w = sg.tensor(data["w"], device=device, requires_grad=True)
        self.sg_b = sg.tensor(data["b"], device=device, requires_grad=True)
        self.sg_x = sg.tensor(data["x"], device=device)
        self.sg_y = sg.tensor(data["y"], device=device)
        self.t_w = torch.tensor(data["w"], requires_grad=True)
        self.t_b = torch.tensor(data["b"], requires_grad=True)
        self.t_x, self.t_y = torch.tensor(data["x"]), torch.tensor(data["y"])
        if groups is None:
            sg_params, t_params = [self.sg_w, self.sg_b], [self.t_w, self.t_b]
        else:
            sg_params = [{"params": [self.sg_w], **groups[0]},
                         {"params": [self.sg_b], **groups[1]}]
            t_params = [{"params": [self.t_w], **groups[0]},
                        {"params": [self.t_b], **groups[1]}]
        self.sg_opt = getattr(optim, name)(sg_params, **kwargs)
        self.t_opt = getattr(torch.optim, name)(t_params, **kwargs)

    def step(self, n=1):
        for _ in range(n):
            self.sg_opt.zero_grad()
            _loss(self.sg_w, self.sg_b, self.sg_x, self.sg_y).backward()
            self.sg_opt.step()
            self.t_opt.zero_grad()
            _loss(self.t_w, self.t_b, self.t_x, self.t_y).backward()
            self.t_opt.step()

    def check(self, what=""):
        assert np.isfinite(self.t_w.detach().numpy()).all(), "diverged: pick a smaller lr"
        assert_close(self.sg_w, self.t_w, atol=2e-5, rtol=2e-4, what=f"w {what}")
        assert_close(self.sg_b, self.t_b, atol=2e-5, rtol=2e-4, what=f"b {what}")


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in
                                                      enumerate(CONFIGS)])
def test_twenty_steps_match_torch(device, name, kwargs):
    pair = _Pair(device, name, kwargs)
    for step in range(4):
        pair.step(5)
        pair.check(f"after {5 * (step + 1)} steps")
    assert pair.sg_w.dtype == sg.float32
    assert pair.sg_w.is_leaf and pair.sg_w.requires_grad


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)),
                                         ("Adam", dict(lr=0.01)),
                                         ("RMSprop", dict(lr=0.01, centered=True)),
                                         ("Adagrad", dict(lr=0.1))])
def test_param_groups_with_different_lrs(device, name, kwargs):
    groups = [{"lr": kwargs["lr"]}, {"lr": kwargs["lr"] * 3, "weight_decay": 0.1}]
    pair = _Pair(device, name, kwargs, groups=groups)
    pair.step(20)
    pair.check()
    assert pair.sg_opt.param_groups[1]["lr"] == pytest.approx(kwargs["lr"] * 3)
    assert pair.sg_opt.param_groups[1]["weight_decay"] == 0.1
    assert pair.sg_opt.param_groups[0]["weight_decay"] == 0


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.01, amsgrad=True)),
                                         ("AdamW", dict(lr=0.01)),
                                         ("RMSprop", dict(lr=0.01, momentum=0.5,
                                                          centered=True)),
                                         ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_state_dict_round_trip_continues_identically(device, name, kwargs, tmp_path):
    pair = _Pair(device, name, kwargs)
    pair.step(10)
    saved = pair.sg_opt.state_dict()
    assert set(saved) == {"state", "param_groups"}
    assert saved["param_groups"][0]["params"] == [0, 1]
    assert set(saved["state"]) == {0, 1}
    assert set(saved["state"][0]) == set(pair.t_opt.state_dict()["state"][0])
    save(saved, tmp_path / "opt.safetensors")  # through the file format too
    saved = load(tmp_path / "opt.safetensors")
    # A fresh optimizer over fresh parameters holding the same values resumes the run.
    w2 = sg.tensor(pair.sg_w.detach().numpy(), device=device, requires_grad=True)
    b2 = sg.tensor(pair.sg_b.detach().numpy(), device=device, requires_grad=True)
    fresh = getattr(optim, name)([w2, b2], lr=123.0)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == kwargs["lr"]
    assert fresh.param_groups[0]["params"][0] is w2
    pair.sg_w, pair.sg_b, pair.sg_opt = w2, b2, fresh
    pair.step(10)
    pair.check("after resuming")


def test_zero_grad(device):
    w = sg.ones(3, device=device, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and w.grad.tolist() == [0.0, 0.0, 0.0]
    (w * 2).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    opt.zero_grad()
    assert w.grad is None


def test_params_without_grad_are_skipped_and_closure(device):
    w = sg.ones(3, device=device, requires_grad=True)
    unused = sg.ones(2, device=device, requires_grad=True)
    opt = optim.Adam([w, unused], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(3.0)
    assert unused.tolist() == [1.0, 1.0]
    assert unused not in opt.state
    assert opt.state[w]["step"] == 1
    np.testing.assert_allclose(w.detach().numpy(), 0.9, rtol=1e-5)


def test_step_bumps_version_so_stale_backward_raises(device):
    w = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    (w * 3).sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_add_param_group_and_errors(device):
    w = sg.ones(2, device=device, requires_grad=True)
    b = sg.ones(2, device=device, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam([w], lr=-1)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(NotImplementedError, match="differentiable"):
        optim.SGD([w], lr=0.1, differentiable=True)
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})


def test_named_parameters_and_repr(device):
    w = sg.ones(2, device=device, requires_grad=True)
    opt = optim.AdamW([("weight", w)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight"]
    assert opt.param_groups[0]["params"][0] is w
    text = repr(opt)
    assert "AdamW" in text and "lr: 0.1" in text and "weight_decay: 0.01" in text


def test_adam_eps_after_sqrt(device):
    """One Adam step on a tiny gradient: eps outside the root gives lr * g / (|g| + eps)."""
    w = sg.tensor([0.0], device=device, requires_grad=True)
    opt = optim.Adam([w], lr=1.0, eps=1e-3)
    w.grad = sg.tensor([1e-3], device=device)
    opt.step()
    assert w.item() == pytest.approx(-0.5, rel=1e-4)  # eps inside the root would give -0.69


def test_float64_matches_torch(device):
    if not get_backend(device).has_float64:
        pytest.skip(f"device '{device}' has no float64")
    data = _start(1)
    w = sg.tensor(data["w"].astype(np.float64), device=device, requires_grad=True)
    tw = torch.tensor(data["w"].astype(np.float64), requires_grad=True)
    opt = optim.RMSprop([w], lr=0.01, momentum=0.9)
    topt = torch.optim.RMSprop([tw], lr=0.01, momentum=0.9)
    for _ in range(20):
        for o, p in ((opt, w), (topt, tw)):
            o.zero_grad()
            ((p ** 3).sum() + (p * p).sum()).backward()
            o.step()
    assert w.dtype == sg.float64
    assert_close(w, tw, atol=1e-10, rtol=1e-10)


def test_step_evaluates_params_and_state(device, monkeypatch):
    """step() hands every updated parameter and state buffer to engine.evaluate, so a lazy
    backend (MLX) computes them now and a training loop's memory stays flat."""
    import smolgrad.optim.optimizer as optimizer_module

    seen = []
    monkeypatch.setattr(optimizer_module, "evaluate", lambda tensors: seen.extend(tensors))
    w = sg.ones(3, device=device, requires_grad=True)
    opt = optim.Adam([w], lr=0.1, amsgrad=True)
    (w * w).sum().backward()
    opt.step()
    ids = {id(t) for t in seen}
    assert id(w) in ids
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert id(opt.state[w][key]) in ids, key


def test_public_names():
    assert sg.optim.SGD is optim.SGD and sg.optim.lr_scheduler.StepLR is not None
    assert sg.save is save and sg.load is load
    assert sg.utils.data.DataLoader is not None and sg.Generator is not None


# ---------------------------------------------------------------------------------------
# L-BFGS: the same iterations as torch.optim.LBFGS, with and without the line search
# ---------------------------------------------------------------------------------------


def _least_squares(lib, w, c, data):
    """Mean squared residual of a linear fit with weights w (4,) and intercept c (1,)."""
    a, b = (lib.tensor(data[k], dtype=w.dtype, device=w.device) for k in ("a", "b"))
    return ((a @ w + c - b) ** 2).mean()


def _rosenbrock(lib, w, c, data):
    """The banana valley (1 - x)^2 + 100 (y - x^2)^2, minimum at (1, 1); c is unused (it
    gets a zero gradient, as an unused parameter must)."""
    return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2 + 0 * c.sum()


def _cone(lib, w, c, data):
    """A smoothed cone sqrt(|w - 1|^2 + 1e-3): with a huge step the line search overshoots
    far, and its zoom has to push trial steps away from the bracket's ends."""
    return (((w - 1) ** 2).sum() + 1e-3).sqrt() + 0 * c.sum()


def _lbfgs_problem(name, dtype):
    rng = np.random.default_rng(3)
    if name == "least_squares":
        data = {"a": rng.standard_normal((30, 4)), "b": rng.standard_normal(30)}
        start = rng.standard_normal(4)
    else:
        data, start = {}, np.array([-1.5, 2.0])
    data = {k: v.astype(dtype) for k, v in data.items()}
    loss_fn = {"least_squares": _least_squares, "rosenbrock": _rosenbrock, "cone": _cone}[name]
    return loss_fn, data, start.astype(dtype)


def _lbfgs_runs(lib, device, problem, dtype, steps, kwargs):
    """The parameters (w and c, concatenated) after each of `steps` LBFGS steps, the loss
    each step returned, and the optimizer."""
    loss_fn, data, start = _lbfgs_problem(problem, dtype)
    place = {"device": device} if lib is sg else {}
    w = lib.tensor(start, requires_grad=True, **place)
    c = lib.zeros(1, dtype=w.dtype, requires_grad=True, **place)
    opt = lib.optim.LBFGS([w, c], **kwargs)

    def closure():
        opt.zero_grad()
        loss = loss_fn(lib, w, c, data)
        loss.backward()
        return loss

    params, losses = [], []
    for _ in range(steps):
        losses.append(opt.step(closure).item())
        params.append(np.concatenate([w.detach().cpu().numpy(), c.detach().cpu().numpy()]))
    return params, losses, opt


LBFGS_SETTINGS = [dict(max_iter=4, history_size=2, line_search_fn="strong_wolfe"),
                  dict(lr=0.5, max_iter=4, history_size=2)]


@pytest.mark.parametrize("problem", ["least_squares", "rosenbrock"])
@pytest.mark.parametrize("kwargs", LBFGS_SETTINGS, ids=["strong_wolfe", "fixed_lr"])
def test_lbfgs_float32_steps_match_torch(device, problem, kwargs):
    """A few steps of few iterations each: on Rosenbrock, float32 rounding differences
    grow from iteration to iteration (the float64 test below runs long trajectories)."""
    steps = 3 if problem == "least_squares" else 2
    ours, our_losses, _ = _lbfgs_runs(sg, device, problem, np.float32, steps, kwargs)
    theirs, their_losses, _ = _lbfgs_runs(torch, None, problem, np.float32, steps, kwargs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4, err_msg=f"after step {step}")
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-4)
    assert ours[-1].dtype == np.float32 and not np.allclose(ours[-1][:2], ours[0][:2])


@pytest.mark.parametrize("problem,steps", [("least_squares", 3), ("rosenbrock", 5)])
@pytest.mark.parametrize("kwargs", [
    dict(line_search_fn="strong_wolfe"),
    dict(lr=1, max_iter=5, history_size=3, line_search_fn="strong_wolfe"),
    dict(lr=0.1),
    dict(lr=0.5, max_iter=7, history_size=2, tolerance_change=1e-5),
], ids=["wolfe_default", "wolfe_short_history", "lr0.1_default", "lr0.5_short_history"])
def test_lbfgs_float64_trajectories_match_torch(problem, steps, kwargs):
    """In float64 the whole trajectory (dozens of iterations, line-search trials, history
    truncation, stopping rules) agrees with PyTorch's to rounding, evaluation for
    evaluation."""
    ours, our_losses, opt = _lbfgs_runs(sg, "cpu", problem, np.float64, steps, kwargs)
    theirs, their_losses, t_opt = _lbfgs_runs(torch, None, problem, np.float64, steps, kwargs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, atol=1e-8, rtol=1e-7, err_msg=f"after step {step}")
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-8, atol=1e-12)
    state, t_state = opt.state[opt.param_groups[0]["params"][0]], t_opt.state[t_opt._params[0]]
    assert state["func_evals"] == t_state["func_evals"]
    assert state["n_iter"] == t_state["n_iter"]
    assert len(state["old_dirs"]) == len(t_state["old_dirs"])


def test_lbfgs_line_search_zoom_safeguards_match_torch():
    ours, _, opt = _lbfgs_runs(sg, "cpu", "cone", np.float64, 5,
                               dict(lr=100, line_search_fn="strong_wolfe"))
    theirs, _, t_opt = _lbfgs_runs(torch, None, "cone", np.float64, 5,
                                   dict(lr=100, line_search_fn="strong_wolfe"))
    np.testing.assert_allclose(ours, theirs, atol=1e-9, rtol=1e-8)
    assert opt.state[opt.param_groups[0]["params"][0]]["func_evals"] == \
        t_opt.state[t_opt._params[0]]["func_evals"]


def test_lbfgs_reaches_the_rosenbrock_minimum():
    final, _, _ = _lbfgs_runs(sg, "cpu", "rosenbrock", np.float32, 3,
                              dict(line_search_fn="strong_wolfe"))
    np.testing.assert_allclose(final[-1][:2], [1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("kwargs", LBFGS_SETTINGS, ids=["strong_wolfe", "fixed_lr"])
def test_lbfgs_state_dict_round_trip_continues_identically(device, kwargs, tmp_path):
    _, data, start = _lbfgs_problem("rosenbrock", np.float32)

    def make(values):
        w = sg.tensor(values, device=device, requires_grad=True)
        c = sg.zeros(1, device=device, requires_grad=True)
        return w, c

    def run(opt, w, c, steps):
        def closure():
            opt.zero_grad()
            loss = _rosenbrock(sg, w, c, data)
            loss.backward()
            return loss

        for _ in range(steps):
            opt.step(closure)
        return w.detach().numpy()

    w, c = make(start)
    opt = optim.LBFGS([w, c], **kwargs)
    run(opt, w, c, 1)
    saved = opt.state_dict()
    assert set(saved["state"]) == {0}  # one state for all parameters, under the first
    assert {"d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss",
            "func_evals", "n_iter"} <= set(saved["state"][0])
    save(saved, tmp_path / "lbfgs.safetensors")
    loaded = load(tmp_path / "lbfgs.safetensors")
    w2, c2 = make(w.detach().numpy())
    resumed = optim.LBFGS([w2, c2], lr=123.0)
    resumed.load_state_dict(loaded)
    assert resumed.param_groups[0]["lr"] == kwargs.get("lr", 1)
    expected = run(opt, w, c, 2)
    np.testing.assert_array_equal(run(resumed, w2, c2, 2), expected)
    assert resumed.state[w2]["n_iter"] == opt.state[w]["n_iter"]


def test_lbfgs_errors():
    w = sg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": [w]}, {"params": [sg.zeros(1, requires_grad=True)]}])
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.LBFGS([w], lr=-1.0)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        optim.LBFGS([w], lr=sg.ones(2))
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        optim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(ValueError, match="history_size must be a positive int"):
        optim.LBFGS([w], history_size=0)
    with pytest.raises(TypeError, match="LBFGS.step: .* needs a closure"):
        optim.LBFGS([w]).step()
    assert optim.LBFGS([w]).param_groups[0]["max_eval"] == 25  # max_iter * 5 // 4


def test_lbfgs_stops_at_once_when_the_gradient_is_zero():
    w = sg.ones(3, requires_grad=True)
    opt = optim.LBFGS([w])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 0.0
    assert len(calls) == 1 and w.tolist() == [1.0, 1.0, 1.0]
