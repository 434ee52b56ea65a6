"""Whole modules in smolgrad's checkpoints: `sg.save(model, path)` / `model = sg.load(path)`.

PyTorch's `torch.save(model, f)` pickles the model, and unpickling runs whatever code the
file names. smolgrad stores a module as data instead, inside the structure that
`smolgrad/io.py` keeps in the safetensors header (its tensors are ordinary tensors of the
file, named by their state_dict keys):

    {"module": ["model", "RNNModel"],          # the class: its module and qualified name
     "id": 0,                                  # the same module met again: {"module_ref": 0}
     "training": true,
     "parameters": [["weight", {"tensor": "decoder.weight", "parameter": true, ...}],
                    ["bias", null]],
     "buffers": [["pe", {"tensor": "pos_encoder.pe", ...}]],
     "non_persistent": [],                     # buffers left out of state_dict()
     "children": [["encoder", {"module": ...}], ...],
     "attributes": [["ntoken", 33278], ["rnn_type", "LSTM"], ...]}   # the rest of __dict__

Loading rebuilds the tree without running any code from the file (`find_module_class`):
a class is looked up only in modules the program has already imported (`sys.modules`; load
never imports) and only by dictionary look-ups, it must be a subclass of `smolgrad.nn.Module`,
and each object is made with `object.__new__(cls)` (no `__init__`, no `__setstate__`) and
its `__dict__` filled with the decoded values. The only functions a file may name are
smolgrad's own tensor functions (`F.relu` as a TransformerEncoderLayer's activation; see
`function_reference`). A tensor (a parameter tied between two layers, say) is stored once
and comes back as one object, so tied weights stay tied.
"""

from __future__ import annotations

import sys
import types
from collections import OrderedDict

from .engine import Tensor
from .nn.module import Module, Parameter

# The Module bookkeeping stored in named fields; everything else in a module's __dict__
# (hyperparameters, hook tables, plain tensors) is an "attribute".
_TREE_STATE = ("training", "_parameters", "_buffers", "_non_persistent_buffers_set",
               "_modules")
# Namespaces whose public functions a file may name, and the modules such a function must
# be defined in: tensor math only (no creation, seeding, printing or file functions).
_FUNCTION_NAMESPACES = ("smolgrad.nn.functional", "smolgrad")
_FUNCTION_HOMES = frozenset({"smolgrad.nn.functional", "smolgrad.ops.elementwise",
                             "smolgrad.ops.reduce", "smolgrad.ops.linalg",
                             "smolgrad.ops.movement"})


class ModuleEncoder:
    """Encodes modules for io's `_Encoder`, which it calls back for every value inside."""

    def __init__(self, values):
        self.values = values  # io._Encoder: encode(value, path) for tensors, numbers, ...
        self.ids: dict = {}  # id(module) -> its number in the file
        self.keep_alive: list = []  # the modules whose id() is in self.ids

    def encode(self, module: Module, path: str) -> dict:
        if id(module) in self.ids:
            return {"module_ref": self.ids[id(module)]}
        self.ids[id(module)] = len(self.ids)
        self.keep_alive.append(module)
        state = module.__dict__
        return {
            "module": class_reference(type(module), path),
            "id": self.ids[id(module)],
            "training": bool(state["training"]),
            "parameters": self._entries(state["_parameters"], path),
            "buffers": self._entries(state["_buffers"], path),
            "non_persistent": sorted(state["_non_persistent_buffers_set"]),
            "children": self._entries(state["_modules"], path),
            "attributes": [[name, self._attribute(value, _join(path, name))]
                           for name, value in state.items() if name not in _TREE_STATE],
        }

    def _entries(self, store: dict, path: str) -> list:
        return [[name, self.values.encode(value, _join(path, name))]
                for name, value in store.items()]

    def _attribute(self, value, path: str):
        name = path.rpartition(".")[2]
        if name.startswith("__") and name.endswith("__"):
            raise TypeError(f"save: '{path}': a module attribute named like a special "
                            f"method ({name}) cannot be saved")
        if name.startswith("_") and name.endswith("_hooks") and isinstance(value, dict) and value:
            raise TypeError(f"save: '{path}' holds a function (a hook registered on the "
                            f"module); hooks are code, which smolgrad's files never hold: "
                            f"remove them (handle.remove()) before saving, or save the "
                            f"model's state_dict() instead")
        return self.values.encode(value, path)


def class_reference(cls: type, path: str) -> list:
    """[module name, qualified name] of a Module subclass, checked to lead back to it."""
    module_name, qualname = cls.__module__, cls.__qualname__
    if "<locals>" in qualname:
        raise TypeError(f"save: '{path or '<root>'}' is a {cls.__name__}, a class defined "
                        f"inside a function; load finds a class by its module and name, so "
                        f"define {cls.__name__} at the top level of {module_name}")
    if _lookup(sys.modules.get(module_name), qualname) is not cls:
        raise TypeError(f"save: '{path or '<root>'}' is a {cls.__name__}, which cannot be "
                        f"found as {module_name}.{qualname}; load finds a class by that name")
    return [module_name, qualname]


def function_reference(fn, path: str) -> list:
    """[namespace, name] of one of smolgrad's tensor functions (F.relu, sg.tanh, ...), the
    only functions a file may name; any other function (a lambda, the program's own, a
    bound method) is code, which smolgrad's files never hold."""
    for namespace in _FUNCTION_NAMESPACES:
        name = getattr(fn, "__name__", None)
        if isinstance(name, str) and _allowed_function(namespace, name) is fn:
            return [namespace, name]
    where = getattr(fn, "__module__", None) or "?"
    raise TypeError(f"save: '{path or '<root>'}' holds a function ({_name_of(fn)}, from "
                    f"{where}); smolgrad's files never hold code, and the only functions "
                    f"they may name are smolgrad's own tensor functions (torch.nn.functional."
                    f"*, torch.tanh, ...): make it a Module (e.g. nn.GELU()) or save the "
                    f"model's state_dict() instead")


def _name_of(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)[:40]


def _allowed_function(namespace: str, name: str):
    """The function `namespace.name` if it is one of smolgrad's tensor functions, else None.
    Found by dictionary look-up only (nothing is called, nothing imported)."""
    if namespace not in _FUNCTION_NAMESPACES or name.startswith("_"):
        return None
    fn = _lookup(sys.modules.get(namespace), name)
    if not isinstance(fn, types.FunctionType):
        return None
    return fn if fn.__module__ in _FUNCTION_HOMES else None


def _lookup(scope, qualname: str):
    """`scope.a.b.c` for qualname "a.b.c", by reading `__dict__`s only (no getattr, so no
    module or class code runs); None when a part is missing."""
    for part in qualname.split("."):
        try:
            scope = vars(scope).get(part)
        except TypeError:  # scope has no __dict__ (None, or a plain value)
            return None
    return scope


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class ModuleDecoder:
    """Rebuilds modules for io's `_Decoder`, which decodes every value inside them."""

    def __init__(self, values, error):
        self.values = values  # io._Decoder: decode(node)
        self.error = error  # makes a CheckpointError naming the file
        self.made: dict = {}  # number in the file -> the module rebuilt

    def corrupt(self, problem: str) -> Exception:
        return self.error(f"{problem}; the file is corrupt or from a newer smolgrad")

    def reference(self, number) -> Module:
        if not isinstance(number, int) or number not in self.made:
            raise self.corrupt(f"a module reference {number!r} points to no module before it")
        return self.made[number]

    def decode(self, node: dict) -> Module:
        fields = {"module", "id", "training", "parameters", "buffers", "non_persistent",
                  "children", "attributes"}
        if set(node) != fields:
            raise self.corrupt(f"a module entry has the fields {sorted(node)}, not "
                             f"{sorted(fields)}")
        cls = find_module_class(node["module"], self.error)
        number = node["id"]
        if not isinstance(number, int) or isinstance(number, bool) or number in self.made:
            raise self.corrupt(f"module id {number!r} is not a new integer")
        if not isinstance(node["training"], bool):
            raise self.corrupt(f"a {cls.__name__}'s training flag is {node['training']!r}")
        module = object.__new__(cls)
        self.made[number] = module  # before its contents: they may refer back to it
        state = module.__dict__
        state["training"] = node["training"]
        state["_parameters"] = self._store(node["parameters"], Parameter, "parameter")
        state["_buffers"] = self._store(node["buffers"], Tensor, "buffer")
        state["_non_persistent_buffers_set"] = self._names(node["non_persistent"])
        state["_modules"] = self._store(node["children"], Module, "child module")
        for name, value in self._pairs(node["attributes"], "attribute"):
            if name in state or (name.startswith("__") and name.endswith("__")):
                raise self.corrupt(f"a {cls.__name__} has an attribute named {name!r}")
            state[name] = self.values.decode(value)
        return module

    def _store(self, pairs, kind: type, what: str) -> OrderedDict:
        store = OrderedDict()
        for name, node in self._pairs(pairs, what):
            if "." in name or not name or name in store:
                raise self.corrupt(f"{what} name {name!r} is empty, dotted or repeated")
            value = self.values.decode(node)
            if value is not None and not isinstance(value, kind):
                raise self.corrupt(f"{what} '{name}' is a {type(value).__name__}, not a "
                                 f"{kind.__name__}")
            store[name] = value
        return store

    def _pairs(self, pairs, what: str) -> list:
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise self.corrupt(f"the {what}s of a module are not a list of [name, value] pairs")
        return pairs

    def _names(self, names) -> set:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self.corrupt("a module's non-persistent buffer names are not a list of strings")
        return set(names)

    def function(self, reference) -> types.FunctionType:
        if not (isinstance(reference, list) and len(reference) == 2
                and all(isinstance(part, str) for part in reference)):
            raise self.corrupt(f"function reference {str(reference)[:80]} is malformed")
        fn = _allowed_function(*reference)
        if fn is None:
            raise self.error(f"it names the function {'.'.join(reference)}, which is not one "
                             f"of smolgrad's tensor functions; load never calls or keeps "
                             f"anything else a file names")
        return fn


def find_module_class(reference, error) -> type:
    """The class [module name, qualified name] refers to, found without running code: the
    module must already be imported and the class must be a smolgrad.nn.Module."""
    if not (isinstance(reference, list) and len(reference) == 2
            and all(isinstance(part, str) and part for part in reference)):
        raise error(f"class reference {str(reference)[:80]} is malformed")
    module_name, qualname = reference
    full = f"{module_name}.{qualname}"
    module = sys.modules.get(module_name)
    if module is None:
        raise error(f"it holds a {full}, and the module '{module_name}' is not imported. "
                    f"load never imports (importing runs code): import the class first "
                    f"(e.g. `from {module_name} import {qualname.split('.')[0]}`), then load")
    cls = _lookup(module, qualname)
    if cls is None:
        raise error(f"it holds a {full}, but module '{module_name}' has no '{qualname}' "
                    f"(the class was renamed or moved since the file was saved?)")
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise error(f"it names {full}, which is not a subclass of smolgrad.nn.Module; load "
                    f"rebuilds only modules and never calls anything a file names")
    return cls
