"""Linear algebra: matmul (with NumPy/PyTorch broadcasting and 1-D rules), einsum, outer."""

from __future__ import annotations

import re

from ..engine import Function, Tensor, register
from .elementwise import promote


class Matmul(Function):
    """Z = X @ Y       dL/dX = G @ Yᵀ,   dL/dY = Xᵀ @ G

    1-D operands act as a row (X) or a column (Y) vector and lose that axis in Z; batch
    axes broadcast, and the engine sums the gradients back over them.
    """

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.backend.matmul(x.data, y.data)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
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


class Einsum(Function):
    """Z = einsum(spec, X₁, X₂, ...)
    dL/dXᵢ = einsum(G and the other operands -> Xᵢ's subscripts), broadcast over the
    subscripts that only Xᵢ has."""

    @staticmethod
    def forward(ctx, spec, *xs):
        ctx.save_for_backward(*xs)
        return ctx.backend.einsum(spec, *[x.data for x in xs])

    @staticmethod
    def backward(ctx, grad):
        spec = ctx.inputs[0]
        xs = ctx.saved_tensors
        ins, out = spec.split("->")
        subs = ins.split(",")
        grads = [None]
        for i, (x, s) in enumerate(zip(xs, subs)):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [(xs[j], subs[j]) for j in range(len(xs)) if j != i]
            known = set(out) | {c for _, t in others for c in t}
            kept = "".join(c for c in dict.fromkeys(s) if c in known)
            g = einsum(",".join([out] + [t for _, t in others]) + "->" + kept, grad,
                       *[o for o, _ in others])
            # put back subscripts only x had (they were summed out), then x's own order
            full = "".join(dict.fromkeys(s))
            shape = [g.shape[kept.index(c)] if c in kept else 1 for c in full]
            g = g.permute([kept.index(c) for c in full if c in kept]) if kept else g
            g = g.reshape(shape).expand([x.shape[s.index(c)] for c in full])
            if full != s:  # repeated subscripts (a diagonal): scatter back onto it
                raise NotImplementedError(f"einsum: gradient for repeated subscripts in "
                                          f"'{s}' is not supported")
            grads.append(g)
        return tuple(grads)


@register("matmul", "__matmul__")
def matmul(input, other) -> Tensor:
    """Matrix product with broadcasting batch dims; 1-D operands as in NumPy/PyTorch."""
    if not isinstance(other, Tensor):
        raise TypeError(f"matmul: expected a Tensor, got {type(other).__name__}")
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                           f"{input.shape} and {other.shape}")
    k1 = input.shape[-1]
    k2 = other.shape[-2] if other.ndim > 1 else other.shape[0]
    if k1 != k2:
        raise RuntimeError(f"matmul: shapes {input.shape} and {other.shape} cannot be "
                           f"multiplied ({k1} != {k2})")
    batch_x, batch_y = input.shape[:-2], other.shape[:-2]
    for a, b in zip(reversed(batch_x), reversed(batch_y)):
        if a != b and a != 1 and b != 1:
            raise RuntimeError(f"matmul: batch dimensions of {input.shape} and {other.shape} "
                               f"cannot be broadcast")
    x, y = promote(input, other, "matmul")
    return Matmul.apply(x, y)


@register("__rmatmul__")
def _rmatmul(self, other) -> Tensor:
    return matmul(Tensor(other, dtype=self.dtype, device=self.device), self)


@register("mm")
def mm(input, mat2) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expects 2-D tensors, got {input.shape} and {mat2.shape}")
    return matmul(input, mat2)


@register("bmm")
def bmm(input, mat2) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: expects 3-D tensors with the same batch size, got "
                           f"{input.shape} and {mat2.shape}")
    return matmul(input, mat2)


@register("mv")
def mv(input, vec) -> Tensor:
    return matmul(input, vec)


@register("dot")
def dot(input, other) -> Tensor:
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"dot: expects 1-D tensors, got {input.shape} and {other.shape}")
    return matmul(input, other)


@register("outer")
def outer(input, vec2) -> Tensor:
    """input[i] · vec2[j]."""
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, e.g. einsum('bij,bjk->bik', x, y); differentiable."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise NotImplementedError("einsum: '...' (ellipsis) is not supported; name the axes")
    if "->" not in eq:
        letters = re.sub(r"[^a-zA-Z]", "", eq)
        eq += "->" + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    subs = eq.split("->")[0].split(",")
    if len(subs) != len(operands):
        raise RuntimeError(f"einsum: '{equation}' names {len(subs)} operands, got "
                           f"{len(operands)}")
    for s, x in zip(subs, operands):
        if len(s) != x.ndim:
            raise RuntimeError(f"einsum: subscripts '{s}' do not match an operand of shape "
                               f"{x.shape}")
    target = operands[0]
    operands = [promote(target, x, "einsum")[1] for x in operands]
    return Einsum.apply(eq, *operands)
