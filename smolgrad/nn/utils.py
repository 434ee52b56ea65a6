"""Gradient clipping and flattening parameters into one vector (`torch.nn.utils`).

    total = clip_grad_norm_(model.parameters(), max_norm=1.0)

clip_grad_norm_ scales every gradient by  min(1, max_norm / (total_norm + 1e-6)),  where
total_norm is the norm of all gradients concatenated into one vector.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..engine import Tensor, no_grad
from ..ops.movement import cat, stack


def _as_list(parameters) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def get_total_norm(tensors: Iterable[Tensor], norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The norm of all the tensors taken together, as if concatenated into one vector."""
    tensors = [t for t in _as_list(tensors) if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        raise ValueError("get_total_norm: no tensors given")
    with no_grad():
        if math.isinf(norm_type):
            norms = [t.detach().abs().amax().float() for t in tensors]
            total = stack(norms).amax()
        else:
            norms = [t.detach().float().norm(p=norm_type) for t in tensors]
            total = stack(norms).norm(p=norm_type)
    if error_if_nonfinite and not total.isfinite().item():
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for the "
                           f"gradients is non-finite ({total.item()}), so it cannot be "
                           f"clipped; set error_if_nonfinite=False to scale them anyway")
    return total


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale the gradients in place so that their total norm is at most max_norm.

    Returns the total norm before clipping (a 0-d float32 tensor), as PyTorch does.
    """
    params = [p for p in _as_list(parameters) if p.grad is not None]
    if not params:
        return Tensor(0.0)
    total = get_total_norm([p.grad for p in params], norm_type, error_if_nonfinite)
    with no_grad():
        coef = (float(max_norm) / (total + 1e-6)).clamp(max=1.0)
        for p in params:
            g = p.grad
            g._assign((g.detach() * coef.to(g.device).to(g.dtype)).array)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    with no_grad():
        for p in _as_list(parameters):
            if p.grad is not None:
                p.grad._assign(p.grad.detach().clamp(-clip_value, clip_value).array)


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable)."""
    params = _as_list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: no parameters given")
    devices = {str(p.device) for p in params}
    if len(devices) > 1:
        raise TypeError(f"parameters_to_vector: found parameters on several devices "
                        f"{sorted(devices)}; move them to one device first")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in place."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got "
                        f"{type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D, got shape {tuple(vec.shape)}")
    params = _as_list(parameters)
    total = sum(p.numel() for p in params)
    if total != vec.shape[0]:
        raise ValueError(f"vector_to_parameters: vec has {vec.shape[0]} elements but the "
                         f"parameters hold {total}")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[offset:offset + n].reshape(p.shape))
            offset += n
