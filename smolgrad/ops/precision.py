"""Low-precision inputs (float16, bfloat16) are reduced in float32, as PyTorch does.

float16 keeps 11 significant bits and overflows past 65504; bfloat16 keeps 8. A sum of
many such numbers computed in their own dtype loses digits at every step (in float16,
2048 + 1 is 2048) and can overflow even when the result would fit: the mean of a thousand
100s needs the sum 100000. PyTorch therefore computes reductions, normalisations,
softmaxes and losses of low-precision tensors in float32 and rounds the result once to
the input's dtype; so does smolgrad, through the one helper below.

`in_float32(fn, input, ...)` converts the low-precision tensor arguments (the input, and
weights or targets of the same kind) to float32, runs `fn`, and rounds the floating-point
result(s) back to the input's dtype. The conversions are ordinary recorded casts, so the
backward pass runs in float32 too and each gradient arrives in its tensor's dtype. For
any other dtype `in_float32` is a plain call. `sum_array` does the same for a sum
written on backend arrays.
"""

from __future__ import annotations

import functools

from .. import dtypes as dt
from ..engine import Tensor
from .elementwise import cast

LOW_PRECISION = (dt.float16, dt.bfloat16)


def in_float32(fn, *args, **kwargs):
    """fn(*args, **kwargs), computed in float32 when the first Tensor argument is float16
    or bfloat16: every low-precision Tensor argument is converted to float32 first, and
    every floating-point result (a Tensor, or a tuple of them) is rounded back to that
    first Tensor's dtype. Not for ops that write into an argument (a converted argument
    is a copy)."""
    for first in args:  # a plain loop: this runs on every reduction, in any dtype
        if isinstance(first, Tensor):
            break
    else:
        return fn(*args, **kwargs)
    low = first.dtype
    if low not in LOW_PRECISION:
        return fn(*args, **kwargs)
    args = [_widen(a) for a in args]
    kwargs = {name: _widen(a) for name, a in kwargs.items()}
    return _round_to(fn(*args, **kwargs), low)


def accumulates_in_float32(fn):
    """Decorator form of `in_float32`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return in_float32(fn, *args, **kwargs)

    return wrapper


def sum_array(backend, array, axis):
    """backend.sum(array, axis) for op code that works on arrays (a fused op's backward),
    with float16/bfloat16 accumulated in float32 and rounded back."""
    dtype = backend.dtype_of(array)
    if dtype not in LOW_PRECISION:
        return backend.sum(array, axis=axis)
    return backend.astype(backend.sum(backend.astype(array, dt.float32), axis=axis), dtype)


def _widen(value):
    if isinstance(value, Tensor) and value.dtype in LOW_PRECISION:
        return cast(value, dt.float32)
    return value


def _round_to(result, dtype: dt.dtype):
    if isinstance(result, Tensor):
        return cast(result, dtype) if result.dtype.is_floating_point else result
    if isinstance(result, tuple):
        rounded = [_round_to(r, dtype) for r in result]
        return type(result)(*rounded) if hasattr(result, "_fields") else tuple(rounded)
    return result
