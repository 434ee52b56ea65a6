"""`autocast`: PyTorch's mixed-precision region, accepted and documented as a no-op.

In PyTorch, inside `with torch.autocast("cuda"):` selected ops (matmul, conv, linear) run in
float16/bfloat16 while precision-sensitive ones (softmax, losses, reductions) stay float32.
smolgrad does not cast per op yet: inside `autocast` every op computes in the dtype of its
inputs, exactly as outside. A program written for autocast therefore runs unchanged and
gets float32 results (more precise, not faster). To train in reduced precision on smolgrad
today, convert the model and inputs yourself (`model.half()`, `x.half()`).

The checks PyTorch makes still happen: an autocast for "cuda" on a machine without CUDA warns
and disables itself, as PyTorch does there.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

from .. import dtypes as dt
from ..arrays import is_available

_AUTOCAST_DEVICES = ("cpu", "cuda", "mlx")
_DEFAULT_DTYPES = {"cpu": dt.bfloat16, "cuda": dt.float16, "mlx": dt.bfloat16}
_SUPPORTED_DTYPES = (dt.float16, dt.bfloat16)


def is_autocast_available(device_type: str) -> bool:
    """True for the device types that `autocast` accepts ("cpu", "cuda", "mlx")."""
    return device_type in _AUTOCAST_DEVICES


class autocast:  # noqa: N801 - PyTorch's spelling
    """A context manager and decorator marking a mixed-precision region (a no-op here).

    device_type: "cpu", "cuda" or "mlx". dtype: the reduced precision PyTorch would use
    (default bfloat16 on "cpu", float16 on "cuda"). enabled: False turns the region off.
    cache_enabled: accepted for PyTorch compatibility.

    Disables itself with a warning where PyTorch does: "cuda" without a usable GPU, or a
    dtype other than float16/bfloat16.
    """

    _warning_stacklevel = 2  # warnings point at the line that opened the region

    def __init__(self, device_type: str, dtype: dt.dtype | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None):
        if not isinstance(device_type, str):
            raise ValueError(f"autocast: expected device_type of type str (e.g. 'cpu' or "
                             f"'cuda'), got {type(device_type).__name__}")
        if device_type not in _AUTOCAST_DEVICES:
            raise RuntimeError(f"autocast: unsupported device_type {device_type!r}; expected "
                               f"one of {', '.join(map(repr, _AUTOCAST_DEVICES))}")
        self.device = device_type
        self.fast_dtype = _DEFAULT_DTYPES[device_type] if dtype is None else dt.as_dtype(dtype)
        self._enabled = bool(enabled)
        self._cache_enabled = cache_enabled
        if self._enabled and device_type == "cuda" and not is_available("cuda"):
            warnings.warn("autocast: CUDA is not available. Disabling autocast.", UserWarning,
                          stacklevel=self._warning_stacklevel)
            self._enabled = False
        if self._enabled and self.fast_dtype not in _SUPPORTED_DTYPES:
            warnings.warn(f"autocast: {device_type} autocast supports float16 and bfloat16, "
                          f"got {self.fast_dtype.name}. Disabling autocast.", UserWarning,
                          stacklevel=self._warning_stacklevel)
            self._enabled = False

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        return False

    def __call__(self, func: Callable) -> Callable:
        """Use as a decorator: `func` runs inside this autocast region."""

        @functools.wraps(func)
        def run_in_autocast(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return run_in_autocast


def custom_fwd(fwd: Callable | None = None, *, device_type: str,
               cast_inputs: dt.dtype | None = None) -> Callable:
    """Decorator for a custom `autograd.Function.forward` under autocast. smolgrad's autocast
    casts nothing, so the forward is returned unchanged (`cast_inputs` has nothing to undo)."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    return fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str) -> Callable:
    """Decorator for a custom `autograd.Function.backward`: returned unchanged (see custom_fwd)."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd
