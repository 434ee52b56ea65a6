"""Grad mode: is the autograd graph being recorded right now? A thread-local flag, as in
PyTorch, that `Function.apply` (smolgrad/engine.py) reads before recording a node.

`no_grad()`, `enable_grad()` and `set_grad_enabled(mode)` switch it, each usable as a
context manager or as a decorator; `inference_mode` is `no_grad` here.
"""

from __future__ import annotations

import contextlib
import functools
import threading


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
# Autocast state: which device types compute selected ops in a reduced dtype right now
# ---------------------------------------------------------------------------------------


class _AutocastState(threading.local):
    """Per thread, as PyTorch's: the state that `smolgrad.amp.autocast` sets on entry and
    restores on exit, read by the casting policy in smolgrad/ops/autocast.py.

    casts: {device type: reduced dtype} for the device types autocast is on for; empty
    outside autocast, so an op's whole check is `if _autocast_state.casts:`.
    dtypes: {device type: dtype} set by the innermost region for each device type, on or off
    (`get_autocast_dtype`). cache_enabled: the innermost region's flag (no cache is kept:
    a cast is recomputed at each use, which gives the same values).
    Each region replaces the dicts instead of changing them, so restoring is one assignment.
    """

    casts: dict = {}
    dtypes: dict = {}
    cache_enabled = True


_autocast_state = _AutocastState()


@contextlib.contextmanager
def autocast_off():
    """No autocast casting inside: the engine runs backward in it, because backward ops run
    in the dtypes forward chose (as PyTorch's), whether or not backward() is called inside
    an autocast region."""
    saved = _autocast_state.casts
    _autocast_state.casts = {}
    try:
        yield
    finally:
        _autocast_state.casts = saved
