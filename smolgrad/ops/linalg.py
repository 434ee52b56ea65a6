"""Linear algebra: matmul (with NumPy/PyTorch broadcasting and 1-D rules), einsum, outer."""

from __future__ import annotations

import builtins
import string

from ..engine import Function, Tensor, register
from .autocast import _autocast_state, autocast_inputs
from .common import shown_as
from .elementwise import promote
from .precision import in_float32


class Matmul(Function):
    """Z = X @ Y       dL/dX = G @ Yᵀ,   dL/dY = Xᵀ @ G

    1-D operands act as a row (X) or a column (Y) vector and lose that axis in Z; batch
    axes broadcast, and the engine sums the gradients back over them.

    The common case of a batch of rows times one matrix, (..., K) @ (K, N) as in a linear
    layer, is computed as one (rows, K) @ (K, N) product, in forward and for dL/dY: one
    large BLAS call instead of one per batch element, and no broadcast copy of Y (which
    CuPy's batched matmul would make).
    """

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        b = ctx.backend
        if y.ndim == 2 and x.ndim > 2:
            rows = b.reshape(x.array, (-1, x.shape[-1]))
            return b.reshape(b.matmul(rows, y.array), x.shape[:-1] + (y.shape[-1],))
        return b.matmul(x.array, y.array)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        if y.ndim == 2 and x.ndim > 2:  # rows of X times one matrix Y: see the docstring
            gx = grad @ y.mT if ctx.needs_input_grad[0] else None
            gy = None
            if ctx.needs_input_grad[1]:
                gy = x.reshape(-1, x.shape[-1]).mT @ grad.reshape(-1, grad.shape[-1])
            return gx, gy
        x2 = x.unsqueeze(0) if x.ndim == 1 else x
        y2 = y.unsqueeze(-1) if y.ndim == 1 else y
        g2 = grad
        if y.ndim == 1:
            g2 = g2.unsqueeze(-1)
        if x.ndim == 1:
            g2 = g2.unsqueeze(-2)
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = g2 @ y2.mT
            if x.ndim == 1:
                gx = gx.squeeze(-2)
        if ctx.needs_input_grad[1]:
            gy = x2.mT @ g2
            if y.ndim == 1:
                gy = gy.squeeze(-1)
        return gx, gy


@register("matmul", "__matmul__", function=True)
def matmul(input, other) -> Tensor:
    """Matrix product with broadcasting batch dims; 1-D operands as in NumPy/PyTorch."""
    if not isinstance(other, Tensor):
        raise TypeError(f"matmul: expected a Tensor, got {type(other).__name__}")
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                           f"{tuple(input.shape)} and {tuple(other.shape)}")
    k1 = input.shape[-1]
    k2 = other.shape[-2] if other.ndim > 1 else other.shape[0]
    if k1 != k2:
        raise RuntimeError(f"matmul: shapes {tuple(input.shape)} and {tuple(other.shape)} "
                           f"cannot be multiplied ({k1} != {k2})")
    batch_x, batch_y = input.shape[:-2], other.shape[:-2]
    for a, b in zip(reversed(batch_x), reversed(batch_y)):
        if a != b and a != 1 and b != 1:
            raise RuntimeError(f"matmul: batch dimensions of {tuple(input.shape)} and "
                               f"{tuple(other.shape)} cannot be broadcast")
    if _autocast_state.casts:
        input, other = autocast_inputs("matmul", input, other)
    x, y = promote(input, other, "matmul", broadcast=False)
    out = Matmul.apply(x, y)
    if x.ndim <= 2 and y.ndim <= 2:
        shown_as(out, _MATMUL_NAMES[x.ndim, y.ndim])
    return out


# PyTorch's node for a product of 1-D/2-D operands (printing only; see ops.common.shown_as)
_MATMUL_NAMES = {(2, 2): "MmBackward0", (2, 1): "MvBackward0", (1, 1): "DotBackward0",
                 (1, 2): "SqueezeBackward4"}


@register("__rmatmul__")
def _rmatmul(self, other) -> Tensor:
    return matmul(Tensor(other, dtype=self.dtype, device=self.device), self)


@register("mm", function=True)
def mm(input, mat2) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expects 2-D tensors, got {tuple(input.shape)} and "
                           f"{tuple(mat2.shape)}")
    return matmul(input, mat2)


@register("bmm", function=True)
def bmm(input, mat2) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: expects 3-D tensors with the same batch size, got "
                           f"{tuple(input.shape)} and {tuple(mat2.shape)}")
    return matmul(input, mat2)


@register("mv", function=True)
def mv(input, vec) -> Tensor:
    return matmul(input, vec)


@register("dot", function=True)
def dot(input, other) -> Tensor:
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"dot: expects 1-D tensors, got {tuple(input.shape)} and "
                           f"{tuple(other.shape)}")
    return matmul(input, other)


@register("outer", function=True)
def outer(input, vec2) -> Tensor:
    """input[i] · vec2[j]."""
    for name, v in (("input", input), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(f"outer: expected 1-D arguments, but {name} has shape "
                               f"{tuple(v.shape)}")
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


class Einsum(Function):
    """Z = einsum(spec, X₁, X₂, ...)   (spec fully explicit: 'ij,jk->ik', no '...')

    dL/dXᵢ = einsum(G and the other operands -> Xᵢ's letters): the same contraction with
    Xᵢ's place taken by the output gradient G. Then, in `_einsum_input_grad`:
      letters only Xᵢ has were summed away in forward -> the gradient is broadcast over them;
      a repeated letter ('ii', a diagonal) -> the gradient is put back on that diagonal;
      a size-1 axis broadcast against a larger one -> the engine sums it back.
    """

    @staticmethod
    def forward(ctx, spec, *xs):
        ctx.save_for_backward(*xs)
        return ctx.backend.einsum(spec, *[x.array for x in xs])

    @staticmethod
    def backward(ctx, grad):
        spec = ctx.inputs[0]
        xs = ctx.saved_tensors
        grads = [None]
        for i in range(len(xs)):
            needed = ctx.needs_input_grad[i + 1]
            grads.append(_einsum_input_grad(spec, grad, xs, i) if needed else None)
        return tuple(grads)


def _einsum_input_grad(spec: str, grad: Tensor, xs: tuple, i: int) -> Tensor:
    """The gradient of operand `i` of einsum(spec, *xs), given the output gradient."""
    ins, out = spec.split("->")
    subs = ins.split(",")
    x, s = xs[i], subs[i]
    others = [(xs[j], subs[j]) for j in range(len(xs)) if j != i]
    full = "".join(dict.fromkeys(s))  # x's letters, each once, in order
    reachable = set(out) | {c for _, t in others for c in t}
    kept = "".join(c for c in full if c in reachable)
    g = einsum(",".join([out] + [t for _, t in others]) + "->" + kept, grad,
               *[o for o, _ in others])
    # letters only x has: summed away in forward, so every element got the same gradient
    size = {c: x.shape[s.index(c)] for c in full}
    g = g.reshape([g.shape[kept.index(c)] if c in kept else 1 for c in full])
    g = g.expand([builtins.max(n, size[c]) for n, c in zip(g.shape, full)])
    if full == s:
        return g
    # a repeated letter reads a diagonal: write the gradient back onto it, using one
    # identity matrix per extra occurrence (δ(i, i') in the index notation)
    spare = (c for c in string.ascii_letters if c not in spec)
    renamed, eyes, eye_subs = "", [], []
    for c in s:
        if c in renamed:
            fresh = next(spare)
            renamed += fresh
            eye = x.backend.eye(size[c], size[c], g.dtype)
            eyes.append(Tensor._make(eye, x.backend))
            eye_subs.append(c + fresh)
        else:
            renamed += c
    return einsum(",".join([full] + eye_subs) + "->" + renamed, g, *eyes)


@register(function=True)
def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, e.g. einsum('bij,bjk->bik', x, y); differentiable.

    Supports '...' (broadcast batch axes), an implicit output (the letters used once, in
    alphabetical order), repeated letters (diagonals, traces) and size-1 broadcasting.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    spec = _explicit_equation(equation, operands)
    target = operands[0]
    operands = [promote(target, x, "einsum", broadcast=False)[1] for x in operands]
    # NumPy's einsum sums float16 products in float16; PyTorch's sums in float32
    return in_float32(Einsum.apply, spec, *operands)


def _explicit_equation(equation: str, operands) -> str:
    """'...ij,jk' -> 'abij,jk->abik': name the ellipsis axes and write out the output."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(operands):
        raise RuntimeError(f"einsum: '{equation}' names {len(subs)} operands, got "
                           f"{len(operands)}")
    unused = [c for c in string.ascii_letters if c not in eq]
    ellipsis_ndim = 0
    for s, x in zip(subs, operands):
        if "..." in s:
            ellipsis_ndim = builtins.max(ellipsis_ndim, x.ndim - (len(s) - 3))
    batch = "".join(unused[:ellipsis_ndim])  # right-aligned, like broadcasting
    explicit = []
    for s, x in zip(subs, operands):
        if "..." in s:
            n = x.ndim - (len(s) - 3)
            s = s.replace("...", batch[ellipsis_ndim - n:] if n > 0 else "")
        if len(s) != x.ndim or not s.isalpha() and s:
            raise RuntimeError(f"einsum: subscripts '{s}' do not match an operand of shape "
                               f"{tuple(x.shape)} in '{equation}'")
        explicit.append(s)
    sizes: dict = {}
    for s, x in zip(explicit, operands):
        for c, n in zip(s, x.shape):
            if n != 1 and sizes.setdefault(c, n) != n:
                raise RuntimeError(f"einsum: subscript '{c}' has size {sizes[c]} in one operand "
                                   f"and {n} in another ('{equation}' with shapes "
                                   f"{', '.join(str(tuple(o.shape)) for o in operands)})")
    if arrow:
        out = rhs.replace("...", batch)
    else:
        named = lhs.replace("...", "").replace(",", "")
        out = batch + "".join(sorted(c for c in set(named) if named.count(c) == 1))
    return ",".join(explicit) + "->" + out
