"""Weight initialisation, PyTorch's `torch.nn.init`: fill a tensor in place, return it.

Every function runs under `no_grad()` (initialising a Parameter is not part of any graph)
and keeps the tensor's identity, dtype and device. The scales:

    fan_in  = size(1) * receptive field      fan_out = size(0) * receptive field
    (receptive field = product of the sizes after the first two: a conv's kernel area)

    xavier_uniform_:  U(-a, a),   a   = gain * sqrt(6 / (fan_in + fan_out))
    xavier_normal_:   N(0, std),  std = gain * sqrt(2 / (fan_in + fan_out))
    kaiming_uniform_: U(-b, b),   b   = gain * sqrt(3 / fan)
    kaiming_normal_:  N(0, std),  std = gain / sqrt(fan)          (fan = fan_in or fan_out)
"""

from __future__ import annotations

import math

from .. import dtypes as dt
from ..arrays import get_backend
from ..engine import Tensor, no_grad
from ..ops.creation import arange, rand, randn
from ..ops.elementwise import where


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance steady through the given nonlinearity."""
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear_fns:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(f"Fan in and fan out can not be computed for a tensor with fewer "
                         f"than 2 dimensions (got shape {tuple(tensor.shape)})")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _sample_dtype(tensor: Tensor) -> dt.dtype:
    """Draw in float32 (or float64 for float64 tensors), then cast into the tensor."""
    return dt.float64 if tensor.dtype is dt.float64 else dt.float32


def _fill(tensor: Tensor, values: Tensor) -> Tensor:
    with no_grad():
        tensor.copy_(values)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with U(a, b)."""
    u = rand(tensor.shape, dtype=_sample_dtype(tensor), device=tensor.device,
             generator=generator)
    return _fill(tensor, u * (b - a) + a)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with N(mean, std**2)."""
    n = randn(tensor.shape, dtype=_sample_dtype(tensor), device=tensor.device,
              generator=generator)
    return _fill(tensor, n * std + mean)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """Fill with N(mean, std**2) restricted to [a, b] (absolute bounds, as in PyTorch).

    Rejection sampling: draw, then redraw the values outside [a, b] until none are left.
    After 100 rounds (only when [a, b] holds almost none of the mass) the stragglers are
    clamped into [a, b].
    """
    if a >= b:
        raise ValueError(f"trunc_normal_: a ({a}) must be less than b ({b})")
    dtype = _sample_dtype(tensor)
    values = randn(tensor.shape, dtype=dtype, device=tensor.device,
                   generator=generator) * std + mean
    for _ in range(100):
        outside = (values < a) | (values > b)
        if not outside.any().item():
            break
        redraw = randn(tensor.shape, dtype=dtype, device=tensor.device,
                   generator=generator) * std + mean
        values = where(outside, redraw, values)
    return _fill(tensor, values.clamp(a, b))


def constant_(tensor: Tensor, val: float) -> Tensor:
    with no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity (ones on the diagonal)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported, got shape "
                         f"{tuple(tensor.shape)}")
    eye = Tensor._make(tensor.backend.eye(*tensor.shape, tensor.dtype), tensor.backend)
    return _fill(tensor, eye)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)),
                   generator=generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He initialisation, uniform; `a` is the negative slope for leaky_relu."""
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator=generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix: rows or columns orthonormal, times gain.

    The tensor is viewed as (size(0), rest); a Gaussian matrix of that shape is
    QR-decomposed and Q's columns are sign-corrected by R's diagonal so that the result is
    uniformly distributed over orthogonal matrices.
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are "
                         f"supported, got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    # QR on the CPU (not every backend has it; initialisation is not a hot path)
    cpu = get_backend("cpu")
    flat = randn(rows, cols, dtype=_sample_dtype(tensor), device=tensor.device,
                 generator=generator).cpu()
    if rows < cols:
        flat = flat.t()
    q, r = cpu.qr(flat.array)
    q, r = Tensor._make(q, cpu), Tensor._make(r, cpu)
    k = min(r.shape)
    diag = r[arange(k), arange(k)]
    q = q * diag.sign()
    if rows < cols:
        q = q.t()
    return _fill(tensor, q.reshape(tensor.shape) * gain)


# PyTorch's deprecated spellings without the trailing underscore are not provided.
