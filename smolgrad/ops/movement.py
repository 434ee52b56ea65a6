"""Movement ops: reshape, expand, permute, indexing, cat, flip, roll, pad, gather, ...

Their gradients move the incoming gradient back where the values came from: a reshape's
gradient is reshaped back, an index's gradient is scattered back (adding up repeats).
`Expand.backward` returns the gradient unchanged: the engine's single un-broadcast step
sums it back to the input's shape.
"""

from __future__ import annotations

import math

from .. import dtypes as dt
from ..engine import Function, Tensor, register
from . import views
from .common import normalize_dim, shape_arg, shown_as
from .views import apply_steps, as_view, reshape_is_view


class Reshape(Function):
    """y = x with a new shape      dL/dx = reshape(dL/dy, x.shape)"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return ctx.backend.reshape(x.array, shape)
        except (ValueError, TypeError):
            raise RuntimeError(f"reshape: shape {list(shape)} is invalid for input of shape "
                               f"{tuple(x.shape)} ({x.numel()} elements)") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Expand(Function):
    """y = x broadcast to a larger shape      dL/dx = dL/dy summed over the new axes
    (done by the engine's un-broadcast step, so backward just passes the gradient on)."""

    @staticmethod
    def forward(ctx, x, shape):
        try:
            return ctx.backend.broadcast_to(x.array, shape)
        except ValueError:
            raise RuntimeError(f"expand: the shape {tuple(x.shape)} cannot be expanded to "
                               f"{list(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Permute(Function):
    """y = x with axes reordered      dL/dx = dL/dy with the inverse order"""

    @staticmethod
    def forward(ctx, x, axes):
        return ctx.backend.transpose(x.array, axes)

    @staticmethod
    def backward(ctx, grad):
        axes = ctx.inputs[1]
        inverse = [0] * len(axes)
        for i, a in enumerate(axes):
            inverse[a] = i
        return grad.permute(inverse), None


def _backend_index(index, backend, op="index"):
    """Convert an index (ints, slices, None, Ellipsis, lists, Tensors) for the backend."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i in index:
        if isinstance(i, Tensor):
            if i.backend is not backend:
                raise RuntimeError(f"{op}: indices are on device '{i.device}' but the tensor "
                                   f"is on '{backend.device}'")
            if i.dtype.is_floating_point:
                raise IndexError(f"{op}: tensors used as indices must be long, int or bool, "
                                 f"got {i.dtype}")
            out.append(i.array)
        elif isinstance(i, (list, range)):
            arr = backend.asarray(list(i))
            out.append(arr)
        else:
            out.append(i)
    return tuple(out)


def _is_basic(index) -> bool:
    return all(isinstance(i, (int, slice)) or i is None or i is Ellipsis for i in index)


class GetItem(Function):
    """y = x[index]      dL/dx = zeros with dL/dy added back at index (repeats add up)"""

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype = x.shape, x.dtype
        try:
            return ctx.backend.getitem(x.array, index)
        except IndexError as e:
            raise IndexError(f"index: {e} (tensor of shape {tuple(x.shape)})") from None

    @staticmethod
    def backward(ctx, grad):
        index = ctx.inputs[1]
        zeros = Tensor._make(ctx.backend.zeros(ctx.shape, ctx.dtype), ctx.backend)
        return IndexPut.apply(zeros, index, grad, not _is_basic(index)), None


# the ops that replay a view's steps with a history (ops/views.py: view_through)
views.STEP_OPS.update(reshape=Reshape, transpose=Permute, getitem=GetItem, broadcast_to=Expand)


class IndexPut(Function):
    """y = x with y[index] = v (or += v when `accumulate`)
    dL/dx = dL/dy with zeros at index (or unchanged when accumulating),  dL/dv = dL/dy[index]"""

    @staticmethod
    def forward(ctx, x, index, value, accumulate):
        b = ctx.backend
        v = value.array if isinstance(value, Tensor) else value
        try:
            if accumulate:
                return b.index_add(x.array, index, v)
            return b.setitem(x.array, index, v)
        except (ValueError, IndexError) as e:
            shape = tuple(value.shape) if isinstance(value, Tensor) else "a scalar"
            raise RuntimeError(f"setitem: cannot write a value of shape {shape} into a tensor "
                               f"of shape {tuple(x.shape)} at this index: {e}") from None

    @staticmethod
    def backward(ctx, grad):
        _, index, value, accumulate = ctx.inputs
        gx = gv = None
        if ctx.needs_input_grad[0]:
            gx = grad if accumulate else IndexPut.apply(grad, index, 0.0, False)
        if ctx.needs_input_grad[2]:
            gv = GetItem.apply(grad, index)  # the engine sums it to value's shape
        return gx, None, gv, None


class Cat(Function):
    """y = [x₁; x₂; ...] along `axis`      dL/dxᵢ = the slice of dL/dy where xᵢ landed"""

    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.sizes = [x.shape[axis] for x in xs]
        return ctx.backend.concatenate([x.array for x in xs], axis=axis)

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.inputs[0]
        grads, start = [None], 0
        for size, needed in zip(ctx.sizes, ctx.needs_input_grad[1:]):
            index = (slice(None),) * axis + (slice(start, start + size),)
            grads.append(GetItem.apply(grad, index) if needed else None)
            start += size
        return tuple(grads)


class Split(Function):
    """x -> its pieces yᵢ = x[indexᵢ] along `axis` (basic slices, one per piece), as one node
    with one output per piece (PyTorch's SplitBackward: one node per call, not per piece).

        forward:  yᵢ = x[..., oᵢ : oᵢ + sᵢ, ...]      (pieces of sizes s₀, s₁, ...; oᵢ = Σ_{j<i} sⱼ)
        backward: dL/dx = cat(dL/dy₀, dL/dy₁, ..., axis)

    A piece that got no gradient arrives as zeros (the engine materializes them), so the
    backward is one concatenation the size of x, whatever the number of pieces: indexing
    piece by piece would build a zero array of x's full size per piece (O(L²) for L pieces).
    The forward's arrays are views of x's array; the public `split` registers each output
    as a view of x (ops/views.py), so writes through a piece reach x and the other way round.
    """

    @staticmethod
    def forward(ctx, x, axis, indices):
        b = ctx.backend
        return tuple(b.getitem(x.array, index) for index in indices)

    @staticmethod
    def backward(ctx, *grads):
        return Cat.apply(ctx.inputs[1], *grads), None, None


class Unbind(Split):
    """x -> yᵢ = x[..., i, ...] for each i along `axis` (the axis removed), as one node with
    one output per index (PyTorch's UnbindBackward).

        forward:  yᵢ = x[..., i, ...]                 (indices as in `Split`, an int at axis)
        backward: dL/dx = stack(dL/dy₀, dL/dy₁, ..., axis)    (zeros for unused pieces)
    """

    @staticmethod
    def backward(ctx, *grads):
        return Stack.apply(ctx.inputs[1], *grads), None, None


def _unbind_indices(axis: int, n: int) -> tuple:
    """The basic index of each of the n pieces of `unbind` along `axis`: x[:, ..., i]."""
    return tuple((slice(None),) * axis + (i,) for i in range(n))


class Stack(Function):
    """y = x₀, x₁, ... (one shape) joined along a new axis, as one node (not an unsqueeze per
    input and a cat).

        forward:  y[..., i, ...] = xᵢ                 (y has a new axis of size len(xs))
        backward: dL/dxᵢ = (dL/dy)[..., i, ...]      (one `Unbind` node)
    """

    @staticmethod
    def forward(ctx, axis, *xs):
        return ctx.backend.stack([x.array for x in xs], axis)

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.inputs[0]
        pieces = Unbind.apply(grad, axis, _unbind_indices(axis, grad.shape[axis]))
        return (None, *pieces)


class Flip(Function):
    """y = x reversed along axes      dL/dx = dL/dy reversed along the same axes"""

    @staticmethod
    def forward(ctx, x, axes):
        return ctx.backend.flip(x.array, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        return Flip.apply(grad, ctx.inputs[1]), None


class Roll(Function):
    """y = x shifted cyclically      dL/dx = dL/dy shifted back"""

    @staticmethod
    def forward(ctx, x, shifts, axes):
        return ctx.backend.roll(x.array, shifts, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        _, shifts, axes = ctx.inputs
        back = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
        return Roll.apply(grad, back, axes), None, None


class Pad(Function):
    """y = x surrounded by a constant      dL/dx = the centre of dL/dy"""

    @staticmethod
    def forward(ctx, x, widths, value):
        return ctx.backend.pad(x.array, widths, value)

    @staticmethod
    def backward(ctx, grad):
        widths = ctx.inputs[1]
        index = tuple(slice(lo, n - hi) for (lo, hi), n in zip(widths, grad.shape))
        return GetItem.apply(grad, index), None, None


class Triangle(Function):
    """y = tril(x, k) or triu(x, k)      dL/dx = the same triangle of dL/dy"""

    @staticmethod
    def forward(ctx, x, kernel, k):
        return getattr(ctx.backend, kernel)(x.array, k)

    @staticmethod
    def backward(ctx, grad):
        _, kernel, k = ctx.inputs
        return Triangle.apply(grad, kernel, k), None, None


class Gather(Function):
    """y[..i..] = x[..index[..i..]..] along `axis`
    dL/dx = zeros with dL/dy added at index (repeats add up)"""

    @staticmethod
    def forward(ctx, x, axis, index):
        ctx.shape, ctx.dtype = x.shape, x.dtype
        try:
            return ctx.backend.take_along_axis(x.array, index.array, axis)
        except IndexError as e:
            raise IndexError(f"gather: index out of range for dimension {axis} of a tensor of "
                             f"shape {tuple(x.shape)} ({e})") from None

    @staticmethod
    def backward(ctx, grad):
        _, axis, index = ctx.inputs
        zeros = Tensor._make(ctx.backend.zeros(ctx.shape, ctx.dtype), ctx.backend)
        return ScatterAdd.apply(zeros, axis, index, grad), None, None


class ScatterAdd(Function):
    """y = x; y[..index[..i..]..] += src[..i..] along `axis`
    dL/dx = dL/dy,  dL/dsrc = gather(dL/dy, axis, index)"""

    @staticmethod
    def forward(ctx, x, axis, index, src):
        sub = tuple(slice(0, n) for n in index.shape)
        try:
            return ctx.backend.scatter_add(x.array, axis, index.array, src.array[sub])
        except IndexError as e:
            raise IndexError(f"scatter_add: index out of range for dimension {axis} of a "
                             f"tensor of shape {tuple(x.shape)} ({e})") from None

    @staticmethod
    def backward(ctx, grad):
        _, axis, index, src = ctx.inputs
        gsrc = None
        if ctx.needs_input_grad[3]:
            gsrc = gather(grad, axis, index)  # the public form: index may be smaller than grad
            if gsrc.shape != src.shape:  # src may be larger than index: zeros elsewhere
                widths = [(0, s - g) for s, g in zip(src.shape, gsrc.shape)]
                gsrc = Pad.apply(gsrc, widths, 0.0)
        return grad, None, None, gsrc


# ---------------------------------------------------------------------------------------
# Public functions and methods
# ---------------------------------------------------------------------------------------


def _check_index(index, op: str) -> None:
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}: index must be an integer Tensor, got {type(index).__name__}")
    if index.dtype.is_floating_point or index.dtype is dt.bool_:
        raise RuntimeError(f"{op}: index must be an integer tensor (int64 or int32), got "
                           f"{index.dtype.name}")


def _resolve_shape(shape: tuple, numel: int, op: str) -> tuple:
    if sum(1 for s in shape if s == -1) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred (-1), got {list(shape)}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape {list(shape)} is invalid for input of "
                               f"{numel} elements")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    if math.prod(shape) != numel:
        raise RuntimeError(f"{op}: shape {list(shape)} is invalid for input of {numel} "
                           f"elements")
    return shape


@register("reshape", function=True)
def reshape(input, *shape) -> Tensor:
    """The same values in a new shape (one size may be -1: inferred)."""
    return _reshape(input, shape_arg(shape), "reshape")


def _reshape(input, shape: tuple, op: str) -> Tensor:
    shape = _resolve_shape(shape, input.numel(), op)
    if shape == input.shape:
        return input
    out = Reshape.apply(input, shape)
    if reshape_is_view(input, out):
        return shown_as(as_view(out, input, ("reshape", shape)), "ViewBackward0")
    if op == "view":
        raise RuntimeError(f"view: size {list(shape)} is not compatible with the input's "
                           f"layout (shape {tuple(input.shape)}, not contiguous, e.g. after a "
                           f"transpose); use .reshape(...) instead")
    return out


@register("view")
def view(input, *shape) -> Tensor:
    """The same values in a new shape, sharing them with `input` (writes through either
    are seen by both); an error where the layout does not allow it (use reshape)."""
    if len(shape) == 1 and isinstance(shape[0], dt.dtype):
        raise NotImplementedError("view(dtype) is not supported; use .to(dtype)")
    return _reshape(input, shape_arg(shape), "view")


@register("reshape_as")
def reshape_as(input, other) -> Tensor:
    return reshape(input, other.shape)


@register("view_as")
def view_as(input, other) -> Tensor:
    return reshape(input, other.shape)


@register("is_contiguous")
def is_contiguous(input, memory_format=None) -> bool:
    """Are the elements laid out in row-major order, so that `view` can reshape freely?
    False after transpose/permute/t/mT, expand or a stepped slice, as in PyTorch: the
    array's own flags on NumPy/CuPy, the view's steps on MLX (which has no strides)."""
    if input.ndim == 0:
        return True
    if hasattr(getattr(input.backend, "xp", None), "may_share_memory"):
        return bool(input.array.flags.c_contiguous)
    return _view_is_row_major(input)


def _view_is_row_major(input) -> bool:
    """For a library without strides (MLX): does the view show its base's elements in
    row-major order, each once? Run the view's steps over the element numbers of its base
    and check that they come out consecutive (PyTorch's contiguity, stated without
    strides). A tensor that is no view, or an unchanged alias of one (.data), is."""
    view = input._view
    if view is None or not view.steps or input.numel() <= 1:
        return True
    backend, base = input.backend, view.base
    ids = backend.reshape(backend.arange(0, base.numel(), 1, dt.int64), base.shape)
    flat = Tensor._make(backend.reshape(apply_steps(backend, ids, view.steps), (-1,)), backend)
    return bool(((flat[1:] - flat[:-1]) == 1).all())


@register("contiguous")
def contiguous(input, memory_format=None) -> Tensor:
    """`input` itself when it is contiguous, else a row-major copy (not a view: writes to
    the copy do not reach `input`), as PyTorch. After it, `view` accepts any shape."""
    return input if is_contiguous(input) else input.clone()  # clone copies in row-major order


@register("flatten", function=True)
def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return reshape(input, 1)
    s = normalize_dim(start_dim, input.ndim, "flatten")
    e = normalize_dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise RuntimeError("flatten: start_dim cannot come after end_dim")
    shape = input.shape
    return reshape(input, shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


@register("unflatten", function=True)
def unflatten(input, dim: int, sizes) -> Tensor:
    d = normalize_dim(dim, input.ndim, "unflatten")
    sizes = _resolve_shape(tuple(sizes), input.shape[d], "unflatten")
    return reshape(input, input.shape[:d] + sizes + input.shape[d + 1:])


@register("squeeze", function=True)
def squeeze(input, dim=None) -> Tensor:
    if dim is None:
        axes = tuple(i for i, n in enumerate(input.shape) if n == 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        axes = tuple(normalize_dim(d, input.ndim, "squeeze") for d in dims)
        axes = tuple(a for a in axes if input.shape[a] == 1)
    return reshape(input, tuple(n for i, n in enumerate(input.shape) if i not in axes))


@register("unsqueeze", function=True)
def unsqueeze(input, dim: int) -> Tensor:
    d = normalize_dim(dim, input.ndim + 1, "unsqueeze")
    return reshape(input, input.shape[:d] + (1,) + input.shape[d:])


@register("expand", function=True)
def expand(input, *sizes) -> Tensor:
    """Broadcast to `sizes` (-1 keeps a dimension), without copying."""
    sizes = shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be "
                           f"at least the number of dimensions of the tensor ({input.ndim})")
    lead = len(sizes) - input.ndim
    shape = tuple(input.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(sizes))
    if shape == input.shape:
        return input
    return as_view(Expand.apply(input, shape), input, ("broadcast_to", shape))


@register("expand_as")
def expand_as(input, other) -> Tensor:
    return expand(input, other.shape)


@register("broadcast_to", function=True)
def broadcast_to(input, size) -> Tensor:
    return expand(input, tuple(size))


@register(function=True)
def broadcast_tensors(*tensors) -> list:
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return [expand(t, shape) for t in tensors]


@register(function=True)
def broadcast_shapes(*shapes) -> tuple:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        sizes = {s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0} - {1}
        if len(sizes) > 1:
            raise RuntimeError(f"shapes {[tuple(s) for s in shapes]} cannot be broadcast "
                               f"together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


@register("permute", function=True)
def permute(input, *dims) -> Tensor:
    dims = shape_arg(dims)
    axes = tuple(normalize_dim(d, input.ndim, "permute") for d in dims)
    if sorted(axes) != list(range(input.ndim)):
        raise RuntimeError(f"permute: dims {list(dims)} are not a permutation of the "
                           f"{input.ndim} dimensions of a tensor of shape {tuple(input.shape)}")
    if axes == tuple(range(input.ndim)):
        return input
    return as_view(Permute.apply(input, axes), input, ("transpose", axes))


@register("transpose", "swapaxes", "swapdims", function=True)
def transpose(input, dim0: int, dim1: int) -> Tensor:
    axes = list(range(input.ndim))
    a = normalize_dim(dim0, input.ndim, "transpose")
    b = normalize_dim(dim1, input.ndim, "transpose")
    axes[a], axes[b] = axes[b], axes[a]
    return permute(input, axes)


@register("t", function=True)
def t(input) -> Tensor:
    if input.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, got {input.ndim}")
    return transpose(input, 0, 1) if input.ndim == 2 else input


@register("movedim", "moveaxis", function=True)
def movedim(input, source: int, destination: int) -> Tensor:
    order = list(range(input.ndim))
    s = normalize_dim(source, input.ndim, "movedim")
    d = normalize_dim(destination, input.ndim, "movedim")
    order.remove(s)
    order.insert(d, s)
    return permute(input, order)


Tensor.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))),
                    doc="All dimensions reversed (the transpose, for a matrix).")
def _matrix_transpose(self) -> Tensor:
    """The last two dimensions swapped (a batch of transposed matrices)."""
    if self.ndim < 2:
        raise RuntimeError(f"mT: only supported on matrices or batches of matrices, got a "
                           f"{self.ndim}-D tensor of shape {tuple(self.shape)}")
    return transpose(self, -2, -1)


Tensor.mT = property(_matrix_transpose)


@register("__getitem__")
def getitem(input, index) -> Tensor:
    """x[index] with ints, slices, None, Ellipsis, int/bool lists or Tensors."""
    index = _backend_index(index, input.backend)
    out = GetItem.apply(input, index)
    if not _is_basic(index):  # advanced (integer/bool) indexing copies
        return shown_as(out, "IndexBackward0")
    as_view(out, input, ("getitem", index))  # a slice is a view
    last = [i for i in (index if isinstance(index, tuple) else (index,))
            if i is not None and i is not Ellipsis][-1:]
    if last and isinstance(last[0], (int, slice)):  # PyTorch names the last step
        shown_as(out, "SelectBackward0" if isinstance(last[0], int) else "SliceBackward0")
    return out


@register("__setitem__")
def setitem(input, index, value) -> None:
    """x[index] = value: an in-place change (version counter bumped), differentiable
    with respect to both the old x and value."""
    index = _backend_index(index, input.backend, "setitem")
    if isinstance(value, Tensor):
        if value.backend is not input.backend:
            raise RuntimeError(f"setitem: value is on device '{value.device}' but the tensor "
                               f"is on '{input.device}'")
        value = value.to(input.dtype)
    input._inplace("setitem", IndexPut.apply, index, value, False)


@register("index_put_")
def index_put_(input, indices, values, accumulate: bool = False) -> Tensor:
    index = _backend_index(tuple(indices), input.backend, "index_put_")
    return input._inplace("index_put_", IndexPut.apply, index, values.to(input.dtype),
                          accumulate)


@register("index_put", function=True)
def index_put(input, indices, values, accumulate: bool = False) -> Tensor:
    index = _backend_index(tuple(indices), input.backend, "index_put")
    return IndexPut.apply(input, index, values.to(input.dtype), accumulate)


def _check_tensor_list(op: str, tensors) -> None:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of Tensors, got "
                        f"{type(tensors).__name__}")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected a list of Tensors, but element {i} is a "
                            f"{type(t).__name__}")


@register(function=("cat", "concat", "concatenate"))
def cat(tensors, dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dimension (`axis` is an alias of `dim`)."""
    if axis is not None:
        dim = axis
    _check_tensor_list("cat", tensors)
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    axis = normalize_dim(dim, first.ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != first.ndim or any(a != b for j, (a, b) in
                                       enumerate(zip(t.shape, first.shape)) if j != axis):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {axis}; "
                               f"tensor 0 has shape {tuple(first.shape)}, tensor {i} has shape "
                               f"{tuple(t.shape)}")
    target = first.dtype
    for t in tensors[1:]:
        target = dt.promote_types(target, t.dtype)
    tensors = [t.to(target) for t in tensors]
    return Cat.apply(axis, *tensors)


concatenate = concat = cat


@register(function=True)
def stack(tensors, dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new dimension (`axis` is an alias of `dim`)."""
    if axis is not None:
        dim = axis
    _check_tensor_list("stack", tensors)
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got "
                               f"{tuple(tensors[0].shape)} at entry 0 and {tuple(t.shape)} at "
                               f"entry {i}")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    target = tensors[0].dtype
    for t in tensors[1:]:
        target = dt.promote_types(target, t.dtype)
    return Stack.apply(d, *[t.to(target) for t in tensors])


@register(function=True)
def hstack(tensors) -> Tensor:
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


@register(function=True)
def vstack(tensors) -> Tensor:
    return cat([t if t.ndim > 1 else t.reshape(1, -1) for t in tensors], 0)


def _pieces(input, node: type[Split], axis: int, indices: tuple) -> tuple:
    """Run `node` (Split or Unbind) once for all pieces and register each piece as a view
    of input, with the same step a slice `input[index]` records (ops/views.py)."""
    if not indices:
        return ()
    pieces = node.apply(input, axis, indices)
    for piece, index in zip(pieces, indices):
        as_view(piece, input, ("getitem", index))
    return pieces


@register("split", function=True)
def split(input, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of `input` along dim: of size split_size each (the last may be smaller), or
    of the given list of sizes. Each piece is a view of input; one graph node for all."""
    d = normalize_dim(dim, input.ndim, "split")
    n = input.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)] or [0]  # empty dim: one piece
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(f"split: sizes {sizes} must be non-negative and sum to the "
                               f"dimension's size {n} (dim {d} of shape {tuple(input.shape)})")
    indices, start = [], 0
    for size in sizes:
        indices.append((slice(None),) * d + (slice(start, start + size),))
        start += size
    return _pieces(input, Split, d, tuple(indices))


@register("chunk", function=True)
def chunk(input, chunks: int, dim: int = 0) -> tuple:
    if chunks <= 0:
        raise RuntimeError(f"chunk: number of chunks must be greater than 0, got {chunks}")
    n = input.shape[normalize_dim(dim, input.ndim, "chunk")]
    if n == 0:  # PyTorch: `chunks` empty pieces
        return split(input, [0] * chunks, dim)
    return split(input, -(-n // chunks), dim)


@register("tensor_split", function=True)
def tensor_split(input, indices_or_sections, dim: int = 0) -> tuple:
    """A number of sections: pieces as even as possible (the first n % sections one longer).
    A list of indices [i, j, ...]: the pieces input[:i], input[i:j], ..., input[last:] along
    dim, with Python's slice rules (an index past the end gives an empty piece; a smaller
    index after a larger one gives an empty piece, and the next piece starts back there).
    A tensor: a 0-d one is a number of sections, a 1-d one a list of indices."""
    d = normalize_dim(dim, input.ndim, "tensor_split")
    n = input.shape[d]
    if isinstance(indices_or_sections, Tensor):
        if indices_or_sections.ndim > 1 or indices_or_sections.dtype.is_floating_point:
            raise RuntimeError(f"tensor_split: expected a 0-d or 1-d integer tensor, got "
                               f"shape {tuple(indices_or_sections.shape)} and dtype "
                               f"{indices_or_sections.dtype.name}")
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, int):
        if indices_or_sections <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be larger than 0, "
                               f"got {indices_or_sections}")
        q, r = divmod(n, indices_or_sections)
        return split(input, [q + 1] * r + [q] * (indices_or_sections - r), dim)
    bounds = [0, *indices_or_sections, None]
    return tuple(input[(slice(None),) * d + (slice(start, stop),)]
                 for start, stop in zip(bounds[:-1], bounds[1:]))


@register("unbind", function=True)
def unbind(input, dim: int = 0) -> tuple:
    """The slices of `input` along dim, that dim removed: views of input, one graph node."""
    d = normalize_dim(dim, input.ndim, "unbind")
    return _pieces(input, Unbind, d, _unbind_indices(d, input.shape[d]))


@register("flip", function=True)
def flip(input, *dims) -> Tensor:
    dims = shape_arg(dims) if dims else ()
    axes = tuple(normalize_dim(d, input.ndim, "flip") for d in dims)
    if input.ndim == 0:  # dim 0 of a 0-d tensor is allowed (as in PyTorch): nothing to do
        axes = ()
    return Flip.apply(input, axes)


@register("fliplr", function=True)
def fliplr(input) -> Tensor:
    return flip(input, 1)


@register("flipud", function=True)
def flipud(input) -> Tensor:
    return flip(input, 0)


@register("roll", function=True)
def roll(input, shifts, dims=None) -> Tensor:
    if dims is None:
        flat = Roll.apply(input.reshape(-1), shifts if isinstance(shifts, int) else shifts[0],
                          0)
        return flat.reshape(input.shape)
    if isinstance(dims, int):
        return Roll.apply(input, shifts, normalize_dim(dims, input.ndim, "roll"))
    axes = tuple(normalize_dim(d, input.ndim, "roll") for d in dims)
    return Roll.apply(input, tuple(shifts), axes)


@register("tril", function=True)
def tril(input, diagonal: int = 0) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(f"tril: input tensor must have at least 2 dimensions, got "
                           f"shape {tuple(input.shape)}")
    return Triangle.apply(input, "tril", diagonal)


@register("triu", function=True)
def triu(input, diagonal: int = 0) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(f"triu: input tensor must have at least 2 dimensions, got "
                           f"shape {tuple(input.shape)}")
    return Triangle.apply(input, "triu", diagonal)


def _pad_widths(pad, ndim: int, op: str) -> list:
    """PyTorch's pad order: (last_lo, last_hi, second_last_lo, ...) -> per-axis pairs."""
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise RuntimeError(f"{op}: padding {list(pad)} must have an even length of at most "
                           f"2 * {ndim} entries")
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return widths


@register(function=True)
def pad(input, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with a constant (negative widths crop, as in PyTorch)."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; only 'constant'")
    widths = _pad_widths(pad, input.ndim, "pad")
    crop = tuple(slice(-lo if lo < 0 else 0, (n + hi) if hi < 0 else None)
                 for (lo, hi), n in zip(widths, input.shape))
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        input = input[crop]
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    if all(lo == 0 and hi == 0 for lo, hi in widths):
        return input
    return Pad.apply(input, widths, value)


@register("repeat")
def repeat(input, *sizes) -> Tensor:
    """Tile the tensor `sizes[i]` times along each dimension (PyTorch's repeat)."""
    sizes = shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller "
                           f"than the number of tensor dims ({input.ndim})")
    x = input.reshape((1,) * (len(sizes) - input.ndim) + input.shape)
    # interleave: (s0, n0, s1, n1, ...) then merge each pair
    expanded = x.reshape([d for n in x.shape for d in (1, n)])
    expanded = expanded.expand([d for s, n in zip(sizes, x.shape) for d in (s, n)])
    return expanded.reshape([s * n for s, n in zip(sizes, x.shape)])


@register("repeat_interleave", function=True)
def repeat_interleave(input, repeats: int, dim=None) -> Tensor:
    if dim is None:
        input, dim = input.reshape(-1), 0
    d = normalize_dim(dim, input.ndim, "repeat_interleave")
    x = input.unsqueeze(d + 1)
    shape = list(x.shape)
    shape[d + 1] = repeats
    out_shape = list(input.shape)
    out_shape[d] *= repeats
    return x.expand(shape).reshape(out_shape)


@register("gather", function=True)
def gather(input, dim: int, index) -> Tensor:
    """out[i][j] = input[index[i][j]][j] for dim=0 (and so on)."""
    d = normalize_dim(dim, input.ndim, "gather")
    _check_index(index, "gather")
    if index.ndim != input.ndim:
        raise RuntimeError(f"gather: index has {index.ndim} dims but input has {input.ndim}")
    if index.shape != input.shape:
        sub = tuple(slice(0, n) if i != d else slice(None) for i, n in enumerate(index.shape))
        input = input[sub]
    return Gather.apply(input, d, index)


@register("take_along_dim", function=True)
def take_along_dim(input, indices, dim=None) -> Tensor:
    _check_index(indices, "take_along_dim")
    if dim is None:
        return Gather.apply(input.reshape(-1), 0, indices.reshape(-1))
    d = normalize_dim(dim, input.ndim, "take_along_dim")
    shape = list(broadcast_shapes(
        tuple(n for i, n in enumerate(input.shape) if i != d),
        tuple(n for i, n in enumerate(indices.shape) if i != d)))
    in_shape, idx_shape = list(shape), list(shape)
    in_shape.insert(d, input.shape[d])
    idx_shape.insert(d, indices.shape[d])
    return Gather.apply(expand(input, in_shape), d, expand(indices, idx_shape))


@register("scatter_add", function=True)
def scatter_add(input, dim: int, index, src) -> Tensor:
    """out = input; out[index[i][j]][j] += src[i][j] for dim=0 (and so on)."""
    d = normalize_dim(dim, input.ndim, "scatter_add")
    _check_index(index, "scatter_add")
    if index.ndim != input.ndim or src.ndim != input.ndim:
        raise RuntimeError(f"scatter_add: index {tuple(index.shape)}, src {tuple(src.shape)} and "
                           f"input {tuple(input.shape)} must have the same number of dimensions")
    return ScatterAdd.apply(input, d, index, src.to(input.dtype))


@register("scatter_add_")
def scatter_add_(input, dim: int, index, src) -> Tensor:
    return input._inplace("scatter_add_", scatter_add, dim, index, src)


@register("index_add", function=True)
def index_add(input, dim: int, index, source, *, alpha=1) -> Tensor:
    """out = input; out[..., index[i], ...] += alpha * source[..., i, ...] along `dim`
    (repeated indices add up). index: 1-d integers, one per slice of source along dim."""
    d = normalize_dim(dim, input.ndim, "index_add")
    _check_index(index, "index_add")
    if index.ndim > 1 or source.ndim != input.ndim or source.shape[d] != index.numel() or any(
            s != n for i, (s, n) in enumerate(zip(source.shape, input.shape)) if i != d):
        raise RuntimeError(f"index_add: source {list(source.shape)} must have input "
                           f"{list(input.shape)}'s shape except along dim {d}, where it "
                           f"needs one slice per index (index shape {list(index.shape)})")
    spread = [1] * input.ndim
    spread[d] = index.numel()
    full_index = expand(index.reshape(spread), source.shape)
    return scatter_add(input, d, full_index, source * alpha if alpha != 1 else source)


@register("index_add_")
def index_add_(input, dim: int, index, source, *, alpha=1) -> Tensor:
    return input._inplace("index_add_", index_add, dim, index, source, alpha=alpha)


@register("index_select", function=True)
def index_select(input, dim: int, index) -> Tensor:
    d = normalize_dim(dim, input.ndim, "index_select")
    _check_index(index, "index_select")
    if index.ndim > 1:
        raise IndexError(f"index_select: index must be 1-D, got shape {tuple(index.shape)}")
    return input[(slice(None),) * d + (index.reshape(-1),)]


@register("masked_select", function=True)
def masked_select(input, mask) -> Tensor:
    x, m = broadcast_tensors(input, mask)
    return x[m]


@register("nonzero", function=True)
def nonzero(input, as_tuple: bool = False):
    """Indices of the non-zero elements: (n, ndim), or a tuple of ndim (n,) tensors."""
    b = input.backend
    idx = [Tensor._make(b.astype(i, dt.int64), b) for i in b.nonzero(input.array)]
    return tuple(idx) if as_tuple else stack(idx, dim=1) if idx else idx


@register("narrow", function=True)
def narrow(input, dim: int, start: int, length: int) -> Tensor:
    d = normalize_dim(dim, input.ndim, "narrow")
    start = start % input.shape[d] if start < 0 else start
    return input[(slice(None),) * d + (slice(start, start + length),)]


swapaxes = swapdims = transpose
