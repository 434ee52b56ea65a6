"""Views and in-place writes: `.data`, `detach()`, `x[1:3].zero_()`, `p.data.add_(u)`.

In PyTorch a view (a slice, `view`, `reshape` where possible, `t()`, `permute`, `expand`,
`squeeze`, `unsqueeze`, `narrow`, `.data`, `detach()`) shares memory with its base: writing
through one changes the other. smolgrad keeps that meaning on every backend, including
MLX, whose arrays cannot be changed in place, and without ever mutating an array that
someone else may hold (the engine relies on that: a saved array never changes under it).
The trick is to write *functionally*:

- A view remembers its root base and the `steps` (reshape, transpose, basic index,
  broadcast) that turn the base's array into its own. The base keeps a weak set of its
  live views.
- Writing new values into a view builds the base's new array ("the old one with these
  elements replaced", `scatter_into`), gives it to the base, and recomputes every live
  view of the base from it. Writing into the base does the second half only.
- Every tensor whose values changed gets its version counter bumped, so a pending
  backward that saved one of them raises instead of using the new values. A `.data`
  alias is the exception, as in PyTorch: its writes change the base's values without
  telling autograd.
- When the write itself is recorded (grad mode on, and the base or the new values
  require grad), the base's new value is the output of `WriteView` (PyTorch's
  CopySlices), and every live view is re-derived from it, so gradients stay right.
"""

from __future__ import annotations

import math
import weakref

from .. import dtypes as dt
from ..engine import Function, Tensor, is_grad_enabled, register


class ViewOf:
    """What makes a tensor a view: its root base, the steps from the base's array to the
    view's, and whether writes bump the base's version counter (False for `.data`)."""

    __slots__ = ("base", "steps", "shares_version")

    def __init__(self, base: Tensor, steps: tuple, shares_version: bool = True):
        self.base, self.steps, self.shares_version = base, steps, shares_version


def apply_steps(backend, array, steps: tuple):
    """The view's array from its base's: each step is ("reshape", shape), ("transpose",
    axes), ("getitem", basic_index) or ("broadcast_to", shape), a backend primitive."""
    for kind, arg in steps:
        array = getattr(backend, kind)(array, arg)
    return array


def as_view(out: Tensor, source: Tensor, step: tuple | None) -> Tensor:
    """Mark `out` (just computed from `source` by one view op) as a view of source's root.
    `step=None` is the identity (detach)."""
    parent = source._view
    if parent is None:
        base, steps, shares_version = source, (), True
    else:  # a view of a view is a view of the root (a view of .data stays unrecorded)
        base, steps, shares_version = parent.base, parent.steps, parent.shares_version
    out._view = ViewOf(base, steps if step is None else steps + (step,), shares_version)
    if base._views is None:
        base._views = weakref.WeakSet()
    base._views.add(out)
    return out


def reshape_is_view(source: Tensor, out: Tensor) -> bool:
    """Did reshape return a view (PyTorch: when the strides allow) or a copy? NumPy and
    CuPy say so exactly; MLX has no strides to ask, so its reshapes count as views."""
    shares = getattr(getattr(source.backend, "xp", None), "may_share_memory", None)
    return shares is None or bool(shares(source.array, out.array))


def scatter_into(backend, base, steps: tuple, values):
    """A new array: `base` with the elements that `steps` select replaced by `values`.

    Generic over every view: apply the same steps to an array of element numbers
    (0, 1, ..., n-1 in base's shape) to learn which elements of base the view shows, then
    write `values` there. An expanded view shows some elements twice: writing through it
    is ambiguous, and an error, as in PyTorch.
    """
    if not steps:
        return values
    ids = backend.reshape(backend.arange(0, math.prod(base.shape), 1, dt.int64), base.shape)
    for kind, arg in steps:
        before = ids.shape
        ids = getattr(backend, kind)(ids, arg)
        if kind == "broadcast_to" and math.prod(ids.shape) != math.prod(before):
            raise RuntimeError(
                "unsupported operation: more than one element of the written-to tensor "
                f"refers to a single memory location (it was expanded from {tuple(before)} "
                f"to {tuple(ids.shape)}); clone() the tensor before writing to it")
    flat_ids = backend.reshape(ids, (-1,))
    flat_values = backend.reshape(backend.broadcast_to(values, ids.shape), (-1,))
    flat = backend.setitem(backend.reshape(base, (-1,)), flat_ids, flat_values)
    return backend.reshape(flat, base.shape)


class WriteView(Function):
    """y = x with the elements that a view of x shows replaced by v   (PyTorch: CopySlices)

    dL/dx = dL/dy with those elements set to zero (their old values were overwritten),
    dL/dv = the same view of dL/dy."""

    @staticmethod
    def forward(ctx, x, value, steps):
        return scatter_into(ctx.backend, x.array, steps, value.array)

    @staticmethod
    def backward(ctx, grad):
        _, value, steps = ctx.inputs
        gx = gv = None
        if ctx.needs_input_grad[0]:
            zeros = Tensor._make(ctx.backend.zeros(value.shape, grad.dtype), ctx.backend)
            gx = WriteView.apply(grad, zeros, steps)
        if ctx.needs_input_grad[1]:
            gv = view_through(grad, steps)
        return gx, gv, None


# The recorded op for each kind of view step: {"reshape": Reshape, ...}. ops/movement.py
# defines those Functions, imports this module, and fills the table, so that the import
# runs one way only.
STEP_OPS: dict[str, type] = {}


def view_through(t: Tensor, steps: tuple) -> Tensor:
    """Apply a view's steps with recorded Tensor ops (so the result has a grad_fn)."""
    for kind, arg in steps:
        t = STEP_OPS[kind].apply(t, arg)
    return t


def _stand_in(t: Tensor) -> Tensor:
    """A new Tensor object for t's current value and history: the graph keeps pointing at
    it after t itself takes a new value."""
    old = Tensor._make(t.array, t.backend)
    old.grad_fn, old._output_nr, old._requires_grad = t.grad_fn, t._output_nr, t._requires_grad
    old._version = t._version
    return old


def _refresh_views(base: Tensor, bump: bool, recorded: bool) -> None:
    """Recompute every live view of `base` from its new array (and, when the write was
    recorded, re-derive each view's history from the base's new one)."""
    if not base._views:
        return
    source = _stand_in(base) if recorded else None
    for v in list(base._views):
        steps = v._view.steps
        if recorded and base._requires_grad:
            fresh = view_through(source, steps)
            v.array, v.grad_fn, v._requires_grad = fresh.array, fresh.grad_fn, True
            v._output_nr = fresh._output_nr
        else:
            v.array = apply_steps(base.backend, base.array, steps)
        if bump:
            v._version += 1


def _fit(t: Tensor, array):
    """`array` broadcast to t's shape and cast to t's dtype (what an in-place write stores)."""
    if tuple(array.shape) != t.shape:
        array = t.backend.broadcast_to(array, t.array.shape)
    return t.backend.astype(array, t.dtype)


@register("_assign")
def assign(self: Tensor, array) -> Tensor:
    """Write new values into `self` without recording (optimizer steps, `.data` writes,
    `no_grad` in-place ops): self, its base and all their live views see them."""
    array = _fit(self, array)
    view = self._view
    if view is None:
        self.array = array
        self._version += 1
        _refresh_views(self, bump=True, recorded=False)
        return self
    base = view.base
    base.array = scatter_into(base.backend, base.array, view.steps, array)
    if view.shares_version:
        base._version += 1
        _refresh_views(base, bump=True, recorded=False)
    else:  # a .data alias: values change, autograd is not told (PyTorch's meaning)
        _refresh_views(base, bump=False, recorded=False)
        self._version += 1
    return self


def _check_inplace(t: Tensor, op: str) -> None:
    if not is_grad_enabled():
        return
    if t._requires_grad and t.grad_fn is None:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an "
                           f"in-place operation; wrap it in `with sg.no_grad():` or use "
                           f"an out-of-place op")
    view = t._view
    if view is not None and view.shares_version and t._requires_grad:
        base = view.base  # (a view that does not require grad, e.g. of detach(), may be written)
        if base._requires_grad and base.grad_fn is None:
            raise RuntimeError(f"{op}: a view of a leaf tensor that requires grad (shape "
                               f"{tuple(base.shape)}) is being used in an in-place operation; wrap "
                               f"it in `with sg.no_grad():` or clone() the view first")


def _can_cast(src: dt.dtype, dst: dt.dtype) -> bool:
    """PyTorch's rule for in-place results: no float into an integer/bool tensor, no
    integer into a bool tensor."""
    if src.is_floating_point and not dst.is_floating_point:
        return False
    return not (dst is dt.bool_ and src is not dt.bool_)


@register("_inplace")
def inplace(self: Tensor, op: str, fn, *args, **kwargs) -> Tensor:
    """Run `fn(self, *args)` out of place, then make `self` hold the result.

    The result's history is rebased onto a stand-in for the old value, and the version
    counter goes up: every node that saved or used the old value notices at backward
    time instead of silently differentiating with the new one. Through a view, the write
    lands in the base (see the module docstring).
    """
    _check_inplace(self, op)
    view = self._view
    through_base = view is not None and view.shares_version
    target = view.base if through_base else self
    # a view cut off from its base's history (of detach(), or made under no_grad): the
    # write changes the base's values, bumps its version and is not recorded, as PyTorch
    detached = through_base and target._requires_grad and not self._requires_grad
    base_old = None
    if through_base and is_grad_enabled() and target._requires_grad and not detached:
        # the view's old value, re-derived from a stand-in of the base: the new history
        # must not run through nodes that used the base before this write
        base_old = _stand_in(target)
        old = view_through(base_old, view.steps)
    else:
        old = _stand_in(self)
    result = fn(old, *args, **kwargs)
    if not _can_cast(result.dtype, self.dtype):
        raise RuntimeError(f"{op}: result type {result.dtype.name} can't be cast to the "
                           f"desired output type {self.dtype.name} (an in-place op keeps "
                           f"the tensor's dtype); use the out-of-place op")
    if detached and is_grad_enabled() and result._requires_grad:
        raise RuntimeError(f"{op}: writing a value that requires grad into a view that does "
                           f"not (a view of detach(), or one made under no_grad) of a "
                           f"tensor that requires grad; make the view with grad enabled, "
                           f"or detach() the value")
    if detached or not (is_grad_enabled() and (result._requires_grad or target._requires_grad)):
        return assign(self, result.array)
    if not through_base:
        self.array = _fit(self, result.array)
        self._version += 1
        if result.grad_fn is not None:
            self.grad_fn, self._output_nr, self._requires_grad = (result.grad_fn,
                                                                  result._output_nr, True)
        elif self.grad_fn is not None:  # the new value no longer depends on the old history
            self.grad_fn, self._requires_grad = None, False
        _refresh_views(self, bump=True, recorded=True)
        return self
    value = result if result.dtype is target.dtype else result.to(target.dtype)
    if base_old is None:
        base_old = _stand_in(target)
    new_base = WriteView.apply(base_old, value, view.steps)
    target.array, target.grad_fn, target._requires_grad = (new_base.array, new_base.grad_fn,
                                                           True)
    target._output_nr = new_base._output_nr
    target._version += 1
    _refresh_views(target, bump=True, recorded=True)
    return self


# ---------------------------------------------------------------------------------------
# The tensor-level entry points
# ---------------------------------------------------------------------------------------


def _get_data(self: Tensor) -> Tensor:
    """PyTorch's `.data`: the same values as a tensor that autograd does not see. Writes
    through it (`p.data.add_(u)`, `p.data += u`, `p.data.normal_()`) change `self` without
    bumping its version counter. The raw backend array is `.array`."""
    alias = as_view(Tensor._make(self.array, self.backend), self, None)
    alias._view.shares_version = False
    return alias


def _set_data(self: Tensor, value: Tensor) -> None:
    """`p.data = t`: p takes t's values (shape, dtype and device too), history untouched."""
    if not isinstance(value, Tensor):
        raise TypeError(f"data: assigned value must be a Tensor, got {type(value).__name__}")
    self.array, self.backend = value.array, value.backend
    self._views = None  # old views keep the old values, as in PyTorch


Tensor.data = property(_get_data, _set_data)


@register("detach")
def detach(self: Tensor) -> Tensor:
    """The same values, cut off from the graph. A view: writes through either are seen by
    both, and bump the shared version counter."""
    return as_view(Tensor._make(self.array, self.backend), self, None)


@register("detach_")
def detach_(self: Tensor) -> Tensor:
    self.grad_fn = None
    self._requires_grad = False
    return self


@register("zero_")
def zero_(self: Tensor) -> Tensor:
    return fill_(self, 0)


def _filled(old: Tensor, value) -> Tensor:
    """The out-of-place half of `fill_` on a recorded tensor: every element is `value`."""
    everywhere = Tensor._make(old.backend.ones(old.array.shape, dt.bool_), old.backend)
    return old.masked_fill(everywhere, value)


@register("fill_")
def fill_(self: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        value = value.item()
    view = self._view
    target = view.base if view is not None and view.shares_version else self
    if is_grad_enabled() and target._requires_grad:  # stays in the graph: zero grad to old
        return inplace(self, "fill_", _filled, value)
    _check_inplace(self, "fill_")
    return assign(self, self.backend.full(self.array.shape, value, self.dtype))


def _copy_from(old: Tensor, src: Tensor) -> Tensor:
    """The out-of-place half of `copy_`: src broadcast to old's shape, in old's dtype."""
    out = src.to(old.dtype)
    return out.expand(old.shape) if out.shape != old.shape else out


@register("copy_")
def copy_(self: Tensor, src) -> Tensor:
    """Copy `src`'s values into this tensor (broadcast to its shape, cast to its dtype)."""
    if not isinstance(src, Tensor):
        src = Tensor(src, dtype=self.dtype, device=self.device)
    if src.backend is not self.backend:
        src = src.to(self.device)
    return inplace(self, "copy_", _copy_from, src)
