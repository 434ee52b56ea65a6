"""Convolution and pooling: conv2d (conv1d is conv2d of height 1), conv_transpose2d, pools.

How a convolution is computed here: im2col + one matrix product
----------------------------------------------------------------
A 2-D convolution slides a KH x KW window over the (zero-padded) input. For every output
pixel (n, ho, wo) the window holds C x KH x KW numbers; lay each window out as one column
of a matrix `cols` of shape (C·KH·KW, N·Ho·Wo) ("im2col"), and the convolution becomes

    y = W @ cols        with W reshaped to (O, C·KH·KW);  y: (O, N·Ho·Wo)

one matrix product for the whole batch, which BLAS does fast (one large product, not N
small ones). The windows are read through a strided *view* of the input
(`backend.sliding_windows`: no Python loop over pixels); only the final reshape into
`cols` copies. The result is returned as an (N, O, Ho, Wo) view of the (O, N, Ho, Wo)
product, with no transposing copy. With `groups = G` the channels split into G
independent blocks and the product is batched over G.

The gradient with respect to the input is the adjoint ("col2im"): Wᵀ @ dL/dy gives every
window's gradient, and each window sends it back to the pixels it was read from,
overlapping windows adding up (`backend.fold_windows`: one vectorised add per kernel
offset, KH·KW in all). That adjoint is exactly the *transposed convolution*, so
`conv_transpose2d` is the same code.

Three Functions, one bilinear form
----------------------------------
Write B(x, W, g) = Σ conv2d(x, W) ⊙ g. Then

    Conv2d(x, W)              = ∂B/∂g      (the convolution)
    ConvTranspose2d(g, W)     = ∂B/∂x      (the input gradient = transposed convolution)
    Conv2dWeightGrad(x, g)    = ∂B/∂W      (the weight gradient)

Each is linear in both of its arguments, and the backward of each is made of the other
two; so gradients of gradients (of any order) work, written with these same three ops.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import dtypes as dt
from ..engine import Function, Tensor
from .autocast import _autocast_state, autocast_inputs


class ConvGeometry(NamedTuple):
    """Everything about a convolution or pool except the arrays.

    kernel    (KH, KW)                 stride    (sh, sw)
    dilation  (dh, dw)                 padding   (top, bottom, left, right)
    groups    G                        input_hw  (H, W) of the unpadded input
    output_hw (Ho, Wo)
    """

    kernel: tuple
    stride: tuple
    dilation: tuple
    padding: tuple
    groups: int
    input_hw: tuple
    output_hw: tuple


# ---------------------------------------------------------------------------------------
# Array helpers (backend arrays in, backend arrays out)
# ---------------------------------------------------------------------------------------


def _windows(b, x, geo: ConvGeometry, pad_value=0.0):
    """(N, C, H, W) -> a strided view (N, C, Ho, Wo, KH, KW) of every window.

    win[n, c, ho, wo, i, j] = x_pad[n, c, ho·sh + i·dh, wo·sw + j·dw]
    """
    top, bottom, left, right = geo.padding
    if top or bottom or left or right:
        x = b.pad(x, ((0, 0),) * (x.ndim - 2) + ((top, bottom), (left, right)), pad_value)
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    ho, wo = geo.output_hw
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the dilated kernel's extent
    win = b.sliding_windows(x, (span_h, span_w), (x.ndim - 2, x.ndim - 1))
    # keep every sh-th window start and every dh-th element inside a window
    index = (Ellipsis, slice(0, ho * sh, sh), slice(0, wo * sw, sw),
             slice(None, None, dh), slice(None, None, dw))
    return b.getitem(win, index)


def _fold(b, windows, geo: ConvGeometry, shape: tuple):
    """The adjoint of `_windows` (zero padding): windows (..., Ho, Wo, KH, KW) -> shape.

    Every window element is added back to the input pixel it was read from; the padding
    rows and columns are then cut off.
    """
    top, bottom, left, right = geo.padding
    h, w = shape[-2:]
    padded = tuple(shape[:-2]) + (h + top + bottom, w + left + right)
    out = b.fold_windows(windows, padded, geo.stride, geo.dilation)
    if top or bottom or left or right:
        out = b.getitem(out, (Ellipsis, slice(top, top + h), slice(left, left + w)))
    return out


def _im2col(b, x, geo: ConvGeometry):
    """(N, C, H, W) -> cols (G, Cg·KH·KW, N·Ho·Wo): one column per window, the whole batch
    side by side, so that a convolution is one matrix product per group (not one per
    image: many small BLAS calls are slow, and stall when a core is busy).

    Rows are ordered (c, i, j) like the flattened weight, columns (n, ho, wo). Writing the
    copy in this order reads the input along its rows (wo), the fastest way to gather it.
    """
    n, c = x.shape[:2]
    (ho, wo), (kh, kw) = geo.output_hw, geo.kernel
    win = b.transpose(_windows(b, x, geo), (1, 4, 5, 0, 2, 3))     # (C, KH, KW, N, Ho, Wo)
    return b.reshape(win, (geo.groups, (c // geo.groups) * kh * kw, n * ho * wo))  # the copy


def _col2im(b, cols, geo: ConvGeometry, shape: tuple):
    """The adjoint of `_im2col`: cols (G, Cg·KH·KW, N·Ho·Wo) -> (N, C, H, W).

    One vectorised add per kernel offset (i, j), each of a contiguous (C, N, Ho, Wo) block
    of `cols` into a strided slice of the result; the result is built as (C, N, H, W) and
    returned as a transposed view.
    """
    n, c = shape[:2]
    (ho, wo), (kh, kw) = geo.output_hw, geo.kernel
    win = b.transpose(b.reshape(cols, (c, kh, kw, n, ho, wo)), (0, 3, 4, 5, 1, 2))
    out = _fold(b, win, geo, (c, n) + tuple(shape[2:]))               # (C, N, H, W)
    return b.transpose(out, (1, 0, 2, 3))


def _out_as_groups(b, y, geo: ConvGeometry):
    """(N, O, Ho, Wo) -> (G, O/G, N·Ho·Wo) (free when y is laid out as (O, N, Ho, Wo), as
    Conv2d's output and the elementwise results computed from it are)."""
    n, o, ho, wo = y.shape
    return b.reshape(b.transpose(y, (1, 0, 2, 3)), (geo.groups, o // geo.groups, n * ho * wo))


def _groups_as_out(b, y, geo: ConvGeometry, n: int):
    """(G, O/G, N·Ho·Wo) -> (N, O, Ho, Wo), a transposed view (no copy)."""
    g, og, _ = y.shape
    return b.transpose(b.reshape(y, (g * og, n) + tuple(geo.output_hw)), (1, 0, 2, 3))


def _weight_as_groups(b, w, geo: ConvGeometry):
    """(O, Cg, KH, KW) -> (G, O/G, Cg·KH·KW)."""
    o = w.shape[0]
    return b.reshape(w, (geo.groups, o // geo.groups, -1))


# ---------------------------------------------------------------------------------------
# The convolution family
# ---------------------------------------------------------------------------------------


class Conv2d(Function):
    """y[n, o, ho, wo] = Σ_{c, i, j} x_pad[n, c, ho·sh + i·dh, wo·sw + j·dw] · W[o, c, i, j]
    (c running over the input channels of o's group)

    dL/dx = conv_transpose2d(dL/dy, W)           (col2im of Wᵀ · dL/dy)
    dL/dW = Σ_{n, ho, wo} dL/dy · window          (dL/dy times the im2col matrix)

    x: (N, C, H, W),  W: (O, C/G, KH, KW),  y: (N, O, Ho, Wo)
    The im2col matrix is kept for the weight gradient when W needs one.
    """

    @staticmethod
    def forward(ctx, x, weight, geo):
        ctx.save_for_backward(x, weight)
        b = ctx.backend
        cols = _im2col(b, x.array, geo)                           # (G, Cg·K, N·Ho·Wo)
        if ctx.needs_input_grad and ctx.needs_input_grad[1]:
            ctx.cols = cols
        wmat = _weight_as_groups(b, weight.array, geo)            # (G, O/G, Cg·K)
        return _groups_as_out(b, b.matmul(wmat, cols), geo, x.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        geo = ctx.inputs[2]
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = ConvTranspose2d.apply(grad, weight, geo)
        if ctx.needs_input_grad[1]:
            gw = Conv2dWeightGrad.apply(x, grad, geo, ctx.cols)
        return gx, gw, None


class ConvTranspose2d(Function):
    """x = conv_transpose2d(y, W): the adjoint of Conv2d in its input (col2im of Wᵀ · y)
    x[n, c, h, w] = Σ over every (o, ho, wo, i, j) whose window reads pixel (h, w):
                    y[n, o, ho, wo] · W[o, c, i, j]

    dL/dy = conv2d(dL/dx, W)          dL/dW = Conv2dWeightGrad(dL/dx, y)

    y: (N, O, Ho, Wo),  W: (O, C/G, KH, KW),  x: (N, C, H, W) with (H, W) = geo.input_hw

    Computed as one product Wᵀ · y (per group) and a col2im of K·K slice-adds; profiled
    against the alternative, a convolution of the zero-padded y with the flipped kernel
    as one product over its im2col, this was 5x faster for the W6 CNN's second layer (the
    padded im2col is (O·K·K, N·H·W), larger than col2im's (C·K·K, N·Ho·Wo) when O >= C).
    """

    @staticmethod
    def forward(ctx, y, weight, geo):
        ctx.save_for_backward(y, weight)
        b = ctx.backend
        n = y.shape[0]
        c = weight.shape[1] * geo.groups
        wmat_t = b.transpose(_weight_as_groups(b, weight.array, geo), (0, 2, 1))
        cols = b.matmul(wmat_t, _out_as_groups(b, y.array, geo))  # (G, Cg·K, N·Ho·Wo)
        return _col2im(b, cols, geo, (n, c) + tuple(geo.input_hw))

    @staticmethod
    def backward(ctx, grad):
        y, weight = ctx.saved_tensors
        geo = ctx.inputs[2]
        gy = gw = None
        if ctx.needs_input_grad[0]:
            gy = Conv2d.apply(grad, weight, geo)
        if ctx.needs_input_grad[1]:
            gw = Conv2dWeightGrad.apply(grad, y, geo)
        return gy, gw, None


class Conv2dWeightGrad(Function):
    """gW[o, c, i, j] = Σ_{n, ho, wo} y[n, o, ho, wo] · x_pad[n, c, ho·sh + i·dh, wo·sw + j·dw]
    (the gradient of Σ conv2d(x, W) ⊙ y with respect to W)

    dL/dx = conv_transpose2d(y, dL/dgW)       dL/dy = conv2d(x, dL/dgW)

    `cols`, when given, is x's im2col matrix already computed by Conv2d's forward.
    """

    @staticmethod
    def forward(ctx, x, y, geo, cols=None):
        ctx.save_for_backward(x, y)
        b = ctx.backend
        if cols is None:
            cols = _im2col(b, x.array, geo)                       # (G, Cg·K, N·Ho·Wo)
        ymat = _out_as_groups(b, y.array, geo)                    # (G, O/G, N·Ho·Wo)
        gw = b.matmul(ymat, b.transpose(cols, (0, 2, 1)))         # (G, O/G, Cg·K)
        kh, kw = geo.kernel
        return b.reshape(gw, (y.shape[1], x.shape[1] // geo.groups, kh, kw))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        geo = ctx.inputs[2]
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = ConvTranspose2d.apply(y, grad, geo)
        if ctx.needs_input_grad[1]:
            gy = Conv2d.apply(x, grad, geo)
        return gx, gy, None, None


# ---------------------------------------------------------------------------------------
# Windows as a differentiable op (used by pooling backward passes)
# ---------------------------------------------------------------------------------------


class Unfold2d(Function):
    """win[n, c, ho, wo, i, j] = x_pad[n, c, ho·sh + i·dh, wo·sw + j·dw]   (zero padding)
    dL/dx = Fold2d(dL/dwin)  (each window element's gradient goes back to its pixel)"""

    @staticmethod
    def forward(ctx, x, geo):
        ctx.shape = x.shape
        return _windows(ctx.backend, x.array, geo)

    @staticmethod
    def backward(ctx, grad):
        return Fold2d.apply(grad, ctx.inputs[1], ctx.shape), None


class Fold2d(Function):
    """x[n, c, h, w] = Σ of the window elements win[n, c, ho, wo, i, j] read from (h, w)
    dL/dwin = Unfold2d(dL/dx)"""

    @staticmethod
    def forward(ctx, windows, geo, shape):
        return _fold(ctx.backend, windows.array, geo, shape)

    @staticmethod
    def backward(ctx, grad):
        return Unfold2d.apply(grad, ctx.inputs[1]), None, None


# ---------------------------------------------------------------------------------------
# Pooling: one vectorised pass per kernel offset over strided views, no window copies
# ---------------------------------------------------------------------------------------


def _window_max(b, x, geo: ConvGeometry):
    """The max of each window of x (padding -inf) and where it is: (best, index), both
    (N, C, Ho, Wo); index = i·KW + j of the first maximum (of the last NaN, if any: NaN
    wins, as in PyTorch).

    One pass per kernel offset p over strided views of x, with cheap ufuncs only (a window
    copy and argmax over its short last axis, or `where`, is several times slower):
    `better` marks where offset p beats every earlier offset, so the winner is the largest
    such p, a running maximum of better·p.
    """
    (kh, kw) = geo.kernel
    win = _windows(b, x, geo, pad_value=float("-inf"))           # (N, C, Ho, Wo, KH, KW)
    best = b.getitem(win, (Ellipsis, 0, 0))  # through the backend: sg.compile sees it
    index = b.zeros(best.shape, dt.int32)
    for p in range(1, kh * kw):
        candidate = b.getitem(win, (Ellipsis, p // kw, p % kw))
        better = b.logical_or(b.greater(candidate, best), b.isnan(candidate))
        index = b.maximum(index, b.multiply(better, b.asarray(p, dt.int32)))
        best = b.maximum(best, candidate)                        # NaN propagates
    if kh * kw == 1:
        best = b.copy(best)  # not a view of the input
    return best, index


class MaxPool2d(Function):
    """y[n, c, ho, wo] = max over the window of x_pad (padding is -inf)
    dL/dx = dL/dy sent to the first position that attains the max in each window
    (as PyTorch: ties do not split), overlapping windows adding up."""

    @staticmethod
    def forward(ctx, x, geo):
        best, index = _window_max(ctx.backend, x.array, geo)
        ctx.index = index                        # (N, C, Ho, Wo): the winner in each window
        ctx.shape = x.shape
        return best

    @staticmethod
    def backward(ctx, grad):
        geo = ctx.inputs[1]
        b = ctx.backend
        kh, kw = geo.kernel
        # one-hot of the winner, kernel offsets in front: (KH, KW, N, C, Ho, Wo), so that
        # Fold2d reads one contiguous block per offset
        positions = b.reshape(b.arange(0, kh * kw, 1, dt.int32), (kh, kw, 1, 1, 1, 1))
        winner = b.equal(ctx.index, positions)
        onehot = Tensor._make(b.astype(winner, grad.dtype), b)  # a constant: no gradient
        gwin = (grad * onehot).permute(2, 3, 4, 5, 0, 1)         # (N, C, Ho, Wo, KH, KW)
        return Fold2d.apply(gwin, geo, ctx.shape), None


def _window_sum(b, x, geo: ConvGeometry):
    """Σ over each window of x_pad (zero padding): (N, C, Ho, Wo), one add per offset."""
    kh, kw = geo.kernel
    win = _windows(b, x, geo)
    total = b.getitem(win, (Ellipsis, 0, 0))  # through the backend: sg.compile sees it
    for p in range(1, kh * kw):
        total = b.add(total, b.getitem(win, (Ellipsis, p // kw, p % kw)))
    return b.copy(total) if kh * kw == 1 else total


class AvgPool2d(Function):
    """y[n, c, ho, wo] = (Σ over the window of x_pad) / divisor[ho, wo]
    dL/dx = Fold2d(dL/dy / divisor, spread over each window)"""

    @staticmethod
    def forward(ctx, x, geo, divisor):
        b = ctx.backend
        ctx.shape = x.shape
        total = _window_sum(b, x.array, geo)
        return b.astype(b.divide(total, divisor), x.dtype)

    @staticmethod
    def backward(ctx, grad):
        _, geo, divisor = ctx.inputs
        kh, kw = geo.kernel
        div = divisor if isinstance(divisor, (int, float)) else Tensor._make(
            ctx.backend.astype(divisor, grad.dtype), ctx.backend)
        share = (grad / div).unsqueeze(-1).unsqueeze(-1)
        gwin = share.expand(tuple(grad.shape) + (kh, kw))   # a broadcast view, no copy
        return Fold2d.apply(gwin, geo, ctx.shape), None, None


# ---------------------------------------------------------------------------------------
# Argument checking and the public functions (re-exported by smolgrad.nn.functional)
# ---------------------------------------------------------------------------------------


def _pair(value, name: str, op: str) -> tuple:
    """An int or a 1/2-sequence of ints -> (a, b)."""
    if isinstance(value, Tensor):
        value = value.tolist()
    if isinstance(value, int):
        return (value, value)
    try:
        items = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of 2 ints, got "
                        f"{value!r}") from None
    if len(items) == 1:
        return items * 2
    if len(items) != 2:
        raise ValueError(f"{op}: {name} must be an int or a tuple of 2 ints, got {value!r}")
    return items


def _check_float(op: str, *tensors) -> None:
    for t in tensors:
        if t is not None and not t.dtype.is_floating_point:
            raise RuntimeError(f"{op}: expected floating point tensors, got dtype {t.dtype} "
                               f"(shape {tuple(t.shape)}); convert with .float()")


def _output_size(size: int, pad_total: int, span: int, stride: int, op: str, what) -> int:
    out = (size + pad_total - span) // stride + 1
    if size + pad_total < span or out < 1:
        raise RuntimeError(f"{op}: the (dilated) kernel extent {span} is larger than the "
                           f"padded input size {size + pad_total} ({what})")
    return out


def _batched(input: Tensor, spatial: int, op: str) -> tuple:
    """(N, C, *spatial) as is, or unbatched (C, *spatial) with N = 1 added: (input, unbatched)."""
    if input.ndim == spatial + 1:
        return input.unsqueeze(0), True
    if input.ndim != spatial + 2:
        raise RuntimeError(f"{op}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D "
                           f"(batched) input, got shape {tuple(input.shape)}")
    return input, False


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch) over (N, C, H, W) or (C, H, W).

    weight: (out_channels, in_channels / groups, KH, KW);  bias: (out_channels,) or None.
    padding: an int, a pair, 'valid' (no padding) or 'same' (output size = input size;
    stride 1 only; odd total padding puts the extra row/column at the bottom/right).
    Output size per axis: (size + 2·padding - dilation·(K - 1) - 1) // stride + 1.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, "conv2d", 2)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-D convolution over (N, C, L) or (C, L); weight (out_channels, in_channels/groups, K).

    Computed as conv2d on a height-1 image."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, "conv1d", 1)


def _as_2d(value, op: str, name: str):
    """conv1d's int / 1-tuple argument -> conv2d's pair with height 1 (or 0 for padding)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    return value


def _conv(input, weight, bias, stride, padding, dilation, groups, op, spatial):
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors, got "
                        f"{type(input).__name__} and {type(weight).__name__}")
    if _autocast_state.casts:
        input, weight, bias = autocast_inputs(op, input, weight, bias)
    _check_float(op, input, weight, bias)
    x, unbatched = _batched(input, spatial, op)
    if weight.ndim != spatial + 2:
        raise RuntimeError(f"{op}: expected a {spatial + 2}-D weight (out_channels, "
                           f"in_channels/groups, kernel...), got shape {tuple(weight.shape)}")
    if input.dtype is not weight.dtype or (bias is not None and bias.dtype is not input.dtype):
        raise RuntimeError(f"{op}: input ({input.dtype}), weight ({weight.dtype})"
                           + (f" and bias ({bias.dtype})" if bias is not None else "")
                           + " must have the same dtype")
    if spatial == 1:  # conv1d: a height-1 image with a height-1 kernel
        x, weight = x.unsqueeze(2), weight.unsqueeze(2)
        stride = (1, _as_2d(stride, op, "stride"))
        dilation = (1, _as_2d(dilation, op, "dilation"))
        padding = _as_2d(padding, op, "padding")
        if not isinstance(padding, str):
            padding = (0, padding)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    out_channels, cin_per_group = weight.shape[:2]
    if out_channels % groups:
        raise RuntimeError(f"{op}: out_channels {out_channels} (weight of shape "
                           f"{tuple(weight.shape)}) is not divisible by groups={groups}")
    if x.shape[1] != cin_per_group * groups:
        raise RuntimeError(f"{op}: expected input with {cin_per_group * groups} channels "
                           f"(weight of shape {tuple(weight.shape)}, groups={groups}), but got "
                           f"input of shape {tuple(input.shape)}")
    if bias is not None and bias.shape != (out_channels,):
        raise RuntimeError(f"{op}: bias must have shape ({out_channels},) for weight of shape "
                           f"{tuple(weight.shape)}, got {tuple(bias.shape)}")
    geo = _conv_geometry(x.shape, weight.shape[2:], stride, padding, dilation, groups, op)
    out = Conv2d.apply(x, weight, geo)
    if bias is not None:
        out = out + bias.reshape(1, out_channels, 1, 1)
    if spatial == 1:
        out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


def _conv_geometry(x_shape, kernel, stride, padding, dilation, groups, op) -> ConvGeometry:
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{op}: stride and dilation must be positive, got stride={stride}, "
                         f"dilation={dilation}")
    kernel = tuple(kernel)
    spans = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride}); use an int padding")
            totals = [s - 1 for s in spans]  # PyTorch puts the odd extra at the end
            pads = (totals[0] // 2, totals[0] - totals[0] // 2,
                    totals[1] // 2, totals[1] - totals[1] // 2)
        else:
            raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', "
                             f"got {padding!r}")
    else:
        ph, pw = _pair(padding, "padding", op)
        if ph < 0 or pw < 0:
            raise ValueError(f"{op}: negative padding {padding!r} is not supported")
        pads = (ph, ph, pw, pw)
    h, w = x_shape[2:]
    out_hw = (_output_size(h, pads[0] + pads[1], spans[0], stride[0], op,
                           f"input {tuple(x_shape)}, kernel {kernel}"),
              _output_size(w, pads[2] + pads[3], spans[1], stride[1], op,
                           f"input {tuple(x_shape)}, kernel {kernel}"))
    return ConvGeometry(kernel, stride, dilation, pads, groups, (h, w), out_hw)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The transposed convolution (the gradient of conv2d with respect to its input).

    input: (N, C_in, H, W) or (C_in, H, W);  weight: (C_in, C_out / groups, KH, KW).
    Output size per axis: (H - 1)·stride - 2·padding + dilation·(K - 1) + output_padding + 1.
    """
    op = "conv_transpose2d"
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors")
    if _autocast_state.casts:
        input, weight, bias = autocast_inputs(op, input, weight, bias)
    _check_float(op, input, weight, bias)
    y, unbatched = _batched(input, 2, op)
    if weight.ndim != 4:
        raise RuntimeError(f"{op}: expected a 4-D weight (in_channels, out_channels/groups, "
                           f"KH, KW), got shape {tuple(weight.shape)}")
    if input.dtype is not weight.dtype:
        raise RuntimeError(f"{op}: input ({input.dtype}) and weight ({weight.dtype}) must "
                           f"have the same dtype")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if y.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise RuntimeError(f"{op}: expected input with {weight.shape[0]} channels (weight of "
                           f"shape {tuple(weight.shape)}, groups={groups}), got input of shape "
                           f"{tuple(input.shape)}")
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple, got {padding!r}")
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    ph, pw = _pair(padding, "padding", op)
    oph, opw = _pair(output_padding, "output_padding", op)
    for o, s, d in ((oph, stride[0], dilation[0]), (opw, stride[1], dilation[1])):
        if o < 0 or (o >= s and o >= d):
            raise ValueError(f"{op}: output_padding {(oph, opw)} must be smaller than either "
                             f"stride {stride} or dilation {dilation}")
    kh, kw = weight.shape[2:]
    h, w = y.shape[2:]
    out_h = (h - 1) * stride[0] - 2 * ph + dilation[0] * (kh - 1) + oph + 1
    out_w = (w - 1) * stride[1] - 2 * pw + dilation[1] * (kw - 1) + opw + 1
    if out_h < 1 or out_w < 1:
        raise RuntimeError(f"{op}: the output size ({out_h}, {out_w}) is too small for input "
                           f"{tuple(input.shape)}, kernel {(kh, kw)}, padding {(ph, pw)}")
    c_out = weight.shape[1] * groups
    if bias is not None and bias.shape != (c_out,):
        raise RuntimeError(f"{op}: bias must have shape ({c_out},), got {tuple(bias.shape)}")
    geo = ConvGeometry((kh, kw), stride, dilation, (ph, ph, pw, pw), groups, (out_h, out_w),
                       (h, w))
    out = ConvTranspose2d.apply(y, weight, geo)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)
    return out.squeeze(0) if unbatched else out


def _pool_geometry(x_shape, kernel_size, stride, padding, dilation, ceil_mode, op):
    kernel = _pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None or (isinstance(stride, (list, tuple)) and
                                          len(stride) == 0) else _pair(stride, "stride", op)
    padding, dilation = _pair(padding, "padding", op), _pair(dilation, "dilation", op)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: kernel_size {kernel}, stride {stride} and dilation "
                         f"{dilation} must be positive and padding {padding} non-negative")
    sizes, pads = [], []
    for size, k, s, p, d in zip(x_shape[2:], kernel, stride, padding, dilation):
        if p > k // 2:
            raise RuntimeError(f"{op}: padding {padding} should be at most half of the kernel "
                               f"size {kernel}")
        span = d * (k - 1) + 1
        out = (size + 2 * p - span + ((s - 1) if ceil_mode else 0)) // s + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1  # the last window must start inside the input or its left padding
        if out < 1:
            raise RuntimeError(f"{op}: output size is too small for input {tuple(x_shape)} "
                               f"with kernel {kernel}, stride {stride}, padding {padding}")
        extra = max((out - 1) * s + span - (size + 2 * p), 0)  # ceil_mode's overhang
        sizes.append(out)
        pads.append((p, p + extra))
    return ConvGeometry(kernel, stride, dilation, pads[0] + pads[1], 1,
                        tuple(x_shape[2:]), tuple(sizes))


def _pool_input(input, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    _check_float(op, input)
    return _batched(input, 2, op)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """The max over each (dilated) window; padding counts as -inf. With return_indices,
    also the flat index h·W + w of each max in its (unpadded) input plane, as PyTorch."""
    op = "max_pool2d"
    x, unbatched = _pool_input(input, op)
    geo = _pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode, op)
    out = MaxPool2d.apply(x, geo)
    if return_indices:
        indices = _max_indices(x, geo)
        if unbatched:
            out, indices = out.squeeze(0), indices.squeeze(0)
        return out, indices
    return out.squeeze(0) if unbatched else out


def _max_indices(x: Tensor, geo: ConvGeometry) -> Tensor:
    """Where each window's max came from, as a flat index into the H·W input plane."""
    b = x.backend
    (ho, wo), kw = geo.output_hw, geo.kernel[1]
    k = b.astype(_window_max(b, x.array, geo)[1], dt.int64)
    i, j = k // kw, k % kw
    rows = b.reshape(b.arange(0, ho, 1, dt.int64), (ho, 1)) * geo.stride[0] - geo.padding[0]
    cols = b.arange(0, wo, 1, dt.int64) * geo.stride[1] - geo.padding[2]
    h = rows + i * geo.dilation[0]
    w = cols + j * geo.dilation[1]
    return Tensor._make(b.astype(h * geo.input_hw[1] + w, dt.int64), b)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """The mean over each window. The divisor counts the padding when count_include_pad
    (never the extra ceil_mode overhang), or is `divisor_override` when given."""
    op = "avg_pool2d"
    x, unbatched = _pool_input(input, op)
    geo = _pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode, op)
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be non-zero")
        divisor = divisor_override
    else:
        divisor = _pool_divisor(x.backend, geo, count_include_pad, x.dtype)
    out = AvgPool2d.apply(x, geo, divisor)
    return out.squeeze(0) if unbatched else out


def _pool_divisor(b, geo: ConvGeometry, count_include_pad: bool, dtype):
    """(Ho, Wo) array: how many elements each window averages over."""
    counts = []
    for axis in (0, 1):
        size, k, s = geo.input_hw[axis], geo.kernel[axis], geo.stride[axis]
        p = geo.padding[2 * axis]
        start = b.arange(0, geo.output_hw[axis], 1, dt.int64) * s - p
        end = b.minimum(start + k, size + p)     # the ceil_mode overhang never counts
        if not count_include_pad:
            start, end = b.maximum(start, 0), b.minimum(end, size)
        counts.append(end - start)
    return b.astype(b.multiply(b.reshape(counts[0], (-1, 1)), counts[1]), dtype)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size (oh, ow); None keeps that input size.

    Output row i averages input rows floor(i·H/oh) .. ceil((i+1)·H/oh) - 1 (and the same
    for columns). When the sizes divide evenly this is avg_pool2d; otherwise it is written
    as y = P_h @ x @ P_wᵀ with constant averaging matrices P (gradient from matmul's).
    """
    op = "adaptive_avg_pool2d"
    x, unbatched = _pool_input(input, op)
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size, output_size)
    output_size = tuple(output_size)
    if len(output_size) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    h, w = x.shape[2:]
    oh = h if output_size[0] is None else int(output_size[0])
    ow = w if output_size[1] is None else int(output_size[1])
    if oh < 1 or ow < 1 or h < 1 or w < 1:
        raise RuntimeError(f"{op}: output_size {output_size} and input {tuple(input.shape)} "
                           f"must be non-empty")
    if h % oh == 0 and w % ow == 0:  # equal, non-overlapping windows: a plain average pool
        out = avg_pool2d(x, (h // oh, w // ow))
    else:
        out = _averaging_matrix(x, oh, h) @ x @ _averaging_matrix(x, ow, w).mT
    return out.squeeze(0) if unbatched else out


def _averaging_matrix(like: Tensor, out: int, size: int) -> Tensor:
    """P (out, size): P[i, k] = 1 / len(window i) for k in window i, else 0."""
    b = like.backend
    i = b.reshape(b.arange(0, out, 1, dt.int64), (out, 1))
    start = (i * size) // out
    end = ((i + 1) * size + out - 1) // out  # ceil
    k = b.arange(0, size, 1, dt.int64)
    inside = b.logical_and(b.greater_equal(k, start), b.less(k, end))
    matrix = b.divide(b.astype(inside, like.dtype), b.astype(end - start, like.dtype))
    return Tensor._make(b.astype(matrix, like.dtype), b)
