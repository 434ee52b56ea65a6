"""`import torch` answered by smolgrad: the import machinery behind `python -m smolgrad run`.

    import smolgrad
    smolgrad.install_as_torch()     # before the first `import torch` (e.g. a notebook's cell 1)
    import torch                    # this is smolgrad now
    import torch.nn.functional as F # smolgrad.nn.functional
    from torch.utils.data import DataLoader

How Python imports, in one paragraph: `import a.b` first imports `a`, then asks each finder
on `sys.meta_path`, in order, for a *spec* of `a.b` (what the module is and which loader
makes it). The loader creates the module object and runs its code; the module then lives in
`sys.modules["a.b"]` and becomes the attribute `b` of `a`. `install_as_torch()` puts one
finder, `TorchAliasFinder`, at the front of that list. It answers every name `torch` or
`torch.X...` with the smolgrad module that plays that part, already imported, so that
`sys.modules["torch.nn"] is smolgrad.nn`: one module object under two names, never a copy.

Which smolgrad module a torch name means, for `torch.<parent>.<child>`:
1. the table `RENAMED` below, for the few places where smolgrad's name differs;
2. else `child` as an attribute of the module that `torch.<parent>` resolved to, when that
   attribute is a smolgrad module (so `torch.nn.modules.batchnorm` is the module that
   `smolgrad.nn.modules` names `batchnorm`, i.e. smolgrad.nn.normalization);
3. else the real submodule `<that module's name>.<child>` (`torch.utils.data.sampler` is
   `smolgrad.utils.data.sampler`, `torch.cuda.amp` is `smolgrad.cuda.amp`).
A name none of these finds raises `ModuleNotFoundError("torch.fft: smolgrad does not provide
this module ...")` at once, rather than Python's bare "No module named".

Nothing happens on `import smolgrad` alone: a real PyTorch installed next to smolgrad stays
what `import torch` gives until `install_as_torch()` is called (or the launcher runs).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["RENAMED", "BLOCKED", "TorchAliasFinder", "install_as_torch", "is_installed",
           "resolve", "uninstall_as_torch"]

# torch module name -> smolgrad module name, where the generic rules above do not find it.
RENAMED: dict[str, str] = {
    "torch": "smolgrad",
    "torch.nn.parameter": "smolgrad.nn.module",      # Parameter, Buffer
    "torch.optim.adamw": "smolgrad.optim.adam",      # AdamW lives beside Adam
}

# Packages built on the real PyTorch's C++ core: importing them against smolgrad would fail
# somewhere deep inside, so the alias stops them at the import with a plain message.
BLOCKED: tuple[str, ...] = ("torchvision", "torchaudio", "torchtext")

_NOT_PROVIDED = ("{name}: smolgrad does not provide this module (`import torch` is smolgrad "
                 "here; see docs/pytorch.md for what is supported)")


def _top_level(fullname: str) -> str:
    return fullname.partition(".")[0]


def resolve(torch_name: str) -> ModuleType:
    """The smolgrad module that plays the part of `torch_name` (imported on the way).

    Raises ModuleNotFoundError naming `torch_name` when smolgrad has no such module.
    """
    if torch_name in RENAMED:
        return importlib.import_module(RENAMED[torch_name])
    parent_name, _, child = torch_name.rpartition(".")
    parent = sys.modules.get(parent_name)
    if parent is None:  # resolve() called directly, not from inside an import
        parent = resolve(parent_name)
    attribute = getattr(parent, child, None)
    if isinstance(attribute, ModuleType) and _top_level(attribute.__name__) == "smolgrad":
        return attribute
    target_name = f"{parent.__name__}.{child}"
    if hasattr(parent, "__path__") and importlib.util.find_spec(target_name) is not None:
        return importlib.import_module(target_name)
    raise ModuleNotFoundError(_NOT_PROVIDED.format(name=torch_name), name=torch_name)


class _AliasLoader(importlib.abc.Loader):
    """Hands the import system an already imported smolgrad module instead of a new one."""

    def __init__(self, module: ModuleType):
        self.module = module
        self.original_spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        # The import system has just set module.__spec__ to the alias's spec (it always
        # does); put smolgrad's own back so that the module keeps its true identity.
        module.__spec__ = self.original_spec


class TorchAliasFinder(importlib.abc.MetaPathFinder):
    """A `sys.meta_path` finder that answers `torch` and `torch.*` with smolgrad modules."""

    def find_spec(self, fullname: str, path=None, target=None):
        top = _top_level(fullname)
        if top in BLOCKED:
            raise ModuleNotFoundError(
                f"{fullname}: a PyTorch extension package that needs the real PyTorch; "
                f"smolgrad does not provide it (`import torch` is smolgrad here)", name=fullname)
        if top != "torch":
            return None
        module = resolve(fullname)
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(module), is_package=hasattr(module, "__path__"))


_FINDER = TorchAliasFinder()


def is_installed() -> bool:
    """True while `import torch` is answered by smolgrad in this process."""
    return _FINDER in sys.meta_path


def install_as_torch() -> None:
    """Make `import torch` (and `import torch.nn`, `from torch.utils.data import ...`, ...)
    give smolgrad for the rest of this process. Call it before the first `import torch`.

    Raises RuntimeError when the real PyTorch is already imported: its objects are live in
    the process and cannot be swapped out (in a notebook, restart the kernel and call this
    in the first cell).
    """
    existing = sys.modules.get("torch")
    smolgrad = importlib.import_module("smolgrad")
    if existing is not None and existing is not smolgrad:
        where = getattr(existing, "__file__", None) or repr(existing)
        raise RuntimeError(
            f"install_as_torch: the real PyTorch is already imported in this process "
            f"({where}); call smolgrad.install_as_torch() before the first `import torch` "
            f"(in a notebook: restart the kernel and call it in the first cell)")
    if not is_installed():
        sys.meta_path.insert(0, _FINDER)


def uninstall_as_torch() -> None:
    """Undo `install_as_torch()`: forget every `torch*` name that points at smolgrad, so the
    next `import torch` finds the real PyTorch again (objects already made stay smolgrad's)."""
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in [n for n in sys.modules if _top_level(n) == "torch"]:
        module = sys.modules[name]
        if _top_level(getattr(module, "__name__", "")) == "smolgrad":
            del sys.modules[name]
