"""The autocast casting policy: which ops run in the reduced dtype, which in float32.

Inside `with smolgrad.autocast(device_type, dtype=...)` (smolgrad/amp), PyTorch's rule is
applied per op, to the tensors of that device type, here and only here:

- **Lower-precision ops** compute in the region's dtype (float16 or bfloat16): their
  floating-point inputs are cast to it first. Products and convolutions, where reduced
  precision is fast and accurate enough:
  matmul (and mm, bmm, `@`), linear, conv1d, conv2d, conv_transpose2d,
  scaled_dot_product_attention.
- **Float32 ops** compute in float32: their float16/bfloat16 inputs are cast up first.
  Losses, on every device type: cross_entropy, nll_loss, mse_loss, l1_loss. On "cuda"
  and "mlx" also softmax and log_softmax (when called without `dtype=`), layer_norm and
  group_norm, as in PyTorch's CUDA (and MPS) lists; PyTorch's CPU list leaves those four
  in the dtype of their input, and so does smolgrad on "cpu".
- Every other op runs in the dtype of its inputs (elementwise ops, reductions, ...), with
  the usual type promotion.

"Floating-point input" excludes float64 (never cast, as in PyTorch) and any non-Tensor
argument. The casts are ordinary recorded `cast`s, so gradients flow back through them:
a float32 parameter used by a float16 matmul gets a float32 gradient.

Outside autocast `_autocast_state.casts` is an empty dict, and each call site reads it
first (`if _autocast_state.casts:`), so the policy costs one attribute read there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .. import dtypes as dt
from ..engine import Tensor, register
from ..grad_mode import _autocast_state
from .elementwise import cast

# The dtype `autocast(device_type)` uses when none is given: PyTorch's defaults (cpu
# bfloat16, cuda float16); mlx, like cpu, defaults to bfloat16.
DEFAULT_DTYPES = {"cpu": dt.bfloat16, "cuda": dt.float16, "mlx": dt.bfloat16}

LOWER_PRECISION_OPS = frozenset({
    "matmul", "linear", "conv1d", "conv2d", "conv_transpose2d",
    "scaled_dot_product_attention",
})
_LOSSES = frozenset({"cross_entropy", "nll_loss", "mse_loss", "l1_loss"})
_GPU_FLOAT32 = _LOSSES | {"softmax", "log_softmax", "layer_norm", "group_norm"}
FLOAT32_OPS = {"cpu": _LOSSES, "cuda": _GPU_FLOAT32, "mlx": _GPU_FLOAT32}


def autocast_inputs(op: str, *tensors) -> tuple:
    """The arguments of `op` as autocast wants them: unchanged unless autocast is on for
    the device of the first Tensor among them and `op` is on one of the lists above; then
    each floating-point Tensor (not float64) cast to the region's dtype (lower-precision
    ops) or to float32 (float32 ops). Non-Tensor arguments (None, ints) pass through."""
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    if first is None:
        return tensors
    device = first.backend.device
    reduced = _autocast_state.casts.get(device)
    if reduced is None:
        return tensors
    if op in LOWER_PRECISION_OPS:
        target = reduced
    elif op in FLOAT32_OPS[device]:
        target = dt.float32
    else:
        return tensors
    return tuple(_cast_if_eligible(t, target) for t in tensors)


def _cast_if_eligible(value, dtype: dt.dtype):
    if (isinstance(value, Tensor) and value.dtype.is_floating_point
            and value.dtype is not dt.float64):
        return cast(value, dtype)
    return value


def casts_to_float32(op: str) -> Callable[[Callable], Callable]:
    """Decorator for a float32 op written as a composition (a loss, a normalisation):
    `@casts_to_float32("mse_loss")` applies `autocast_inputs("mse_loss", ...)` to the
    positional and keyword arguments before the function runs. Put it above
    `@accumulates_in_float32`, so that a float32 result is not rounded back to float16."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def autocast_then_call(*args, **kwargs):
            if _autocast_state.casts:
                args = autocast_inputs(op, *args)
                kwargs = dict(zip(kwargs, autocast_inputs(op, *kwargs.values())))
            return fn(*args, **kwargs)

        return autocast_then_call

    return decorate


@register(function=True)
def is_autocast_enabled(device_type: str | None = None) -> bool:
    """True inside an enabled autocast region for `device_type` ("cuda" when None, as
    PyTorch's argument-less form). False where the region is a no-op (cpu + bfloat16)."""
    return ("cuda" if device_type is None else device_type) in _autocast_state.casts


@register(function=True)
def get_autocast_dtype(device_type: str) -> dt.dtype:
    """The dtype the innermost autocast region for `device_type` set (enabled or not), else
    the device type's default (bfloat16 for "cpu" and "mlx", float16 for "cuda")."""
    if device_type not in DEFAULT_DTYPES:
        raise RuntimeError(f"get_autocast_dtype: unsupported device_type {device_type!r}; "
                           f"expected one of {', '.join(map(repr, DEFAULT_DTYPES))}")
    return _autocast_state.dtypes.get(device_type, DEFAULT_DTYPES[device_type])
