"""The autograd engine: `Tensor`, the graph node `Function`, grad mode, and `backward()`.

This is the file to read first. The whole idea fits in it:

1. A `Tensor` holds an array (`.array`, from a backend: NumPy, MLX or CuPy) and, when it was
   computed from tensors that require gradients, the node that made it (`.grad_fn`).
2. An op is a `Function` subclass with two static methods side by side: `forward` computes
   the result's array; `backward` turns the gradient of the result into the gradients of
   the inputs, written in Tensor ops (so that it can itself be differentiated).
   `Function.apply` runs forward and, when grad mode is on and some input requires grad,
   records the node: an instance of the op class, which is also the `ctx` that `forward`
   saved things on.
3. `backward()` sorts the recorded graph topologically (iteratively: a million-node chain
   is fine), walks it from the output back to the leaves, calls each node's `backward`,
   sums each returned gradient back to its input's shape (the *only* place broadcasting is
   undone: `_unbroadcast`), and accumulates into the leaves' `.grad`.

The operators and methods (`+`, `exp`, `sum`, ...) are attached to `Tensor` by the op
modules in `smolgrad/ops/` with `register`, so this file never imports them.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref

from . import dtypes as dt
from .arrays import canonical_device, device, get_backend

# ---------------------------------------------------------------------------------------
# Grad mode: is the graph being recorded? Thread-local, like PyTorch's.
# ---------------------------------------------------------------------------------------


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


class _GradModeContext:
    """Base for no_grad / enable_grad / set_grad_enabled: a context manager and decorator."""

    mode = True

    def __enter__(self):
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = self.mode

    def __exit__(self, *exc):
        _grad_mode.enabled = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._init_args()):
                return fn(*args, **kwargs)

        return wrapper

    def _init_args(self) -> tuple:
        return ()


class _NoArgGradModeContext(_GradModeContext):
    """no_grad / enable_grad take no arguments, so (as in PyTorch) they also decorate bare:
    `@sg.no_grad` as well as `@sg.no_grad()`."""

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        if fn is None:
            return self
        if not callable(fn):
            raise TypeError(f"{cls.__name__}() takes no arguments (got "
                            f"{type(fn).__name__}); use it as `with sg.{cls.__name__}():` or "
                            f"as a decorator")
        return self(fn)  # used as `@sg.no_grad` on a function: return the wrapped function

    def __init__(self, fn=None):
        pass


class no_grad(_NoArgGradModeContext):  # noqa: N801 - PyTorch's spelling
    """Run without recording the graph: `with sg.no_grad(): ...`, `@sg.no_grad()` or
    `@sg.no_grad`."""

    mode = False


class enable_grad(_NoArgGradModeContext):  # noqa: N801
    """Record the graph again inside a `no_grad` region."""

    mode = True


inference_mode = no_grad


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """`set_grad_enabled(False)` switches recording off now; as a context it restores after."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = self.mode

    def __enter__(self):
        pass

    def _init_args(self) -> tuple:
        return (self.mode,)


# ---------------------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------------------


def register(*names):
    """Attach a function to Tensor under the given names: `@register("exp")`."""

    def attach(fn):
        for name in names:
            setattr(Tensor, name, fn)
        return fn

    return attach


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    `Tensor(data)` makes float32 tensors like `torch.Tensor`; `sg.tensor(data)` infers the
    dtype like `torch.tensor` (Python floats -> float32, ints -> int64, bools -> bool).
    """

    __slots__ = ("array", "backend", "grad_fn", "_grad", "_requires_grad", "_version",
                 "_retains_grad", "_hooks", "_view", "_views", "__weakref__")
    __array_priority__ = 1000  # so that `ndarray * Tensor` calls Tensor.__rmul__

    def __init__(self, data=None, dtype=None, device=None, requires_grad: bool = False):
        if data is None:
            data = []
        dtype = dt.float32 if dtype is None else dtype
        backend = _backend_for(data, device)
        self.array = _to_array(data, dt.as_dtype(dtype), backend)
        self.backend = backend
        self.grad_fn = None
        self._grad = None
        self._requires_grad = False
        self._version = 0
        self._retains_grad = False
        self._hooks = None
        self._view = self._views = None  # see ops/views.py
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, backend) -> Tensor:
        """Wrap a backend array without copying or checking (the hot path of every op)."""
        t = object.__new__(cls)
        t.array = data
        t.backend = backend
        t.grad_fn = None
        t._grad = None
        t._requires_grad = False
        t._version = 0
        t._retains_grad = False
        t._hooks = None
        t._view = t._views = None
        return t

    # -- what it is -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.array.shape)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> dt.dtype:
        try:
            return self.backend.dtypes_by_native[self.array.dtype]
        except KeyError:
            return self.backend.dtype_of(self.array)  # raises a clear error

    @property
    def device(self) -> device:
        return device(self.backend.device)

    def size(self, dim: int | None = None):
        if dim is None:
            return self.shape
        n = self.ndim
        if not -n <= dim < n:
            raise IndexError(f"size: dimension out of range (expected to be in range of "
                             f"[{-n}, {n - 1}], but got {dim}) for a tensor of shape "
                             f"{self.shape}")
        return self.shape[dim]

    def numel(self) -> int:
        return math.prod(self.array.shape)

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    # -- gradients ------------------------------------------------------------------------
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

    def set_requires_grad(self, flag: bool = True) -> Tensor:
        """The original smolgrad's name for `requires_grad_`."""
        return self.requires_grad_(flag)

    @property
    def grad(self) -> Tensor | None:
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad must be a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(f"assigned grad has shape {value.shape}, but the tensor "
                                   f"has shape {self.shape}")
            if value.backend is not self.backend:
                raise RuntimeError(f"assigned grad is on device '{value.device}', but the "
                                   f"tensor is on '{self.device}'")
            if value.dtype != self.dtype:
                raise RuntimeError(f"assigned grad has dtype {value.dtype.name}, but the "
                                   f"tensor has dtype {self.dtype.name}; convert it with "
                                   f".to({self.dtype.name}) first")
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
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar "
                                   f"outputs, but this tensor has shape {self.shape}; pass "
                                   f"gradient= of that shape")
            gradient = Tensor._make(self.backend.ones(self.array.shape, self.dtype), self.backend)
        run_backward([self], [gradient], retain_graph, create_graph, inputs=inputs,
                     accumulate=True)

    # -- leaving smolgrad -----------------------------------------------------------------
    def item(self):
        if self.numel() != 1:
            raise RuntimeError(f"item: a Tensor with {self.numel()} elements (shape "
                               f"{self.shape}) cannot be converted to a Python number")
        return self.backend.item(self.array)

    def tolist(self):
        return self.backend.to_numpy(self.array).tolist()

    def numpy(self):
        if self._requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy()")
        return self.backend.to_numpy(self.array)

    def __array__(self, dtype=None, copy=None):
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __contains__(self, element) -> bool:
        """`v in t`: does any element equal v (PyTorch's meaning)?"""
        return bool((self == element).any().item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with {self.numel()} "
                               f"elements is ambiguous; use .any() or .all()")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to "
                            "an index")
        return int(self.item())

    __hash__ = object.__hash__  # tensors hash by identity, as in PyTorch


class _HookHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _backend_for(data, device_name):
    if device_name is not None:
        return get_backend(canonical_device(device_name))
    if isinstance(data, Tensor):
        return data.backend
    return get_backend(None)


def _to_array(data, dtype, backend):
    """Convert user data (scalars, lists, arrays of any backend, Tensors) to an array."""
    if isinstance(data, Tensor):
        if data.backend is not backend:
            data = data.backend.to_numpy(data.array)
        else:
            return backend.astype(backend.copy(data.array), dtype)
    elif isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in _flat(data)):
        data = [_to_numpy_nested(d) for d in data]
    array = backend.asarray(data, dtype)
    if array is data or getattr(array, "base", None) is data:
        array = backend.copy(array)  # like torch.tensor: never share the caller's array
    return array


def _flat(data):
    for d in data:
        if isinstance(d, (list, tuple)):
            yield from _flat(d)
        else:
            yield d


def _to_numpy_nested(d):
    if isinstance(d, Tensor):
        return d.backend.to_numpy(d.array)
    if isinstance(d, (list, tuple)):
        return [_to_numpy_nested(x) for x in d]
    return d


def infer_dtype(data) -> dt.dtype:
    """PyTorch's inference for `sg.tensor(data)`: float -> default float, int -> int64."""
    if isinstance(data, Tensor):
        return data.dtype
    native = getattr(data, "dtype", None)
    if native is not None:
        return dt.as_dtype(str(native).split(".")[-1])
    kinds = {type(x) for x in _flat(data)} if isinstance(data, (list, tuple)) else {type(data)}
    kinds = {bool if issubclass(k, bool) else k for k in kinds}
    if not kinds or any(not issubclass(k, (bool, int)) for k in kinds):
        return dt.get_default_dtype()
    return dt.bool_ if kinds == {bool} else dt.int64


# ---------------------------------------------------------------------------------------
# Function: one differentiable op, and (as an instance) one node of the graph
# ---------------------------------------------------------------------------------------


class Function:
    """Subclass with `forward(ctx, *inputs) -> array` and `backward(ctx, grad) -> grads`.

    The instance created by `apply` is both the `ctx` the two methods share and the graph
    node stored in the output's `grad_fn`. It holds:
      inputs            the positional arguments of forward (Tensors and plain values)
      needs_input_grad  one bool per input: does the gradient need to reach it?
      backend           the array library of the inputs (`ctx.backend.exp(...)`)
      saved_tensors     what forward saved with `save_for_backward`, version-checked
      output            the tensor this node produced, when the class sets
                        `saves_output = True` (held weakly: node and output must not keep
                        each other alive)
    """

    saves_output = False    # set True when backward wants the forward's result (exp, tanh)
    differentiable = True   # False for ops whose output has no gradient (argmax, ==)

    inputs = ()
    needs_input_grad = ()
    _saved = None
    _saved_versions = ()
    _freed = False

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    def save_for_backward(self, *tensors) -> None:
        # Only stored here: `apply` notes their versions when it records the node (when it
        # does not, nothing will read them, and noting them would be wasted work).
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(_FREED_MESSAGE.format(op=self.name))
        saved = self._saved or ()
        for i, (t, v) in enumerate(zip(saved, self._saved_versions)):
            if isinstance(t, Tensor) and t._version != v:
                raise RuntimeError(
                    f"{self.name}: one of the tensors it saved for backward (input {i}, shape "
                    f"{t.shape}, dtype {t.dtype.name}) was modified by an in-place operation "
                    f"(version {v} -> {t._version}); compute it out of place or clone() it "
                    f"before changing it")
        return saved

    @property
    def output(self) -> Tensor:
        out = self._output_ref() if self._output_ref is not None else None
        if out is None or out._version != 0:
            raise RuntimeError(f"{self.name}: its output, needed for backward, was modified "
                               f"by an in-place operation or freed; use an out-of-place op")
        return out

    _output_ref = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}Backward0>"

    @classmethod
    def apply(cls, *args, **kwargs) -> Tensor:
        """Run forward on the inputs; record the node if a gradient will be needed."""
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
            # per input: does a gradient have to flow to it? (only built for recorded nodes:
            # under no_grad, e.g. in an optimizer step, an op costs as little as possible)
            needs = [isinstance(a, Tensor) and a._requires_grad for a in args]
            ctx.inputs = args
            ctx.needs_input_grad = needs
        data = cls.forward(ctx, *args, **kwargs)
        if isinstance(data, Tensor):  # user-defined Functions may return a Tensor
            data = data.array
        out = Tensor._make(data, ctx.backend)  # forward may move it (Tensor.to(device))
        if record:
            out.grad_fn = ctx
            out._requires_grad = True
            # versions of the inputs and saved tensors, to detect in-place changes before
            # backward (forward never changes an array, so now is as good as when saved)
            ctx._input_versions = [a._version if n else 0 for a, n in zip(args, needs)]
            if ctx._saved:
                ctx._saved_versions = [t._version if isinstance(t, Tensor) else None
                                       for t in ctx._saved]
            if cls.saves_output:
                ctx._output_ref = weakref.ref(out)
        return out

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
# Backward: topological order, then the chain rule node by node
# ---------------------------------------------------------------------------------------


def topological_order(roots) -> list:
    """Tensors reachable from `roots` through grad_fn inputs, each after all its consumers.

    An explicit stack instead of recursion, so a million-op chain does not hit Python's
    recursion limit.
    """
    order, seen = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        node = t.grad_fn
        if node is not None:
            if node._freed:
                raise RuntimeError(_FREED_MESSAGE.format(op=node.name))
            for inp, needed in zip(node.inputs, node.needs_input_grad):
                if needed and id(inp) not in seen:
                    stack.append((inp, False))
    order.reverse()
    return order


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
                               f"{grad.shape} for an input of shape {inp.shape}") from None
        if axes:
            grad = grad.sum(dim=axes, keepdim=True)
        grad = grad.reshape(inp.shape)
    if grad.array.dtype != inp.array.dtype:
        grad = grad.to(inp.dtype)
    return grad


def run_backward(roots, root_grads, retain_graph=None, create_graph=False, inputs=None,
                 accumulate=True, observer=None):
    """The engine: propagate `root_grads` from `roots` back through the graph.

    With `accumulate=True` (Tensor.backward) gradients are added into leaves' `.grad` (and
    retained non-leaves'); with `accumulate=False` (autograd.grad) nothing is stored and the
    gradients of `inputs` are returned instead. `observer(tensor, node, grad, steps)`, when
    given, sees every node as it is processed (`smolgrad.viz.explain_backward` uses it);
    `steps` holds one `(input, raw_grad, final_grad, summed_axes)` per input reached.
    """
    if retain_graph is None:
        retain_graph = create_graph
    grads: dict[int, Tensor] = {}
    for r, g in zip(roots, root_grads):
        if not isinstance(r, Tensor) or not r._requires_grad:
            raise RuntimeError("backward: element of the outputs does not require grad and "
                               "has no grad_fn (was it computed under no_grad, or from "
                               "tensors without requires_grad=True?)")
        g = g if isinstance(g, Tensor) else Tensor(g, dtype=r.dtype, device=r.device)
        if g.backend is not r.backend:
            raise RuntimeError(f"backward: gradient is on device '{g.device}', but the output "
                               f"is on '{r.device}'; move it with .to('{r.device}')")
        if g.shape != r.shape:
            raise RuntimeError(f"backward: gradient has shape {g.shape}, but the output has "
                               f"shape {r.shape}")
        grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    wanted = None
    if inputs is not None:
        wanted = {id(t): i for i, t in enumerate(inputs)}
        results = [None] * len(inputs)
    touched = []
    with set_grad_enabled(create_graph):
        for t in topological_order(roots):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._hooks:
                g = _run_hooks(t, g)
            if wanted is not None and id(t) in wanted:
                results[wanted[id(t)]] = g
            if accumulate and (t.grad_fn is None or t._retains_grad) and (
                    wanted is None or id(t) in wanted):
                # a new Tensor object around the (never mutated) array: .grad is not aliased
                g_store = g if create_graph else Tensor._make(g.array, g.backend)
                with _accumulate_lock:  # threads may run backward into a shared leaf
                    t._grad = g_store if t._grad is None else t._grad + g_store
                touched.append(t)
            node = t.grad_fn
            if node is None:
                continue
            in_grads = type(node).backward(node, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) < len(node.inputs):
                in_grads = in_grads + (None,) * (len(node.inputs) - len(in_grads))
            steps = [] if observer is not None else None
            for inp, ig, needed, version in zip(node.inputs, in_grads, node.needs_input_grad,
                                                node._input_versions):
                if not needed or ig is None:
                    continue
                if inp._version != version and inp.grad_fn is not None:
                    raise RuntimeError(
                        f"{node.name}: its input of shape {inp.shape} was modified by an "
                        f"in-place operation after {node.name} used it (version {version} -> "
                        f"{inp._version}); use an out-of-place op")
                if not isinstance(ig, Tensor):
                    ig = Tensor._make(node.backend.asarray(ig), node.backend)
                raw = ig
                if ig.array.shape != inp.array.shape or ig.array.dtype != inp.array.dtype:
                    ig = _unbroadcast(ig, inp, node)
                if steps is not None:
                    axes = broadcast_axes(raw.shape, inp.shape) if raw.shape != inp.shape else ()
                    steps.append((inp, raw, ig, axes))
                key = id(inp)
                grads[key] = grads[key] + ig if key in grads else ig
            if observer is not None:
                observer(t, node, g, steps)
            if not retain_graph:
                node._release()
    evaluate([t._grad for t in touched])
    if inputs is not None:
        return results
    return None


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
        if new.shape != grad.shape or new.dtype != grad.dtype or new.backend is not grad.backend:
            raise RuntimeError(
                f"hook '{name}' has changed the gradient from shape {grad.shape}, "
                f"{grad.dtype.name} on '{grad.device}' to shape {new.shape}, "
                f"{new.dtype.name} on '{new.device}'; a hook must keep all three")
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
