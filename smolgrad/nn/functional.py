"""`smolgrad.nn.functional` (usually imported as F): PyTorch's functional API.

Mostly thin calls into `smolgrad.ops`: the convolutions and pools live in ops/conv.py,
the fused cross-entropy, normalisation, GELU, softplus and binary cross-entropy in
ops/nn.py; everything else here is a short composition of Tensor ops (whose gradients come
for free). Names, argument names, defaults and semantics are PyTorch's.
"""

from __future__ import annotations

import math

from .. import dtypes as dt
from ..engine import Tensor, evaluate, no_grad
from ..ops import attention as _attention
from ..ops import conv as _conv
from ..ops import elementwise as _elementwise
from ..ops import movement as _movement
from ..ops import nn as _nn
from ..ops import reduce as _reduce
from ..ops.autocast import _autocast_state, autocast_inputs, casts_to_float32
from ..ops.common import shown_as
from ..ops.creation import arange, ones
from ..ops.elementwise import exp, expm1, log, rsqrt, where
from ..ops.precision import accumulates_in_float32, in_float32
from ..random import default_generator

conv1d = _conv.conv1d
conv2d = _conv.conv2d
conv_transpose2d = _conv.conv_transpose2d
max_pool2d = _conv.max_pool2d
avg_pool2d = _conv.avg_pool2d
adaptive_avg_pool2d = _conv.adaptive_avg_pool2d

__all__ = [
    "linear", "conv1d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
    "adaptive_avg_pool2d", "embedding", "dropout", "layer_norm", "batch_norm", "group_norm",
    "rms_norm", "scaled_dot_product_attention", "relu", "gelu", "silu", "leaky_relu", "elu",
    "softplus", "tanh", "sigmoid", "softmax", "log_softmax", "one_hot", "pad",
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
]


def _require_tensor(value, name: str, op: str) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")


def _maybe_inplace(input: Tensor, inplace: bool, name: str, fn, *args) -> Tensor:
    """Run `fn(input, *args)`, in place on `input` when `inplace` (PyTorch's inplace=True)."""
    if inplace:
        return input._inplace(name, fn, *args)
    return fn(input, *args)


# ---------------------------------------------------------------------------------------
# Linear, embedding, dropout
# ---------------------------------------------------------------------------------------


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b.   input (*, in_features), weight (out_features, in_features) or
    (in_features,), bias (out_features,) or None."""
    _require_tensor(input, "input", "linear")
    _require_tensor(weight, "weight", "linear")
    if weight.ndim not in (1, 2) or input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(f"linear: input of shape {tuple(input.shape)} does not match weight of "
                           f"shape {tuple(weight.shape)} (expected input (*, {weight.shape[-1]}) "
                           f"and weight (out_features, in_features))")
    if _autocast_state.casts:
        input, weight, bias = autocast_inputs("linear", input, weight, bias)
    if (weight.ndim == 2 and input.ndim >= 2 and weight.dtype is input.dtype
            and (bias is None or (bias.ndim == 1 and bias.dtype is input.dtype
                                  and bias.shape[0] == weight.shape[0]))):
        out = _nn.Linear.apply(input, weight, bias)  # the common case: one graph node
        # PyTorch's last node: addmm/mm for a batch of rows, a view back for more dims
        return shown_as(out, "ViewBackward0" if input.ndim > 2 else
                        "AddmmBackward0" if bias is not None else "MmBackward0")
    out = input @ (weight.mT if weight.ndim == 2 else weight)
    if bias is not None:
        out = out + bias
    return out


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by the integer `input` (any shape).

    Entries equal to `padding_idx` get no gradient. With `max_norm`, the rows used are first
    renormalised in place to norm at most `max_norm` (as PyTorch).
    """
    op = "embedding"
    _require_tensor(input, "input", op)
    _require_tensor(weight, "weight", op)
    if input.dtype.is_floating_point or input.dtype is dt.bool_:
        raise RuntimeError(f"{op}: indices must be an integer tensor (int32/int64), got "
                           f"{input.dtype}")
    if weight.ndim != 2:
        raise RuntimeError(f"{op}: weight must be 2-D (num_embeddings, embedding_dim), got "
                           f"shape {tuple(weight.shape)}")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError(f"{op}: scale_grad_by_freq=True and sparse=True are not "
                                  f"supported by smolgrad")
    num = weight.shape[0]
    # one bool read back (not the min and max themselves), so that sg.compile's value
    # guard on it holds from batch to batch
    if input.numel() and bool((input.min() < 0) | (input.max() >= num)):
        low, high = int(input.min().item()), int(input.max().item())
        raise IndexError(f"{op}: index {low if low < 0 else high} is out of range for a "
                         f"weight with {num} embeddings (shape {tuple(weight.shape)})")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"{op}: padding_idx {padding_idx} must be within the "
                             f"{num} embeddings")
        padding_idx %= num
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    out = weight[input]
    if padding_idx is not None and weight.requires_grad:
        # same values, but the padding rows' copies come from a detached weight: no gradient
        out = where((input == padding_idx).unsqueeze(-1), weight.detach()[input], out)
    return shown_as(out, "EmbeddingBackward0")


def _embedding_renorm_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float):
    with no_grad():
        rows = input.reshape(-1)
        picked = weight[rows]
        norms = picked.norm(p=norm_type, dim=-1, keepdim=True)
        scale = where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[rows] = picked * scale  # repeated rows write the same value


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training);
    the identity when not training or p = 0."""
    _require_tensor(input, "input", "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    b = default_generator.seeded_backend(input.device)  # its stream follows manual_seed
    if p == 1.0:
        scaled_mask = b.zeros(input.array.shape, input.dtype)
    else:
        keep = b.less(b.uniform(input.array.shape, 0.0, 1.0, input.dtype), 1.0 - p)
        scaled_mask = b.multiply(b.astype(keep, input.dtype), 1.0 / (1.0 - p))
    mask = Tensor._make(b.astype(scaled_mask, input.dtype), b)
    return _maybe_inplace(input, inplace, "dropout_", _mul, mask)


def _mul(x: Tensor, y) -> Tensor:
    return x * y


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple) -> Tensor:
    if weight is not None:
        x = x * weight.reshape(shape)
    if bias is not None:
        x = x + bias.reshape(shape)
    return x


def _normalized_axes(input: Tensor, normalized_shape, op: str) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
        normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"{op}: normalized_shape {list(shape)} does not match the last "
                           f"dimensions of input of shape {tuple(input.shape)}")
    return shape, tuple(range(input.ndim - k, input.ndim))


def _check_param(param, shape: tuple, name: str, op: str) -> None:
    if param is not None and tuple(param.shape) != tuple(shape):
        raise RuntimeError(f"{op}: {name} must have shape {tuple(shape)}, got {tuple(param.shape)}")


@casts_to_float32("layer_norm")
@accumulates_in_float32
def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """y = (x - mean) / √(var + eps) · weight + bias over the trailing `normalized_shape`
    dims (biased variance). The normalisation is one fused op (`ops.nn.Normalize`)."""
    _require_tensor(input, "input", "layer_norm")
    shape, axes = _normalized_axes(input, normalized_shape, "layer_norm")
    _check_param(weight, shape, "weight", "layer_norm")
    _check_param(bias, shape, "bias", "layer_norm")
    out = _affine(_nn.Normalize.apply(input, axes, float(eps)), weight, bias, shape)
    return shown_as(out, "NativeLayerNormBackward0")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) of (N, C, *) over the batch and spatial dims.

    training: use the batch's statistics and update `running_mean` / `running_var` in
    place (when given): running = (1 - momentum) · running + momentum · batch, with the
    unbiased batch variance, as PyTorch. Otherwise use the running statistics.
    """
    op = "batch_norm"
    _require_tensor(input, "input", op)
    if input.ndim < 2:
        raise RuntimeError(f"{op}: expected an input of shape (N, C, *), got {tuple(input.shape)}")
    c = input.shape[1]
    shape = (1, c) + (1,) * (input.ndim - 2)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise RuntimeError(f"{op}: {name} must have {c} elements (input of shape "
                               f"{tuple(input.shape)}), got shape {tuple(t.shape)}")
    axes = (0,) + tuple(range(2, input.ndim))
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(input.shape)}")
        if running_mean is not None or running_var is not None:
            _update_running_stats(input, running_mean, running_var, axes, count, momentum)
        return in_float32(_batch_norm_train, input, weight, bias, axes, float(eps), shape)
    if running_mean is None or running_var is None:
        raise RuntimeError(f"{op}: running_mean and running_var must be given when "
                           f"training=False")
    return in_float32(_batch_norm_eval, input, running_mean, running_var, weight, bias,
                      eps, shape)


def _batch_norm_train(x, weight, bias, axes: tuple, eps: float, shape: tuple) -> Tensor:
    return _affine(_nn.Normalize.apply(x, axes, eps), weight, bias, shape)


def _batch_norm_eval(x, running_mean, running_var, weight, bias, eps, shape) -> Tensor:
    scale = rsqrt(running_var.reshape(shape) + eps)
    return _affine((x - running_mean.reshape(shape)) * scale, weight, bias, shape)


def _update_running_stats(input, running_mean, running_var, axes, count, momentum):
    if momentum is None:
        raise ValueError("batch_norm: momentum=None (cumulative average) needs the number "
                         "of batches seen; pass the factor 1 / num_batches_tracked instead")
    with no_grad():
        x = input.detach()
        mean = x.mean(dim=axes)
        var = x.var(dim=axes, correction=1)
        if running_mean is not None:
            running_mean.copy_(running_mean * (1 - momentum) + mean * momentum)
        if running_var is not None:
            running_var.copy_(running_var * (1 - momentum) + var * momentum)
    # lazy backends (MLX): compute the new statistics now, or each step's graph (holding
    # that step's input) would stay attached to the buffers until they are next read
    evaluate([t for t in (running_mean, running_var) if t is not None])


@casts_to_float32("group_norm")
@accumulates_in_float32
def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, *) over each group of C / num_groups channels (and all spatial
    positions), then scale and shift per channel."""
    op = "group_norm"
    _require_tensor(input, "input", op)
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise RuntimeError(f"{op}: expected an input (N, C, *) with C divisible by "
                           f"num_groups={num_groups}, got shape {tuple(input.shape)}")
    c = input.shape[1]
    _check_param(weight, (c,), "weight", op)
    _check_param(bias, (c,), "bias", op)
    n = input.shape[0]
    grouped = input.reshape(n, num_groups, -1)
    out = _nn.Normalize.apply(grouped, (2,), float(eps)).reshape(input.shape)
    return _affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))


_FLOAT_EPS = {"float16": 0.0009765625, "bfloat16": 0.0078125, "float32": 1.1920928955078125e-07,
              "float64": 2.220446049250313e-16}


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """y = x / √(mean(x²) + eps) · weight over the trailing `normalized_shape` dims;
    eps defaults to the dtype's machine epsilon, as PyTorch."""
    _require_tensor(input, "input", "rms_norm")
    shape, axes = _normalized_axes(input, normalized_shape, "rms_norm")
    _check_param(weight, shape, "weight", "rms_norm")
    if eps is None:  # the input dtype's epsilon, even though the math runs in float32
        eps = _FLOAT_EPS.get(input.dtype.name, _FLOAT_EPS["float32"])
    return in_float32(_rms_norm, input, axes, weight, eps)


def _rms_norm(x: Tensor, axes: tuple, weight: Tensor | None, eps: float) -> Tensor:
    out = x * rsqrt((x * x).mean(dim=axes, keepdim=True) + eps)
    return out * weight if weight is not None else out


# ---------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q Kᵀ · scale + mask) V over the last two dims (..., L, E) x (..., S, E).

    attn_mask: bool (True = may attend) or float (added to the scores), broadcastable to
    (..., L, S). is_causal: query i attends to keys j ≤ i (top-left aligned, as PyTorch;
    combined with attn_mask when both are given). A query row with nothing to attend to
    gets all-zero weights, as PyTorch.
    scale defaults to 1 / √E. dropout_p > 0 drops attention weights (always, as PyTorch's
    functional form). One node (smolgrad/ops/attention.py) that keeps only the weights for
    backward; with a float mask that requires grad, the composite of its parts instead.
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        _require_tensor(t, name, op)
        if t.ndim < 2:
            raise RuntimeError(f"{op}: {name} must have at least 2 dims (..., L, E), got "
                               f"shape {tuple(t.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"{op}: query {tuple(query.shape)}, key {tuple(key.shape)} and value "
                           f"{tuple(value.shape)} do not fit: need query (..., L, E), key (..., S, "
                           f"E) and value (..., S, Ev)")
    if _autocast_state.casts:
        query, key, value, attn_mask = autocast_inputs(op, query, key, value, attn_mask)
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        heads, kv_heads = query.shape[-3], key.shape[-3]
        if heads % kv_heads:
            raise RuntimeError(f"{op}: with enable_gqa, query heads ({heads}) must be a "
                               f"multiple of key/value heads ({kv_heads})")
        key = key.repeat_interleave(heads // kv_heads, dim=-3)
        value = value.repeat_interleave(heads // kv_heads, dim=-3)
    length, source = query.shape[-2], key.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    allowed = bias = None
    if attn_mask is not None:
        _require_tensor(attn_mask, "attn_mask", op)
        if attn_mask.dtype is dt.bool_:
            allowed = attn_mask
        else:
            bias = attn_mask.to(query.dtype)
    if is_causal:  # combined with attn_mask when both are given, as PyTorch
        causal = ones(length, source, dtype=dt.bool_, device=query.device).tril()
        allowed = causal if allowed is None else allowed & causal
    empty_rows = None  # query rows that may attend to no key (they get zero weights)
    if allowed is not None and not (is_causal and attn_mask is None and source > 0):
        empty_rows = allowed.logical_not().all(dim=-1, keepdim=True)  # a causal mask has none
    keep = None
    if dropout_p > 0.0:
        shape = query.shape[:-1] + (source,)
        keep = dropout(ones(shape, dtype=query.dtype, device=query.device), dropout_p)
    if bias is not None and bias.requires_grad:  # the node gives no gradient to a mask
        weights = _attention.attention_weights(query, key, allowed, bias, scale, empty_rows)
        return (weights if keep is None else weights * keep) @ value
    return _attention.ScaledDotProductAttention.apply(query, key, value, allowed, bias,
                                                      scale, keep, empty_rows)


# ---------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return _maybe_inplace(input, inplace, "relu_", _elementwise.relu)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x · Φ(x) (approximate='none', erf form) or its tanh approximation ('tanh')."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _nn.Gelu.apply(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x · sigmoid(x)."""
    return _maybe_inplace(input, inplace, "silu_", _silu)


def _silu(x: Tensor) -> Tensor:
    return x * _elementwise.sigmoid(x)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope · x."""
    return _maybe_inplace(input, inplace, "leaky_relu_", _leaky_relu, negative_slope)


def _leaky_relu(x: Tensor, negative_slope: float) -> Tensor:
    return where(x > 0, x, x * negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha · (eˣ - 1)."""
    return _maybe_inplace(input, inplace, "elu_", _elu, alpha)


def _elu(x: Tensor, alpha: float) -> Tensor:
    # expm1 of min(x, 0): the unused branch never overflows (no inf · 0 in the gradient)
    return where(x > 0, x, alpha * expm1(x.clamp(max=0.0)))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta·x)) / beta, and x itself where beta·x > threshold."""
    z = input * beta if beta != 1 else input
    soft = _nn.Softplus.apply(z.clamp(max=threshold))
    if beta != 1:
        soft = soft / beta
    return where(z > threshold, input, soft)


def tanh(input: Tensor) -> Tensor:
    return _elementwise.tanh(input)


def sigmoid(input: Tensor) -> Tensor:
    return _elementwise.sigmoid(input)


def _softmax_dim(input: Tensor, dim) -> int:
    """PyTorch's legacy choice when dim is None: 0 for 0-, 1- and 3-D inputs, else 1."""
    if dim is not None:
        return dim
    return 0 if input.ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """e^(xᵢ) / Σⱼ e^(xⱼ) along `dim` (stable for large x)."""
    return _reduce.softmax(input, _softmax_dim(input, dim), dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """xᵢ - log Σⱼ e^(xⱼ) along `dim` (stable for large x)."""
    return _reduce.log_softmax(input, _softmax_dim(input, dim), dtype=dtype)


# ---------------------------------------------------------------------------------------
# Tensor utilities
# ---------------------------------------------------------------------------------------


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape (*tensor.shape, num_classes) with a 1 at each index."""
    _require_tensor(tensor, "tensor", "one_hot")
    if tensor.dtype.is_floating_point or tensor.dtype is dt.bool_:
        raise RuntimeError(f"one_hot: expected an integer (int64) tensor, got {tensor.dtype}")
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("one_hot: cannot infer num_classes from an empty tensor")
        num_classes = int(tensor.max().item()) + 1
    if tensor.numel():
        low, high = int(tensor.min().item()), int(tensor.max().item())
        if low < 0 or high >= num_classes:
            raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got "
                               f"{low if low < 0 else high}")
    classes = arange(num_classes, dtype=tensor.dtype, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).to(dt.int64)


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last len(pad)/2 dims: pad = (last_left, last_right, 2nd_last_left, ...).

    mode: 'constant' (with `value`, default 0; negative widths crop), 'reflect' (mirror
    without repeating the edge), 'replicate' (repeat the edge) or 'circular' (wrap around).
    """
    _require_tensor(input, "input", "pad")
    if mode == "constant":
        return _movement.pad(input, pad, "constant", 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; use 'constant', "
                                  f"'reflect', 'replicate' or 'circular'")
    if value is not None and value != 0:
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
    widths = _movement._pad_widths(pad, input.ndim, "pad")
    out = input
    for axis, (lo, hi) in enumerate(widths):
        if lo == 0 and hi == 0:
            continue
        n = input.shape[axis]
        if lo < 0 or hi < 0:
            raise ValueError(f"pad: negative padding {tuple(pad)} is only supported in "
                             f"'constant' mode")
        limit = n - 1 if mode == "reflect" else n
        if (mode != "replicate" and (lo > limit or hi > limit)) or n == 0:
            raise ValueError(f"pad: padding ({lo}, {hi}) for dim {axis} is too large for "
                             f"{mode} padding of an input of shape {tuple(input.shape)}")
        index = _pad_index(arange(-lo, n + hi, device=input.device), n, mode)
        out = out[(slice(None),) * axis + (index,)]
    return out


def _pad_index(i: Tensor, n: int, mode: str) -> Tensor:
    """For output positions i (relative to the input's start), the input index to copy."""
    if mode == "replicate":
        return i.clamp(0, n - 1)
    if mode == "circular":
        return i % n
    period = 2 * (n - 1) if n > 1 else 1  # reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
    j = i.abs() % period
    return where(j > n - 1, period - j, j)


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's deprecated size_average / reduce arguments -> a reduction string."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


def _reduce_loss(loss: Tensor, reduction: str, op: str, weight: Tensor | None = None):
    """'none' -> loss; 'sum' -> Σ loss; 'mean' -> Σ loss / n (or / Σ weight when given)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        if weight is not None:
            return loss.sum() / weight.expand(loss.shape).sum()
        return loss.mean()
    raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _check_pair(input, target, op: str) -> None:
    _require_tensor(input, "input", op)
    _require_tensor(target, "target", op)
    try:
        _movement.broadcast_shapes(input.shape, target.shape)
    except Exception:
        raise RuntimeError(f"{op}: target of shape {tuple(target.shape)} cannot be broadcast to "
                           f"input of shape {tuple(input.shape)}") from None


def _pointwise_weight(weight, input, op):
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} must have the input's shape "
                         f"{tuple(input.shape)}")


def _as_float_target(target: Tensor, input: Tensor) -> Tensor:
    return target if target.dtype is input.dtype else target.to(input.dtype)


@casts_to_float32("mse_loss")
@accumulates_in_float32
def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(x - y)² (· weight), reduced. With weight, 'mean' divides by Σ weight."""
    _check_pair(input, target, "mse_loss")
    _pointwise_weight(weight, input, "mse_loss")
    diff = input - _as_float_target(target, input)
    loss = diff * diff
    if weight is not None:
        loss = loss * weight
    loss = _reduce_loss(loss, _legacy_reduction(size_average, reduce, reduction), "mse_loss",
                        weight)
    return shown_as(loss, "MseLossBackward0")


@casts_to_float32("l1_loss")
@accumulates_in_float32
def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|x - y| (· weight), reduced. With weight, 'mean' divides by Σ weight."""
    _check_pair(input, target, "l1_loss")
    _pointwise_weight(weight, input, "l1_loss")
    loss = (input - _as_float_target(target, input)).abs()
    if weight is not None:
        loss = loss * weight
    return _reduce_loss(loss, _legacy_reduction(size_average, reduce, reduction), "l1_loss",
                        weight)


@accumulates_in_float32
def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """½ d² / beta where |d| < beta, else |d| - ½ beta  (d = x - y; beta = 0 gives L1)."""
    _check_pair(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    diff = input - _as_float_target(target, input)
    size = diff.abs()
    if beta == 0:
        loss = size
    else:
        loss = where(size < beta, 0.5 * diff * diff / beta, size - 0.5 * beta)
    return _reduce_loss(loss, _legacy_reduction(size_average, reduce, reduction),
                        "smooth_l1_loss")


@accumulates_in_float32
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """½ d² where |d| < delta, else delta · (|d| - ½ delta)  (d = x - y) (· weight);
    with weight, 'mean' divides by the number of elements (unlike mse_loss / l1_loss, as
    PyTorch)."""
    _check_pair(input, target, "huber_loss")
    _pointwise_weight(weight, input, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    diff = input - _as_float_target(target, input)
    size = diff.abs()
    loss = where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))
    if weight is not None:
        loss = loss * weight  # PyTorch's weighted 'mean' here divides by n, not Σ weight
    return _reduce_loss(loss, reduction, "huber_loss")


@accumulates_in_float32
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-(y log x + (1 - y) log(1 - x)) (· weight) for probabilities x in [0, 1]; each log
    is clamped to ≥ -100, as PyTorch."""
    op = "binary_cross_entropy"
    _require_tensor(input, "input", op)
    _require_tensor(target, "target", op)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target size {tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    b, x = input.backend, input.array  # checked on the arrays directly: no graph nodes
    inside = b.logical_and(b.greater_equal(x, 0), b.less_equal(x, 1))  # False at NaN
    if input.numel() and not b.item(b.all(inside)):
        raise RuntimeError(f"{op}: all elements of input should be between 0 and 1 (did you "
                           f"mean binary_cross_entropy_with_logits?); got values outside "
                           f"[0, 1] or NaN in input of shape {tuple(input.shape)}")
    loss = _nn.BinaryCrossEntropy.apply(input, _as_float_target(target, input))
    if weight is not None:
        loss = loss * weight
    loss = _reduce_loss(loss, _legacy_reduction(size_average, reduce, reduction), op)
    return shown_as(loss, "BinaryCrossEntropyBackward0")


@accumulates_in_float32
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of sigmoid(x), computed stably from the logits x:

        ℓ = (1 - y) · x + (1 + (pos_weight - 1) · y) · softplus(-x)    (· weight)

    pos_weight (broadcast over the last dim, one per class) weighs the positive term.
    """
    op = "binary_cross_entropy_with_logits"
    _require_tensor(input, "input", op)
    _require_tensor(target, "target", op)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target size {tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    target = _as_float_target(target, input)
    softplus_neg = _nn.Softplus.apply(-input)  # -log sigmoid(x)
    if pos_weight is not None:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus_neg
    else:
        loss = (1 - target) * input + softplus_neg
    if weight is not None:
        loss = loss * weight
    loss = _reduce_loss(loss, _legacy_reduction(size_average, reduce, reduction), op)
    return shown_as(loss, "BinaryCrossEntropyWithLogitsBackward0")


@accumulates_in_float32
def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Pointwise KL(target ‖ exp(input)) for log-probabilities `input`:

        y · (log y - x)   (0 where y = 0),   or e^y · (y - x) with log_target=True.

    reduction 'batchmean' divides the sum by the batch size (the true KL divergence);
    'mean' divides by the number of elements, as PyTorch. As in PyTorch, a negative
    target gives NaN, and the gradient with respect to the target is NaN where y = 0
    (d(y log y)/dy = log y + 1 has no value there).
    """
    op = "kl_div"
    _check_pair(input, target, op)
    target = _as_float_target(target, input)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        # y log y := 0 at y = 0; the unused branch sends the target a 0 · log 0 = NaN
        # gradient there, which is PyTorch's
        loss = where(target == 0, 0.0, target * log(target)) - target * input
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce_loss(loss, reduction, op)


def _class_layout(input: Tensor, target: Tensor, op: str):
    """(N, C, d1, ...) logits -> (M, C) rows and (M,) targets (classes on dim 1)."""
    if input.ndim == 0:
        raise RuntimeError(f"{op}: input must have at least 1 dim (C,) or (N, C, ...), got "
                           f"a 0-d tensor")
    if input.ndim == 1:
        return input.unsqueeze(0), target.reshape(1), input.shape[0]
    c = input.shape[1]
    if target.shape != input.shape[:1] + input.shape[2:]:
        raise RuntimeError(f"{op}: expected target of shape "
                           f"{tuple(input.shape[:1] + input.shape[2:])} for input of shape "
                           f"{tuple(input.shape)} (classes on dim 1), got {tuple(target.shape)}")
    rows = input if input.ndim == 2 else input.movedim(1, -1).reshape(-1, c)
    return rows, target.reshape(-1), c


def _check_class_target(target: Tensor, c: int, ignore_index: int, input, op: str) -> None:
    if target.dtype.is_floating_point or target.dtype is dt.bool_:
        raise RuntimeError(f"{op}: class-index target must be an integer (int64) tensor, got "
                           f"{target.dtype} of shape {tuple(target.shape)} (for class "
                           f"probabilities give a float target of the input's shape "
                           f"{tuple(input.shape)})")
    if not target.numel():
        return
    b, t = target.backend, target.array  # checked on the arrays: no graph nodes per step
    bad = b.logical_and(b.not_equal(t, ignore_index),
                        b.logical_or(b.less(t, 0), b.greater_equal(t, c)))
    if b.item(b.any(bad)):
        value = int(b.to_numpy(t)[b.to_numpy(bad)].reshape(-1)[0])
        raise IndexError(f"{op}: target {value} is out of bounds for {c} classes (input "
                         f"of shape {tuple(input.shape)}); valid targets are 0..{c - 1} or "
                         f"ignore_index={ignore_index}")


def _check_class_weight(weight, c: int, op: str) -> None:
    if weight is not None and tuple(weight.shape) != (c,):
        raise RuntimeError(f"{op}: weight must have shape ({c},) (one per class), got "
                           f"{tuple(weight.shape)}")


@casts_to_float32("cross_entropy")
@accumulates_in_float32
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits (C,), (N, C) or (N, C, d1, ...) and either class
    indices (int64; shape (), (N,) or (N, d1, ...)) or class probabilities (float, the
    input's shape).

    Class indices: ℓᵢ = -w_tᵢ · log softmax(xᵢ)_tᵢ, with label smoothing ε mixing in
    ε/C of every class; targets equal to ignore_index count for nothing. 'mean' divides by
    Σ w_tᵢ over the counted samples. One fused op (`ops.nn.CrossEntropy`), stable for huge
    logits. Probabilities: ℓᵢ = -Σ_c w_c · p̃_ic · log softmax(xᵢ)_c with
    p̃ = (1 - ε) p + ε/C; 'mean' divides by the number of samples.
    """
    op = "cross_entropy"
    _require_tensor(input, "input", op)
    _require_tensor(target, "target", op)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got "
                         f"{reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: input (logits) must be floating point, got {input.dtype}")
    if target.dtype.is_floating_point and target.shape == input.shape:
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing, op)
    rows, flat_target, c = _class_layout(input, target, op)
    _check_class_target(flat_target, c, ignore_index, input, op)
    _check_class_weight(weight, c, op)
    losses = _nn.cross_entropy_per_sample(rows, flat_target.to(dt.int64), weight,
                                          ignore_index, label_smoothing)
    if reduction == "none":
        loss = losses.reshape(target.shape)
    elif reduction == "sum":
        loss = losses.sum()
    else:
        loss = losses.sum() / _counted_weight(flat_target, weight, ignore_index, input)
    return shown_as(loss, "NllLossBackward0")  # as PyTorch prints it (log_softmax + nll)


def _counted_weight(target: Tensor, weight, ignore_index: int, like: Tensor) -> Tensor:
    """Σ over the counted samples of their class weight (their number without weights)."""
    b = target.backend
    if weight is None:  # a count: computed on the arrays (no graph nodes)
        count = b.sum(b.not_equal(target.array, ignore_index))
        return Tensor._make(b.astype(count, like.dtype), b)
    valid = (target != ignore_index).to(like.dtype)
    safe = where(target != ignore_index, target, 0)
    return (weight.detach()[safe] * valid).sum()


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing, op):
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    _check_class_weight(weight, c, op)
    logp = _reduce.log_softmax(input, 0 if input.ndim == 1 else 1)
    probs = target if label_smoothing == 0 else (
        target * (1 - label_smoothing) + label_smoothing / c)
    if weight is not None:
        shape = (c,) if input.ndim == 1 else (1, c) + (1,) * (input.ndim - 2)
        probs = probs * weight.reshape(shape)
    losses = -(probs * logp).sum(dim=0 if input.ndim == 1 else 1)
    if reduction == "mean" and input.ndim == 1:
        return losses
    return _reduce_loss(losses, reduction, op)


@casts_to_float32("nll_loss")
@accumulates_in_float32
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """ℓᵢ = -w_tᵢ · input[i, tᵢ] for log-probabilities input (C,), (N, C) or (N, C, d...)
    and class indices target; ignore_index counts for nothing; 'mean' divides by Σ w_tᵢ."""
    op = "nll_loss"
    _require_tensor(input, "input", op)
    _require_tensor(target, "target", op)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got "
                         f"{reduction!r}")
    rows, flat_target, c = _class_layout(input, target, op)
    _check_class_target(flat_target, c, ignore_index, input, op)
    _check_class_weight(weight, c, op)
    flat_target = flat_target.to(dt.int64)
    valid = flat_target != ignore_index
    safe = where(valid, flat_target, 0)
    picked = rows[arange(rows.shape[0], device=input.device), safe]
    w = valid.to(input.dtype)
    if weight is not None:
        w = w * weight.detach()[safe]
    losses = -picked * w
    if reduction == "none":
        loss = losses.reshape(target.shape)
    elif reduction == "sum":
        loss = losses.sum()
    else:
        loss = losses.sum() / w.sum()
    return shown_as(loss, "NllLossBackward0")


