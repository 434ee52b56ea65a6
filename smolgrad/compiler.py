"""`sg.compile(fn)`: record one call of a training step, then replay it without Python.

(This module is `smolgrad.compiler`, PyTorch's `torch.compiler`: `sg.compile` is the
function, so the module cannot share its name.)

Every smolgrad op reaches its arrays through a backend object (`t.backend.multiply(...)`,
one object per device). So one call of a training step (forward, backward, optimizer
update) *is* a flat list of backend calls, plus some Python bookkeeping: building Tensors
and graph nodes, sorting the graph, looking up hyperparameters. `compile` records that
list once and, on the next calls, runs only the list:

    step = sg.compile(step)      # or @sg.compile / @torch.compile on the def
    step(x, y)                   # 1st call with these shapes: runs eagerly and records
    step(x, y)                   # later calls: replay the recorded backend calls
    print(step.program)          # the recording, as the Python it runs

How a recording is made (`_Recorder`): for the length of one call, every backend method
is shadowed by an instance attribute that logs the call, with each array argument
replaced by a *slot*: the slot of the call that produced that array (arrays are matched
by identity: smolgrad never changes an array in place), or an *input* slot when the array
belonged, on entry, to a tensor the step can see (an argument, a parameter or buffer, a
`.grad`, an optimizer state tensor). Any other value is a constant, captured as it is.

Which tensors can the step see? `_Snapshot` walks the function's *roots*: its arguments,
the Modules, Optimizers and Tensors among its closure variables and the globals it names
(and `self`'s attributes for a bound method). The same walk gives the *guard key*: grad
mode, the shapes, dtypes and devices of the arguments and of the state, parameter
identities, `.grad` present or not, training flags, optimizer hyperparameters, and the
Python numbers the function closes over. A call whose key matches a recording replays
it; any other key records again (at most `cache_size_limit` recordings per function).

At the end of the recording, every place that holds state (a parameter's array, a
`.grad`, an optimizer's `state[p]["exp_avg"]`, ...) is compared with its value on entry;
what changed becomes an *exit action* of the program: "p.grad is a new tensor holding
slot 41". Calls whose results nothing uses are dropped (view refreshes, for instance),
except random draws, which must advance the generator exactly as eagerly. The program is
then written out as Python source (one line per backend call, `t12 = multiply(t3, t7)`)
and compiled with `exec`: replaying costs one Python function call per backend call.

Replays are bit-identical to eager runs: the same functions run on the same values in the
same order, random draws included. What cannot be replayed falls back to eager (with a
warning saying why, once), because its result depends on more than shapes:

- a value read back to Python in the middle of the step (`.item()`, `bool(t)`, printing):
  the Python code after it may branch on it. Returning `loss.item()` at the very end is
  fine: the replay reads that item too;
- data-dependent shapes (`nonzero`, boolean-mask indexing);
- Python state that the step changes, such as Adam's step counter when it is a Python
  int (pass `capturable=True` to keep it in a tensor), or an LR scheduler's step;
- a result that still carries a graph (the backward would run outside the function:
  compile the whole training step, or run the compiled model under `no_grad`).

Limits (as in tinygrad's TinyJit): Python side effects (prints, appends to a list)
happen only in recorded calls; Python control flow that depends on something not in the
guard key (a counter in an object's attribute) is frozen at its recorded branch;
recording shadows the shared backend objects, so do not run other threads' smolgrad work
while a call is being recorded.
"""

from __future__ import annotations

import builtins
import functools
import gc
import inspect
import math
import warnings
import weakref
from collections.abc import Callable

from . import arrays
from . import dtypes as dt
from .engine import Tensor, _grad_mode
from .nn.module import Module
from .ops import creation
from .ops.views import apply_steps
from .optim.optimizer import Optimizer

# Backend methods that describe rather than compute: called freely, never recorded.
_NOT_RECORDED = frozenset({"native", "dtype_of", "is_array"})
# Calls with an effect besides their result: kept even when nothing uses the result.
_EFFECTFUL = frozenset({"uniform", "normal", "randint", "permutation", "seed", "eval"})
# Calls whose result's shape depends on the values: the program cannot be replayed.
_DATA_DEPENDENT = {"nonzero": "nonzero (its result's shape depends on the values)",
                   "to_numpy": "a conversion to NumPy (.numpy(), .tolist(), printing)"}
_INDEXING = frozenset({"getitem", "setitem", "index_add"})

_SELF, _ATTR, _ITEM = "self", "attr", "item"   # kinds of place, see _Snapshot
_MISSING = object()                             # a dict key absent on entry or exit

_HASHABLE = frozenset({bool, int, float, str, type(None)})

_active_recorder = None  # the recording in progress, if any (one at a time)


class Unreplayable(Exception):
    """A recording that cannot be replayed; the message says why. Most reasons belong to
    the function (it reads values back, changes Python state): it then runs eagerly for
    good. `per_key` ones hold for one guard key only (a result with a graph, under grad
    mode); `quiet` ones too, and are not worth a warning (state created on a first call,
    whose key never comes back)."""

    def __init__(self, message: str, quiet: bool = False, per_key: bool = False):
        super().__init__(message)
        self.quiet, self.per_key = quiet, per_key or quiet


def is_compiling() -> bool:
    """`torch.compiler.is_compiling()`: True while a compiled function is being recorded."""
    return _active_recorder is not None


# ---------------------------------------------------------------------------------------
# What the function can see: places that hold state, and the guard key
# ---------------------------------------------------------------------------------------


class _Snapshot:
    """One walk over a compiled function's arguments and roots.

    `places` lists where state lives, as (owner, key, kind):
      (t, None, "self")    the array of tensor t (a parameter, buffer or argument), which
                           the step may rebind in place (`p._assign(...)`)
      (t, "_grad", "attr") t's `.grad`, a tensor the step may replace
      (d, k, "item")       entry k of a dict d: an optimizer's `state[p]`, or a module's
                           `__dict__` (tensors kept as plain attributes)
    `key` is the guard: two calls with equal keys do the same backend calls. `labels`,
    when asked for (recording only), names each owner for the printed program.
    """

    def __init__(self, roots: list, args: tuple, kwargs: dict, labels: bool = False):
        # places and labels are for recordings; a replay needs only the key and arguments
        self.places: list | None = [] if labels else None
        self.arg_tensors: list = []
        self.modules: list = []
        self.optimizers: list = []
        self.labels: dict | None = {} if labels else None
        self._seen: set = set()
        self._arg_index: dict = {}
        self._parts: list = [_grad_mode.enabled]
        self._parts.append(self._arg_key(args, "arg"))
        self._parts.append(self._arg_key(kwargs, "kwarg"))
        for t in self.arg_tensors:
            self._add_tensor(t, persistent=False)
        for label, value in roots:
            self._add_root(label, value)
        for label, module in self.modules:
            self._walk_module(label, module)
        for label, opt in self.optimizers:
            self._walk_optimizer(label, opt)
        self.key = tuple(self._parts)

    # -- arguments ------------------------------------------------------------------------
    def _arg_key(self, value, label: str):
        """The guard's view of an argument; Tensors found are collected in `arg_tensors`."""
        if isinstance(value, Tensor):
            index = self._arg_index.get(id(value))
            if index is None:
                index = self._arg_index[id(value)] = len(self.arg_tensors)
                self.arg_tensors.append(value)
                if self.labels is not None:
                    self.labels[id(value)] = label
            return ("tensor", index)
        if isinstance(value, (tuple, list)):
            return (type(value), tuple(self._arg_key(v, f"{label}[{i}]")
                                       for i, v in enumerate(value)))
        if isinstance(value, dict):
            return (dict, tuple((k, self._arg_key(v, f"{label}[{k!r}]"))
                                for k, v in value.items()))
        if isinstance(value, (Module, Optimizer)):
            self._add_root(label, value)
            return ("root", id(value))
        if value is None or isinstance(value, (bool, int, float, str)):
            return (type(value), value)
        return ("object", id(value))  # anything else: the same object, or record again

    # -- roots ----------------------------------------------------------------------------
    def _add_root(self, label: str, value) -> None:
        if isinstance(value, Tensor):
            self._add_tensor(value, persistent=True, label=label)
        elif isinstance(value, Module):
            self.modules.append((label, value))
        elif isinstance(value, Optimizer):
            self.optimizers.append((label, value))
        elif value is None or isinstance(value, (bool, int, float, str)):
            self._parts.append((label, value))  # a flag or counter the code may branch on

    def _add_tensor(self, t: Tensor, persistent: bool, label: str | None = None) -> None:
        """A tensor whose array the step may read or rebind (and whose .grad, if it
        requires grad). Persistent ones (not arguments) are guarded by identity."""
        if id(t) in self._seen:
            return
        self._seen.add(id(t))
        array = t.array
        # a .grad, when there is one, has the tensor's shape and dtype (the setter checks)
        self._parts.append((id(t) if persistent else None, array.shape, array.dtype,
                            t.backend, t._requires_grad, t._grad is None, t.grad_fn is None))
        if self.places is not None:
            if label is not None:
                self.labels[id(t)] = label
            self.places.append((t, None, _SELF))
            if t._requires_grad:
                self.places.append((t, "_grad", _ATTR))

    def _add_dict(self, d: dict, label: str) -> None:
        """Every entry of `d` is a place; tensors by shape and dtype, other values as is."""
        parts = [id(d)]
        for k, v in d.items():
            if isinstance(v, Tensor):
                parts.append((k, v.array.shape, v.array.dtype, v.backend, v._requires_grad))
            else:
                parts.append((k, _freeze(v)))
        self._parts.append(tuple(parts))
        if self.places is not None:
            self.labels[id(d)] = label
            self.places.extend((d, k, _ITEM) for k in d)

    def _walk_module(self, label: str, module: Module) -> None:
        """The module and its submodules, depth first: training flags, parameters,
        buffers, and plain tensor attributes."""
        labelled = self.labels is not None
        seen, parts = self._seen, self._parts
        stack = [(label, module)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            attributes = m.__dict__
            parts.append((id(m), attributes["training"]))
            for store in (attributes["_parameters"], attributes["_buffers"]):
                for pname, t in store.items():
                    if t is not None:
                        self._add_tensor(t, True, f"{name}.{pname}" if labelled else None)
            if Tensor in map(type, attributes.values()):  # plain tensor attributes
                self._add_dict(attributes, f"{name}.__dict__")
            children = attributes["_modules"]
            if children:
                for k, child in reversed(children.items()):
                    if child is not None:
                        stack.append((f"{name}.{k}" if labelled else None, child))

    def _walk_optimizer(self, label: str, opt: Optimizer) -> None:
        labelled = self.labels is not None
        for g, group in enumerate(opt.param_groups):
            self._parts.append(tuple((k, _freeze(v)) for k, v in group.items()
                                     if k != "params"))
            for i, p in enumerate(group["params"]):
                self._add_tensor(p, True, f"{label}.param_groups[{g}]['params'][{i}]"
                                 if labelled else None)
                state = opt.state.get(p)
                if state is None:
                    self._parts.append(None)
                else:
                    name = self.labels.get(id(p)) if self.labels is not None else ""
                    self._add_dict(state, f"{label}.state[{name}]")

    def hyperparameters(self) -> list:
        """The optimizers' hyperparameters as Python values (compared around a recording)."""
        return [[{k: v for k, v in group.items() if k != "params"}
                 for group in opt.param_groups] for _, opt in self.optimizers]


def _freeze(value):
    """A hashable stand-in for a Python value in the guard key (lists become tuples;
    objects that cannot be hashed count by identity)."""
    if type(value) in _HASHABLE:
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Tensor):
        return ("tensor", value.array.shape, value.array.dtype, value.backend)
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))
    return value


def _read(place):
    owner, key, kind = place
    if kind == _SELF:
        return owner.array
    if kind == _ATTR:
        return getattr(owner, key)
    return owner.get(key, _MISSING)


# ---------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------


class _Slot:
    """An array in the program: t<n> in the printed source."""

    __slots__ = ("n",)

    def __init__(self, n: int):
        self.n = n


class _Spec:
    """The shape and dtype of a slot's array, kept instead of the array itself."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple, dtype):
        self.shape, self.dtype = shape, dtype


class _Const:
    """A value captured as it is (a dtype, a NumPy constant, an index array)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class _Call:
    """One logged backend call: `outs = fn(*args, **kwargs)` with slots for arrays.

    A call that read a value back to Python (`item`) has `expect`, the value it read: the
    Python code after it may have branched on that value, so the replay checks that it
    reads the same (a *value guard*) and otherwise gives up and runs the function eagerly.
    """

    __slots__ = ("name", "fn", "backend", "args", "kwargs", "outs", "expect")

    def __init__(self, name, fn, backend, args, kwargs, outs, expect=_MISSING):
        self.name, self.fn, self.backend = name, fn, backend
        self.args, self.kwargs, self.outs, self.expect = args, kwargs, outs, expect


class _Diverged(Exception):
    """Raised by a replay whose value guard read another value than the recording did."""


class _LoggedMethod:
    """Stands in for one backend method while a call is recorded: runs the real method
    and tells the recorder. Calls made from inside a backend method are not logged (they
    are part of the outer call, which the replay makes again)."""

    def __init__(self, recorder, backend, name: str, fn):
        self.recorder, self.backend, self.name, self.fn = recorder, backend, name, fn

    def __call__(self, *args, **kwargs):
        recorder = self.recorder
        if recorder.depth:
            return self.fn(*args, **kwargs)
        recorder.depth += 1
        try:
            out = self.fn(*args, **kwargs)
        finally:
            recorder.depth -= 1
        recorder.log(self, args, kwargs, out)
        return out


class _Recorder:
    """Logs the backend calls of one call of the function (see the module docstring)."""

    def __init__(self, entry: _Snapshot):
        self.depth = 0
        self.calls: list = []
        self.n_slots = 0
        self.slot_of: dict = {}       # id(array) -> _Slot, for arrays made or read so far
        self.inputs: list = []        # (slot, place) read on entry
        self.entry_arrays: dict = {}  # id(array) -> (array, place) for arrays of the state
        self.conversions: list = []   # (slot, python value, its call) from `.item()`
        self.problem: str | None = None
        self.installed: list = []
        self.keep: list = []          # arrays without weak references: alive to the end
        self.watches: list = []       # weakref.finalize per array seen (see `watch`)
        self.slot_specs: list = []    # (shape, dtype) of the array each slot held
        self.checked: set = set()     # ids of constant arrays looked at already
        self.earlier: dict = {}       # _call_key -> the outs of a pure call made already
        self.versions: dict = {}      # id(tensor) -> its version counter on entry
        self.arrays_on_entry: dict = {}  # id(tensor at a place) -> its array on entry
        self.entry_values: dict = {}  # (id(owner), key, kind) -> the place's value on entry
        for place in entry.places:
            value = _read(place)
            owner, key, kind = place
            self.entry_values[id(owner), key, kind] = value
            if place[2] == _SELF:
                value = place[0]
            elif not isinstance(value, Tensor):
                continue
            self.entry_arrays.setdefault(id(value.array), (value.array, place))
            self.arrays_on_entry[id(value)] = value.array
            self.versions[id(value)] = value._version

    # -- shadowing the backends -----------------------------------------------------------
    def install(self) -> None:
        for backend in arrays.loaded_backends():
            own = vars(backend)
            for name in dir(type(backend)) + list(own):
                if name.startswith("_") or name in _NOT_RECORDED:
                    continue
                fn = getattr(backend, name)
                if not callable(fn) or isinstance(fn, type) or name in own and (
                        isinstance(own[name], _LoggedMethod)):
                    continue
                if name == "eval" and not getattr(backend, "lazy", False):
                    continue  # evaluation is a no-op on eager libraries
                self.installed.append((backend, name, own.get(name, _MISSING)))
                setattr(backend, name, _LoggedMethod(self, backend, name, fn))

    def uninstall(self) -> None:
        for backend, name, previous in reversed(self.installed):
            if previous is _MISSING:
                delattr(backend, name)
            else:
                setattr(backend, name, previous)
        self.installed = []

    def fail(self, why: str) -> None:
        if self.problem is None:
            self.problem = why

    # -- logging --------------------------------------------------------------------------
    def new_slot(self, array) -> _Slot:
        slot = _Slot(self.n_slots)
        self.n_slots += 1
        self.slot_of[id(array)] = slot
        self.slot_specs.append(_Spec(tuple(array.shape), array.dtype))
        self.watch(array)
        return slot

    def watch(self, array) -> None:
        """Until `array` dies, its id means it: when it does, the id leaves `slot_of` and
        `checked`, so that a new array given the same id is not taken for it. (This lets
        the step's temporaries be freed as they are in eager mode; an array that cannot be
        weakly referenced is kept alive to the end instead.)"""
        try:
            self.watches.append(weakref.finalize(array, self.forget, id(array)))
        except TypeError:
            self.keep.append(array)

    def forget(self, key: int) -> None:
        self.slot_of.pop(key, None)
        self.checked.discard(key)

    def stop_watching(self) -> None:
        """The recording is over: arrays that outlive it need no more bookkeeping."""
        for watch in self.watches:
            watch.detach()
        self.watches = []

    def encode(self, value):
        """`value` with arrays replaced by slots (reading state arrays as inputs)."""
        slot = self.slot_of.get(id(value))
        if slot is not None:
            return slot
        if isinstance(value, tuple):
            return tuple(self.encode(v) for v in value)
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            return {k: self.encode(v) for k, v in value.items()}
        known = self.entry_arrays.get(id(value))
        if known is not None:
            slot = self.new_slot(value)
            self.inputs.append((slot, known[1]))
            return slot
        if _is_array(value) and id(value) not in self.checked:
            self.checked.add(id(value))
            self.watch(value)
            if self.derived_outside(value):
                self.fail("an op computed on an array outside the backend (indexing or "
                          "arithmetic on `.array` directly), which a replay would not redo")
            elif _held_by_tensor(value):
                self.fail(f"it uses a tensor of shape {tuple(value.shape)} that it cannot "
                          f"reach from its arguments, closure or globals (a replay would "
                          f"keep its old values); pass that tensor as an argument")
        return value

    def derived_outside(self, array) -> bool:
        """Is `array` a view (NumPy's `.base` chain) of an array of this recording? Then
        some code sliced it directly instead of through the backend. (Arrays made by
        operators on `.array`, or MLX slices, have no base: those cannot be seen.)"""
        base = getattr(array, "base", None)
        for _ in range(8):
            if base is None:
                return False
            if id(base) in self.slot_of or id(base) in self.entry_arrays:
                return True
            base = getattr(base, "base", None)
        return False

    def log(self, method: _LoggedMethod, args: tuple, kwargs: dict, out) -> None:
        name = method.name
        if name == "item":
            slot = self.encode(args[0])
            check = _Call(name, method.fn, method.backend, (slot,), {}, None, expect=out)
            self.calls.append(check)
            self.conversions.append((slot, out, check))
            return
        if name == "astype" and out is args[0]:
            self.encode(out)  # already that dtype: the replay (same dtypes) skips the call
            return
        if name in _DATA_DEPENDENT:
            self.fail(f"the step calls {_DATA_DEPENDENT[name]}")
        if name in _INDEXING and _has_bool_array(args[1:2]):
            self.fail(f"{name} with a boolean mask (the result's shape depends on the "
                      f"values)")
        call_args = self.encode(args)
        call_kwargs = self.encode(kwargs)
        results = (out,) if _is_array(out) else out
        if out is not None and not (isinstance(results, (tuple, list)) and results
                                    and all(_is_array(o) for o in results)):
            self.fail(f"backend.{name} returned a Python {type(out).__name__}")
            return
        if name not in _EFFECTFUL and out is not None and self.simplify(
                name, method.fn, call_args, call_kwargs, out, results):
            return
        if out is None:
            outs = None
        elif results is out:
            outs = tuple(self.new_slot(o) for o in results)
        else:
            outs = self.new_slot(out)
        self.calls.append(_Call(name, method.fn, method.backend, call_args, call_kwargs, outs))
        if outs is not None and name not in _EFFECTFUL:
            self.earlier[_call_key(method.fn, call_args, call_kwargs)] = outs

    def simplify(self, name: str, fn, args: tuple, kwargs: dict, out, results) -> bool:
        """Leave a pure call out of the program when its result is known without it:

        - a reshape or broadcast to the shape its input already has is that input;
        - a call on constants only (`ones((), float32)`, and calls on its result) is a
          constant, computed now (smolgrad never changes an array in place);
        - a call made before with the same function and arguments gave the same result.
        Returns True when the call's result(s) now stand for something already known."""
        first = args[0] if args else None
        if name in _SAME_SHAPE_NO_OPS and isinstance(first, (_Slot, _Const)):
            source = self.array_of(first)
            if tuple(out.shape) == tuple(source.shape) and out.dtype == source.dtype:
                self.alias(out, first)
                return True
        if _foldable((args, kwargs)):
            for o in results:
                self.alias(o, _Const(o))
            return True
        known = self.earlier.get(_call_key(fn, args, kwargs))
        if known is None:
            return False
        for o, k in zip(results, known if isinstance(known, tuple) else (known,)):
            self.alias(o, k)
        return True

    def alias(self, array, stands_for) -> None:
        self.slot_of[id(array)] = stands_for
        self.watch(array)

    def array_of(self, value):
        """The shape and dtype (as recorded) behind a slot, or a constant's value."""
        return value.value if isinstance(value, _Const) else self.slot_specs[value.n]


_SAME_SHAPE_NO_OPS = frozenset({"reshape", "broadcast_to"})


def _foldable(value) -> bool:
    """Arguments that make a pure call a constant: Python literals, dtypes, and constants
    the recording folded itself. Not arrays or lists from outside (the caller may change
    them between calls), nor slots."""
    if isinstance(value, _Const):
        return True
    if isinstance(value, _Slot) or isinstance(value, list) or _is_array(value):
        return False
    if isinstance(value, tuple):
        return all(_foldable(v) for v in value)
    if isinstance(value, dict):
        return all(_foldable(v) for v in value.values())
    return True


def _call_key(fn, args: tuple, kwargs: dict) -> tuple:
    """Equal keys, equal results (for pure calls): slots by number, literals by type and
    value, anything else by identity."""
    return (id(fn), _value_key(args), _value_key(kwargs))


def _value_key(value):
    if isinstance(value, _Slot):
        return ("slot", value.n)
    if isinstance(value, _Const):
        return ("const", id(value.value))
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_value_key(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _value_key(v)) for k, v in value.items()))
    if type(value) in _HASHABLE:
        return (type(value), value)
    return ("id", id(value))


def _held_by_tensor(array) -> bool:
    """Is `array` the values of some live Tensor? (Asked only of constant arrays, once per
    recording: a scan of the objects that refer to it.)"""
    return any(isinstance(r, Tensor) and r.array is array for r in gc.get_referrers(array))


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, Tensor)


def _has_bool_array(values) -> bool:
    for v in values:
        if isinstance(v, (tuple, list)):
            if _has_bool_array(v):
                return True
        elif _is_array(v) and "bool" in str(v.dtype):
            return True
    return False


class _DrawOutsideBackend:
    """Stands in for `ops.creation._from_generator` while recording: a draw from a user's
    `sg.Generator` happens on the host, outside the backend, so a replay would repeat it."""

    def __init__(self, recorder: _Recorder, fn):
        self.recorder, self.fn = recorder, fn

    def __call__(self, *args, **kwargs):
        self.recorder.fail("a random draw with generator= (it happens outside the backend, "
                           "so a replay would repeat its numbers)")
        return self.fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------
# The program: exit actions, dead calls dropped, Python source
# ---------------------------------------------------------------------------------------


class Program:
    """One recording of a compiled function, as the Python source that replays it.

    `str(program)` is that source: a header naming the state it reads and writes, one
    line per backend call (`t12 = multiply(t3, t7)`), the writes back into the state,
    and the return. `len(program)` is the number of backend calls. `program(*tensors)`
    runs it on the argument tensors (in the order they appear in the arguments).
    """

    def __init__(self, name: str, recorder: _Recorder, entry: _Snapshot, exit_: _Snapshot,
                 result):
        self.name = name
        self.divergences = 0         # replays stopped by a value guard
        self.guards: list = []       # the value guards, as text (for messages)
        self._names: dict = {}       # python name -> object, the namespace of the source
        self._name_of: dict = {}     # id(object) -> python name
        self._owner_labels = {**(entry.labels or {}), **(exit_.labels or {})}
        self._header: list = []
        self._counts: dict = {}      # names handed out per stem
        self._n_args = len(entry.arg_tensors)
        for i, t in enumerate(entry.arg_tensors):
            self._name_of[id(t)] = f"a{i}"
        actions, outputs = _exit_actions(recorder, entry, exit_, result)
        returned = set()
        _collect_items(outputs, returned)  # read at the end, not checked
        needed = _needed_slots(actions, outputs)
        kept_to_end = set(needed)
        calls = _live_calls([c for c in recorder.calls if id(c) not in returned], needed)
        self.calls = len(calls)
        self._number: dict = {}
        body = [self._input_line(slot, place) for slot, place in recorder.inputs
                if slot.n in needed]
        body += self._call_lines(calls, kept_to_end)
        body += [self._action_line(action) for action in actions]
        body.append(f"return {self._render_output(outputs)}")
        self._header.insert(0, f"# {name}: {self.calls} backend calls (recorded for one guard "
                               f"key: these shapes, dtypes and flags)")
        params = ", ".join(f"a{i}" for i in range(self._n_args))
        self.source = "\n".join([f"def replay({params}):"] + ["    " + line for line in body])
        namespace = dict(self._names, _refresh_views=_refresh_views, _make=Tensor._make,
                         _new=_new_tensor,
                         _Diverged=_Diverged)
        code = builtins.compile(self.source, f"<smolgrad.compile {name}>", "exec")
        exec(code, namespace)  # noqa: S102 - our own source, written above
        self._replay = namespace["replay"]

    def __call__(self, *arg_tensors):
        return self._replay(*arg_tensors)

    def __len__(self) -> int:
        return self.calls

    def __str__(self) -> str:
        return "\n".join(self._header + [self.source])

    def __repr__(self) -> str:
        return f"<Program of {self.name}: {self.calls} backend calls>"

    # -- names in the source --------------------------------------------------------------
    def _slot(self, slot: _Slot) -> str:
        n = self._number.get(slot.n)
        if n is None:
            n = self._number[slot.n] = len(self._number)
        return f"t{n}"

    def _bind(self, obj, stem: str, describe: str) -> str:
        """The name under which `obj` is reachable from the source (added once): `stem`
        and a number (r0: state, c0: constants, b0: backends), or the name of a dtype."""
        name = self._name_of.get(id(obj))
        if name is None:
            if isinstance(obj, dt.dtype) and obj.name not in self._names:
                name = obj.name
            else:
                name = f"{stem}{self._counts.get(stem, 0)}"
                self._counts[stem] = self._counts.get(stem, 0) + 1
                self._header.append(f"# {name} = {describe}")
            self._names[name] = obj
            self._name_of[id(obj)] = name
        return name

    def _owner(self, owner) -> str:
        label = self._owner_labels.get(id(owner), "")
        kind = "dict" if isinstance(owner, dict) else _describe_tensor(owner)
        return self._bind(owner, "r", f"{label} ({kind})" if label else kind)

    def _function(self, call: _Call) -> str:
        name = call.name
        existing = self._names.get(name)
        if existing is not None and existing is not call.fn:
            name = f"{name}_{call.backend.name}"
        if id(call.fn) not in self._name_of:
            self._names[name] = call.fn
            self._name_of[id(call.fn)] = name
        return self._name_of[id(call.fn)]

    def _place(self, place) -> str:
        owner, key, kind = place
        target = self._owner(owner)
        if kind == _SELF:
            return f"{target}.array"
        if kind == _ATTR:
            return f"{target}.{key}"
        return f"{target}[{self._literal(key)}]"

    def _literal(self, value) -> str:
        """Python source for a value: slots by name, plain literals as written, anything
        else as a named constant."""
        if isinstance(value, _Slot):
            return self._slot(value)
        if isinstance(value, tuple):
            inner = ", ".join(self._literal(v) for v in value)
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if isinstance(value, list):
            return "[" + ", ".join(self._literal(v) for v in value) + "]"
        if _is_plain(value):
            return repr(value)
        if isinstance(value, _Const):
            value = value.value
        return self._bind(value, "c", _describe_constant(value))

    # -- lines ----------------------------------------------------------------------------
    def _input_line(self, slot: _Slot, place) -> str:
        return f"{self._slot(slot)} = {self._place_value(place)}"

    def _place_value(self, place) -> str:
        """The array held at a place on entry (a tensor's `.array`)."""
        text = self._place(place)
        return text if place[2] == _SELF else f"{text}.array"

    def _call_line(self, call: _Call) -> str:
        args = [self._literal(a) for a in call.args]
        args += [f"{k}={self._literal(v)}" for k, v in call.kwargs.items()]
        text = f"{self._function(call)}({', '.join(args)})"
        if call.expect is not _MISSING:
            self.guards.append(f"{text} == {call.expect!r}")
            return (f"if {text} != {self._literal(call.expect)}: "
                    f"raise _Diverged({len(self.guards) - 1})")
        if call.outs is None:
            return text
        if isinstance(call.outs, tuple):
            return ", ".join(self._slot(s) for s in call.outs) + f" = {text}"
        return f"{self._slot(call.outs)} = {text}"

    def _call_lines(self, calls: list, kept_to_end: set) -> list:
        """One line per call, each followed by a `del` of the arrays that no later call
        reads and the end does not need: a replay frees its temporaries as early as the
        eager step does, instead of holding all of them until it returns."""
        last_use: dict = {}  # slot number -> index of the last call that reads or makes it
        for i, call in enumerate(calls):
            read: set = set()
            _collect_slots((call.args, call.kwargs, call.outs), read)
            for n in read:
                last_use[n] = i
        dies_after: dict = {}  # call index -> the slots to delete after it
        for n, last in last_use.items():
            if n not in kept_to_end:
                dies_after.setdefault(last, []).append(n)
        lines = []
        for i, call in enumerate(calls):
            lines.append(self._call_line(call))
            if i in dies_after:
                dead = sorted(dies_after[i], key=self._number.__getitem__)  # t-name order
                names = ", ".join(self._slot(_Slot(n)) for n in dead)
                lines.append(f"del {names}")
        return lines

    def _action_line(self, action) -> str:
        kind, place, value = action[0], action[1], action[2:]
        if kind == "rebind":  # the same tensor object, a new array: _rebind, written out
            slot, bump = value
            owner, key, place_kind = place
            target = self._owner(owner) if place_kind == _SELF else self._place(place)
            return (f"{target}.array = {self._literal(slot)}; {target}._version += {bump}\n"
                    f"    if {target}._views: _refresh_views({target}, {bump})")
        if kind == "delete":
            return f"del {self._place(place)}"
        return f"{self._place(place)} = {self._render_output(value[0])}"

    def _render_output(self, value) -> str:
        if isinstance(value, _NewTensor):
            backend = self._bind(value.backend, "b", repr(value.backend))
            if value.requires_grad or value.version:
                return (f"_new({self._slot(value.slot)}, {backend}, {value.requires_grad}, "
                        f"{value.version})")
            return f"_make({self._slot(value.slot)}, {backend})"
        if isinstance(value, _Item):
            return f"{self._function(value.call)}({self._slot(value.slot)})"
        if isinstance(value, _Existing):
            return self._owner(value.tensor) if value.place is None else self._place(
                value.place)
        if isinstance(value, tuple):
            inner = ", ".join(self._render_output(v) for v in value)
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if isinstance(value, list):
            return "[" + ", ".join(self._render_output(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self._literal(k)}: {self._render_output(v)}"
                                   for k, v in value.items()) + "}"
        return self._literal(value)


class _NewTensor:
    """An exit value or result: a new Tensor around a slot's array."""

    def __init__(self, slot: _Slot, backend, requires_grad: bool, version: int):
        self.slot, self.backend = slot, backend
        self.requires_grad, self.version = requires_grad, version


class _Item:
    """A result that is `.item()` of a slot (read at the end of the replay)."""

    def __init__(self, slot: _Slot, call: _Call):
        self.slot, self.call = slot, call


class _Existing:
    """A result that is a tensor object the replay does not make: an argument, a
    parameter, or whatever sits at a place after the exit actions."""

    def __init__(self, tensor: Tensor, place=None):
        self.tensor, self.place = tensor, place


def _exit_actions(recorder: _Recorder, entry: _Snapshot, exit_: _Snapshot, result):
    """Compare every place on exit with its entry value: the writes the replay must do.
    Returns (actions, outputs); raises Unreplayable for changes it cannot reproduce."""
    entry_values = recorder.entry_values
    entry_owners = {id(o) for o, _, _ in entry.places}
    persistent = {id(o): o for o, _, kind in entry.places if kind == _SELF}
    new_objects: dict = {}   # id(new tensor) -> the place it was first written to
    actions = []
    for place in exit_.places:
        owner, key, kind = place
        before = entry_values.get((id(owner), key, kind), _MISSING)
        after = _read(place)
        if id(owner) not in entry_owners:
            raise Unreplayable(f"{_label(exit_, owner)} was created during the call",
                               quiet=True)
        if kind == _SELF:
            _check_tensor_kept(owner, exit_)
            if after is not before:
                if owner._view is not None and id(owner._view.base) in persistent:
                    continue  # refreshed with its base by _rebind
                actions.append(_rebind_action(recorder, place, owner, exit_))
            continue
        if after is before:
            if isinstance(after, Tensor) and recorder.arrays_on_entry[id(after)] is not (
                    after.array):
                actions.append(_rebind_action(recorder, place, after, exit_))
            continue
        if after is _MISSING or after is None:
            actions.append(("delete", place) if after is _MISSING else ("set", place, None))
            continue
        if not isinstance(after, Tensor):
            what = f"{_label(exit_, owner)}[{key!r}]" if kind == _ITEM else _label(exit_, owner)
            hint = (" (Adam keeps its step count as a Python int: pass capturable=True to "
                    "keep it in a tensor)" if key == "step" else "")
            raise Unreplayable(f"the call changes the Python value {what} from {before!r} to "
                               f"{after!r}{hint}")
        if id(after) in new_objects:
            actions.append(("set", place, _Existing(after, new_objects[id(after)])))
            continue
        actions.append(("set", place, _new_value(recorder, after, exit_, owner)))
        new_objects[id(after)] = place
    outputs = _encode_result(recorder, result, exit_, new_objects, persistent)
    return actions, outputs


def _rebind_action(recorder: _Recorder, place, t: Tensor, snapshot: _Snapshot) -> tuple:
    """The same tensor object holds a new array on exit (an in-place write)."""
    return ("rebind", place, _array_slot(recorder, t.array, snapshot, place[0]),
            t._version - recorder.versions[id(t)])


def _label(snapshot: _Snapshot, owner) -> str:
    label = (snapshot.labels or {}).get(id(owner))
    return label or f"a {type(owner).__name__}"


def _check_tensor_kept(t: Tensor, snapshot: _Snapshot) -> None:
    if t.grad_fn is not None and not t.grad_fn._freed:
        raise Unreplayable(f"{_label(snapshot, t)} is left with a graph (grad_fn "
                           f"{t.grad_fn!r}) by an in-place op")


def _array_slot(recorder: _Recorder, array, snapshot: _Snapshot, owner):
    """The slot (or folded constant) that holds `array` in the program."""
    slot = recorder.encode(array)
    if not isinstance(slot, (_Slot, _Const)):
        raise Unreplayable(f"{_label(snapshot, owner)} holds an array made outside the "
                           f"backend calls")
    return slot


def _new_value(recorder: _Recorder, t: Tensor, snapshot: _Snapshot, owner) -> _NewTensor:
    if type(t) is not Tensor:
        raise Unreplayable(f"the call stores a new {type(t).__name__} in "
                           f"{_label(snapshot, owner)}")
    if t.grad_fn is not None and not t.grad_fn._freed:
        raise Unreplayable("a result still carries a graph (grad_fn "
                           f"{t.grad_fn!r}); call backward inside the compiled function, or "
                           f"run it under sg.no_grad()", per_key=True)
    if t._grad is not None or t._view is not None:
        raise Unreplayable(f"the call stores a tensor with a .grad or a view in "
                           f"{_label(snapshot, owner)}")
    slot = _array_slot(recorder, t.array, snapshot, owner)
    return _NewTensor(slot, t.backend, t._requires_grad and t.grad_fn is None, t._version)


def _encode_result(recorder: _Recorder, value, snapshot: _Snapshot, new_objects: dict,
                   persistent: dict):
    """The returned value with tensors and `.item()` results replaced by what rebuilds
    them; any other Python value is a constant."""
    if isinstance(value, Tensor):
        if id(value) in persistent or id(value) in {id(t) for t in snapshot.arg_tensors}:
            return _Existing(value)
        if id(value) in new_objects:
            return _Existing(value, new_objects[id(value)])
        return _new_value(recorder, value, snapshot, value)
    for slot, converted, item in recorder.conversions:
        if value is converted:
            return _Item(slot, item)
    if isinstance(value, (tuple, list)):
        encoded = [_encode_result(recorder, v, snapshot, new_objects, persistent)
                   for v in value]
        return tuple(encoded) if isinstance(value, tuple) else encoded
    if isinstance(value, dict):
        return {k: _encode_result(recorder, v, snapshot, new_objects, persistent)
                for k, v in value.items()}
    if recorder.conversions and isinstance(value, (int, float, complex)):
        raise Unreplayable("the result is a number computed in Python from .item()")
    return _Const(value) if not _is_plain(value) else value


def _collect_items(value, into: set) -> None:
    """ids of the `item` calls whose values the function returns."""
    if isinstance(value, _Item):
        into.add(id(value.call))
    elif isinstance(value, (tuple, list)):
        for v in value:
            _collect_items(v, into)
    elif isinstance(value, dict):
        for v in value.values():
            _collect_items(v, into)


def _needed_slots(actions, outputs) -> set:
    needed: set = set()
    _collect_slots((actions, outputs), needed)
    return needed


def _collect_slots(value, into: set) -> None:
    if isinstance(value, _Slot):
        into.add(value.n)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _collect_slots(v, into)
    elif isinstance(value, dict):
        for v in value.values():
            _collect_slots(v, into)
    elif isinstance(value, (_NewTensor, _Item)):
        _collect_slots(value.slot, into)


def _live_calls(calls: list, needed: set) -> list:
    """Drop calls whose results nothing needs (dead code), walking backwards; calls with
    an effect (random draws, evaluation) always stay. Adds the kept calls' arguments to
    `needed`."""
    kept = []
    for call in reversed(calls):
        outs = call.outs if isinstance(call.outs, tuple) else (call.outs,)
        effect = call.name in _EFFECTFUL or call.expect is not _MISSING
        if effect or any(s is not None and s.n in needed for s in outs):
            kept.append(call)
            _collect_slots((call.args, call.kwargs), needed)
    kept.reverse()
    return kept


def _is_plain(value) -> bool:
    """Values written into the source as Python literals (exact: floats repr exactly)."""
    if value is None or value is Ellipsis or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is slice:
        return all(_is_plain(v) for v in (value.start, value.stop, value.step))
    if type(value) in (tuple, list):
        return all(_is_plain(v) for v in value)
    return False


def _describe_tensor(t) -> str:
    if not isinstance(t, Tensor):
        return type(t).__name__
    return f"{type(t).__name__} {tuple(t.array.shape)} {t.dtype.name}"


def _describe_constant(value) -> str:
    if _is_array(value):
        return f"constant array {tuple(value.shape)} {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refresh_views(t: Tensor, bump: int) -> None:
    """Recompute t's live views from its new array (as `Tensor._assign` does)."""
    for view in list(t._views):
        view.array = apply_steps(t.backend, t.array, view._view.steps)
        view._version += bump


def _new_tensor(array, backend, requires_grad: bool, version: int) -> Tensor:
    t = Tensor._make(array, backend)
    t._requires_grad, t._version = requires_grad, version
    return t


# ---------------------------------------------------------------------------------------
# The compiled function
# ---------------------------------------------------------------------------------------


class CompiledFunction:
    """`fn` that records itself once per guard key and replays the recording after.

    Attributes for the curious: `program` (the latest recording; print it), `programs`
    (all of them, by guard key; a string says why that key runs eagerly), `recordings`
    and `replays` (how many calls were recorded and replayed), `cache_size_limit`
    (recordings kept before new keys just run eagerly).
    """

    cache_size_limit = 8

    def __init__(self, fn: Callable, fullgraph: bool = False):
        self.fn = fn
        self.fullgraph = fullgraph
        self.programs: dict = {}
        self.recordings = 0
        self.replays = 0
        self.eager_reason: str | None = None  # why the function runs eagerly for good
        self.program: Program | None = None
        self._warned: set = set()
        functools.update_wrapper(self, fn, updated=())

    def __repr__(self) -> str:
        return f"<compiled {getattr(self.fn, '__qualname__', self.fn)!r}>"

    def roots(self, args: tuple, kwargs: dict) -> list:
        """(label, value) for what the function can reach: see `_find_roots`."""
        return _find_roots(self.fn)

    def __call__(self, *args, **kwargs):
        if _active_recorder is not None or self.eager_reason is not None:
            return self.fn(*args, **kwargs)  # inside another recording, or given up
        entry = _Snapshot(self.roots(args, kwargs), args, kwargs)
        program = self.programs.get(entry.key)
        if isinstance(program, Program):
            self.program = program
            self.replays += 1
            try:
                return program(*entry.arg_tensors)
            except _Diverged as e:  # nothing was written yet: the state is as on entry
                return self._diverged(program, program.guards[e.args[0]], args, kwargs)
        if program is not None:  # a recording that cannot be replayed: eager
            return self.fn(*args, **kwargs)
        if len(self.programs) >= self.cache_size_limit:
            self._warn(f"{self.cache_size_limit} recordings (cache_size_limit) already; new "
                       f"shapes, flags or hyperparameters run eagerly from now on")
            return self.fn(*args, **kwargs)
        return self._record(entry.key, args, kwargs)

    def _record(self, key, args: tuple, kwargs: dict):
        global _active_recorder
        entry = _Snapshot(self.roots(args, kwargs), args, kwargs, labels=True)
        hyper = entry.hyperparameters()
        recorder = _Recorder(entry)
        backends_before = len(arrays.loaded_backends())
        recorder.install()
        draw = creation._from_generator
        creation._from_generator = _DrawOutsideBackend(recorder, draw)
        _active_recorder = recorder
        try:
            result = self.fn(*args, **kwargs)
        finally:
            _active_recorder = None
            creation._from_generator = draw
            recorder.uninstall()
            recorder.stop_watching()  # what died during the call has been forgotten
        self.recordings += 1
        try:
            if recorder.problem:
                raise Unreplayable(recorder.problem)
            if len(arrays.loaded_backends()) != backends_before:
                raise Unreplayable("a device was first used during the call")
            exit_ = _Snapshot(self.roots(args, kwargs), args, kwargs, labels=True)
            if exit_.hyperparameters() != hyper:
                raise Unreplayable("the call changes an optimizer's hyperparameters (an LR "
                                   "scheduler's step?); keep that outside the function")
            name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
            program = Program(name, recorder, entry, exit_, result)
        except Unreplayable as e:
            if self.fullgraph:
                raise RuntimeError(f"compile(fullgraph=True): cannot replay "
                                   f"{self.fn!r}: {e}") from None
            if not e.quiet:
                self._warn(f"runs eagerly: {e}")
            if e.per_key:
                self.programs[key] = str(e)
            else:
                self.eager_reason = str(e)
            return result
        self.programs[key] = self.program = program
        return result

    def _diverged(self, program: Program, guard: str, args: tuple, kwargs: dict):
        """A value guard failed: run eagerly; after the second time, for good."""
        program.divergences += 1
        if program.divergences >= 2:
            reason = (f"it reads a value back to Python (.item(), bool(t)) that changes "
                      f"from call to call (the replay's guard {guard} failed)")
            self._warn(f"runs eagerly: {reason}")
            self.eager_reason = reason
        return self.fn(*args, **kwargs)

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
            warnings.warn(f"sg.compile({name}) {message}", RuntimeWarning, stacklevel=3)


def _unpack(label: str, value) -> list:
    """[(label, value)] for a root, or for the roots inside a list, tuple or dict (one
    level deep)."""
    if isinstance(value, (list, tuple)):
        return [(f"{label}[{i}]", v) for i, v in enumerate(value)
                if isinstance(v, (Tensor, Module, Optimizer))]
    if isinstance(value, dict):
        return [(f"{label}[{k!r}]", v) for k, v in value.items()
                if isinstance(v, (Tensor, Module, Optimizer))]
    return [(label, value)]


def _find_roots(fn) -> list:
    """(label, value) for every closure variable and global that `fn` names, the
    attributes of `self` for a bound method, and the same for the functions of the user's
    own that it calls (three levels deep; smolgrad's functions are skipped: they keep no
    state). The snapshot keeps the Modules, Optimizers, Tensors and Python flags."""
    found: list = []  # lists of (label, value)
    visited: set = set()
    stack = [(fn, 0)]
    while stack:
        f, depth = stack.pop()
        if id(f) in visited:
            continue
        visited.add(id(f))
        if isinstance(f, CompiledFunction):
            f = f.fn
        if isinstance(f, Module):
            found.append([("self", f)])
            continue
        owner = getattr(f, "__self__", None)
        if isinstance(owner, (Module, Optimizer)):
            found.append([("self", owner)])
        elif owner is not None and hasattr(owner, "__dict__"):
            found.extend(_unpack(f"self.{k}", v) for k, v in vars(owner).items())
        f = getattr(f, "__func__", f)
        code = getattr(f, "__code__", None)
        if code is None:
            continue
        named = []
        if f.__closure__:
            for name, cell in zip(code.co_freevars, f.__closure__):
                try:
                    named.append((name, cell.cell_contents))
                except ValueError:  # a cell not filled yet
                    continue
        module_globals = f.__globals__
        named.extend((name, module_globals[name]) for name in _global_names(code)
                     if name in module_globals)
        for name, value in named:
            found.append(_unpack(name, value))
            if depth < 3 and _is_user_function(value):
                stack.append((value, depth + 1))
    return [item for items in found for item in items]


def _is_user_function(value) -> bool:
    if isinstance(value, CompiledFunction):
        return True
    if not (inspect.isfunction(value) or inspect.ismethod(value)):
        return False
    return not (getattr(value, "__module__", None) or "").startswith("smolgrad")


@functools.lru_cache(maxsize=256)
def _global_names(code) -> tuple:
    """Names a code object (and code nested in it: lambdas, comprehensions) looks up as
    globals."""
    names: list = []
    stack = [code]
    while stack:
        c = stack.pop()
        names.extend(n for n in c.co_names if n not in names)
        stack.extend(k for k in c.co_consts if inspect.iscode(k))
    return tuple(names)


class CompiledModule(Module):
    """`compile(module)`: the module with its forward (hooks included) compiled.

    Holds the original as `_orig_mod` (so its state-dict keys start with `_orig_mod.`, as
    PyTorch's OptimizedModule), and forwards unknown attributes to it. A forward whose
    output needs a graph (training, grad mode on) cannot be replayed: it runs eagerly.
    Compile the whole training step to replay training.
    """

    def __init__(self, module: Module, fullgraph: bool = False):
        super().__init__()
        self._orig_mod = module
        object.__setattr__(self, "_compiled", CompiledFunction(module, fullgraph))

    def forward(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    @property
    def program(self) -> Program | None:
        return self._compiled.program

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["_orig_mod"], name)


def compile(model: Callable | None = None, *, fullgraph: bool = False, dynamic=None,  # noqa: A001
            backend="inductor", mode=None, options=None, disable: bool = False):
    """`torch.compile`: record a function's backend calls once, replay them after.

    `compile(step)` returns a `CompiledFunction`; `compile(module)` a `CompiledModule`;
    `@compile(...)` with keyword arguments returns a decorator. `fullgraph=True` raises
    where a call cannot be replayed (PyTorch: a graph break) instead of running it
    eagerly; `disable=True` returns `model` unchanged. `dynamic`, `backend`, `mode` and
    `options` are accepted for PyTorch's programs and do not change anything: recordings
    are always specialised to shapes (a new shape records again).
    """
    if model is None:
        return functools.partial(compile, fullgraph=fullgraph, dynamic=dynamic,
                                 backend=backend, mode=mode, options=options, disable=disable)
    if disable:
        return model
    if isinstance(model, Module):
        return CompiledModule(model, fullgraph)
    if not callable(model):
        raise TypeError(f"compile: expected a Module or a function, got "
                        f"{type(model).__name__}")
    return CompiledFunction(model, fullgraph)
