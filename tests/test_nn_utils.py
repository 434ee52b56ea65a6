"""nn.utils: gradient clipping and parameter vectors, against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import assert_close

import smolgrad as sg
import smolgrad.nn as nn
from smolgrad.nn import utils


def _pair(device, scale=1.0):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) * scale for s in [(3, 4), (4,), (2,)]]
    sg_params = [nn.Parameter(sg.tensor(a, device=device)) for a in arrays]
    t_params = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    grads = [rng.standard_normal(a.shape).astype(np.float32) * scale for a in arrays]
    for p, tp, g in zip(sg_params, t_params, grads):
        p.grad = sg.tensor(g, device=device)
        tp.grad = torch.tensor(g)
    return sg_params, t_params


@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0),
                                                (0.3, float("inf"))])
def test_clip_grad_norm(device, max_norm, norm_type):
    s, t = _pair(device)
    grad_objects = [p.grad for p in s]
    total = utils.clip_grad_norm_(s, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(t, max_norm, norm_type=norm_type)
    assert_close(total, t_total, what="total norm")
    for p, tp, g in zip(s, t, grad_objects):
        assert p.grad is g  # clipped in place
        assert_close(p.grad, tp.grad, what="clipped grad")


def test_clip_grad_norm_nonfinite(device):
    s, _ = _pair(device)
    s[0].grad = sg.full((3, 4), float("inf"), device=device)
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(s, 1.0, error_if_nonfinite=True)
    assert utils.clip_grad_norm_([nn.Parameter(sg.ones(2))], 1.0).item() == 0.0


def test_clip_grad_value(device):
    s, t = _pair(device, scale=3.0)
    utils.clip_grad_value_(s, 1.5)
    torch.nn.utils.clip_grad_value_(t, 1.5)
    for p, tp in zip(s, t):
        assert_close(p.grad, tp.grad)


def test_parameters_vector_round_trip(device):
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)).to(device)
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    vec = utils.parameters_to_vector(m.parameters())
    assert_close(vec, torch.nn.utils.parameters_to_vector(t.parameters()))
    w = m[0].weight
    utils.vector_to_parameters(vec * 2, m.parameters())
    assert m[0].weight is w and m[0].weight.requires_grad
    assert_close(utils.parameters_to_vector(m.parameters()), vec.detach() * 2)
    with pytest.raises(ValueError, match="elements"):
        utils.vector_to_parameters(vec[:3], m.parameters())


def test_parameters_to_vector_is_differentiable(device):
    p = nn.Parameter(sg.ones(2, 2, device=device))
    (utils.parameters_to_vector([p]) * 3).sum().backward()
    assert_close(p.grad, torch.full((2, 2), 3.0))
