"""`Module` (the base of every layer) and `Parameter` (a tensor a module learns).

A module is a tree. Assigning a `Parameter`, a `Module` or a registered buffer to an
attribute (`self.weight = Parameter(...)`, `self.fc = Linear(...)`) records it in one of
three ordered dicts, `_parameters`, `_modules` and `_buffers`, in the order of assignment.
Every traversal (`parameters()`, `modules()`, `state_dict()`, ...) walks that tree
pre-order: a module's own entries first, then each child in registration order. That is
PyTorch's order, so `state_dict()` produces PyTorch's keys (`"0.weight"`,
`"encoder.layers.1.norm1.bias"`, ...) and weights move between the two libraries by name.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .. import dtypes as dt
from ..arrays import canonical_device, get_backend, loaded_backends
from ..engine import Tensor, no_grad

# ---------------------------------------------------------------------------------------
# Parameter
# ---------------------------------------------------------------------------------------


class Parameter(Tensor):
    """A Tensor that is a module's learnable state: a leaf that requires grad by default.

    `Parameter(tensor)` shares `tensor`'s array (arrays are never mutated in place in
    smolgrad, so sharing is safe); assigning it to a module attribute registers it.
    Ops on a Parameter return plain Tensors, as in PyTorch.
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            data = Tensor([])
        elif not isinstance(data, Tensor):
            data = Tensor(data)
        p = cls._make(data.array, data.backend)
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        pass  # everything happens in __new__ (Tensor.__init__ would copy the data)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        clone = Parameter(Tensor._make(self.backend.copy(self.array), self.backend),
                          self.requires_grad)
        if self.grad is not None:
            clone.grad = Tensor._make(self.backend.copy(self.grad.array), self.backend)
        memo[id(self)] = clone
        return clone


class Buffer(Tensor):
    """Marker type, as in recent PyTorch: `self.x = nn.Buffer(t)` registers a buffer."""

    def __new__(cls, data: Tensor, *, persistent: bool = True):
        b = cls._make(data.array, data.backend)
        b.persistent = persistent
        return b

    def __init__(self, data: Tensor, *, persistent: bool = True):
        pass


# ---------------------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------------------


class _IncompatibleKeys(NamedTuple):
    """What `load_state_dict` returns: the keys it did not find and the keys it ignored."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")


class _HookHandle:
    """Returned by `register_forward_hook` & co.; `.remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


def _check_name(kind: str, name, owner: Module) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got "{name}"')


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first (how nested module reprs line up)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module:
    """Base class of every layer and model.

    Subclasses call `super().__init__()`, assign parameters / submodules / buffers as
    attributes, and define `forward(*inputs)`; calling the module runs `forward` (with any
    registered hooks around it).
    """

    training: bool
    _version = 1

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist already
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # -- running --------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  f'"forward" function')

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_hook(self, hook: Callable) -> _HookHandle:
        """`hook(module, args, output)` runs after forward; a non-None return replaces
        the output."""
        handle = _HookHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook: Callable) -> _HookHandle:
        """`hook(module, args)` runs before forward; a non-None return replaces the args."""
        handle = _HookHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    # -- registration ---------------------------------------------------------------------
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, as `bias=False` layers do) under `name`."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name, self)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (smolgrad.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}'. Model "
                             f"parameters must be created explicitly: wrap the values in "
                             f"nn.Parameter(tensor.detach())")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None,
                        persistent: bool = True) -> None:
        """Add state that is not learned (BatchNorm's running_mean, a causal mask, ...).

        Persistent buffers are saved in `state_dict()`; non-persistent ones are not.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name, self)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (smolgrad Tensor or None required)")
        if isinstance(tensor, Buffer):
            tensor = Tensor._make(tensor.array, tensor.backend)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under `name` (what `self.name = module` does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name("module", name, self)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep="_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter "
                                f"'{name}' (smolgrad.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if "_modules" not in self.__dict__:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep="_modules")
            self._modules[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (smolgrad.nn.Module or None expected)")
            self._modules[name] = None
        elif isinstance(value, Buffer):
            if "_buffers" not in self.__dict__:
                raise AttributeError("cannot assign buffer before Module.__init__() call")
            self._forget(name, keep="_buffers")
            self.register_buffer(name, value, persistent=value.persistent)
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(smolgrad Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: str) -> None:
        """Remove `name` from every store but `keep`, before it is registered in `keep`.
        Replacing an entry of `keep` leaves it where it was: as in PyTorch, a child module
        (parameter, buffer) assigned again keeps its place in named_parameters() and the
        state_dict order."""
        self.__dict__.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            if store != keep:
                self.__dict__[store].pop(name, None)
        if keep != "_buffers":
            self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: look in the three registries
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            entries = d.get(store)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, ()):
                del self.__dict__[store][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # -- traversal ------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(name, module) for this module and every descendant, pre-order; a module
        reachable twice is yielded once (unless remove_duplicate=False)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            sub = f"{prefix}.{name}" if prefix else name
            yield from child.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, store: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True):
        seen = set()
        owners = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                  if recurse else [(prefix, self)])
        for owner_name, owner in owners:
            for name, value in owner.__dict__[store].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{owner_name}.{name}" if owner_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, pre-order; shared parameters appear once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> Module:
        """The descendant at a dotted path such as "encoder.layers.0"."""
        module = self
        if target == "":
            return module
        for part in target.split("."):
            if part not in module._modules or module._modules[part] is None:
                raise AttributeError(f"{type(module).__name__} has no submodule '{part}' "
                                     f"(looking up '{target}')")
            module = module._modules[part]
        return module

    def get_parameter(self, target: str) -> Parameter:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"{type(module).__name__} has no parameter '{name}'")
        return module._parameters[name]

    # -- state dict -----------------------------------------------------------------------
    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict:
        """Every parameter and persistent buffer by its dotted name, in PyTorch's order.

        Values are detached tensors (the parameters themselves with keep_vars=True).
        """
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _state_entries(self, prefix: str = ""):
        """(key, owner module, attribute name, kind) for every state_dict entry."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, self, name, "_parameters"
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                yield prefix + name, self, name, "_buffers"
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_entries(prefix + name + ".")

    def load_state_dict(self, state_dict, strict: bool = True,
                        assign: bool = False) -> _IncompatibleKeys:
        """Copy values (smolgrad Tensors, NumPy arrays, anything array-like) into the
        parameters and buffers with the same keys.

        Every value is checked first (shape, convertibility; with strict=True also missing
        and unexpected keys); on any error a RuntimeError lists all problems and nothing
        is changed. Values are copied, cast to each parameter's dtype and moved to its
        device; parameters keep their identity (an optimizer holding them keeps working).
        With assign=True the parameters are replaced by new ones holding the values.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a dict-like state_dict, got "
                            f"{type(state_dict).__name__}")
        entries = list(self._state_entries())
        expected = {key for key, *_ in entries}
        missing = [key for key, *_ in entries if key not in state_dict]
        unexpected = [key for key in state_dict.keys() if key not in expected]
        errors = []
        converted = []
        for key, owner, name, kind in entries:
            if key not in state_dict:
                continue
            target = owner.__dict__[kind][name]
            value = state_dict[key]
            shape = tuple(getattr(value, "shape", ()) or ())
            if not hasattr(value, "shape"):
                shape = None
            if shape is not None and shape != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {shape} "
                              f"from checkpoint, the shape in current model is "
                              f"{tuple(target.shape)}.")
                continue
            try:
                new = _fresh_copy(value, target)
            except Exception as e:  # report every bad entry together, change nothing
                errors.append(f"could not convert the value of {key} "
                              f"({type(value).__name__}) to a tensor: {e}")
                continue
            if new.shape != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{tuple(new.shape)} from checkpoint, the shape in current model is "
                              f"{tuple(target.shape)}.")
                continue
            converted.append((owner, name, kind, target, new))
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:"
                               "\n\t" + "\n\t".join(errors))
        with no_grad():
            for owner, name, kind, target, new in converted:
                if assign:
                    if kind == "_parameters":
                        owner._parameters[name] = Parameter(new, target.requires_grad)
                    else:
                        owner._buffers[name] = new
                else:
                    target._assign(new.array)
        return _IncompatibleKeys(missing, unexpected)

    # -- modes, gradients -----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) recursively."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: training mode is expected to be boolean, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (the default) or to zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = Tensor._make(p.backend.zeros(p.array.shape, p.dtype), p.backend)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call fn on every descendant (children first) and then on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- devices and dtypes ---------------------------------------------------------------
    def _apply(self, convert: Callable[[Tensor], Tensor]) -> Module:
        """Convert every parameter (in place: same Parameter object), its gradient, and
        every buffer (replaced) with `convert(tensor) -> tensor`."""
        with no_grad():
            for m in self.modules():
                for p in m._parameters.values():
                    if p is None:
                        continue
                    new = convert(p.detach())
                    if new.array is not p.array:
                        p.array, p.backend = new.array, new.backend
                        p._version += 1
                    if p.grad is not None:
                        g = convert(p.grad.detach())
                        p._grad = Tensor._make(g.array, g.backend)
                for name, b in m._buffers.items():
                    if b is not None:
                        m._buffers[name] = convert(b)
        return self

    def to(self, *args, **kwargs) -> Module:
        """module.to(device), .to(dtype), .to(device, dtype), .to(tensor): in place.

        A dtype applies only to floating-point parameters and buffers (as in PyTorch).
        """
        device, dtype = _parse_module_to("to", args, kwargs)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got "
                            f"desired dtype={dtype}")
        return self._apply(_Converter(device, dtype))

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        return self.to("cuda")

    def half(self) -> Module:
        return self._apply(_Converter(None, dt.float16))

    def float(self) -> Module:  # noqa: A003
        return self._apply(_Converter(None, dt.float32))

    def double(self) -> Module:
        return self._apply(_Converter(None, dt.float64))

    def bfloat16(self) -> Module:
        return self._apply(_Converter(None, dt.bfloat16))

    def type(self, dst_type) -> Module:  # noqa: A003
        return self._apply(_Converter(None, dt.as_dtype(dst_type), floating_only=False))

    # -- copying, printing ----------------------------------------------------------------
    def __deepcopy__(self, memo: dict) -> Module:
        # backends are process-wide singletons: share them, never copy them
        for backend in loaded_backends():
            memo.setdefault(id(backend), backend)
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            object.__setattr__(clone, key, copy.deepcopy(value, memo))
        return clone

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (override it)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, child in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(child), 2))
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


class _Converter:
    """A picklable-free callable (not a closure) converting one tensor's device/dtype."""

    def __init__(self, device, dtype, floating_only: bool = True):
        self.backend = get_backend(canonical_device(device)) if device is not None else None
        self.dtype = dtype
        self.floating_only = floating_only

    def __call__(self, t: Tensor) -> Tensor:
        out = t
        if self.backend is not None and out.backend is not self.backend:
            out = out.to(self.backend.device)
        if self.dtype is not None and (out.dtype.is_floating_point or not self.floating_only):
            out = out.to(self.dtype)
        return out


def _parse_module_to(op: str, args: tuple, kwargs: dict):
    kwargs = dict(kwargs)
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"{op}: unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, dt.dtype):
            dtype = a
        elif a is not None:
            device = a
    return device, (dt.as_dtype(dtype) if dtype is not None else None)


def _fresh_copy(value, target: Tensor) -> Tensor:
    """`value` (Tensor, NumPy array, nested list, ...) as a new tensor with its own array,
    in `target`'s dtype and on `target`'s device."""
    if isinstance(value, Tensor):
        value = value.detach()
    elif hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()  # a PyTorch tensor, possibly a Parameter or on a GPU
    return Tensor(value, dtype=target.dtype, device=target.device)
