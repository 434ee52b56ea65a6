"""Fused neural-network ops: linear, cross-entropy, normalisation, GELU, softplus,
binary CE, one LSTM / GRU time step.

Each could be written as a composition of smaller ops (and its gradient would then come
for free); they get their own `Function` because one forward/backward pair is faster,
keeps fewer intermediate arrays alive, or stays finite where the composition would not
(log-softmax for huge logits, log(0) in binary cross-entropy).

The trick that keeps gradients of gradients exact: `forward` caches arrays (the
log-probabilities, the normalised input) that `backward` reuses when it runs in the usual
no-grad mode. When the backward pass is itself being recorded (`create_graph=True`),
`backward` recomputes those values from the saved inputs with differentiable Tensor ops,
so that the second derivative sees how they depend on the input.
"""

from __future__ import annotations

import math

from .. import dtypes as dt
from ..engine import Function, Tensor, is_grad_enabled
from .elementwise import erf, exp, log, rsqrt, sigmoid, tanh
from .movement import cat
from .precision import sum_array
from .reduce import log_softmax

# ---------------------------------------------------------------------------------------
# Linear layer: y = x Wᵀ + b as one node
# ---------------------------------------------------------------------------------------


class Linear(Function):
    """y = x Wᵀ + b      x (*, in), W (out, in), b (out,) or None  ->  y (*, out)

        dL/dx = G W             dL/dW = Gᵀ x             dL/db = Σ G
    with G = dL/dy (*, out), and the batch axes (*) flattened into one for Gᵀ x and Σ G.

    The composite `x @ W.mT + b` records three nodes (transpose, matmul, add) and its
    backward runs about twice as many ops (the transposes again, and the sum over the
    broadcast bias done by the engine); for the small layers of an MLP that Python
    overhead is most of the time, so a layer is one node here.

    The batch axes are flattened before multiplying: one 2-D product goes to BLAS in one
    call, while NumPy's matmul of a (B, T, in) stack with the transposed weight loops over
    the stack without BLAS (several times slower for the layers of a small GPT).
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        b = ctx.backend
        ctx.save_for_backward(x, weight)
        x2 = b.reshape(x.array, (-1, x.array.shape[-1]))                          # (M, in)
        y = b.matmul(x2, b.transpose(weight.array))                               # (M, out)
        if bias is not None:
            y = b.add(y, bias.array)
        return b.reshape(y, tuple(x.array.shape[:-1]) + (weight.array.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        if not is_grad_enabled():  # the usual case: the same math on the arrays, no nodes
            return Linear._backward_arrays(ctx.backend, grad, x, weight, need_x, need_w,
                                           need_b)
        g2 = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])      # (M, out)
        gx = gw = gb = None
        if need_x:
            gx = (g2 @ weight).reshape(x.shape)
        if need_w:
            x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])               # (M, in)
            gw = g2.mT @ x2
        if need_b:
            gb = g2.sum(0)
        return gx, gw, gb

    @staticmethod
    def _backward_arrays(b, grad, x, weight, need_x, need_w, need_b) -> tuple:
        """`backward` when it is not being recorded: G W, Gᵀ x and Σ G straight on arrays."""
        g = grad.array
        g2 = b.reshape(g, (-1, g.shape[-1]))                                    # (M, out)
        gx = None
        if need_x:
            gx = Tensor._make(b.reshape(b.matmul(g2, weight.array), x.array.shape), b)
        gw = gb = None
        if need_w:
            x2 = b.reshape(x.array, (-1, x.array.shape[-1]))                      # (M, in)
            gw = Tensor._make(b.matmul(b.transpose(g2), x2), b)
        if need_b:  # Σ over every row (float16: in float32, or 2048 + 1 = 2048)
            gb = Tensor._make(sum_array(b, g2, 0), b)
        return gx, gw, gb


# ---------------------------------------------------------------------------------------
# Cross-entropy with class indices: log-softmax and the negative log-likelihood in one op
# ---------------------------------------------------------------------------------------


class CrossEntropy(Function):
    """Per-sample cross-entropy of logits z (M, C) against class indices t (M,).

    With p = log_softmax(z), class weights w (all 1 when not given), label smoothing ε and
    vᵢ = 0 for ignored samples (tᵢ = ignore_index), else 1:

        ℓᵢ = vᵢ · [ -(1 - ε) · w_tᵢ · p_{i,tᵢ}  -  (ε / C) · Σ_c w_c · p_ic ]

    which is -Σ_c q_ic · p_ic for the target distribution
    q_ic = vᵢ · [(1 - ε) · w_tᵢ · [c = tᵢ] + (ε / C) · w_c], so

        dℓᵢ/dz_ic = softmax(z_i)_c · Σ_c' q_ic' - q_ic

    The one-hot part of q is never built: it is one indexed subtraction per sample.
    Stable for any finite logits (the max is subtracted before exponentiating).
    """

    @staticmethod
    def forward(ctx, logits, target, valid, weight, label_smoothing):
        b = ctx.backend
        z = logits.array
        m, c = z.shape
        shifted = b.subtract(z, b.max(z, axis=-1, keepdims=True))  # ≤ 0: exp can't overflow
        # p = (z - max) - log Σ e^(z - max): subtracting the max first keeps every digit
        logp = b.subtract(shifted, b.log(b.sum(b.exp(shifted), axis=-1, keepdims=True)))
        t = target.array                                  # ignored samples already -> 0
        valid = b.astype(valid.array, logits.dtype)       # (M,) 1.0, or 0.0 where ignored
        picked = b.reshape(b.take_along_axis(logp, b.reshape(t, (m, 1)), 1), (m,))
        w_t = valid if weight is None else b.multiply(b.getitem(weight.array, t), valid)
        loss = b.multiply(-(1.0 - label_smoothing), b.multiply(w_t, picked))
        mass = b.multiply(1.0 - label_smoothing, w_t)    # Σ_c q_ic, filled in below
        if label_smoothing > 0:
            wp = logp if weight is None else b.multiply(logp, weight.array)
            w_sum = float(c) if weight is None else b.sum(weight.array)
            smooth = b.multiply(b.sum(wp, axis=-1), valid)
            loss = b.subtract(loss, b.multiply(label_smoothing / c, smooth))
            mass = b.add(mass, b.multiply(valid, label_smoothing * w_sum / c))
        ctx.save_for_backward(logits)
        ctx.logp, ctx.w_t, ctx.mass, ctx.valid = logp, w_t, mass, valid
        return loss

    @staticmethod
    def backward(ctx, grad):
        (logits,) = ctx.saved_tensors
        target, _, weight, label_smoothing = ctx.inputs[1:]
        b = ctx.backend
        m, c = logits.shape
        rows = b.arange(0, m, 1, target.dtype)
        w_picked = b.multiply(ctx.w_t, 1.0 - label_smoothing)  # the one-hot part of q
        if not is_grad_enabled():  # the usual case: the same math on the arrays, no nodes
            dense = b.multiply(b.exp(ctx.logp), b.reshape(ctx.mass, (m, 1)))
            if label_smoothing > 0:
                dense = b.subtract(dense, CrossEntropy._smoothing(ctx, logits, weight, m, c))
            out = b.index_add(b.multiply(b.reshape(grad.array, (m, 1)), dense),
                              (rows, target.array), b.negative(b.multiply(grad.array, w_picked)))
            return Tensor._make(b.astype(out, logits.dtype), b), None, None, None, None
        logp = log_softmax(logits, -1)  # recording: keep logp's dependence on z
        mass = Tensor._make(b.reshape(ctx.mass, (m, 1)), b)
        g = grad.unsqueeze(-1)
        dense = exp(logp) * mass
        if label_smoothing > 0:
            dense = dense - Tensor._make(CrossEntropy._smoothing(ctx, logits, weight, m, c), b)
        grad_logits = g * dense
        picked = grad * Tensor._make(w_picked, b)
        grad_logits = grad_logits.index_put((Tensor._make(rows, b), target), -picked,
                                            accumulate=True)
        return grad_logits, None, None, None, None

    @staticmethod
    def _smoothing(ctx, logits: Tensor, weight, m: int, c: int):
        """The label-smoothing part of q, (ε / C) · vᵢ · w_c, as an (M, C) array."""
        b = ctx.backend
        w = 1.0 if weight is None else weight.array
        spread = b.multiply(b.reshape(ctx.valid, (m, 1)),
                            b.multiply(b.ones((1, c), logits.dtype), w))
        return b.multiply(spread, ctx.inputs[4] / c)


def cross_entropy_per_sample(logits: Tensor, target: Tensor, weight: Tensor | None,
                             ignore_index: int, label_smoothing: float) -> Tensor:
    """ℓ (M,) for logits (M, C) and int64 class indices (M,) (see `CrossEntropy`)."""
    b = target.backend
    valid = b.not_equal(target.array, ignore_index)
    safe = Tensor._make(b.where(valid, target.array, 0), b)
    w = None if weight is None else weight.detach()
    return CrossEntropy.apply(logits, safe, Tensor._make(valid, b), w, float(label_smoothing))


# ---------------------------------------------------------------------------------------
# Normalisation over some axes (layer_norm, batch_norm in training, group_norm)
# ---------------------------------------------------------------------------------------


class Normalize(Function):
    """x̂ = (x - μ) · r,   μ = mean(x),  r = 1 / √(var(x) + eps)   (over `axes`, biased var)

        dL/dx = r · (g - mean(g) - x̂ · mean(g · x̂))            (means over `axes`)

    layer_norm normalises over the trailing axes, batch_norm over all but the channel
    axis, group_norm over each group; each then applies its own affine γ·x̂ + β.
    """

    @staticmethod
    def forward(ctx, x, axes, eps):
        b = ctx.backend
        mean = b.mean(x.array, axis=axes, keepdims=True)
        centered = b.subtract(x.array, mean)
        var = b.mean(b.multiply(centered, centered), axis=axes, keepdims=True)
        rstd = b.divide(1.0, b.sqrt(b.add(var, eps)))
        xhat = b.astype(b.multiply(centered, rstd), x.dtype)
        ctx.save_for_backward(x)
        ctx.xhat, ctx.rstd = xhat, b.astype(rstd, x.dtype)
        return xhat

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        _, axes, eps = ctx.inputs
        if is_grad_enabled():  # recording: x̂ and r as differentiable functions of x
            centered = x - x.mean(dim=axes, keepdim=True)
            rstd = rsqrt((centered * centered).mean(dim=axes, keepdim=True) + eps)
            xhat = centered * rstd
        else:
            xhat = Tensor._make(ctx.xhat, ctx.backend)
            rstd = Tensor._make(ctx.rstd, ctx.backend)
        mean_g = grad.mean(dim=axes, keepdim=True)
        mean_gx = (grad * xhat).mean(dim=axes, keepdim=True)
        return rstd * (grad - mean_g - xhat * mean_gx), None, None


# ---------------------------------------------------------------------------------------
# One formula for arrays and for Tensors (fused ops whose backward may be recorded)
# ---------------------------------------------------------------------------------------


class _TensorMath:
    """The few backend methods some fused ops write their math with (`add`, `subtract`,
    `multiply`, `tanh`, `exp`, `erf`, `getitem`, `concatenate`), as differentiable Tensor ops.

    `Gelu`, `LSTMStep` and `GRUStep` write each formula once, against "an object with these
    methods" `m`: forward and the usual backward pass the backend (arrays, no nodes), and a
    backward that is being recorded (`create_graph=True`) passes this class, so the same
    formulas build a graph whose own gradient is exact.
    """

    @staticmethod
    def add(x: Tensor, y) -> Tensor:
        return x + y

    @staticmethod
    def subtract(x, y: Tensor) -> Tensor:
        return x - y

    @staticmethod
    def multiply(x: Tensor, y) -> Tensor:
        return x * y

    @staticmethod
    def tanh(x: Tensor) -> Tensor:
        return tanh(x)

    @staticmethod
    def exp(x: Tensor) -> Tensor:
        return exp(x)

    @staticmethod
    def erf(x: Tensor) -> Tensor:
        return erf(x)

    @staticmethod
    def getitem(x: Tensor, index) -> Tensor:
        return x[index]

    @staticmethod
    def concatenate(tensors, axis: int = 0) -> Tensor:
        return cat(list(tensors), axis)


def _sigmoid(m, x):
    """σ(x) = ½ (1 + tanh(x / 2)) (finite for any x) with the methods of `m`."""
    return m.multiply(m.add(m.tanh(m.multiply(x, 0.5)), 1.0), 0.5)


def _columns(m, x, start: int, stop: int):
    """x[..., start:stop] with the methods of `m` (a view on arrays)."""
    return m.getitem(x, (Ellipsis, slice(start, stop)))


def _sigmoid_slope(m, y):
    """dσ/dx = y (1 - y) for y = σ(x)."""
    return m.multiply(y, m.subtract(1.0, y))


def _tanh_slope(m, y):
    """d tanh/dx = 1 - y² for y = tanh(x)."""
    return m.subtract(1.0, m.multiply(y, y))


# ---------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gelu(Function):
    """approximate='none':  y = x · Φ(x) = ½ x (1 + erf(x / √2))
                          dy/dx = Φ(x) + x · φ(x),   φ(x) = e^(-x²/2) / √(2π)
    approximate='tanh':  y = ½ x (1 + tanh u),   u = √(2/π) (x + 0.044715 x³)
                          dy/dx = ½ (1 + tanh u) + ½ x (1 - tanh² u) · √(2/π) (1 + 3·0.044715 x²)
    (the "gate" is Φ(x), or ½ (1 + tanh u); ½ (1 - tanh² u) = 2 · gate · (1 - gate))
    """

    @staticmethod
    def forward(ctx, x, approximate):
        b = ctx.backend
        ctx.save_for_backward(x)
        ctx.gate = Gelu._gate(b, x.array, approximate)  # reused by the usual backward
        return b.astype(b.multiply(x.array, ctx.gate), x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        approximate = ctx.inputs[1]
        if not is_grad_enabled():  # the usual case: the formula on arrays, no nodes
            b = ctx.backend
            slope = Gelu._slope(b, x.array, ctx.gate, approximate)
            return Tensor._make(b.astype(b.multiply(grad.array, slope), x.dtype), b), None
        # recording: the gate as a differentiable function of x
        m = _TensorMath
        return grad * Gelu._slope(m, x, Gelu._gate(m, x, approximate), approximate), None

    @staticmethod
    def _gate(m, x, approximate: str):
        """Φ(x), or ½ (1 + tanh u), with the methods of `m`."""
        if approximate == "tanh":
            cube = m.multiply(m.multiply(x, x), x)
            u = m.multiply(m.add(x, m.multiply(cube, 0.044715)), _SQRT_2_OVER_PI)
            return m.multiply(m.add(m.tanh(u), 1.0), 0.5)
        return m.multiply(m.add(m.erf(m.multiply(x, _INV_SQRT_2)), 1.0), 0.5)

    @staticmethod
    def _slope(m, x, gate, approximate: str):
        """dy/dx from the gate (the class docstring), with the methods of `m`."""
        x2 = m.multiply(x, x)
        if approximate == "tanh":
            poly = m.multiply(m.add(m.multiply(x2, 3 * 0.044715), 1.0),
                              m.multiply(x, 2 * _SQRT_2_OVER_PI))
            rest = m.multiply(m.multiply(gate, m.subtract(1.0, gate)), poly)
        else:
            rest = m.multiply(m.multiply(x, _INV_SQRT_2PI), m.exp(m.multiply(x2, -0.5)))
        return m.add(gate, rest)


class Softplus(Function):
    """y = log(1 + eᶻ), computed as max(z, 0) + log(1 + e^(-|z|)) (finite for any z)
    dy/dz = sigmoid(z)   (exact at z = 0, where the max/abs form's pieces are not smooth)"""

    @staticmethod
    def forward(ctx, z):
        b = ctx.backend
        ctx.save_for_backward(z)
        zd = z.array
        return b.add(b.maximum(zd, 0), b.log1p(b.exp(b.negative(b.abs(zd)))))

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * sigmoid(z)


# ---------------------------------------------------------------------------------------
# Binary cross-entropy on probabilities
# ---------------------------------------------------------------------------------------


class BinaryCrossEntropy(Function):
    """ℓ = -(t · log x + (1 - t) · log(1 - x)), each log clamped to ≥ -100 (as PyTorch),
    so that x = 0 or 1 gives a finite loss.

        dℓ/dx = (x - t) / max(x (1 - x), 1e-12)         dℓ/dt = log(1 - x) - log x

    The target's gradient is not clamped, as PyTorch's: +inf at x = 0, -inf at x = 1.
    """

    @staticmethod
    def forward(ctx, x, t):
        b = ctx.backend
        ctx.save_for_backward(x, t)
        log_x = b.maximum(b.log(x.array), -100.0)
        log_1mx = b.maximum(b.log(b.subtract(1.0, x.array)), -100.0)
        loss = b.negative(b.add(b.multiply(t.array, log_x),
                                b.multiply(b.subtract(1.0, t.array), log_1mx)))
        return b.astype(loss, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        gx = gt = None
        if ctx.needs_input_grad[0] and not is_grad_enabled():  # the usual case: one node
            b = ctx.backend
            xd = x.array
            slope = b.divide(b.subtract(xd, t.array),
                             b.maximum(b.multiply(xd, b.subtract(1, xd)), 1e-12))
            gx = grad * Tensor._make(b.astype(slope, x.dtype), b)
        elif ctx.needs_input_grad[0]:  # recording: the same formula, differentiable
            gx = grad * (x - t) / (x * (1 - x)).clamp(min=1e-12)
        if ctx.needs_input_grad[1]:
            gt = grad * (log(1 - x) - log(x))
        return gx, gt


# ---------------------------------------------------------------------------------------
# Recurrent steps: one LSTM / GRU time step as one node
# ---------------------------------------------------------------------------------------


class LSTMStep(Function):
    """One LSTM step from the two projections a = x W_ihᵀ + b_ih and b = h W_hhᵀ + b_hh
    (N, 4H) and the cell state c (N, H); two outputs h' and c' (N, H), PyTorch's gate order:

        z = a + b = [z_i, z_f, z_g, z_o]
        i, f, g, o = σ(z_i), σ(z_f), tanh(z_g), σ(z_o)
        c' = f · c + i · g          h' = o · tanh(c')

    With G_h = dL/dh' and G_c = dL/dc' (zeros for an output that got no gradient):

        dc'   = G_c + G_h · o · (1 - tanh² c')     (c' reaches L directly and through h')
        dz_i  = dc' · g · i (1 - i)           dz_f = dc' · c · f (1 - f)
        dz_g  = dc' · i · (1 - g²)            dz_o = G_h · tanh(c') · o (1 - o)
        dL/da = dL/db = dz = [dz_i, dz_f, dz_g, dz_o]          dL/dc = dc' · f

    One node instead of the composite's ~12 (add, split, three σ, two tanh, three products,
    a sum): the recurrent layers run it once per time step, and at their small sizes the
    per-node Python overhead is most of the time.
    """

    @staticmethod
    def forward(ctx, a, b, c):
        ctx.save_for_backward(a, b, c)
        ctx.state = LSTMStep._cell(ctx.backend, a.array, b.array, c.array)
        gates, c_new, tanh_c = ctx.state
        return LSTMStep._h(ctx.backend, gates, tanh_c), c_new

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        a, b, c = ctx.saved_tensors
        if not is_grad_enabled():  # the usual case: the formulas on arrays, no nodes
            m, state = ctx.backend, ctx.state
            grad_h, grad_c, c = grad_h.array, grad_c.array, c.array
        else:  # recording: the activations as differentiable functions of a, b, c
            m = _TensorMath
            state = LSTMStep._cell(m, a, b, c)
        dz, dc = LSTMStep._partials(m, state, c, grad_h, grad_c)
        if m is _TensorMath:
            return dz, dz, dc
        backend = ctx.backend
        dz = Tensor._make(dz, backend)
        return dz, dz, Tensor._make(dc, backend)

    @staticmethod
    def _cell(m, a, b, c) -> tuple:
        """([i, f, g, o], c', tanh c') from the pre-activations, with the methods of `m`."""
        hidden = c.shape[-1]
        z = m.add(a, b)
        s = _sigmoid(m, z)  # σ of all four blocks in one call; g's block is replaced
        i, f, o = (_columns(m, s, k * hidden, (k + 1) * hidden) for k in (0, 1, 3))
        g = m.tanh(_columns(m, z, 2 * hidden, 3 * hidden))
        c_new = m.add(m.multiply(f, c), m.multiply(i, g))
        return (i, f, g, o), c_new, m.tanh(c_new)

    @staticmethod
    def _h(m, gates: tuple, tanh_c):
        """h' = o · tanh(c')."""
        return m.multiply(gates[3], tanh_c)

    @staticmethod
    def _partials(m, state: tuple, c, grad_h, grad_c) -> tuple:
        """(dz (N, 4H), dL/dc (N, H)): the formulas of the class docstring."""
        (i, f, g, o), _, tanh_c = state
        dc_new = m.add(grad_c, m.multiply(m.multiply(grad_h, o), _tanh_slope(m, tanh_c)))
        dz_i = m.multiply(m.multiply(dc_new, g), _sigmoid_slope(m, i))
        dz_f = m.multiply(m.multiply(dc_new, c), _sigmoid_slope(m, f))
        dz_g = m.multiply(m.multiply(dc_new, i), _tanh_slope(m, g))
        dz_o = m.multiply(m.multiply(grad_h, tanh_c), _sigmoid_slope(m, o))
        return m.concatenate((dz_i, dz_f, dz_g, dz_o), -1), m.multiply(dc_new, f)


class GRUStep(Function):
    """One GRU step from the two projections a = x W_ihᵀ + b_ih and b = h W_hhᵀ + b_hh
    (N, 3H) and the hidden state h (N, H); output h' (N, H), PyTorch's gate order:

        r = σ(a_r + b_r)      u = σ(a_z + b_z)      n = tanh(a_n + r · b_n)
        h' = (1 - u) · n + u · h  =  n + u · (h - n)

    (u is PyTorch's z). With G = dL/dh':

        dn_pre = G · (1 - u) · (1 - n²)       (n_pre = a_n + r · b_n)
        dr_pre = dn_pre · b_n · r (1 - r)      du_pre = G · (h - n) · u (1 - u)
        dL/da = [dr_pre, du_pre, dn_pre]       dL/db = [dr_pre, du_pre, dn_pre · r]
        dL/dh = G · u

    One node instead of the composite's ~14, as `LSTMStep`.
    """

    @staticmethod
    def forward(ctx, a, b, h):
        ctx.save_for_backward(a, b, h)
        ctx.state = GRUStep._cell(ctx.backend, a.array, b.array, h.array)
        return ctx.state[-1]

    @staticmethod
    def backward(ctx, grad):
        a, b, h = ctx.saved_tensors
        if not is_grad_enabled():  # the usual case: the formulas on arrays, no nodes
            m, state = ctx.backend, ctx.state
            grad, h = grad.array, h.array
        else:  # recording: the activations as differentiable functions of a, b, h
            m = _TensorMath
            state = GRUStep._cell(m, a, b, h)
        grads = GRUStep._partials(m, state, h, grad)
        if m is _TensorMath:
            return grads
        return tuple(Tensor._make(g, ctx.backend) for g in grads)

    @staticmethod
    def _cell(m, a, b, h) -> tuple:
        """(r, u, n, b_n, h') from the pre-activations, with the methods of `m`."""
        hidden = h.shape[-1]
        ru = _sigmoid(m, m.add(_columns(m, a, 0, 2 * hidden), _columns(m, b, 0, 2 * hidden)))
        r, u = _columns(m, ru, 0, hidden), _columns(m, ru, hidden, 2 * hidden)
        b_n = _columns(m, b, 2 * hidden, 3 * hidden)
        n = m.tanh(m.add(_columns(m, a, 2 * hidden, 3 * hidden), m.multiply(r, b_n)))
        return r, u, n, b_n, m.add(n, m.multiply(u, m.subtract(h, n)))

    @staticmethod
    def _partials(m, state: tuple, h, grad) -> tuple:
        """(dL/da, dL/db, dL/dh): the formulas of the class docstring."""
        r, u, n, b_n, _ = state
        dn = m.multiply(m.multiply(grad, m.subtract(1.0, u)), _tanh_slope(m, n))
        dr = m.multiply(m.multiply(dn, b_n), _sigmoid_slope(m, r))
        du = m.multiply(m.multiply(grad, m.subtract(h, n)), _sigmoid_slope(m, u))
        return (m.concatenate((dr, du, dn), -1), m.concatenate((dr, du, m.multiply(dn, r)), -1),
                m.multiply(grad, u))


def _step_inputs(op: str, a: Tensor, b: Tensor, state: Tensor, gates: int) -> tuple:
    """Check the shapes (a, b: (N, gates·H), state (N, H)) and bring the three tensors to
    one floating dtype (as the composite's type promotion would, e.g. under autocast)."""
    n, hidden = state.shape[0], state.shape[-1]
    if state.ndim != 2 or tuple(a.shape) != (n, gates * hidden) or a.shape != b.shape:
        raise RuntimeError(f"{op}: expected the projections of shape (N, {gates}·H) and the "
                           f"state (N, H), got {tuple(a.shape)}, {tuple(b.shape)} and "
                           f"{tuple(state.shape)}")
    dtype = dt.promote_types(dt.promote_types(a.dtype, b.dtype), state.dtype)
    if not dtype.is_floating_point:
        raise RuntimeError(f"{op}: expected floating-point tensors, got {a.dtype.name}, "
                           f"{b.dtype.name} and {state.dtype.name}")
    return tuple(t if t.dtype == dtype else t.to(dtype) for t in (a, b, state))


def lstm_step(a: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """(h', c') of one LSTM step from the input's projection a (N, 4H), the hidden state's
    projection b (N, 4H) and the cell state c (N, H) (see `LSTMStep`)."""
    return LSTMStep.apply(*_step_inputs("lstm_step", a, b, c, 4))


def gru_step(a: Tensor, b: Tensor, h: Tensor) -> Tensor:
    """h' of one GRU step from the input's projection a (N, 3H), the hidden state's
    projection b (N, 3H) and the hidden state h (N, H) (see `GRUStep`)."""
    return GRUStep.apply(*_step_inputs("gru_step", a, b, h, 3))
