"""Scaled dot-product attention as one node: softmax(Q Kᵀ · scale + mask) V.

Written as a composite (matmul, scale, mask, softmax, dropout, matmul), attention keeps
about five score-sized (..., L, S) tensors alive until backward, and for long sequences
those dominate memory. This node keeps only the attention weights P (and the dropout mask),
and its backward is four matrix products and one softmax-gradient pass.

The weights are computed by one helper, `attention_weights`, in Tensor ops: forward runs it
without recording; backward reuses its result, or, when the backward itself is recorded
(`create_graph=True`), runs it again with recording, so that gradients of gradients are
exact. The backward formula is written once, in Tensor ops, for both cases.
"""

from __future__ import annotations

from ..engine import Function, Tensor, is_grad_enabled, no_grad
from .elementwise import where
from .reduce import softmax


def attention_weights(q: Tensor, k: Tensor, allowed: Tensor | None, bias: Tensor | None,
                      scale: float, empty_rows: Tensor | None = None) -> Tensor:
    """P = softmax(Q Kᵀ · scale + bias) over the keys, with -inf where `allowed` is False.

    q (..., L, E), k (..., S, E) -> P (..., L, S). `empty_rows` (..., L, 1), True for a query
    row that may attend to no key: that row gets all-zero weights (as PyTorch), not 0/0.
    None when no row can be empty (no mask, or a plain causal one): no pass over P for it.
    """
    scores = (q @ k.mT) * scale
    if bias is not None:
        scores = scores + bias
    if allowed is None:
        return softmax(scores, -1)
    weights = softmax(scores.masked_fill(allowed.logical_not(), float("-inf")), -1)
    return weights if empty_rows is None else where(empty_rows, 0.0, weights)


class ScaledDotProductAttention(Function):
    """Y = P̃ V,   P = softmax(Q Kᵀ · s + mask),   P̃ = P ⊙ M   (M: dropout mask, 0 or 1/(1-p))

    dV = P̃ᵀ G
    dP = (G Vᵀ) ⊙ M
    dS = P ⊙ (dP − Σ_keys dP ⊙ P)           (the softmax gradient)
    dQ = dS K · s,   dK = dSᵀ Q · s
    """

    @staticmethod
    def forward(ctx, q, k, v, allowed, bias, scale, keep, empty_rows):
        with no_grad():
            weights = attention_weights(q, k, allowed, bias, scale, empty_rows)
            kept = weights if keep is None else weights * keep
            out = kept @ v
        ctx.save_for_backward(q, k, v)
        ctx.weights = weights  # an array-sized constant; freed with the node
        return out.array

    @staticmethod
    def backward(ctx, grad):
        q, k, v = ctx.saved_tensors
        _, _, _, allowed, bias, scale, keep, empty_rows = ctx.inputs
        if is_grad_enabled():  # create_graph: P as a function of Q and K, to differentiate
            weights = attention_weights(q, k, allowed, bias, scale, empty_rows)
        else:
            weights = ctx.weights
        kept = weights if keep is None else weights * keep
        grad_v = kept.mT @ grad if ctx.needs_input_grad[2] else None
        grad_kept = grad @ v.mT
        grad_weights = grad_kept if keep is None else grad_kept * keep
        grad_scores = weights * (grad_weights - (grad_weights * weights).sum(-1, keepdim=True))
        grad_q = (grad_scores @ k) * scale if ctx.needs_input_grad[0] else None
        grad_k = (grad_scores.mT @ q) * scale if ctx.needs_input_grad[1] else None
        return grad_q, grad_k, grad_v, None, None, None, None, None
