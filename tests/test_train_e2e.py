"""End to end: a small CNN and a 2-block GPT trained 30 steps with AdamW, a cosine schedule
and gradient clipping, in smolgrad and in PyTorch, from the same weights on the same
batches: the loss curves agree step by step."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import smolgrad as sg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from workloads import _cnn_weights, _gpt_module, _gpt_module_weights, load_into  # noqa: E402

STEPS = 30


def _cnn(lib):
    nn = lib.nn
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(800, 10))
    load_into(model, _cnn_weights(), lib)
    return model


def _gpt(lib):
    model = _gpt_module(lib, vocab=65, d=32, heads=4, layers=2, block=16)
    weights = _gpt_module_weights(65, 32, 2, 16)
    model.load_state_dict({k: lib.tensor(v) for k, v in weights.items()})
    return model


def _batches(kind, rng):
    if kind == "cnn":
        return [(rng.standard_normal((8, 1, 28, 28)).astype(np.float32),
                 rng.integers(0, 10, 8)) for _ in range(STEPS)]
    return [(rng.integers(0, 65, (4, 16)), rng.integers(0, 65, (4, 16)))
            for _ in range(STEPS)]


def _train(lib, kind, batches, device=None):
    model = _cnn(lib) if kind == "cnn" else _gpt(lib)
    if device is not None:
        model.to(device)
    opt = lib.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    sched = lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS)
    F = lib.nn.functional
    losses = []
    for x_np, y_np in batches:
        x, y = lib.tensor(x_np), lib.tensor(y_np)
        if device is not None:
            x, y = x.to(device), y.to(device)
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return np.array(losses)


@pytest.mark.parametrize("kind", ["cnn", "gpt"])
def test_loss_curves_match_torch(kind, device):
    batches = _batches(kind, np.random.default_rng(0))
    ours = _train(sg, kind, batches, device)
    theirs = _train(torch, kind, batches)
    assert ours[-1] < ours[0]  # it learns
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
