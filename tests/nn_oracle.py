"""Compare a smolgrad module with the same PyTorch module, weights copied across.

    check_module(sg_module, torch_module, [(4, 3)], device=device)

The torch module's state_dict is loaded into the smolgrad module as NumPy arrays (the
exchange path a user takes). Inputs given as shapes become random float arrays; other
inputs (int index arrays, masks) are passed as they are. Compared: every output, the
gradient of every float input and the gradient of every parameter, by name.
"""

from __future__ import annotations

import numpy as np
import torch
from oracle import assert_close

import smolgrad as sg


def load_from_torch(sg_module, torch_module, device: str = "cpu"):
    """Copy torch's weights into the smolgrad module (as NumPy arrays) and move it."""
    state = {k: v.detach().numpy().copy() for k, v in torch_module.state_dict().items()}
    result = sg_module.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys
    sg_module.to(device)
    return sg_module


def _flatten(out):
    if isinstance(out, (tuple, list)):
        return [o for x in out for o in _flatten(x)]
    return [out]


def _to_sg(a, device):
    if isinstance(a, np.ndarray):
        return sg.tensor(a, device=device, requires_grad=a.dtype.kind == "f")
    if isinstance(a, Mask):
        return sg.tensor(a.array, device=device)
    return a


def _to_torch(a):
    if isinstance(a, np.ndarray):
        return torch.tensor(a, requires_grad=a.dtype.kind == "f")
    if isinstance(a, Mask):
        return torch.from_numpy(a.array.copy())
    return a


class Mask:
    """An input that is passed to both libraries but never differentiated (indices,
    masks, float masks, targets)."""

    def __init__(self, array):
        self.array = np.asarray(array)


def check_module(sg_module, torch_module, inputs, device: str = "cpu", train: bool = False,
                 kwargs: dict | None = None, atol: float = 1e-5, rtol: float = 1e-4,
                 seed: int = 0, load: bool = True):
    """Forward and backward through both modules; compare outputs and all gradients."""
    rng = np.random.default_rng(seed)
    kwargs = kwargs or {}
    if load:
        load_from_torch(sg_module, torch_module, device)
    sg_module.train(train)
    torch_module.train(train)
    arrays = [rng.standard_normal(s).astype(np.float32) if isinstance(s, tuple) else s
              for s in inputs]
    sg_in = [_to_sg(a, device) for a in arrays]
    t_in = [_to_torch(a) for a in arrays]
    sg_kw = {k: _to_sg(v, device) for k, v in kwargs.items()}
    t_kw = {k: _to_torch(v) for k, v in kwargs.items()}
    sg_out = _flatten(sg_module(*sg_in, **sg_kw))
    t_out = _flatten(torch_module(*t_in, **t_kw))
    assert len(sg_out) == len(t_out), f"{len(sg_out)} outputs, torch gave {len(t_out)}"
    sg_loss, t_loss = None, None
    for i, (s, t) in enumerate(zip(sg_out, t_out)):
        if t is None:
            assert s is None, f"output {i}: torch gave None, smolgrad {type(s)}"
            continue
        assert str(s.device) == sg.device(device).type
        assert_close(s, t, atol, rtol, what=f"forward output {i}")
        if t.requires_grad:
            up = rng.standard_normal(t.shape).astype(np.float32)
            s_term = (s * sg.tensor(up, device=device)).sum()
            t_term = (t * torch.tensor(up)).sum()
            sg_loss = s_term if sg_loss is None else sg_loss + s_term
            t_loss = t_term if t_loss is None else t_loss + t_term
    if t_loss is None:
        return sg_out, t_out
    sg_loss.backward()
    t_loss.backward()
    for i, (s, t) in enumerate(zip(sg_in, t_in)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            assert s.grad is not None, f"input {i}: no gradient"
            assert_close(s.grad, t.grad, atol * 10, rtol * 10, what=f"gradient of input {i}")
    t_params = dict(torch_module.named_parameters())
    sg_params = dict(sg_module.named_parameters())
    assert list(sg_params) == list(t_params), "parameter names/order differ from torch's"
    for name, tp in t_params.items():
        sp = sg_params[name]
        if tp.grad is None:
            assert sp.grad is None or not np.any(sp.grad.numpy()), f"{name}: unexpected grad"
            continue
        assert sp.grad is not None, f"parameter {name}: smolgrad gave no gradient"
        assert_close(sp.grad, tp.grad, atol * 10, rtol * 10, what=f"gradient of {name}")
    return sg_out, t_out
