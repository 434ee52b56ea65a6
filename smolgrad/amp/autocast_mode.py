"""`autocast`: PyTorch's mixed-precision region, casting per op where the backend can.

    with sg.autocast("cpu", dtype=sg.float16):
        logits = model(x)                 # Linear: float16 (inputs and weights cast)
        loss = F.cross_entropy(logits, y) # float32 (float16 logits cast up)
    loss.backward()                       # float32 parameters get float32 gradients

Inside an enabled region, ops on tensors of its device type follow PyTorch's policy
(smolgrad/ops/autocast.py has the lists): matmul, linear and convolutions compute in the
region's dtype, losses (and on "cuda"/"mlx" softmax and normalisations) in float32, every
other op in the dtype of its inputs. The casts are recorded, so backward converts the
gradients back: parameters keep float32 gradients. Regions nest (`autocast(...,
enabled=False)` inside switches casting off again) and are per thread, like grad mode.

Where the backend lacks the dtype the region is a no-op, with a warning once: NumPy (device
"cpu") has no bfloat16, which is PyTorch's CPU default; pass `dtype=sg.float16` there. MLX
has both float16 and bfloat16, CuPy float16. As in PyTorch, "cuda" without a usable GPU
warns and disables itself, and a dtype other than float16/bfloat16 warns and disables.
PyTorch caches the casts of parameters within a region (`cache_enabled`); smolgrad recasts
at each use, which gives the same values.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

from .. import dtypes as dt
from ..arrays import get_backend, is_available
from ..ops.autocast import DEFAULT_DTYPES, _autocast_state

_AUTOCAST_DEVICES = tuple(DEFAULT_DTYPES)
_SUPPORTED_DTYPES = (dt.float16, dt.bfloat16)
_warned_no_op: set = set()  # (device type, dtype) pairs whose no-op warning was given


def is_autocast_available(device_type: str) -> bool:
    """True for the device types that `autocast` accepts ("cpu", "cuda", "mlx")."""
    return device_type in _AUTOCAST_DEVICES


class autocast:  # noqa: N801 - PyTorch's spelling
    """A context manager and decorator: a mixed-precision region for one device type.

    device_type: "cpu", "cuda" or "mlx". dtype: the reduced precision (default bfloat16 on
    "cpu" and "mlx", float16 on "cuda", as PyTorch). enabled: False turns casting off for
    this device type inside the region (also inside an enclosing enabled one).
    cache_enabled: accepted and recorded, as PyTorch's flag (no cache is kept).

    Disables itself with a warning where PyTorch does: "cuda" (or "mlx") not available, or
    a dtype other than float16/bfloat16. Is a no-op, with a warning on first entry, where
    the backend has no such dtype (cpu + bfloat16).
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
        self.fast_dtype = DEFAULT_DTYPES[device_type] if dtype is None else dt.as_dtype(dtype)
        self._enabled = bool(enabled)
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._saved: list = []  # the state to restore, one entry per entered (nested) use
        if self._enabled and device_type != "cpu" and not is_available(device_type):
            name = "CUDA" if device_type == "cuda" else "MLX"
            warnings.warn(f"autocast: {name} is not available. Disabling autocast.",
                          UserWarning, stacklevel=self._warning_stacklevel)
            self._enabled = False
        if self._enabled and self.fast_dtype not in _SUPPORTED_DTYPES:
            warnings.warn(f"autocast: {device_type} autocast supports float16 and bfloat16, "
                          f"got {self.fast_dtype.name}. Disabling autocast.", UserWarning,
                          stacklevel=self._warning_stacklevel)
            self._enabled = False
        self._casts = self._enabled and self._backend_has_dtype()

    def _backend_has_dtype(self) -> bool:
        """float16 exists on every backend; bfloat16 only where `has_bfloat16` (MLX)."""
        return self.fast_dtype is not dt.bfloat16 or get_backend(self.device).has_bfloat16

    def __enter__(self) -> None:
        state = _autocast_state
        self._saved.append((state.casts, state.dtypes, state.cache_enabled))
        casts = {device: dtype for device, dtype in state.casts.items() if device != self.device}
        if self._casts:
            casts[self.device] = self.fast_dtype
        elif self._enabled:
            self._warn_no_op()
        state.casts = casts
        state.dtypes = {**state.dtypes, self.device: self.fast_dtype}
        state.cache_enabled = self._cache_enabled

    def _warn_no_op(self) -> None:
        key = (self.device, self.fast_dtype)
        if key in _warned_no_op:
            return
        _warned_no_op.add(key)
        warnings.warn(f"autocast: the {self.device!r} backend has no {self.fast_dtype.name}, "
                      f"so this region casts nothing and every op computes in the dtype of "
                      f"its inputs; use autocast({self.device!r}, dtype=torch.float16) for "
                      f"mixed precision there", UserWarning, stacklevel=3)

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        state = _autocast_state
        state.casts, state.dtypes, state.cache_enabled = self._saved.pop()
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
    """Decorator for a custom `autograd.Function.forward` under autocast: returned unchanged,
    so the forward runs under the caller's autocast state. Not yet PyTorch's: `cast_inputs`
    (cast the floating inputs and run with autocast off) is not applied."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    return fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str) -> Callable:
    """Decorator for a custom `autograd.Function.backward`: returned unchanged (see custom_fwd)."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd
