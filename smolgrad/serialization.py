"""`torch.serialization`: `save`/`load` (smolgrad's safetensors checkpoints, smolgrad/io.py)
and the safe-globals allow-list API.

PyTorch's `torch.load(weights_only=True)` unpickles only allow-listed classes, and programs
extend the list with `add_safe_globals([...])`. smolgrad never unpickles, so there is nothing
to allow: the list is kept (so `get_safe_globals()` reads back what was added) and has no
effect on loading.
"""

from __future__ import annotations

from collections.abc import Iterable

from .io import load, save

__all__ = ["add_safe_globals", "clear_safe_globals", "get_safe_globals", "load",
           "safe_globals", "save"]

_safe_globals: list = []


def add_safe_globals(safe_globals: Iterable) -> None:
    """Record classes/functions as allowed (no effect: smolgrad's load runs no code)."""
    _safe_globals.extend(safe_globals)


def get_safe_globals() -> list:
    return list(_safe_globals)


def clear_safe_globals() -> None:
    _safe_globals.clear()


class safe_globals:  # noqa: N801 - PyTorch's spelling
    """`with safe_globals([...]):` allows them inside the block only (no effect, as above)."""

    def __init__(self, safe_globals: Iterable):
        self.added = list(safe_globals)

    def __enter__(self) -> None:
        _safe_globals.extend(self.added)

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        for item in self.added:
            _safe_globals.remove(item)
        return False
