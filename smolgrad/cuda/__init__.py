"""`sg.cuda.is_available()`, as in `device = "cuda" if torch.cuda.is_available() else "cpu"`."""

from __future__ import annotations

from .arrays import is_available as _is_available


def is_available() -> bool:
    """True when CuPy imports and sees an NVIDIA GPU (the "cuda" device works)."""
    return _is_available("cuda")


def device_count() -> int:
    return 1 if is_available() else 0
