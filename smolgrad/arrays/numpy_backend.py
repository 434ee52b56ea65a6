"""The NumPy backend: the contract of `contract.Backend` fulfilled by NumPy (and CuPy).

`NumpyBackend` provides all 48 required kernels of the contract for a NumPy-compatible
module `xp`: the 36 whose NumPy names match are bound from the library by name
(`LIBRARY_FUNCTIONS`); the other 12 (asarray, astype, to_numpy, copy, is_array, full,
arange, argsort, qr, getitem, setitem, index_add) are methods below. Of the 48 derived
primitives it replaces those NumPy has natively, being faster or more accurate than the
derivation: 26 are bound by name (log10, expm1, clip, nonzero, take_along_axis, ...; the
rest of `LIBRARY_FUNCTIONS`) and 12 are methods (zeros, ones, empty, eye, linspace, item,
contiguous, round, erf, pad, sliding_windows, fold_windows). The others (random draws,
logsumexp, scatter_add, native/dtype_of, ...) are the contract's own.

CuPy, whose API mirrors NumPy's, reuses all of it with `xp = cupy` (cupy_backend.py); MLX
reuses most of it (mlx_backend.py). A name the library lacks is simply not bound: the
contract's derivation, or its missing-kernel stub (an error naming the op, raised only
when an op needs that kernel), stays in its place.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from .blas_threads import ThreadLimitedMatmul
from .contract import Backend, lenient_axis, window_offsets
from .heap import keep_freed_memory


class Quiet:
    """A NumPy function that computes IEEE's answers without warning: log(0) is -inf and
    log(-1) NaN, silently, as PyTorch (a causal mask is often built as log(tril(ones)))."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.fn(x)


class NumpyBackend(Backend):
    """Array primitives over a NumPy-compatible module `xp` (NumPy itself, or CuPy)."""

    name = "numpy"
    device = "cpu"

    # Kernels and natively-derived primitives taken straight from the array library, bound
    # by name in Backend.__init__ unless a subclass defines its own method of that name.
    LIBRARY_FUNCTIONS = (
        "add subtract multiply divide power maximum minimum negative abs sign exp log "
        "log10 log2 log1p expm1 sqrt sin cos tanh floor ceil equal not_equal less less_equal "
        "greater greater_equal logical_and logical_or logical_not logical_xor where "
        "isnan isinf isfinite matmul einsum reshape transpose broadcast_to flip roll "
        "concatenate stack tril triu take_along_axis sum prod max min mean argmax argmin "
        "cumsum any all clip outer square nonzero"
    ).split()
    # Reductions to bind as `LenientAxis` (for libraries stricter than NumPy about 0-d).
    LENIENT_AXIS: tuple = ()

    def __init__(self, xp=np, natives: dict | None = None):
        """`natives`: smolgrad dtype -> the library's dtype (default: NumPy's six)."""
        if natives is None:
            natives = {d: np.dtype(d.name) for d in
                       (dt.bool_, dt.int32, dt.int64, dt.float16, dt.float32, dt.float64)}
        super().__init__(natives, library=xp)
        for name in self.LENIENT_AXIS:
            if name in vars(self):  # bound from the library, not a method of the class
                setattr(self, name, LenientAxis(vars(self)[name]))
        if xp is np:  # CPU BLAS: threads only for products big enough (blas_threads.py)
            self.matmul = ThreadLimitedMatmul(np.matmul)
            keep_freed_memory()  # reuse freed array memory, no page faults (heap.py)
            for name in ("log", "log2", "log10"):
                if name in vars(self):  # bound from NumPy (not a derived method)
                    setattr(self, name, Quiet(vars(self)[name]))

    # -- required kernels NumPy spells differently -----------------------------------------
    def is_array(self, x) -> bool:
        return isinstance(x, self.xp.ndarray)

    def asarray(self, data, dtype: dt.dtype | None = None):
        """Make an array from Python data, a NumPy array or an array of this library."""
        native = None if dtype is None else self.native(dtype)
        return self.xp.asarray(data, dtype=native)

    def astype(self, x, dtype: dt.dtype):
        native = self.native(dtype)
        return x if x.dtype == native else x.astype(native)

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def copy(self, x):
        return x.copy()

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=self.native(dtype))

    def arange(self, start, stop, step, dtype):
        return self.xp.arange(start, stop, step, dtype=self.native(dtype))

    def argsort(self, x, axis=-1):
        """Indices that sort `x` along `axis`, ascending (int64; stable)."""
        return self.xp.argsort(x, axis=axis, kind="stable")

    def qr(self, x):
        """Reduced QR decomposition of a 2-D array: (q, r) with x = q @ r."""
        return self.xp.linalg.qr(x)

    def getitem(self, x, index):
        return x[index]

    def setitem(self, x, index, value):
        """Return a copy of `x` with `x[index] = value` (smolgrad never mutates shared arrays)."""
        out = x.copy()
        out[index] = value
        return out

    def index_add(self, x, index, value):
        """Return a copy of `x` with `value` added at `index`, repeated indices accumulating."""
        out = x.copy()
        self.xp.add.at(out, index, value)
        return out

    # -- derived primitives NumPy has natively ---------------------------------------------
    def item(self, x):
        return x.item()

    def contiguous(self, x):
        return self.xp.ascontiguousarray(x)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=self.native(dtype))

    def ones(self, shape, dtype):
        return self.xp.ones(shape, dtype=self.native(dtype))

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=self.native(dtype))

    def linspace(self, start, stop, steps, dtype):
        return self.xp.linspace(start, stop, steps, dtype=self.native(dtype))

    def eye(self, n, m, dtype):
        return self.xp.eye(n, m, dtype=self.native(dtype))

    def erf(self, x):
        """SciPy's erf when SciPy is installed, else the base's exact host loop."""
        try:
            from scipy.special import erf
        except ImportError:  # keeps the core free of SciPy
            return super().erf(x)
        return erf(x).astype(x.dtype, copy=False)

    def round(self, x, decimals: int = 0):
        return self.xp.round(x, decimals)

    def pad(self, x, pad_width, value=0):
        return self.xp.pad(x, pad_width, mode="constant", constant_values=value)

    def sliding_windows(self, x, window_shape, axes):
        """A read-only strided view of all windows of `window_shape` over `axes` (no copy)."""
        return self.xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axes)

    def fold_windows(self, windows, shape, stride, dilation):
        """`Backend.fold_windows` adding in place into one fresh array (no copy per offset)."""
        out = self.xp.zeros(shape, dtype=windows.dtype)
        for i, j, rows, cols in window_offsets(windows.shape, stride, dilation):
            out[..., rows, cols] += windows[..., i, j]
        return out


# ---------------------------------------------------------------------------------------
# Helpers shared by the accelerator backends (MLX, CuPy). NumPy itself needs none of them.
# ---------------------------------------------------------------------------------------


class LenientAxis:
    """A library reduction that accepts axis 0 (or -1) of a 0-d array, meaning all of it.

    NumPy allows `np.sum(np.float32(2), axis=0)`, and op code relies on it for 0-d
    tensors; MLX (and possibly CuPy) reject it. A backend lists such reductions in
    `LENIENT_AXIS`; each is bound as `LenientAxis(library_function)`."""

    __slots__ = ("reduce",)

    def __init__(self, reduce):
        self.reduce = reduce

    def __call__(self, x, axis=None, keepdims=False):
        return self.reduce(x, axis=lenient_axis(x, axis), keepdims=keepdims)


class ScalarAxisReductions:
    """NumPy's 0-d leniency for stricter libraries. Mix in before NumpyBackend."""

    LENIENT_AXIS = ("sum", "prod", "max", "min", "mean", "any", "all", "argmax", "argmin")

    def cumsum(self, x, axis=None):
        if x.ndim == 0:  # as NumPy: the cumulative sum of a 0-d array has one element
            return self.xp.reshape(x, (1,))
        return self.xp.cumsum(x, axis=axis)


def index_arrays_by_dim(shape: tuple, index: tuple, op: str | None) -> list:
    """Check an index tuple against `shape`; return its integer arrays with their axes.

    Python ints are checked here (IndexError when out of range); each array entry comes
    back as (array, size_of_its_axis, axis) so the caller can check its values on the
    device. Boolean masks must already be integer arrays. Libraries that do not check
    bounds themselves (MLX reads past the end, CuPy wraps around) call this first.
    """
    prefix = f"{op}: " if op else ""
    consuming = sum(1 for i in index if i is not None and i is not Ellipsis)
    if consuming > len(shape):
        raise IndexError(f"{prefix}too many indices for a tensor of dimension {len(shape)} "
                         f"(shape {tuple(shape)})")
    dim, arrays = 0, []
    for i in index:
        if i is Ellipsis:
            dim += len(shape) - consuming
        elif i is None:
            continue
        else:
            n = shape[dim]
            if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
                if not -n <= i < n:
                    raise IndexError(f"{prefix}index {i} is out of bounds for dimension "
                                     f"{dim} with size {n}")
            elif not isinstance(i, slice):
                arrays.append((i, n, dim))
            dim += 1
    return arrays
