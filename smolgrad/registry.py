"""The op registry: one record per `register(...)` call, and what is derived from it.

An op is written once, in its family's module under `smolgrad/ops/`: the `Function`,
then its wrapper with the registration right above it:

    @register("exp", function=True, inplace=True)
    def exp(input): ...

`register` (smolgrad/engine.py) attaches the wrapper to `Tensor` and records it here.
`function=` says which top-level names (`smolgrad.exp`) it gets:

    @register("exp", function=True)       Tensor.exp and smolgrad.exp (the plain names)
    @register(function=True)              smolgrad.zeros only: no Tensor name given, so
    def zeros(*size, ...): ...            the function's own name
    @register("transpose", "swapaxes", "swapdims", function=("transpose", "swapaxes"))
                                          three Tensor names, two top-level names
    @register(function=("cat", "concat", "concatenate"))
                                          top-level only, under three names

Anything callable with a `__name__` can be recorded this way, not only functions:
`register(function=True)(FloatTensor)` exports the legacy constructor `smolgrad.FloatTensor`.
So every top-level function of the package is registered where it is defined, and
`smolgrad/__init__.py` lists none of them.

Three things are then derived from the records instead of being listed by hand:

- the package's top-level functions, `smolgrad.exp`: `exports()`, read by
  `smolgrad/__init__.py`;
- the in-place variants, `x.exp_()`, `x += y`: made here at registration
  (`inplace_method`), named after the op's names (`add` -> `add_`, `__add__` -> `__iadd__`);
- the type stubs, so that IDEs and type checkers see what is attached at import time:
  `tensor_stub()` and `package_stub()`, written to `smolgrad/_tensor_methods.pyi` and
  `smolgrad/__init__.pyi` by `tools/gen_stubs.py` (a test checks they are current).

This module imports nothing from smolgrad: the engine calls it, the package reads it.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

# Python's augmented assignments: `x += y` calls `x.__iadd__(y)`, the in-place form of
# `x.__add__(y)`. Unary operators (`-x`, `abs(x)`) have no in-place form.
AUGMENTED = {f"__{op}__": f"__i{op}__" for op in (
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
    "lshift", "rshift")}


@dataclass(frozen=True)
class Op:
    """One registration: a function and every name it is reachable under."""

    fn: Callable
    family: str                 # the module it is defined in: "elementwise", "reduce", ...
    methods: tuple[str, ...]    # Tensor attributes: methods and operators (`add`, `__add__`)
    functions: tuple[str, ...]  # top-level functions: `smolgrad.add`
    inplace: tuple[str, ...]    # in-place Tensor methods: `add_`, `__iadd__`


Fn = TypeVar("Fn", bound=Callable)  # `register(...)` returns the function it was given

OPS: list[Op] = []  # in registration order (the order the op modules are imported in)


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _plain(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names that are neither operators (`__add__`) nor private (`_assign`)."""
    return tuple(n for n in names if not n.startswith("_"))


def _top_level_names(op: str, names: tuple[str, ...],
                     function: bool | tuple[str, ...]) -> tuple[str, ...]:
    """The top-level names `function=` asks for (see `record`)."""
    if function is True:
        return _plain(names) or (op,)
    if function is False:
        return ()
    if not isinstance(function, tuple) or not function or not all(
            isinstance(n, str) and n for n in function):
        raise TypeError(f"register({op}): function= takes True, False or a tuple of "
                        f"non-empty top-level names, got {function!r}")
    return function


def record(fn: Callable, names: tuple[str, ...], function: bool | tuple[str, ...],
           inplace: bool) -> list[tuple[str, Callable]]:
    """Record `fn` registered under Tensor attribute `names`; return the (name, method)
    pairs to set on Tensor: `fn` under each name, then its in-place variants.

    function=True: also a top-level function, under each plain name in `names` (`sub`,
        `subtract`), or under its own `__name__` when it is registered under none
        (`zeros`; `where`, whose method form is another function).
    function=("cat", "concat"): a top-level function under exactly these names, whatever
        its Tensor names (for aliases, or when only some Tensor names are PyTorch
        functions too).
    inplace=True: also an in-place method per plain name (`sub_`, `subtract_`) and per
        binary operator (`__isub__`).
    """
    op = getattr(fn, "__name__", type(fn).__name__)
    if not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"register({op}): Tensor attribute names must be non-empty strings, "
                        f"got {names!r}")
    functions = _top_level_names(op, names, function)
    if not names and not functions:
        raise TypeError(f"register({op}): give the Tensor attribute names, or function=True "
                        f"for a top-level function that is no method")
    if any(n.startswith("_") for n in functions):
        raise TypeError(f"register({op}): top-level names must be public, got {functions!r} "
                        f"(function=True takes the plain names among {names!r}, or the "
                        f"function's own name when there are none)")
    inplace_names = ()
    if inplace:
        inplace_names = tuple(n + "_" for n in _plain(names)) + tuple(
            AUGMENTED[n] for n in names if n in AUGMENTED)
        if not inplace_names:
            raise TypeError(f"register({op}): inplace=True needs a plain name or a binary "
                            f"operator among {names!r} to name the in-place variant after")
    module = getattr(fn, "__module__", None) or getattr(getattr(fn, "fget", None),
                                                        "__module__", "")
    OPS.append(Op(fn, module.rsplit(".", 1)[-1], tuple(names), functions, inplace_names))
    pairs = [(n, fn) for n in names]
    if inplace_names:  # one method for all: `x += y` reports errors as `add_`, like x.add_(y)
        method = inplace_method(fn, inplace_names[0])
        pairs += [(n, method) for n in inplace_names]
    return pairs


def exports() -> dict[str, Callable]:
    """The top-level functions of the package: {name: function}, from `function=True`."""
    out: dict[str, Callable] = {}
    for op in OPS:
        for name in op.functions:
            if name in out and out[name] is not op.fn:
                raise RuntimeError(f"registry: two ops export the name {name!r}: "
                                   f"{out[name].__module__}.{out[name].__name__} and "
                                   f"{op.fn.__module__}.{op.fn.__name__}")
            out[name] = op.fn
    return out


# ---------------------------------------------------------------------------------------
# In-place variants
# ---------------------------------------------------------------------------------------


def same_shape_result(old, fn: Callable, name: str, *args, **kwargs):
    """fn(old, ...) for an in-place op, whose result must keep old's shape."""
    out = fn(old, *args, **kwargs)
    if out.shape != old.shape:
        raise RuntimeError(f"{name}: the result of shape {tuple(out.shape)} doesn't match the "
                           f"shape {tuple(old.shape)} of the tensor changed in place (in-place ops "
                           f"cannot broadcast the tensor itself to a larger shape)")
    return out


def inplace_method(fn: Callable, name: str) -> Callable:
    """The Tensor method `name`: `fn(self, ...)` written into self, its version bumped.

    `Tensor._inplace` (ops/views.py) does the writing: it computes the result out of place
    on a stand-in for the old value, then rebases self's history onto it."""

    def method(self, *args, **kwargs):
        return self._inplace(name, same_shape_result, fn, name, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__module__ = fn.__module__
    method.__doc__ = f"In-place {fn.__name__}: changes this tensor, bumps its version."
    method.__signature__ = inspect.signature(fn).replace(return_annotation="Tensor")
    return method


# ---------------------------------------------------------------------------------------
# Type stubs: what IDEs and type checkers read instead of the attributes set at run time
# ---------------------------------------------------------------------------------------

STUB_COMMAND = ".venv/bin/python tools/gen_stubs.py"
_STUB_HEADER = (f"# Generated from the op registry by `{STUB_COMMAND}`: do not edit.\n"
                "# ruff: noqa: E501, I001  (one line per name, grouped by module)\n")
# Annotations the stubs can name; any other annotation is left out (the parameter is Any).
_STUB_NAMES = {"Tensor", "int", "float", "bool", "str", "bytes", "complex", "object", "None",
               "tuple", "list", "dict", "Any"}
_BUILTIN_TYPES = r"(?<![\w.])(int|float|bool|str|bytes|complex|object|tuple|list|dict)\b"
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _annotation(value) -> str | None:
    """An annotation as stub text, or None when it names something the stub cannot."""
    if value is inspect.Parameter.empty:
        return None
    text = value if isinstance(value, str) else inspect.formatannotation(value)
    words = re.findall(r"[A-Za-z_][\w.]*", text)
    if not words or not all(w in _STUB_NAMES for w in words):
        return None
    # `builtins.int`: inside class TensorMethods, `int` would name its method `int()`
    return re.sub(_BUILTIN_TYPES, r"builtins.\1", text)


def _parameter(p: inspect.Parameter, name: str) -> str:
    stars = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
    annotation = _annotation(p.annotation)
    text = stars + name + (f": {annotation}" if annotation else "")
    if p.default is not p.empty:
        text += " = ..." if annotation else "=..."
    return text


def _method_signature(fn: Callable) -> str:
    """`(self, other, *, alpha=...) -> Tensor`: fn's signature, first argument as self."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature
        return "(self, *args, **kwargs)"
    params = list(sig.parameters.values())
    parts = ["self"]
    if params and params[0].kind in _POSITIONAL:
        params = params[1:]  # `input` of a function is `self` of the method
    keyword_only_marked = False
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not keyword_only_marked:
            parts.append("*")
        keyword_only_marked |= p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        parts.append(_parameter(p, p.name))
        if p.kind is p.POSITIONAL_ONLY and (i + 1 == len(params)
                                            or params[i + 1].kind is not p.POSITIONAL_ONLY):
            parts.append("/")
    returns = _annotation(sig.return_annotation)
    return f"({', '.join(parts)})" + (f" -> {returns}" if returns else "")


def _attached(cls: type) -> dict[str, object]:
    """cls's public attributes and operators that were attached from outside its class
    body (by `register`, or assigned as `Tensor.name = property(...)`)."""
    package = cls.__module__.split(".")[0]
    out = {}
    for name, attr in vars(cls).items():
        if name.startswith("_") and not _is_dunder(name):
            continue
        fn = attr.fget if isinstance(attr, property) else getattr(attr, "__func__", attr)
        qualname = getattr(fn, "__qualname__", None)
        module = getattr(fn, "__module__", None)
        if not isinstance(qualname, str) or qualname.startswith(cls.__qualname__ + "."):
            continue  # written in the class body (the checker reads it there) or no code
        if not isinstance(module, str) or module.split(".")[0] != package:
            continue  # Python's own (`__hash__ = object.__hash__`)
        out[name] = attr
    return out


def _stub_member(name: str, attr) -> list[str]:
    """The stub lines of one class attribute (indented for the class body)."""
    ignore = "  # type: ignore[override]" if name in ("__eq__", "__ne__", "__hash__") else ""
    if isinstance(attr, property):
        lines = ["    @property", f"    def {name}{_method_signature(attr.fget)}: ..."]
        if attr.fset is not None:
            lines += [f"    @{name}.setter", f"    def {name}(self, value) -> None: ..."]
        return lines
    if isinstance(attr, (staticmethod, classmethod)):
        kind = type(attr).__name__
        return [f"    @{kind}", f"    def {name}{_method_signature(attr.__func__)}: ..."]
    if callable(attr):
        signature = _method_signature(attr)
        if name in AUGMENTED.values() and "*" in signature:
            ignore = "  # type: ignore[misc]"  # mypy requires `x += y` to take x + y's args
        return [f"    def {name}{signature}: ...{ignore}"]
    return [f"    {name}: Any"]


def tensor_stub(tensor_cls: type) -> str:
    """The text of `_tensor_methods.pyi`: class `TensorMethods` (the base of Tensor) with
    every attribute attached to Tensor outside its class body, grouped by ops module."""
    by_module: dict[str, list[str]] = {}
    for name, attr in _attached(tensor_cls).items():
        fn = attr.fget if isinstance(attr, property) else getattr(attr, "__func__", attr)
        by_module.setdefault(fn.__module__, []).append(name)
    members = []
    for module in sorted(by_module):
        members.append(f"    # {module}")
        for name in sorted(by_module[module]):
            members += _stub_member(name, vars(tensor_cls)[name])
    needs_any = any(line.endswith(": Any") for line in members)
    needs_builtins = any("builtins." in line for line in members)
    lines = [_STUB_HEADER + '"""The Tensor methods attached at import time by `register` '
             "(smolgrad/registry.py).\n\n"
             "Tensor's base class `TensorMethods` is empty at run time (_tensor_methods.py); "
             'IDEs and\ntype checkers read this stub instead."""\n']
    lines += ["import builtins"] if needs_builtins else []
    lines += ["from typing import Any"] if needs_any else []
    lines += [""] if needs_builtins or needs_any else []
    lines += ["from .engine import Tensor\n\n", "class TensorMethods:"]
    return "\n".join(lines + members) + "\n"


def _home(obj, name: str, package: str) -> tuple[str, str] | None:
    """(module, attribute) under which `obj` is defined in one of the package's modules:
    its own module first, preferring the attribute called `name`."""
    own = getattr(obj, "__module__", None)
    candidates = [own] if isinstance(own, str) and own.startswith(package + ".") else []
    candidates += sorted(m for m in list(sys.modules) if m.startswith(package + "."))
    for module_name in candidates:
        module = sys.modules.get(module_name)
        namespace = vars(module) if module is not None else {}
        if namespace.get(name) is obj:
            return module_name, name
        for key, value in namespace.items():
            if value is obj and not key.startswith("_"):
                return module_name, key
    return None


def package_stub(package: types.ModuleType) -> str:
    """The text of `smolgrad/__init__.pyi`: every name in `package.__all__`, imported from
    where it is defined (so that `sg.exp` is as well known to an IDE as `exp` in its
    module), plus `__version__`."""
    prefix = package.__name__
    imports, untyped = [], []
    for name in sorted(package.__all__):
        obj = getattr(package, name)
        if isinstance(obj, types.ModuleType):
            home: tuple[str, str] | None = obj.__name__.rpartition(".")[::2]
        else:
            home = _home(obj, name, prefix)
        if home is None:
            untyped.append(f"{name}: Any")
            continue
        module = home[0]
        if module == prefix or module.startswith(prefix + "."):
            module = "." + module[len(prefix) + 1:]  # relative: `from .ops.reduce import`
        imports.append(f"from {module} import {home[1]} as {name}")
    lines = [_STUB_HEADER + f'"""Type stub of the {prefix} package: every name of '
             f'`__all__`, from where it is defined."""\n']
    lines += ["from typing import Any\n"] if untyped else []
    lines += sorted(imports) + [""] + untyped + ["__version__: str", ""]
    # with `__all__`, the renamed imports (`float16 as half`) are exports too (PEP 484);
    # one name a line, so that adding an op adds one line here
    lines += ["__all__ = ["] + [f'    "{n}",' for n in sorted(package.__all__)] + ["]"]
    return "\n".join(lines) + "\n"
