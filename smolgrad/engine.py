"""The autograd engine: the graph node `Function`, `Tensor`'s autograd face, `backward()`.

This is the file to read first. The whole idea fits in it, top to bottom:

1. Grad mode (grad_mode.py): a thread-local flag, is the graph being recorded?
2. An op is a `Function` subclass with two static methods side by side: `forward` computes
   the result's array; `backward` turns the gradient of the result into the gradients of
   the inputs, written in Tensor ops (so that it can itself be differentiated).
   `Function.apply` runs forward and, when grad mode is on and some input requires grad,
   records the node: an instance of the op class, which is also the `ctx` that `forward`
   saved things on. A forward may return several arrays: one node, several outputs.
3. A `Tensor` holds an array (`.array`, from a backend: NumPy, MLX or CuPy) and, when it was
   computed from tensors that require gradients, the node that made it (`.grad_fn`).
4. `backward()` sorts the recorded graph topologically (iteratively: a million-node chain
   is fine), walks it from the output back to the leaves, calls each node's `backward`
   once the gradients of all its outputs are in, sums each returned gradient back to its
   input's shape (the *only* place broadcasting is undone: `_unbroadcast`), and
   accumulates into the leaves' `.grad`.

Everything else a Tensor can do (`+`, `exp`, `sum`, `item`, `len`, printing, construction
from Python data) is attached to it by `smolgrad/ops/` with `register`: no imports upward.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable

from . import dtypes as dt
from . import registry
from ._size import Size
from ._tensor_methods import TensorMethods
from .arrays import device
from .grad_mode import (  # noqa: F401
    _grad_mode,
    autocast_off,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

# ---------------------------------------------------------------------------------------
# Function: one differentiable op, and (as an instance) one node of the graph
# ---------------------------------------------------------------------------------------


class Function:
    """Subclass with `forward(ctx, *inputs) -> array` and `backward(ctx, *grads) -> grads`
    (`sg.autograd.Function` wraps a forward written in Tensors to return their arrays).

    The instance created by `apply` is both the `ctx` the two methods share and the graph
    node stored in its outputs' `grad_fn`. It holds:
      inputs            the positional arguments of forward (Tensors and plain values)
      needs_input_grad  one bool per input: does the gradient need to reach it?
      backend           the array library of the inputs (`ctx.backend.exp(...)`)
      saved_tensors     what forward saved with `save_for_backward`, version-checked
      output            its output, when the class sets `saves_output = True` (held weakly)

    A forward that returns a tuple of arrays makes one node with several outputs; backward
    gets one gradient per output: zeros for an output no gradient reached (None after
    `ctx.set_materialize_grads(False)`), as in PyTorch.
    """

    saves_output = False    # set True when backward wants the forward's result (exp, tanh)
    differentiable = True   # False for ops whose output has no gradient (argmax, ==)
    materialize_grads = True  # zeros, not None, for an output that got no gradient

    inputs = ()
    needs_input_grad = ()
    torch_name: str | None = None  # how PyTorch prints this node, where it differs
    n_outputs = 1           # set by apply when forward returns a tuple
    _output_specs = ()      # (shape, dtype) of each output, then
    _saved = None
    _saved_versions = ()
    _freed = False
    _output_ref = None

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    def save_for_backward(self, *tensors) -> None:
        self._saved = tensors
        if self.needs_input_grad:  # a recorded node: note versions, to detect in-place changes
            self._saved_versions = tuple([t._version if isinstance(t, Tensor) else None
                                          for t in tensors])

    def set_materialize_grads(self, value: bool) -> None:
        """False: backward receives None (not zeros) for an output that got no gradient."""
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(_FREED_MESSAGE.format(op=self.name))
        saved = self._saved or ()
        for i, (t, v) in enumerate(zip(saved, self._saved_versions)):
            if isinstance(t, Tensor) and t._version != v:
                raise RuntimeError(
                    f"{self.name}: one of the tensors it saved for backward (input {i}, shape "
                    f"{tuple(t.shape)}, dtype {t.dtype.name}) was modified by an in-place "
                    f"operation (version {v} -> {t._version}); compute it out of place or clone() "
                    f"it before changing it")
        return saved

    @property
    def output(self) -> Tensor:
        out = self._output_ref() if self._output_ref is not None else None
        if out is None or out._version != 0:
            raise RuntimeError(f"{self.name}: its output, needed for backward, was modified "
                               f"by an in-place operation or freed; use an out-of-place op")
        return out

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        """`<MulBackward0>`, PyTorch's way; `torch_name` when PyTorch calls the node
        differently (`<MeanBackward0>` for the Div that finishes `mean`, see ops.common)."""
        return f"<{self.torch_name or self.name + 'Backward0'}>"

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward on the inputs; record the node if a gradient will be needed. Returns
        a Tensor, or a tuple of them (one node as their `grad_fn`) if forward did."""
        ctx = cls.__new__(cls)
        backend = None
        any_requires_grad = False
        for a in args:
            if isinstance(a, Tensor):
                if backend is None:
                    backend = a.backend
                elif a.backend is not backend:
                    raise RuntimeError(
                        f"{cls.__name__}: expected all tensors on the same device, got "
                        f"'{backend.device}' and '{a.backend.device}'; move them with "
                        f".to(device) first")
                if a._requires_grad:
                    any_requires_grad = True
        ctx.backend = backend
        record = any_requires_grad and cls.differentiable and _grad_mode.enabled
        if record:
            # per input: does a gradient have to flow to it, and its version now (an in-place
            # change before backward must raise)? Only for recorded nodes: under no_grad,
            # e.g. in an optimizer step, an op costs as little as possible.
            # (tuples, as PyTorch's needs_input_grad: the garbage collector stops tracking a
            # tuple of plain numbers, so a long graph costs it fewer objects to scan)
            needs = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
            ctx.inputs, ctx.needs_input_grad = args, needs
            ctx._input_versions = tuple([a._version if n else 0 for a, n in zip(args, needs)])
        data = cls.forward(ctx, *args, **kwargs)
        if isinstance(data, tuple):
            return ctx._several_outputs(data, record)
        out = Tensor._make(data, ctx.backend)  # forward may move it (Tensor.to(device))
        if record:
            out.grad_fn = ctx
            out._requires_grad = True
            if cls.saves_output:
                ctx._output_ref = weakref.ref(out)
        return out

    def _several_outputs(self, results: tuple, record: bool) -> tuple:
        """One Tensor per array forward returned. When recorded, each floating-point one gets
        this node as `grad_fn` and its position as `_output_nr`; integer and bool outputs
        carry no gradient, as in PyTorch."""
        outs = []
        for i, data in enumerate(results):
            out = Tensor._make(data, self.backend)
            if record and out.dtype.is_floating_point:
                out.grad_fn, out._output_nr, out._requires_grad = self, i, True
            outs.append(out)
        if record:
            self.n_outputs = len(outs)
            self._output_specs = [(o.array.shape, o.dtype) for o in outs]
        return tuple(outs)

    def _output_grads(self, grads: list) -> list:
        """The gradient of each output, for backward: zeros for those that got none
        (None instead when `materialize_grads` is off)."""
        if not self.materialize_grads:
            return grads
        b = self.backend
        return [Tensor._make(b.zeros(shape, dtype), b) if g is None else g
                for g, (shape, dtype) in zip(grads, self._output_specs)]

    def _release(self) -> None:
        """Free what backward needed (PyTorch frees saved tensors unless retain_graph):
        saved tensors, inputs, and anything else forward kept on ctx."""
        self.__dict__.clear()
        self._freed = True


_FREED_MESSAGE = (
    "{op}: trying to backward through the graph a second time (or to use saved tensors "
    "after they were freed). The first backward frees the graph's saved values; pass "
    "retain_graph=True to the first backward() if you need to go through it again.")


# ---------------------------------------------------------------------------------------
# Tensor: an array, and the autograd state around it
# ---------------------------------------------------------------------------------------


def register(*names: str, function: bool | tuple[str, ...] = False,
             inplace: bool = False) -> Callable[[registry.Fn], registry.Fn]:
    """Attach a function to Tensor under the given names and record it in the op registry
    (smolgrad/registry.py): `@register("exp", function=True, inplace=True)`.

    function=True makes it also a top-level function (`smolgrad.exp`; a tuple of names:
    under those, e.g. function=("cat", "concat")); inplace=True adds
    the in-place methods (`exp_`; `add_` and `__iadd__` for "add", "__add__"). The
    package exports, the in-place variants and the type stubs come from the registry."""

    def attach(fn: registry.Fn) -> registry.Fn:
        for name, method in registry.record(fn, names, function, inplace):
            setattr(Tensor, name, method)
        return fn

    return attach


class Tensor(TensorMethods):
    """An n-dimensional array that remembers how it was computed.

    `Tensor(data)` makes float32 tensors like `torch.Tensor`; `sg.tensor(data)` infers the
    dtype like `torch.tensor` (Python floats -> float32, ints -> int64, bools -> bool).
    This class holds the array and the autograd state; the rest of its methods are
    attached by `smolgrad/ops/` (see `register`).
    """

    __slots__ = ("array", "backend", "grad_fn", "_output_nr", "_grad", "_requires_grad",
                 "_version", "_retains_grad", "_hooks", "_view", "_views", "__weakref__")

    def __new__(cls, data=None, dtype=None, device=None, requires_grad: bool = False):
        t = cls._make(*cls._from_data([] if data is None else data, dtype, device))
        if requires_grad:
            t.requires_grad_(True)
        return t

    @staticmethod
    def _from_data(data, dtype, device) -> tuple:
        """(a new array, its backend) from data: provided by smolgrad/ops/construction.py."""
        raise NotImplementedError("smolgrad.ops is not imported")

    @classmethod
    def _make(cls, array, backend) -> Tensor:
        """Wrap a backend array without copying or checking (the hot path of every op)."""
        t = object.__new__(cls)
        t.array = array
        t.backend = backend
        t.grad_fn = None
        t._output_nr = 0          # which output of grad_fn this tensor is
        t._grad = None
        t._requires_grad = False
        t._version = 0            # bumped by every in-place change (ops/views.py)
        t._retains_grad = False
        t._hooks = None
        t._view = t._views = None  # see ops/views.py
        return t

    # -- what it is (for the error messages below) ----------------------------------------
    @property
    def shape(self) -> Size:
        """The sizes of the dimensions, as an `sg.Size` (a tuple that prints as
        `torch.Size([2, 3])`; see smolgrad/_size.py). Built without checks: the array's
        shape holds ints already."""
        return tuple.__new__(Size, self.array.shape)

    @property
    def dtype(self) -> dt.dtype:
        try:
            return self.backend.dtypes_by_native[self.array.dtype]
        except KeyError:
            return self.backend.dtype_of(self.array)  # raises a clear error

    @property
    def device(self) -> device:
        return device(self.backend.device)

    # -- gradients ------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if self.grad_fn is not None and not flag:
            raise RuntimeError("requires_grad_: you can only change requires_grad of leaf "
                               "tensors; use .detach() to get a tensor that does not require "
                               "grad")
        if flag and not self.dtype.is_floating_point:
            raise RuntimeError(f"requires_grad_: only floating point tensors can require "
                               f"gradients, got dtype {self.dtype}")
        self._requires_grad = bool(flag)
        return self

    @property
    def grad(self) -> Tensor | None:
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad must be a Tensor or None, got {type(value).__name__}")
            check_gradient(value, self, "grad", "assigned grad", "tensor")
        self._grad = value

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on a tensor that has "
                               "requires_grad=False")
        self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; a returned Tensor
        replaces the gradient. Returns a handle whose `.remove()` unregisters it."""
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (PyTorch semantics)."""
        seeds = root_gradients([self], [gradient], "backward", "gradient")
        run_backward([self], seeds, retain_graph, create_graph, inputs=inputs,
                     accumulate=True)


class _HookHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


# ---------------------------------------------------------------------------------------
# Backward: the order of the walk, then the chain rule node by node
# ---------------------------------------------------------------------------------------


def topological_order(roots, every_input: bool = False) -> list:
    """The graph below `roots` as one list of tensors and nodes, in an order backward can
    follow: each tensor before the node that made it (its `grad_fn`), each node after all
    of its outputs and before its inputs. Only inputs that need a gradient are followed
    (`every_input=True`: all tensor arguments, for drawing), left to right.

    An explicit stack, not recursion: a million-op chain does not hit the recursion limit.
    The stack is two parallel lists (the item, and whether its inputs are already pushed)
    rather than a list of pairs: no small object is made per step, which keeps Python's
    garbage collector from scanning a large graph again and again (3x faster on a long chain).
    """
    order, seen = [], set()
    stack = list(reversed(roots))        # items to visit ...
    expanded = [False] * len(stack)      # ... and whether their inputs are on the stack yet
    while stack:
        item, done = stack.pop(), expanded.pop()
        if done:
            order.append(item)
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        stack.append(item)
        expanded.append(True)
        if isinstance(item, Tensor):
            if item.grad_fn is not None:
                stack.append(item.grad_fn)
                expanded.append(False)
            continue
        if item._freed:
            raise RuntimeError(_FREED_MESSAGE.format(op=item.name))
        for inp, needed in zip(reversed(item.inputs), reversed(item.needs_input_grad)):
            if (needed or every_input and isinstance(inp, Tensor)) and id(inp) not in seen:
                stack.append(inp)
                expanded.append(False)
    order.reverse()
    return order


def root_gradients(outputs, gradients, op: str, arg: str) -> list:
    """The gradient backward starts from at each output: the one given (data is converted
    to the output's dtype and device), or, for None, ones; implicit only for a
    one-element output, as in PyTorch. `op` and `arg` name the caller in errors."""
    seeds = []
    for out, g in zip(outputs, gradients):
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}: outputs must be Tensors, got {type(out).__name__}")
        if g is None:
            if math.prod(out.shape) != 1:
                raise RuntimeError(f"{op}: grad can be implicitly created only for scalar "
                                   f"outputs, but an output has shape {tuple(out.shape)}; pass "
                                   f"{arg}= of that shape")
            g = Tensor._make(out.backend.ones(out.array.shape, out.dtype), out.backend)
        elif not isinstance(g, Tensor):
            g = Tensor(g, dtype=out.dtype, device=out.device)
        check_gradient(g, out, op, "gradient", "output", dtype=False)
        seeds.append(g)
    return seeds


def check_gradient(grad: Tensor, t: Tensor, context: str, subject: str, other: str,
                   dtype: bool = True) -> None:
    """Raise unless `grad` has t's shape, device and (unless `dtype=False`) dtype, as a
    gradient of t must. The error reads "{context}: {subject} has shape (3,), but the
    {other} has shape (2,)"."""
    if grad.shape != t.shape:
        problem = f"has shape {tuple(grad.shape)}, but the {other} has shape {tuple(t.shape)}"
    elif grad.backend is not t.backend:
        problem = (f"is on device '{grad.device}', but the {other} is on '{t.device}'; "
                   f"move it with .to('{t.device}')")
    elif dtype and grad.dtype != t.dtype:
        problem = (f"has dtype {grad.dtype.name}, but the {other} has dtype {t.dtype.name}; "
                   f"convert it with .to({t.dtype.name})")
    else:
        return
    raise RuntimeError(f"{context}: {subject} {problem}")


def run_backward(roots, root_grads, retain_graph=None, create_graph=False, inputs=None,
                 accumulate=True, observer=None):
    """The engine: propagate `root_grads` (from `root_gradients`) from `roots` back
    through the graph, in `topological_order`.

    With `accumulate=True` (Tensor.backward) gradients are added into leaves' `.grad` (and
    retained non-leaves'); with `accumulate=False` (autograd.grad) nothing is stored and the
    gradients of `inputs` are returned instead. `observer(tensor, node, grad, steps)`, when
    given, sees every node as it is processed (`smolgrad.viz.explain_backward` uses it);
    `steps` holds one `(input, raw_grad, final_grad, summed_axes)` per input reached.
    """
    if retain_graph is None:
        retain_graph = create_graph
    walk = _BackwardPass(inputs, accumulate, create_graph, observer)
    walk.seed(roots, root_grads)
    with set_grad_enabled(create_graph), autocast_off():
        for item in topological_order(roots):
            if isinstance(item, Tensor):
                walk.tensor_done(item)
            elif walk.run_node(item) and not retain_graph:
                item._release()
    evaluate([t._grad for t in walk.stored])
    return walk.results


class _BackwardPass:
    """The state of one backward pass, and its steps.

    A tensor's gradient is the sum of what its consumers sent it (`grads`); when the walk
    reaches the tensor that sum is complete, and `tensor_done` hands it on to the node that
    made the tensor (`node_grads`, one slot per output). When the walk reaches the node,
    all its outputs are done, and `run_node` calls its backward once.
    """

    def __init__(self, inputs, accumulate: bool, create_graph: bool, observer):
        self.grads: dict[int, Tensor] = {}   # id(tensor) -> its gradient so far
        self.node_grads: dict[int, list] = {}  # id(node) -> [an output, [grad per output]]
        self.wanted = None if inputs is None else {id(t): i for i, t in enumerate(inputs)}
        self.results = None if inputs is None else [None] * len(inputs)
        self.accumulate, self.create_graph, self.observer = accumulate, create_graph, observer
        self.stored: list[Tensor] = []       # tensors whose .grad changed

    def add(self, t: Tensor, g: Tensor) -> None:
        key = id(t)
        self.grads[key] = self.grads[key] + g if key in self.grads else g

    def seed(self, roots, root_grads) -> None:
        for r, g in zip(roots, root_grads):
            if not isinstance(r, Tensor) or not r._requires_grad:
                raise RuntimeError("backward: element of the outputs does not require grad "
                                   "and has no grad_fn (was it computed under no_grad, or "
                                   "from tensors without requires_grad=True?)")
            self.add(r, g)

    def tensor_done(self, t: Tensor) -> None:
        """t's gradient is complete: run its hooks, store or return it, pass it on."""
        g = self.grads.pop(id(t), None)
        if g is None:
            return
        if t._hooks:
            g = _run_hooks(t, g)
        wanted = self.wanted
        if wanted is not None and id(t) in wanted:
            self.results[wanted[id(t)]] = g
        if self.accumulate and (t.grad_fn is None or t._retains_grad) and (
                wanted is None or id(t) in wanted):
            # a new Tensor object around the (never mutated) array: .grad is not aliased
            g_store = g if self.create_graph else Tensor._make(g.array, g.backend)
            with _accumulate_lock:  # threads may run backward into a shared leaf
                t._grad = g_store if t._grad is None else t._grad + g_store
            self.stored.append(t)
        node = t.grad_fn
        if node is not None:
            entry = self.node_grads.setdefault(id(node), [t, [None] * node.n_outputs])
            slots, nr = entry[1], t._output_nr  # two Tensor objects may share one output
            slots[nr] = g if slots[nr] is None else slots[nr] + g  # (a view's stand-in)

    def run_node(self, node: Function) -> bool:
        """Call node's backward on its outputs' gradients and send each returned gradient
        to its input. False when no gradient reached the node (it did not run)."""
        entry = self.node_grads.pop(id(node), None)
        if entry is None:
            return False
        t, out_grads = entry
        if node.n_outputs > 1:
            out_grads = node._output_grads(out_grads)
        in_grads = type(node).backward(node, *out_grads)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        steps = [] if self.observer is not None else None
        for inp, ig, needed, version in zip(node.inputs, in_grads, node.needs_input_grad,
                                            node._input_versions):
            if needed and ig is not None:
                self.add(inp, _input_gradient(node, inp, ig, version, steps))
        if steps is not None:
            self.observer(t, node, out_grads[t._output_nr], steps)
        return True


def _input_gradient(node: Function, inp: Tensor, grad, version: int, steps) -> Tensor:
    """What backward returned for `inp`, checked and brought to inp's shape and dtype
    (noted in `steps`, when observed)."""
    if inp._version != version and inp.grad_fn is not None:
        raise RuntimeError(
            f"{node.name}: its input of shape {tuple(inp.shape)} was modified by an in-place "
            f"operation after {node.name} used it (version {version} -> {inp._version}); "
            f"use an out-of-place op")
    if not isinstance(grad, Tensor):
        grad = Tensor._make(node.backend.asarray(grad), node.backend)
    final = grad
    if grad.array.shape != inp.array.shape or grad.array.dtype != inp.array.dtype:
        final = _unbroadcast(grad, inp, node)
    if steps is not None:
        axes = broadcast_axes(grad.shape, inp.shape) if grad.shape != inp.shape else ()
        steps.append((inp, grad, final, axes))
    return final


def broadcast_axes(grad_shape: tuple, shape: tuple) -> tuple:
    """The axes of a gradient of `grad_shape` that must be summed to get back `shape`."""
    lead = len(grad_shape) - len(shape)
    if lead < 0 or any(s != 1 and s != g for s, g in zip(shape, grad_shape[lead:])):
        raise ValueError(f"gradient of shape {grad_shape} cannot be reduced to shape {shape}")
    return tuple(range(lead)) + tuple(lead + i for i, (s, g) in
                                      enumerate(zip(shape, grad_shape[lead:]))
                                      if s == 1 and g != 1)


def _unbroadcast(grad: Tensor, inp: Tensor, node: Function) -> Tensor:
    """Sum `grad` back to `inp`'s shape and cast it to `inp`'s dtype.

    The one place in smolgrad where broadcasting is undone: an input that was broadcast
    along an axis contributed to every element along it, so its gradient is the sum.
    """
    if grad.array.shape != inp.array.shape:
        try:
            axes = broadcast_axes(grad.shape, inp.shape)
        except ValueError:
            raise RuntimeError(f"{node.name}.backward returned a gradient of shape "
                               f"{tuple(grad.shape)} for an input of shape "
                               f"{tuple(inp.shape)}") from None
        if axes:
            grad = grad.sum(dim=axes, keepdim=True)
        grad = grad.reshape(inp.shape)
    if grad.array.dtype != inp.array.dtype:
        grad = grad.to(inp.dtype)
    return grad


_accumulate_lock = threading.Lock()


def _run_hooks(t: Tensor, grad: Tensor) -> Tensor:
    """Call t's gradient hooks in order; a returned Tensor replaces the gradient, and must
    keep its shape, dtype and device (as in PyTorch)."""
    for hook in list(t._hooks):
        new = hook(grad)
        if new is None:
            continue
        name = getattr(hook, "__name__", repr(hook))
        if not isinstance(new, Tensor):
            raise TypeError(f"hook '{name}' returned {type(new).__name__}; a gradient hook "
                            f"must return a Tensor or None")
        check_gradient(new, grad, f"hook '{name}' has changed the gradient", "its result",
                       "gradient it was given")
        grad = new
    return grad


def evaluate(tensors) -> None:
    """Make lazy backends (MLX) compute these tensors now, so that a training loop's graph
    of pending array operations stays small. A no-op for eager backends. The engine calls it
    on the gradients after backward; optimizers call it on the parameters after a step."""
    by_backend: dict = {}
    for t in tensors:
        if t is not None and getattr(t.backend, "lazy", False):
            by_backend.setdefault(id(t.backend), (t.backend, []))[1].append(t.array)
    for backend, arrays in by_backend.values():
        backend.eval(*arrays)
