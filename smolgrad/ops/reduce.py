"""Reductions: sum, mean, prod, max/min, argmax, var/std, logsumexp, cumsum, softmax, norm.

A reduction's gradient spreads the output gradient back over the reduced axes:
`_expand_back` puts the reduced axes back (size 1) and broadcasts to the input's shape.
Each `Function` is followed by the public function(s) it serves and their `register` line.
"""

from __future__ import annotations

import builtins
import functools
from collections import namedtuple
from collections.abc import Callable
from typing import TypeVar, cast

from .. import dtypes as dt
from ..engine import Function, Tensor, register
from .autocast import _autocast_state, autocast_inputs
from .common import normalize_dim, normalize_dims, shown_as
from .elementwise import exp, float_input, log, where
from .precision import in_float32


def _keepdim_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand_back(grad: Tensor, shape: tuple, axes: tuple, keepdim: bool) -> Tensor:
    """Undo a reduction's shape: (reduced) -> (input shape), repeating along `axes`."""
    if not keepdim:
        grad = grad.reshape(_keepdim_shape(shape, axes))
    return grad.expand(shape)


def _count(shape: tuple, axes: tuple) -> int:
    """How many elements a reduction over `axes` of a tensor of `shape` combines."""
    n = 1
    for a in axes:
        n *= shape[a]
    return n


values_indices = namedtuple("values_indices", ["values", "indices"])


Reduction = TypeVar("Reduction", bound=Callable)


def keepdims_alias(fn: Reduction) -> Reduction:
    """Let a reduction take NumPy's spelling `keepdims=` for `keepdim=`, as PyTorch does;
    passing both is a TypeError that names the op."""

    @functools.wraps(fn)
    def reduction(*args, **kwargs):
        if "keepdims" in kwargs:
            if "keepdim" in kwargs:
                raise TypeError(f"{fn.__name__}(): got both keepdim= and keepdims= (keepdims "
                                f"is another name for keepdim); pass one of them")
            kwargs["keepdim"] = kwargs.pop("keepdims")
        return fn(*args, **kwargs)

    return cast(Reduction, reduction)  # same signature as fn, for type checkers


# ---------------------------------------------------------------------------------------
# Sum and mean
# ---------------------------------------------------------------------------------------


class Sum(Function):
    """y = Σ_axes x        dy/dx = 1 (each input element contributes once)"""

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape = x.shape
        return ctx.backend.sum(x.array, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        _, axes, keepdim = ctx.inputs
        return _expand_back(grad, ctx.shape, axes, keepdim), None, None


@register("sum", function=True)
@keepdims_alias
def sum(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    """Σ over `dim` (all dims when None). Integers and bools sum to int64, as PyTorch;
    float16/bfloat16 accumulate in float32 (see ops/precision.py)."""
    if dtype is not None:
        input = input.to(dtype)
    elif not input.dtype.is_floating_point and input.dtype is not dt.int64:
        input = input.to(dt.int64)
    return in_float32(Sum.apply, input, normalize_dims(dim, input.ndim, "sum"), keepdim)


@register("mean", function=True)
@keepdims_alias
def mean(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Σ / n over `dim` (float16/bfloat16: in float32, so that the sum cannot overflow)."""
    if dtype is not None:
        input = input.to(dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"mean: could not infer output dtype; input dtype must be floating "
                           f"point, got {input.dtype}; pass dtype= or convert with .float()")
    out = in_float32(_mean, input, normalize_dims(dim, input.ndim, "mean"), keepdim)
    return shown_as(out, "MeanBackward0" if dim is None else "MeanBackward1")


def _mean(x: Tensor, axes: tuple, keepdim: bool) -> Tensor:
    count = _count(x.shape, axes)
    return Sum.apply(x, axes, keepdim) / (count if count else float("nan"))


class Prod(Function):
    """y = Π_axes x        dy/dxᵢ = Π_{j≠i} xⱼ  (exact with zeros: no division by xᵢ = 0)"""

    saves_output = True

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.save_for_backward(x)
        return ctx.backend.prod(x.array, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        _, axes, keepdim = ctx.inputs
        is_zero = x == 0
        nonzero = where(is_zero, 1.0, x)
        prod_nonzero = nonzero.prod(dim=axes, keepdim=True)
        zeros = is_zero.sum(dim=axes, keepdim=True)
        out = _expand_back(ctx.output, x.shape, axes, keepdim)
        others = where(is_zero, prod_nonzero * (zeros == 1).to(x.dtype), out / nonzero)
        return _expand_back(grad, x.shape, axes, keepdim) * others, None, None


@register("prod", function=True)
@keepdims_alias
def prod(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    axes = normalize_dims(dim, input.ndim, "prod") if dim is not None else tuple(
        range(input.ndim))
    return in_float32(Prod.apply, input, axes, keepdim)


# ---------------------------------------------------------------------------------------
# Max and min: values (amax, amin) and positions (argmax, argmin)
# ---------------------------------------------------------------------------------------


class Amax(Function):
    """y = max_axes x      dy/dx = 1/k at the k positions that attain the max, else 0

    A NaN makes the max NaN. amax then has no position equal to its result, and its
    gradient is NaN (0/0), as PyTorch's amax. With `nan_wins` (max()/min() over all
    elements) the k positions are the NaNs instead, as PyTorch's max()."""

    saves_output = True
    kernel = "max"

    @classmethod
    def forward(cls, ctx, x, axes, keepdim, nan_wins):
        ctx.save_for_backward(x)
        if builtins.any(x.shape[a] == 0 for a in axes):
            raise RuntimeError(f"{cls.kernel}: cannot reduce over a zero-size dimension of a "
                               f"tensor of shape {tuple(x.shape)} (the operation has no identity); "
                               f"reduce a non-empty dimension instead")
        return getattr(ctx.backend, cls.kernel)(x.array, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        _, axes, keepdim, nan_wins = ctx.inputs
        out = _expand_back(ctx.output, x.shape, axes, keepdim)
        hit = x == out
        if nan_wins:
            hit = hit | (x.isnan() & out.isnan())
        hit = hit.to(grad.dtype)
        count = hit.sum(dim=axes, keepdim=True)
        return _expand_back(grad, x.shape, axes, keepdim) * hit / count, None, None, None


class Amin(Amax):
    """y = min_axes x      dy/dx = 1/k at the k positions that attain the min, else 0"""

    kernel = "min"


@register("amax", function=True)
@keepdims_alias
def amax(input, dim=(), keepdim: bool = False) -> Tensor:
    return Amax.apply(input, normalize_dims(dim, input.ndim, "amax"), keepdim, False)


@register("amin", function=True)
@keepdims_alias
def amin(input, dim=(), keepdim: bool = False) -> Tensor:
    return Amin.apply(input, normalize_dims(dim, input.ndim, "amin"), keepdim, False)


class ArgReduce(Function):
    """argmax / argmin: int64 indices, not differentiable."""

    differentiable = False

    @staticmethod
    def forward(ctx, kernel, x, axis, keepdim):
        b = ctx.backend
        if x.numel() == 0 and (axis is None or x.shape[axis] == 0):
            raise RuntimeError(f"{kernel}: cannot take the {kernel} of an empty tensor of "
                               f"shape {tuple(x.shape)} along "
                               f"{'all dims' if axis is None else f'dim {axis}'}")
        data = x.array if axis is not None else b.reshape(x.array, (-1,))
        out = getattr(b, kernel)(data, axis=0 if axis is None else axis)
        if keepdim and axis is not None:
            out = b.reshape(out, _keepdim_shape(x.shape, (axis,)))
        elif keepdim:
            out = b.reshape(out, (1,) * x.ndim)
        return b.astype(out, dt.int64)


@register("argmax", function=True)
@keepdims_alias
def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    axis = None if dim is None else normalize_dim(dim, input.ndim, "argmax")
    return ArgReduce.apply("argmax", input, axis, keepdim)


@register("argmin", function=True)
@keepdims_alias
def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    axis = None if dim is None else normalize_dim(dim, input.ndim, "argmin")
    return ArgReduce.apply("argmin", input, axis, keepdim)


def _max_min(input, dim, keepdim, other, reduce_cls, arg_kernel, pairwise, name):
    if isinstance(dim, Tensor):  # torch.max(a, b): the elementwise form
        other, dim = dim, None
    if other is not None:
        return pairwise(input, other)
    if dim is None:  # over all elements; a NaN result sends the gradient to the NaNs
        out = reduce_cls.apply(input, tuple(range(input.ndim)), False, True)
        return shown_as(out, f"{name.capitalize()}Backward1")
    axis = normalize_dim(dim, input.ndim, name)
    indices = ArgReduce.apply(arg_kernel, input, axis, True)
    values = input.take_along_dim(indices, dim=axis)  # the gradient goes to that index
    if not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return values_indices(values, indices)


@register("max", function=True)
@keepdims_alias
def max(input, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """max(x) -> the max; max(x, dim) -> (values, indices); max(x, y) -> elementwise."""
    from .elementwise import maximum

    return _max_min(input, dim, keepdim, other, Amax, "argmax", maximum, "max")


@register("min", function=True)
@keepdims_alias
def min(input, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """min(x) -> the min; min(x, dim) -> (values, indices); min(x, y) -> elementwise."""
    from .elementwise import minimum

    return _max_min(input, dim, keepdim, other, Amin, "argmin", minimum, "min")


# ---------------------------------------------------------------------------------------
# Variance and standard deviation
# ---------------------------------------------------------------------------------------


class Var(Function):
    """v = Σ_axes (x - x̄)² / max(n - c, 0)     dv/dx = 2 (x - x̄) / (n - c)
    (x̄ the mean over `axes`, n the number of elements reduced, c the correction)

    With c ≥ n there are no degrees of freedom left: v is inf (nan where x is constant),
    and the gradient is PyTorch's: over all elements (dim=None) it is inf, or nan where
    x = x̄; over given dims it is the formula above as written (±inf at c = n, finite
    for c > n)."""

    @staticmethod
    def forward(ctx, x, axes, correction, keepdim, all_dims):
        b = ctx.backend
        ctx.save_for_backward(x)
        centered = b.subtract(x.array, b.mean(x.array, axis=axes, keepdims=True))
        squares = b.sum(b.multiply(centered, centered), axis=axes, keepdims=keepdim)
        dof = builtins.max(_count(x.shape, axes) - correction, 0)
        return b.divide(squares, float(dof))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        _, axes, correction, keepdim, all_dims = ctx.inputs
        g = _expand_back(grad, x.shape, axes, keepdim)
        centered = x - x.mean(dim=axes, keepdim=True)
        dof = _count(x.shape, axes) - correction
        if dof > 0:
            return g * centered * (2.0 / dof), None, None, None, None
        if all_dims:
            return g * where(centered == 0, float("nan"), float("inf")), None, None, None, None
        scale = float("inf") if dof == 0 else 2.0 / dof
        return g * centered * scale, None, None, None, None


class StdFromVar(Function):
    """y = √v (v a variance)     dy/dv = 1 / (2y), taken as 0 where y = 0

    A constant input has std 0, where √ has no derivative; PyTorch's std uses 0 there
    rather than inf · 0 = NaN, and so does this."""

    saves_output = True

    @staticmethod
    def forward(ctx, v):
        return ctx.backend.sqrt(v.array)

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return where(y == 0, 0.0, grad / (2 * where(y == 0, 1.0, y)))


def _variance(input, dim, correction, keepdim: bool, unbiased, op: str) -> Tensor:
    """var (op='var') or its square root (op='std'), PyTorch's arguments resolved."""
    if unbiased is not None:
        correction = 1 if unbiased else 0
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: only floating-point inputs are supported (as PyTorch), "
                           f"got {input.dtype}; convert with .float()")
    axes = normalize_dims(dim, input.ndim, op)
    all_dims = dim is None or input.ndim == 0  # PyTorch's gradient differs: see Var
    return in_float32(_var_or_std, input, axes, correction, keepdim, all_dims, op == "std")


def _var_or_std(x: Tensor, axes, correction, keepdim, all_dims, root: bool) -> Tensor:
    v = Var.apply(x, axes, correction, keepdim, all_dims)
    return StdFromVar.apply(v) if root else v


@register("var", function=True)
@keepdims_alias
def var(input, dim=None, *, correction=1, keepdim: bool = False, unbiased=None) -> Tensor:
    """Σ (x - mean)² / (n - correction) over `dim` (all dims when None)."""
    return shown_as(_variance(input, dim, correction, keepdim, unbiased, "var"), "VarBackward0")


@register("std", function=True)
@keepdims_alias
def std(input, dim=None, *, correction=1, keepdim: bool = False, unbiased=None) -> Tensor:
    """√var (with a zero gradient where the std is 0, as PyTorch)."""
    return shown_as(_variance(input, dim, correction, keepdim, unbiased, "std"), "StdBackward0")


@register(function=True)
@keepdims_alias
def var_mean(input, dim=None, *, correction=1, keepdim: bool = False):
    return (var(input, dim, correction=correction, keepdim=keepdim),
            mean(input, dim, keepdim=keepdim))


@register(function=True)
@keepdims_alias
def std_mean(input, dim=None, *, correction=1, keepdim: bool = False):
    return (std(input, dim, correction=correction, keepdim=keepdim),
            mean(input, dim, keepdim=keepdim))


# ---------------------------------------------------------------------------------------
# Log-sum-exp, cumulative sum, softmax
# ---------------------------------------------------------------------------------------


@register("logsumexp", function=True)
@keepdims_alias
def logsumexp(input, dim, keepdim: bool = False) -> Tensor:
    """log Σ eˣ, computed as m + log Σ e^(x - m) with m = max x (finite for huge x; a row
    of -inf gives -inf)."""
    input = float_input(input)
    return in_float32(_logsumexp, input, normalize_dims(dim, input.ndim, "logsumexp"),
                      keepdim)


def _logsumexp(x: Tensor, axes: tuple, keepdim: bool) -> Tensor:
    m = amax(x.detach(), dim=axes, keepdim=True)
    m = where(m.isfinite(), m, 0.0)
    out = log(exp(x - m).sum(dim=axes, keepdim=True)) + m
    return out if keepdim else out.reshape([n for i, n in enumerate(out.shape) if i not in axes])


class Cumsum(Function):
    """yᵢ = Σ_{j≤i} xⱼ     dL/dxⱼ = Σ_{i≥j} dL/dyᵢ  (a reversed cumulative sum)"""

    @staticmethod
    def forward(ctx, x, axis):
        if x.ndim == 0:  # NumPy would return shape (1,); a 0-d cumsum is the value itself
            return ctx.backend.copy(x.array)
        return ctx.backend.cumsum(x.array, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.inputs[1]
        return grad.flip(axis).cumsum(axis).flip(axis), None


@register("cumsum", function=True)
def cumsum(input, dim: int, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    return in_float32(Cumsum.apply, input, normalize_dim(dim, input.ndim, "cumsum"))


class Softmax(Function):
    """yᵢ = e^(xᵢ - m) / Σⱼ e^(xⱼ - m)  (m = max x, for stability)
    dL/dx = y ⊙ (g - Σ g ⊙ y)"""

    saves_output = True

    @staticmethod
    def forward(ctx, x, axis):
        b = ctx.backend
        m = b.max(x.array, axis=axis, keepdims=True)
        e = b.exp(b.subtract(x.array, b.where(b.isfinite(m), m, 0)))
        return b.divide(e, b.sum(e, axis=axis, keepdims=True))

    @staticmethod
    def backward(ctx, grad):
        y, axis = ctx.output, ctx.inputs[1]
        return y * (grad - (grad * y).sum(dim=axis, keepdim=True)), None


@register("softmax", function=True)
def softmax(input, dim: int, dtype=None) -> Tensor:
    if dtype is None and _autocast_state.casts:
        (input,) = autocast_inputs("softmax", input)
    input = input.to(dtype) if dtype is not None else float_input(input)
    return in_float32(Softmax.apply, input, normalize_dim(dim, input.ndim, "softmax"))


class LogSoftmax(Function):
    """yᵢ = xᵢ - logΣⱼ e^(xⱼ) = (xᵢ - m) - logΣⱼ e^(xⱼ - m)  (m = max x)
    dL/dx = g - softmax(x) · Σ g

    Subtracting m first keeps every intermediate small, so the result is exact to float
    precision even for logits of size 1e4 (x - logsumexp(x) would lose digits there).
    """

    saves_output = True

    @staticmethod
    def forward(ctx, x, axis):
        b = ctx.backend
        m = b.max(x.array, axis=axis, keepdims=True)
        shifted = b.subtract(x.array, b.where(b.isfinite(m), m, 0))
        return b.subtract(shifted, b.log(b.sum(b.exp(shifted), axis=axis, keepdims=True)))

    @staticmethod
    def backward(ctx, grad):
        y, axis = ctx.output, ctx.inputs[1]
        return grad - exp(y) * grad.sum(dim=axis, keepdim=True), None


@register("log_softmax", function=True)
def log_softmax(input, dim: int, dtype=None) -> Tensor:
    if dtype is None and _autocast_state.casts:
        (input,) = autocast_inputs("log_softmax", input)
    input = input.to(dtype) if dtype is not None else float_input(input)
    return in_float32(LogSoftmax.apply, input, normalize_dim(dim, input.ndim, "log_softmax"))


# ---------------------------------------------------------------------------------------
# Norms
# ---------------------------------------------------------------------------------------


class PNorm(Function):
    """y = (Σ_axes |x|ᵖ)^(1/p) for p > 1 (p = 2: the Euclidean norm)
    dy/dx = sign(x) · |x|^(p-1) / y^(p-1)   (p = 2: x / y), and 0 where y = 0 (as PyTorch:
    the norm is not differentiable at 0, and 0 is the subgradient everyone uses)"""

    saves_output = True

    @staticmethod
    def forward(ctx, x, p, axes, keepdim):
        ctx.save_for_backward(x)
        b = ctx.backend
        if p == 2:
            return b.sqrt(b.sum(b.multiply(x.array, x.array), axis=axes, keepdims=keepdim))
        powered = b.sum(b.power(b.abs(x.array), p), axis=axes, keepdims=keepdim)
        return b.power(powered, 1.0 / p)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        _, p, axes, keepdim = ctx.inputs
        y = _expand_back(ctx.output, x.shape, axes, keepdim)
        g = _expand_back(grad, x.shape, axes, keepdim)
        safe_y = where(y == 0, 1.0, y)
        if p == 2:
            local = x / safe_y
        else:
            local = x.sign() * x.abs() ** (p - 1) / safe_y ** (p - 1)
        return g * local, None, None, None


@register("norm", function=True)
def norm(input, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """The p-norm (p = 2 / 'fro' by default; also 1, inf, -inf, 0 and any real p).

    Unlike the other reductions it takes no `keepdims=`: neither does PyTorch's."""
    if dtype is not None:
        input = input.to(dtype)
    axes = normalize_dims(dim, input.ndim, "norm")
    if p == "fro":
        p = 2
    if not isinstance(p, (int, float)):
        raise ValueError(f"norm: p must be a number, 'fro', inf or -inf, got {p!r}")
    return in_float32(_norm, input, p, axes, keepdim)


def _norm(x: Tensor, p: float, axes: tuple, keepdim: bool) -> Tensor:
    if 1 < p < float("inf"):
        return PNorm.apply(x, p, axes, keepdim)
    if p == float("inf"):
        return amax(x.abs(), dim=axes, keepdim=keepdim)
    if p == float("-inf"):
        return amin(x.abs(), dim=axes, keepdim=keepdim)
    if p == 0:
        return (x != 0).to(x.dtype).sum(dim=axes, keepdim=keepdim)
    if p == 1:
        return x.abs().sum(dim=axes, keepdim=keepdim)
    return (x.abs() ** p).sum(dim=axes, keepdim=keepdim) ** (1.0 / p)


# ---------------------------------------------------------------------------------------
# Logical reductions (no gradient)
# ---------------------------------------------------------------------------------------


class Logical(Function):
    """all / any: bool results, not differentiable."""

    differentiable = False

    @staticmethod
    def forward(ctx, kernel, x, axes, keepdim):
        return getattr(ctx.backend, kernel)(x.array, axis=axes, keepdims=keepdim)


@register("all", function=True)
@keepdims_alias
def all(input, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Logical.apply("all", input, normalize_dims(dim, input.ndim, "all"), keepdim)


@register("any", function=True)
@keepdims_alias
def any(input, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Logical.apply("any", input, normalize_dims(dim, input.ndim, "any"), keepdim)


@register("count_nonzero", function=True)
def count_nonzero(input, dim=None) -> Tensor:
    return (input != 0).sum(dim=dim)


# ---------------------------------------------------------------------------------------
# Sorting: the order is found on the values (no gradient); the values are then gathered
# with take_along_dim, whose gradient sends each incoming gradient back to where the
# value came from.
# ---------------------------------------------------------------------------------------


class ArgSort(Function):
    """Indices that sort x along an axis (int64), not differentiable."""

    differentiable = False

    @staticmethod
    def forward(ctx, x, axis, descending):
        b = ctx.backend
        keys = b.negative(x.array) if descending else x.array
        return b.argsort(keys, axis=axis)


@register("argsort", function=True)
def argsort(input, dim: int = -1, descending: bool = False) -> Tensor:
    if input.dtype is dt.bool_:
        input = input.to(dt.int64)
    return ArgSort.apply(input, normalize_dim(dim, input.ndim, "argsort"), descending)


@register("sort", function=True)
def sort(input, dim: int = -1, descending: bool = False):
    """(values, indices) sorted along `dim`; values are differentiable."""
    if input.ndim == 0:
        return values_indices(input, Tensor._make(input.backend.zeros((), dt.int64),
                                                  input.backend))
    indices = argsort(input, dim, descending)
    return values_indices(input.take_along_dim(indices, dim=dim), indices)


@register("topk", function=True)
def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """(values, indices) of the k largest (or smallest) entries along `dim`."""
    axis = normalize_dim(dim, input.ndim, "topk")
    size = input.shape[axis] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"topk: k ({k}) is out of range for dimension {dim} of size {size} "
                           f"(tensor of shape {tuple(input.shape)})")
    values, indices = sort(input, axis, descending=largest)
    keep = (slice(None),) * axis + (slice(0, k),)
    return values_indices(values[keep], indices[keep])
