"""nn.Transformer, TransformerDecoderLayer and TransformerDecoder against PyTorch: torch's
weights loaded by state-dict key, then outputs and the gradient of every input and
parameter compared, with causal and key-padding masks, batch_first and norm_first both
ways."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nn_oracle import Mask, check_module

import smolgrad as sg
import smolgrad.nn as nn

D_MODEL, NHEAD, FF = 8, 2, 16
S, T, N = 5, 4, 2  # source length, target length, batch

# torch warns about its own internals here (nested tensors off; a float attn_mask beside a
# bool key padding mask, which real programs do and which both libraries support)
pytestmark = [pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")]


def _randomise(torch_module, seed=0):
    """Replace torch's zero biases and unit LayerNorm weights by random values, so that a
    weight loaded into the wrong place (or ignored) shows up in the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in torch_module.named_parameters():
            if p.ndim == 1:
                p.copy_(torch.rand(p.shape, generator=generator) - 0.5 + ("norm" in name))


def _shape(length, batch_first):
    return (N, length, D_MODEL) if batch_first else (length, N, D_MODEL)


def _padding(length, padded_in_second):
    """(N, length) bool key padding: the second sequence's last `padded_in_second` are
    padding (True); the first has none."""
    mask = np.zeros((N, length), dtype=bool)
    mask[1, length - padded_in_second:] = True
    return Mask(mask)


def _causal(length):
    return Mask(torch.nn.Transformer.generate_square_subsequent_mask(length).numpy())


def _pair(name, *args, **kwargs):
    torch.manual_seed(0)
    return getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_matches_torch(device, batch_first, norm_first):
    ours, theirs = _pair("Transformer", d_model=D_MODEL, nhead=NHEAD, num_encoder_layers=2,
                         num_decoder_layers=2, dim_feedforward=FF, dropout=0.0,
                         batch_first=batch_first, norm_first=norm_first)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _randomise(theirs)
    masks = {"tgt_mask": _causal(T), "src_key_padding_mask": _padding(S, 2),
             "tgt_key_padding_mask": _padding(T, 1), "memory_key_padding_mask": _padding(S, 2)}
    check_module(ours, theirs, [_shape(S, batch_first), _shape(T, batch_first)],
                 device=device, train=True, kwargs=masks, atol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_layer_matches_torch(device, norm_first, activation):
    """One decoder layer with every mask: a float causal tgt_mask, a bool memory_mask, and
    both key padding masks."""
    ours, theirs = _pair("TransformerDecoderLayer", D_MODEL, NHEAD, dim_feedforward=FF,
                         dropout=0.0, activation=activation, norm_first=norm_first)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _randomise(theirs, seed=1)
    memory_mask = np.zeros((T, S), dtype=bool)
    memory_mask[0, 3:] = True  # the first target position may not see the last sources
    masks = {"tgt_mask": _causal(T), "memory_mask": Mask(memory_mask),
             "tgt_key_padding_mask": _padding(T, 1), "memory_key_padding_mask": _padding(S, 1)}
    check_module(ours, theirs, [_shape(T, False), _shape(S, False)], device=device,
                 train=True, kwargs=masks, atol=1e-4)


def test_decoder_stack_unbatched_and_without_bias(device):
    layer, t_layer = _pair("TransformerDecoderLayer", D_MODEL, NHEAD, dim_feedforward=FF,
                           dropout=0.0, bias=False, batch_first=True)
    ours = nn.TransformerDecoder(layer, 3, norm=nn.LayerNorm(D_MODEL, bias=False))
    theirs = torch.nn.TransformerDecoder(t_layer, 3,
                                         norm=torch.nn.LayerNorm(D_MODEL, bias=False))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert not any("bias" in key for key in ours.state_dict())
    _randomise(theirs, seed=2)
    check_module(ours, theirs, [(T, D_MODEL), (S, D_MODEL)], device=device, train=True,
                 kwargs={"tgt_mask": _causal(T), "tgt_is_causal": True}, atol=1e-4)


def test_custom_encoder_and_decoder(device):
    torch.manual_seed(0)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, 0.0), 1)
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF, 0.0), 2)
    ours = nn.Transformer(D_MODEL, NHEAD, custom_encoder=encoder, custom_decoder=decoder)
    t_encoder = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, 0.0), 1,
        enable_nested_tensor=False)
    t_decoder = torch.nn.TransformerDecoder(
        torch.nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF, 0.0), 2)
    theirs = torch.nn.Transformer(D_MODEL, NHEAD, custom_encoder=t_encoder,
                                  custom_decoder=t_decoder)
    assert ours.encoder is encoder and ours.decoder is decoder
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "encoder.norm.weight" not in ours.state_dict()
    _randomise(theirs, seed=3)
    check_module(ours, theirs, [_shape(S, False), _shape(T, False)], device=device,
                 train=True, kwargs={"tgt_mask": _causal(T), "src_mask": _causal(S)},
                 atol=1e-4)


def test_generate_square_subsequent_mask(device):
    ours = nn.Transformer.generate_square_subsequent_mask(5, device=device)
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(5)
    assert ours.dtype == sg.float32 and str(ours.device) == sg.device(device).type
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=sg.float64).dtype == \
        sg.float64


def test_transformer_initialisation_is_xavier_uniform():
    """Every matrix is re-drawn from U(-a, a), a = sqrt(6 / (fan_in + fan_out)), as in
    PyTorch (the layers' own Linear default would be a = 1 / sqrt(fan_in))."""
    sg.manual_seed(0)
    model = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=64)
    weight = model.encoder.layers[0].linear1.weight.detach().numpy()  # (64, 16)
    bound = math.sqrt(6 / (16 + 64))
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 1 / math.sqrt(16)
    first = model.decoder.layers[0].linear2.weight.detach().numpy()
    assert not np.allclose(first, model.encoder.layers[0].linear2.weight.detach().numpy())
    assert model.d_model == 16 and model.nhead == 4 and model.batch_first is False


def test_transformer_errors():
    model = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(sg.zeros(S, 2, D_MODEL), sg.zeros(T, 3, D_MODEL))
    with pytest.raises(RuntimeError, match="feature number of src and tgt must be equal to "
                                           "d_model"):
        model(sg.zeros(S, 2, D_MODEL), sg.zeros(T, 2, D_MODEL + 1))
    with pytest.raises(RuntimeError, match="TransformerDecoderLayer: activation should be "
                                           "relu/gelu"):
        nn.TransformerDecoderLayer(D_MODEL, NHEAD, activation="tanh")


def test_transformer_trains(device):
    """A few Adam steps on copying a sequence lower the loss (the whole graph is
    differentiable end to end, dropout on)."""
    sg.manual_seed(0)
    model = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF, dropout=0.1, batch_first=True).to(device)
    opt = sg.optim.Adam(model.parameters(), lr=1e-2)
    x = sg.randn(4, T, D_MODEL, device=device)
    mask = nn.Transformer.generate_square_subsequent_mask(T, device=device)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = ((model(x, x, tgt_mask=mask) - x) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
