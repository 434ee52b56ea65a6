"""Conversions: `to(device | dtype)`, `cpu()`, `half()`, `float()`, ..., `type(...)`,
`clone()`; and `nelement()`.

Both are differentiable: a gradient flows back across a dtype cast (in the source's dtype)
and across a device move (to the source's device).
"""

from __future__ import annotations

import builtins

from .. import dtypes as dt
from ..arrays import canonical_device, get_backend
from ..engine import Function, Tensor, register
from .creation import LegacyTensorType, legacy_type, legacy_type_name
from .elementwise import cast


class ToDevice(Function):
    """y = x on another device      dL/dx = dL/dy moved back to x's device"""

    @staticmethod
    def forward(ctx, x, target):
        source = ctx.backend
        ctx.backend = target  # the output lives on the target device
        ctx.source = source
        # the dtype travels explicitly: NumPy has no bfloat16, so MLX hands it over as
        # float32, and a target without bfloat16 must refuse rather than silently widen
        return target.asarray(source.to_numpy(x.array), x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return ToDevice.apply(grad, ctx.source), None


class Clone(Function):
    """y = a copy of x      dL/dx = dL/dy"""

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.copy(x.array)

    @staticmethod
    def backward(ctx, grad):
        return grad


def _parse_to(args, kwargs):
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        # Python's own types (this module's float/int/bool are the Tensor methods below)
        elif isinstance(a, dt.dtype) or a in (builtins.float, builtins.int, builtins.bool):
            dtype = a
        elif a is not None:
            device = a
    if kwargs:
        raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
    return device, dtype


@register("to", function=True)
def to(input, *args, **kwargs) -> Tensor:
    """to(device), to(dtype), to(device, dtype), to(other_tensor)."""
    device, dtype = _parse_to(args, dict(kwargs))
    out = input
    if device is not None:
        target = get_backend(canonical_device(device))
        if target is not input.backend:
            if dtype is not None and not _supports(target, out.dtype):
                out = cast(out, dtype)  # cast first when the target lacks the source dtype
            out = ToDevice.apply(out, target)
    if dtype is not None:
        out = cast(out, dtype)
    return out


def _supports(backend, dtype: dt.dtype) -> bool:
    """Can arrays of `dtype` live on `backend` (float64 on MLX's GPU, bfloat16 on NumPy)?"""
    try:
        backend.native(dtype)
    except TypeError:
        return False
    return True


@register("cpu")
def cpu(input) -> Tensor:
    return to(input, "cpu")


@register("cuda")
def cuda(input, device=None) -> Tensor:
    return to(input, "cuda")


@register("half")
def half(input) -> Tensor:
    """float16; the gradient reaches a float32 source in float32."""
    return cast(input, dt.float16)


@register("bfloat16")
def bfloat16(input) -> Tensor:
    return cast(input, dt.bfloat16)


@register("float")
def float(input) -> Tensor:  # noqa: A001
    return cast(input, dt.float32)


@register("double")
def double(input) -> Tensor:
    return cast(input, dt.float64)


@register("long")
def long(input) -> Tensor:
    return cast(input, dt.int64)


@register("int")
def int(input) -> Tensor:  # noqa: A001
    return cast(input, dt.int32)


@register("bool")
def bool(input) -> Tensor:  # noqa: A001
    return cast(input, dt.bool_)


@register("type_as")
def type_as(input, other) -> Tensor:
    return cast(input, other.dtype)


@register("type")
def type(input, dtype=None, non_blocking: bool = False):  # noqa: A001 - PyTorch's name
    """No argument: the PyTorch type string, e.g. 'torch.FloatTensor' ('torch.cuda.…' on
    CUDA, 'torch.mlx.…' on MLX). These are PyTorch's names, so that code comparing them
    keeps working. With a dtype, a legacy type (`sg.LongTensor`) or its string
    ('torch.LongTensor', 'torch.cuda.FloatTensor'): the tensor converted to that dtype
    (and, for a type, to its device); the tensor itself when nothing changes."""
    if dtype is None:
        return legacy_type_name(input)
    if isinstance(dtype, str):
        dtype = legacy_type(dtype)
    if isinstance(dtype, LegacyTensorType):
        return to(input, dtype.device, dtype.dtype)
    if isinstance(dtype, dt.dtype):
        return cast(input, dtype)
    raise ValueError(f"type: invalid type: {getattr(dtype, '__name__', dtype)!r}; pass a dtype "
                     f"(sg.float32), a type (sg.FloatTensor) or its name ('torch.FloatTensor')")


@register("nelement")
def nelement(input) -> int:
    """The number of elements (PyTorch's older name for numel)."""
    return input.numel()


@register("clone", function=True)
def clone(input, *, memory_format=None) -> Tensor:
    return Clone.apply(input)
