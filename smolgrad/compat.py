"""Top-level names PyTorch programs touch around the math: threads, precision switches,
determinism, `Size`, `finfo`/`iinfo`, `compile`, `is_tensor`.

All are exported from `smolgrad` (so `torch.set_num_threads(1)` works under the torch alias).
What each does here:

- `set_float32_matmul_precision` / `get_float32_matmul_precision`: recorded, with PyTorch's
  validation ("highest", "high", "medium"; anything else warns and changes nothing) and its
  link to `torch.backends.cuda.matmul.allow_tf32`. No backend computes float32 matmuls in
  reduced precision, so results do not change.
- `set_num_threads` / `get_num_threads`: the number of threads for NumPy's BLAS (matmul,
  conv); applied through threadpoolctl when it is installed, recorded otherwise.
- `use_deterministic_algorithms`: recorded; smolgrad's ops are deterministic on every
  backend already (no atomics-based reductions are chosen at random).
- `compile(model)`: smolgrad's step compiler (smolgrad/compiler.py).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable

from . import dtypes as dt
from ._size import Size  # the type of Tensor.shape (lives below the engine)
from .backends.cuda import FLOAT32_MATMUL_PRECISIONS
from .backends.cuda import matmul as _matmul_flags
from .engine import Tensor

__all__ = [
    "Size", "are_deterministic_algorithms_enabled", "compile", "finfo",
    "get_float32_matmul_precision", "get_num_interop_threads", "get_num_threads", "iinfo",
    "is_deterministic_algorithms_warn_only_enabled", "is_tensor",
    "set_float32_matmul_precision", "set_num_interop_threads", "set_num_threads",
    "use_deterministic_algorithms",
]


# -- precision and determinism switches ----------------------------------------------------------
def set_float32_matmul_precision(precision: str) -> None:
    """"highest" (full float32), "high" or "medium" (PyTorch may then use TF32/bfloat16 on
    GPUs). Recorded; smolgrad's backends always compute float32 matmuls in float32."""
    if not isinstance(precision, str):
        raise RuntimeError(f"set_float32_matmul_precision expects a str, but got "
                           f"{type(precision).__name__}")
    if precision not in FLOAT32_MATMUL_PRECISIONS:
        warnings.warn(f"set_float32_matmul_precision: {precision!r} is not one of 'highest', "
                      f"'high', or 'medium'; the call has no effect", UserWarning, stacklevel=2)
        return
    _matmul_flags.float32_precision = precision


def get_float32_matmul_precision() -> str:
    return _matmul_flags.float32_precision


class _DeterminismFlags:
    """What `use_deterministic_algorithms` was last told."""

    enabled = False
    warn_only = False


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded (smolgrad's ops are deterministic whatever the setting)."""
    if not isinstance(mode, bool) or not isinstance(warn_only, bool):
        raise TypeError(f"use_deterministic_algorithms: mode and warn_only must be bool, got "
                        f"{type(mode).__name__} and {type(warn_only).__name__}")
    _DeterminismFlags.enabled = mode
    _DeterminismFlags.warn_only = warn_only


def are_deterministic_algorithms_enabled() -> bool:
    return _DeterminismFlags.enabled


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _DeterminismFlags.warn_only


# -- threads ----------------------------------------------------------------------------------
def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Threads:
    """The thread counts last set (or the CPUs this process may use)."""

    intra_op = _available_cpus()
    inter_op = _available_cpus()


def _check_thread_count(function: str, count) -> int:
    if isinstance(count, bool) or not isinstance(count, int):
        raise RuntimeError(f"{function} expects an int, but got {type(count).__name__}")
    if count <= 0:
        raise RuntimeError(f"{function} expects a positive integer")
    return count


def set_num_threads(num_threads: int) -> None:
    """Threads for NumPy's BLAS from now on (via threadpoolctl when it is installed)."""
    _Threads.intra_op = _check_thread_count("set_num_threads", num_threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=num_threads, user_api="blas")  # stays in force (not a `with`)


def get_num_threads() -> int:
    return _Threads.intra_op


def set_num_interop_threads(num_threads: int) -> None:
    """Recorded: smolgrad runs one op at a time."""
    _Threads.inter_op = _check_thread_count("set_num_interop_threads", num_threads)


def get_num_interop_threads() -> int:
    return _Threads.inter_op


# -- small types --------------------------------------------------------------------------------
def is_tensor(obj) -> bool:
    """True when `obj` is a smolgrad Tensor (or a subclass, such as nn.Parameter)."""
    return isinstance(obj, Tensor)


# Floating point formats: (total bits, exponent bits, stored mantissa bits).
_FLOAT_FORMATS = {dt.float16: (16, 5, 10), dt.bfloat16: (16, 8, 7), dt.float32: (32, 8, 23),
                  dt.float64: (64, 11, 52)}


class finfo:  # noqa: N801 - PyTorch's spelling
    """Limits of a floating point dtype (default: the default dtype), from its bit layout.

    With e exponent bits and m mantissa bits: eps = 2**-m (the gap after 1.0),
    max = (2 - 2**-m) * 2**(2**(e-1) - 1), tiny = smallest_normal = 2**(2 - 2**(e-1)),
    min = -max, resolution = 10**-floor(m * log10(2)) (decimal digits kept).
    """

    def __init__(self, type: dt.dtype | None = None):  # noqa: A002 - PyTorch's name
        dtype = dt.get_default_dtype() if type is None else dt.as_dtype(type)
        if dtype not in _FLOAT_FORMATS:
            raise TypeError(f"finfo: requires a floating point dtype, got {dtype.name}; use "
                            f"iinfo for integer dtypes")
        self.bits, exponent_bits, mantissa_bits = _FLOAT_FORMATS[dtype]
        self.eps = 2.0**-mantissa_bits
        self.max = (2.0 - 2.0**-mantissa_bits) * 2.0**(2**(exponent_bits - 1) - 1)
        self.min = -self.max
        self.tiny = self.smallest_normal = 2.0**(2 - 2**(exponent_bits - 1))
        self.resolution = 10.0**-math.floor(mantissa_bits * math.log10(2))
        self.dtype = dtype.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801 - PyTorch's spelling
    """Limits of a signed integer dtype: min = -2**(bits-1), max = 2**(bits-1) - 1."""

    def __init__(self, type: dt.dtype):  # noqa: A002 - PyTorch's name
        dtype = dt.as_dtype(type)
        if dtype.is_floating_point:
            raise TypeError(f"iinfo: requires an integer dtype, got {dtype.name}; use finfo "
                            f"for floating point dtypes")
        if dtype == dt.bool_:
            raise TypeError("iinfo: bool is not supported")
        self.bits = dtype.itemsize * 8
        self.min = -(2 ** (self.bits - 1))
        self.max = 2 ** (self.bits - 1) - 1
        self.dtype = dtype.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


# -- compile ------------------------------------------------------------------------------------
def compile(model: Callable | None = None, *, fullgraph: bool = False, dynamic=None,  # noqa: A001
            backend="inductor", mode=None, options=None, disable: bool = False):
    """`torch.compile`: smolgrad's step compiler (`smolgrad/compiler.py`, docs/compile.md).
    Records a function's backend calls once per guard key and replays them after; used as
    `compile(fn)`, `compile(module)`, `@compile` or `@compile(...)`."""
    from .compiler import compile as compile_step  # the layer above: nn and optim

    return compile_step(model, fullgraph=fullgraph, dynamic=dynamic, backend=backend,
                        mode=mode, options=options, disable=disable)


# -- version ------------------------------------------------------------------------------------
def installed_version() -> str:
    """smolgrad's version as installed (`smolgrad.__version__`, looked up on first use:
    importlib.metadata costs more to import than the rest of this module)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smolgrad")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def missing_attribute(module_name: str, name: str) -> AttributeError:
    """The error for `torch.<name>` that smolgrad lacks: says so, and where to read more."""
    message = f"module {module_name!r} has no attribute {name!r}"
    if not name.startswith("__"):
        message += (f" (smolgrad does not provide torch.{name}; see docs/pytorch.md for what "
                    f"is supported)")
    return AttributeError(message)
