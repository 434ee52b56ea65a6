"""Every layer against PyTorch with identical weights: outputs, input gradients and every
parameter's gradient (by name), several shapes, train and eval mode where deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nn_oracle import Mask, check_module

import smolgrad as sg
import smolgrad.nn as nn


def _both(name, *args, **kwargs):
    torch.manual_seed(0)
    return getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)


@pytest.mark.parametrize("shape,args", [((4, 3), (3, 5)), ((2, 6, 3), (3, 2)), ((3,), (3, 4)),
                                        ((5, 3), (3, 1, False))])
def test_linear(device, shape, args):
    s, t = _both("Linear", *args)
    check_module(s, t, [shape], device=device)


def test_identity_flatten_unflatten(device):
    check_module(*_both("Identity", 54, unused=1), [(2, 3)], device=device)
    check_module(*_both("Flatten"), [(2, 3, 4, 5)], device=device)
    check_module(*_both("Flatten", 0, 2), [(2, 3, 4, 5)], device=device)
    check_module(*_both("Unflatten", 1, (2, 6)), [(3, 12)], device=device)
    check_module(*_both("Unflatten", -1, (2, -1)), [(3, 4, 6)], device=device)


@pytest.mark.parametrize("kwargs,shape", [
    ({}, (2, 3, 10)),
    ({"stride": 2, "padding": 1}, (2, 3, 9)),
    ({"dilation": 2, "groups": 3, "bias": False}, (1, 3, 12)),
    ({"padding": "same"}, (2, 3, 8)),
    ({}, (3, 11)),  # unbatched
])
def test_conv1d(device, kwargs, shape):
    out_channels = 6 if kwargs.get("groups") else 4
    s, t = _both("Conv1d", 3, out_channels, 3, **kwargs)
    check_module(s, t, [shape], device=device, atol=1e-4)


@pytest.mark.parametrize("kwargs,shape", [
    ({}, (2, 3, 8, 8)),
    ({"stride": 2, "padding": 1}, (2, 3, 9, 7)),
    ({"stride": (1, 2), "padding": (2, 0), "dilation": (2, 1)}, (1, 3, 10, 9)),
    ({"groups": 3, "bias": False}, (2, 3, 6, 6)),
    ({"padding": "valid"}, (3, 7, 7)),  # unbatched
])
def test_conv2d(device, kwargs, shape):
    s, t = _both("Conv2d", 3, 6, 3, **kwargs)
    check_module(s, t, [shape], device=device, atol=1e-4)


@pytest.mark.parametrize("kwargs,shape", [
    ({}, (2, 4, 5, 5)),
    ({"stride": 2, "padding": 1, "output_padding": 1}, (2, 4, 4, 5)),
    ({"groups": 2, "bias": False, "dilation": 2}, (1, 4, 3, 3)),
])
def test_conv_transpose2d(device, kwargs, shape):
    s, t = _both("ConvTranspose2d", 4, 6, 3, **kwargs)
    check_module(s, t, [shape], device=device, atol=1e-4)


def test_conv_transpose2d_output_size(device):
    s, t = _both("ConvTranspose2d", 2, 3, 3, stride=2, padding=1)
    check_module(s, t, [(1, 2, 4, 4)], kwargs={"output_size": [8, 8]}, device=device,
                 atol=1e-4)
    with pytest.raises(ValueError, match="not reachable"):
        s(sg.randn(1, 2, 4, 4, device=device), output_size=(20, 20))


@pytest.mark.parametrize("name,args,shape", [
    ("MaxPool2d", (2,), (2, 3, 8, 8)),
    ("MaxPool2d", (3, 2, 1), (1, 2, 7, 9)),
    ("AvgPool2d", (2,), (2, 3, 8, 8)),
    ("AvgPool2d", (3, 1, 1), (1, 2, 5, 6)),
    ("AdaptiveAvgPool2d", ((1, 1),), (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", (3,), (2, 3, 6, 9)),
])
def test_pooling(device, name, args, shape):
    check_module(*_both(name, *args), [shape], device=device)


def test_avg_pool_options(device):
    s, t = _both("AvgPool2d", 3, 2, 1, ceil_mode=True, count_include_pad=False)
    check_module(s, t, [(1, 2, 7, 8)], device=device)


def _randomise_norm(s, t):
    """Non-trivial affine parameters and running stats (defaults are ones / zeros)."""
    with torch.no_grad():
        for p in t.parameters():
            p.uniform_(0.5, 1.5)
        for name, b in t.named_buffers():
            if "running_mean" in name:
                b.uniform_(-1, 1)
            elif "running_var" in name:
                b.uniform_(0.5, 2.0)


@pytest.mark.parametrize("name,shape", [("BatchNorm1d", (8, 4)), ("BatchNorm1d", (5, 4, 6)),
                                        ("BatchNorm2d", (3, 4, 5, 5))])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm(device, name, shape, train):
    s, t = _both(name, 4)
    _randomise_norm(s, t)
    check_module(s, t, [shape], device=device, train=train, atol=1e-4)
    # the running statistics moved the same way (in training) or not at all (eval)
    for (n, sb), (_, tb) in zip(s.named_buffers(), t.named_buffers()):
        np.testing.assert_allclose(sb.cpu().numpy(), tb.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=n)


def test_batch_norm_options(device):
    s, t = _both("BatchNorm2d", 3, momentum=None, affine=False)
    for _ in range(3):  # cumulative average over several batches
        check_module(s, t, [(4, 3, 2, 2)], device=device, train=True)
    np.testing.assert_allclose(s.running_var.cpu().numpy(), t.running_var.numpy(), rtol=1e-4)
    assert s.num_batches_tracked.item() == 3
    s, t = _both("BatchNorm1d", 3, track_running_stats=False)
    check_module(s, t, [(6, 3)], device=device, train=False)  # batch stats even in eval
    assert s.running_mean is None and "running_mean" not in s.state_dict()
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(sg.randn(2, 3, 4, 4, device=device))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(sg.randn(1, 3, device=device))


@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 4, 5), (4, 5))])
def test_layer_norm(device, shape, normalized):
    s, t = _both("LayerNorm", normalized)
    _randomise_norm(s, t)
    check_module(s, t, [shape], device=device, atol=1e-4)
    check_module(*_both("LayerNorm", normalized, elementwise_affine=False), [shape],
                 device=device, atol=1e-4)
    check_module(*_both("LayerNorm", normalized, bias=False, eps=1e-3), [shape],
                 device=device, atol=1e-4)


@pytest.mark.parametrize("groups,shape", [(2, (3, 4, 5, 5)), (4, (2, 4, 7)), (1, (2, 4))])
def test_group_norm(device, groups, shape):
    s, t = _both("GroupNorm", groups, 4)
    _randomise_norm(s, t)
    check_module(s, t, [shape], device=device, atol=1e-4)


@pytest.mark.parametrize("kwargs", [{}, {"eps": 1e-3}, {"elementwise_affine": False}])
def test_rms_norm(device, kwargs):
    s, t = _both("RMSNorm", (3, 4), **kwargs)
    _randomise_norm(s, t)
    check_module(s, t, [(2, 3, 4)], device=device, atol=1e-4)


def test_embedding(device):
    idx = Mask(np.array([[1, 0, 3], [3, 9, 0]]))
    check_module(*_both("Embedding", 10, 4), [idx], device=device)
    s, t = _both("Embedding", 10, 4, padding_idx=0)
    assert not s.weight.detach().numpy()[0].any()  # the padding row starts at zero
    check_module(s, t, [idx], device=device)
    assert not s.weight.grad.numpy()[0].any()  # ... and gets no gradient


def test_embedding_from_pretrained(device):
    w = sg.randn(5, 3)
    e = nn.Embedding.from_pretrained(w)
    assert not e.weight.requires_grad and e.weight.tolist() == w.tolist()
    e.to(device)
    out = e(sg.tensor([4, 1], device=device))
    assert out.tolist() == [w.tolist()[4], w.tolist()[1]]


def test_dropout(device):
    x = sg.ones(2000, device=device)
    d = nn.Dropout(0.25)
    y = d(x).numpy()
    kept = y != 0
    assert 0.65 < kept.mean() < 0.85  # about 75% kept ...
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)  # ... and scaled by 1/(1-p)
    d.eval()
    assert d(x) is x or (d(x).numpy() == 1).all()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


@pytest.mark.parametrize("name,args", [
    ("ReLU", ()), ("GELU", ()), ("GELU", ("tanh",)), ("SiLU", ()), ("LeakyReLU", (0.2,)),
    ("ELU", (0.7,)), ("Softplus", (2.0, 5.0)), ("Tanh", ()), ("Sigmoid", ()),
    ("Softmax", (1,)), ("LogSoftmax", (-1,)),
])
def test_activations(device, name, args):
    check_module(*_both(name, *args), [(3, 5, 2)], device=device)


def test_inplace_activation(device):
    x = sg.randn(4, device=device)
    expected = x.relu().tolist()
    out = nn.ReLU(inplace=True)(x)
    assert out.tolist() == expected and x.tolist() == expected


# -- attention and transformer --------------------------------------------------------------

def _randomise_biases(t):
    with torch.no_grad():
        for name, p in t.named_parameters():
            if "bias" in name:
                p.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention(device, batch_first, need_weights):
    s, t = _both("MultiheadAttention", 8, 2, batch_first=batch_first)
    _randomise_biases(t)
    q, kv = ((3, 5, 8), (3, 7, 8)) if batch_first else ((5, 3, 8), (7, 3, 8))
    rng = np.random.default_rng(1)
    kv_array = rng.standard_normal(kv).astype(np.float32)
    check_module(s, t, [q, kv_array, kv_array.copy()], device=device, atol=1e-4,
                 kwargs={"need_weights": need_weights})


def test_multihead_attention_masks(device):
    s, t = _both("MultiheadAttention", 6, 3, batch_first=True)
    _randomise_biases(t)
    causal = Mask(np.triu(np.ones((4, 4), dtype=bool), 1))
    padding = Mask(np.array([[False, False, False, True], [False, True, False, False]]))
    check_module(s, t, [(2, 4, 6), (2, 4, 6), (2, 4, 6)], device=device, atol=1e-4,
                 kwargs={"attn_mask": causal, "key_padding_mask": padding})
    float_mask = Mask(np.random.default_rng(2).standard_normal((6, 4, 4)).astype(np.float32))
    check_module(s, t, [(2, 4, 6), (2, 4, 6), (2, 4, 6)], device=device, atol=1e-4,
                 kwargs={"attn_mask": float_mask, "average_attn_weights": False})


def test_multihead_attention_unbatched_and_kdim(device):
    s, t = _both("MultiheadAttention", 4, 2)
    check_module(s, t, [(3, 4), (5, 4), (5, 4)], device=device, atol=1e-4)
    s, t = _both("MultiheadAttention", 4, 2, kdim=3, vdim=5, batch_first=True)
    assert [n for n, _ in s.named_parameters()] == [n for n, _ in t.named_parameters()]
    check_module(s, t, [(2, 3, 4), (2, 6, 3), (2, 6, 5)], device=device, atol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_layer(device, norm_first, activation):
    s, t = _both("TransformerEncoderLayer", 8, 2, dim_feedforward=16, dropout=0.1,
                 activation=activation, norm_first=norm_first, batch_first=True)
    _randomise_biases(t)
    padding = Mask(np.array([[False] * 5, [False, False, False, True, True]]))
    check_module(s, t, [(2, 5, 8)], device=device, atol=1e-4,
                 kwargs={"src_key_padding_mask": padding})


def test_transformer_encoder_seq_first_with_mask(device):
    s, t = _both("TransformerEncoderLayer", 8, 4, dim_feedforward=12)
    causal = Mask(np.triu(np.ones((6, 6), dtype=bool), 1))
    check_module(s, t, [(6, 2, 8)], device=device, atol=1e-4, kwargs={"src_mask": causal})
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, batch_first=True)
    t_layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, batch_first=True)
    s_enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    t_enc = torch.nn.TransformerEncoder(t_layer, 2, norm=torch.nn.LayerNorm(8),
                                        enable_nested_tensor=False)
    assert list(s_enc.state_dict()) == list(t_enc.state_dict())
    check_module(s_enc, t_enc, [(2, 5, 8)], device=device, atol=1e-4)


# -- recurrent ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("kwargs,shape", [
    ({}, (5, 3, 4)),
    ({"num_layers": 2, "batch_first": True}, (3, 5, 4)),
    ({"bidirectional": True}, (4, 2, 4)),
    ({"num_layers": 2, "bidirectional": True, "bias": False}, (3, 4)),  # unbatched
])
def test_recurrent(device, name, kwargs, shape):
    s, t = _both(name, 4, 6, **kwargs)
    assert [n for n, _ in s.named_parameters()] == [n for n, _ in t.named_parameters()]
    check_module(s, t, [shape], device=device, atol=1e-4)


def test_rnn_relu_and_initial_state(device):
    s, t = _both("RNN", 3, 5, nonlinearity="relu", num_layers=2)
    h0 = np.random.default_rng(3).standard_normal((2, 4, 5)).astype(np.float32)
    check_module(s, t, [(6, 4, 3), h0], device=device, atol=1e-4)


def test_lstm_initial_state(device):
    s, t = _both("LSTM", 3, 5, batch_first=True)
    rng = np.random.default_rng(4)
    h0 = rng.standard_normal((1, 2, 5)).astype(np.float32)
    c0 = rng.standard_normal((1, 2, 5)).astype(np.float32)
    s_out, _ = check_module(s, t, [(2, 6, 3)], device=device, atol=1e-4, load=True)
    sg_h = (sg.tensor(h0, device=device), sg.tensor(c0, device=device))
    out, (h, c) = s(sg.randn(2, 6, 3, device=device), sg_h)
    assert out.shape == (2, 6, 5) and h.shape == (1, 2, 5) and c.shape == (1, 2, 5)
    with pytest.raises(RuntimeError, match="expected hidden size"):
        s(sg.randn(2, 6, 3, device=device), (sg.zeros(1, 3, 5, device=device),) * 2)


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells(device, name):
    s, t = _both(name, 3, 4)
    check_module(s, t, [(2, 3)], device=device, atol=1e-4)
    check_module(s, t, [(3,)], device=device, atol=1e-4)


def test_recurrent_dropout_only_in_training(device):
    s = nn.GRU(3, 4, num_layers=2, dropout=0.5).to(device)
    x = sg.randn(5, 2, 3, device=device)
    s.eval()
    a, b = s(x)[0].tolist(), s(x)[0].tolist()
    assert a == b
    s.train()
    assert s(x)[0].tolist() != s(x)[0].tolist()


# -- losses ---------------------------------------------------------------------------------

def _classes(shape, n, seed=0):
    return Mask(np.random.default_rng(seed).integers(0, n, shape))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses(device, reduction):
    for name, extra in [("MSELoss", {}), ("L1Loss", {}), ("SmoothL1Loss", {"beta": 0.5}),
                        ("HuberLoss", {"delta": 0.7})]:
        check_module(*_both(name, reduction=reduction, **extra), [(4, 3), (4, 3)],
                     device=device)


def test_classification_losses(device):
    rng = np.random.default_rng(5)
    weight = rng.uniform(0.5, 2, 5).astype(np.float32)
    s, t = nn.CrossEntropyLoss(weight=sg.tensor(weight), label_smoothing=0.1), \
        torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), label_smoothing=0.1)
    assert list(s.state_dict()) == list(t.state_dict()) == ["weight"]
    check_module(s, t, [(6, 5), _classes(6, 5)], device=device)
    check_module(*_both("CrossEntropyLoss", ignore_index=2, reduction="sum"),
                 [(3, 5, 4), _classes((3, 4), 5)], device=device)
    probs = rng.dirichlet(np.ones(5), 6).astype(np.float32)
    check_module(*_both("CrossEntropyLoss"), [(6, 5), Mask(probs)], device=device)
    log_probs = np.log(rng.dirichlet(np.ones(5), 6)).astype(np.float32)
    check_module(*_both("NLLLoss"), [log_probs, _classes(6, 5)], device=device)
    p = rng.uniform(0.05, 0.95, (4, 3)).astype(np.float32)
    y = Mask(rng.integers(0, 2, (4, 3)).astype(np.float32))
    check_module(*_both("BCELoss"), [p, y], device=device)
    pos = rng.uniform(0.5, 2, 3).astype(np.float32)
    s, t = (nn.BCEWithLogitsLoss(pos_weight=sg.tensor(pos)),
            torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos)))
    check_module(s, t, [(4, 3), y], device=device)
    target = Mask(rng.dirichlet(np.ones(5), 6).astype(np.float32))
    check_module(*_both("KLDivLoss", reduction="batchmean"), [log_probs, target],
                 device=device)


def test_legacy_loss_arguments():
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.L1Loss(reduce=False).reduction == "none"
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")


# -- unsupported arguments fail clearly -------------------------------------------------------

def test_unsupported_arguments_raise():
    with pytest.raises(NotImplementedError, match="padding_mode"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(2, 3, proj_size=2)
    with pytest.raises(NotImplementedError, match="add_bias_kv"):
        nn.MultiheadAttention(4, 2, add_bias_kv=True)
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(3, 2, sparse=True)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(5, 2)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(RuntimeError, match="expected input with 3 channels"):
        nn.Conv2d(3, 4, 3)(sg.randn(1, 2, 5, 5))
    with pytest.raises(RuntimeError, match="input_size"):
        nn.GRU(3, 4)(sg.randn(2, 1, 5))
