"""nn.init and the layers' default initialisation: distributions checked statistically
(bounds, mean, standard deviation), never against fixed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import smolgrad as sg
import smolgrad.nn as nn
from smolgrad.nn import init


def _values(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64).ravel()


def _check_uniform(values, bound, what):
    """U(-bound, bound): inside the bounds, reaching close to them, std bound / sqrt(3)."""
    assert np.abs(values).max() <= bound * (1 + 1e-6), f"{what}: outside +-{bound}"
    assert np.abs(values).max() > 0.9 * bound, f"{what}: never near the bound {bound}"
    assert abs(values.mean()) < 4 * bound / math.sqrt(3 * values.size), f"{what}: mean"
    np.testing.assert_allclose(values.std(), bound / math.sqrt(3), rtol=0.08, err_msg=what)


def _check_normal(values, std, what, mean=0.0):
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(values.size), f"{what}: mean"
    np.testing.assert_allclose(values.std(), std, rtol=0.08, err_msg=what)


def test_calculate_gain_matches_torch():
    for name in ["linear", "conv2d", "sigmoid", "tanh", "relu", "selu"]:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_fan_in_fan_out():
    assert init._calculate_fan_in_and_fan_out(sg.empty(8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(sg.empty(5))


def test_init_functions_are_in_place_and_untracked(device):
    p = nn.Parameter(sg.zeros(64, 32, device=device))
    data_version = p._version
    assert init.kaiming_uniform_(p, a=math.sqrt(5)) is p
    assert p.is_leaf and p.requires_grad and p._version > data_version
    assert p.dtype == sg.float32 and str(p.device) == sg.device(device).type
    assert init.zeros_(p) is p and not _values(p).any()
    assert init.ones_(p) is p and (_values(p) == 1).all()
    assert init.constant_(p, 0.3) is p and np.allclose(_values(p), 0.3)


def test_uniform_normal(device):
    t = sg.empty(200, 100, device=device)
    init.uniform_(t, -2.0, 3.0)
    v = _values(t)
    assert v.min() >= -2.0 and v.max() < 3.0 and abs(v.mean() - 0.5) < 0.05
    init.normal_(t, mean=1.0, std=0.5)
    _check_normal(_values(t), 0.5, "normal_", mean=1.0)


def test_xavier_and_kaiming(device):
    t = sg.empty(300, 200, device=device)
    init.xavier_uniform_(t, gain=2.0)
    _check_uniform(_values(t), 2.0 * math.sqrt(6 / 500), "xavier_uniform_")
    init.xavier_normal_(t)
    _check_normal(_values(t), math.sqrt(2 / 500), "xavier_normal_")
    init.kaiming_uniform_(t, nonlinearity="relu")
    _check_uniform(_values(t), math.sqrt(2) * math.sqrt(3 / 200), "kaiming_uniform_")
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    _check_normal(_values(t), math.sqrt(2 / 300), "kaiming_normal_ fan_out")
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_normal_(t, mode="fan_avg")


def test_trunc_normal(device):
    t = sg.empty(100, 100, device=device)
    init.trunc_normal_(t, mean=0.5, std=1.0, a=-0.5, b=1.0)
    v = _values(t)
    assert v.min() >= -0.5 and v.max() <= 1.0
    ref = torch.nn.init.trunc_normal_(torch.empty(200, 200), 0.5, 1.0, -0.5, 1.0).numpy()
    assert abs(v.mean() - ref.mean()) < 0.02 and abs(v.std() - ref.std()) < 0.02
    init.trunc_normal_(t, std=0.02)  # the common ViT / GPT use: effectively untruncated
    _check_normal(_values(t), 0.02, "trunc_normal_")


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (4, 3, 2, 2)])
def test_orthogonal(device, shape):
    t = sg.empty(*shape, device=device)
    init.orthogonal_(t, gain=2.0)
    m = _values(t).reshape(shape[0], -1) / 2.0
    small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(small, np.eye(small.shape[0]), atol=1e-5)


def test_eye():
    t = sg.empty(3, 4)
    init.eye_(t)
    np.testing.assert_array_equal(t.numpy(), np.eye(3, 4))


# -- layers' default initialisation ----------------------------------------------------------

def test_linear_default_init():
    m = nn.Linear(256, 300)
    bound = 1 / math.sqrt(256)
    _check_uniform(_values(m.weight), bound, "Linear.weight")  # kaiming_uniform_(a=sqrt 5)
    assert np.abs(_values(m.bias)).max() <= bound


def test_conv_default_init():
    m = nn.Conv2d(16, 64, 3)
    bound = 1 / math.sqrt(16 * 9)
    _check_uniform(_values(m.weight), bound, "Conv2d.weight")
    assert np.abs(_values(m.bias)).max() <= bound
    t = nn.ConvTranspose2d(64, 16, 3)  # fan_in from weight.size(1) * kernel = 16 * 9
    _check_uniform(_values(t.weight), bound, "ConvTranspose2d.weight")
    c1 = nn.Conv1d(8, 300, 5)
    _check_uniform(_values(c1.weight), 1 / math.sqrt(40), "Conv1d.weight")


def test_embedding_and_norm_defaults():
    e = nn.Embedding(500, 64)
    _check_normal(_values(e.weight), 1.0, "Embedding.weight")
    for m in (nn.LayerNorm(7), nn.BatchNorm1d(7), nn.GroupNorm(7, 7), nn.RMSNorm(7)):
        assert (_values(m.weight) == 1).all()
        if getattr(m, "bias", None) is not None:
            assert not _values(m.bias).any()
    bn = nn.BatchNorm2d(5)
    assert not _values(bn.running_mean).any() and (_values(bn.running_var) == 1).all()
    assert bn.num_batches_tracked.item() == 0


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_recurrent_default_init(cls):
    m = cls(50, 64, num_layers=2)
    bound = 1 / math.sqrt(64)
    values = np.concatenate([_values(p) for p in m.parameters()])
    _check_uniform(values, bound, cls.__name__)


def test_multihead_attention_default_init():
    m = nn.MultiheadAttention(64, 4)
    _check_uniform(_values(m.in_proj_weight), math.sqrt(6 / (64 + 192)), "in_proj_weight")
    assert not _values(m.in_proj_bias).any() and not _values(m.out_proj.bias).any()
    _check_uniform(_values(m.out_proj.weight), 1 / 8, "out_proj.weight")


def test_init_respects_dtype_and_device(device):
    m = nn.Linear(40, 30, device=device, dtype=sg.float64 if device == "cpu" else None)
    assert str(m.weight.device) == sg.device(device).type
    if device == "cpu":
        assert m.weight.dtype == sg.float64
    assert np.abs(_values(m.weight)).max() <= 1 / math.sqrt(40)
