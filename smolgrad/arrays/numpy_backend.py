"""The NumPy backend: the reference implementation of the backend interface.

Every op in `smolgrad.ops` reaches arrays only through a backend object like this one, so
the same op code runs on NumPy, CuPy (whose API mirrors NumPy's; see cupy_backend.py) and
MLX. The interface is the set of public names below; `arrays/__init__.py` lists it.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as dt
from .blas_threads import ThreadLimitedMatmul


class NumpyBackend:
    """Array primitives over a NumPy-compatible module `xp` (NumPy itself, or CuPy)."""

    name = "numpy"
    device = "cpu"
    has_float64 = True
    has_bfloat16 = False

    # Elementwise math, reductions and reshaping taken straight from the array library
    # (bound once in __init__). Other backends bind the same names, overriding the ones
    # their library spells differently, so this list is part of the backend interface.
    LIBRARY_FUNCTIONS = (
        "add subtract multiply divide power maximum minimum negative abs sign exp log "
        "log10 log2 log1p expm1 sqrt sin cos tanh floor ceil equal not_equal less less_equal "
        "greater greater_equal logical_and logical_or logical_not logical_xor where "
        "isnan isinf isfinite matmul einsum reshape transpose broadcast_to flip roll "
        "concatenate stack tril triu take_along_axis sum prod max min argmax argmin "
        "cumsum any all clip outer square nonzero"
    ).split()

    def __init__(self, xp=np):
        self.xp = xp
        self._rng = np.random.default_rng()
        for fn in self.LIBRARY_FUNCTIONS:
            if not hasattr(type(self), fn):  # a subclass's own method wins
                setattr(self, fn, getattr(xp, fn))
        if xp is np:  # CPU BLAS: threads only for products big enough (blas_threads.py)
            self.matmul = ThreadLimitedMatmul(np.matmul)
        self._to_native = {
            dt.bool_: np.bool_, dt.int32: np.int32, dt.int64: np.int64,
            dt.float16: np.float16, dt.float32: np.float32, dt.float64: np.float64,
        }
        self._from_native = {np.dtype(v): k for k, v in self._to_native.items()}
        self.dtypes_by_native = self._from_native  # read by Tensor.dtype (a hot path)

    def __repr__(self) -> str:
        return f"<backend {self.name} on {self.device}>"

    # -- dtypes and conversion ------------------------------------------------------------
    def native(self, d: dt.dtype):
        try:
            return self._to_native[d]
        except KeyError:
            raise TypeError(f"dtype {d} is not supported on device '{self.device}' "
                            f"({self.name} has no {d.name})") from None

    def dtype_of(self, x) -> dt.dtype:
        try:
            return self._from_native[x.dtype]
        except KeyError:
            raise TypeError(f"arrays of dtype {x.dtype} are not supported by smolgrad") from None

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

    def eval(self, *arrays) -> None:
        """Force evaluation (a no-op for eager libraries; MLX overrides it)."""

    def item(self, x):
        return x.item()

    # -- creation -------------------------------------------------------------------------
    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=self.native(dtype))

    def ones(self, shape, dtype):
        return self.xp.ones(shape, dtype=self.native(dtype))

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=self.native(dtype))

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=self.native(dtype))

    def arange(self, start, stop, step, dtype):
        return self.xp.arange(start, stop, step, dtype=self.native(dtype))

    def linspace(self, start, stop, steps, dtype):
        return self.xp.linspace(start, stop, steps, dtype=self.native(dtype))

    def eye(self, n, m, dtype):
        return self.xp.eye(n, m, dtype=self.native(dtype))

    # -- randomness: one generator per backend, reseeded by sg.manual_seed ---------------
    def seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def uniform(self, shape, low, high, dtype):
        return self.asarray(self._rng.uniform(low, high, shape), dtype)

    def normal(self, shape, mean, std, dtype):
        return self.asarray(self._rng.normal(mean, std, shape), dtype)

    def randint(self, low, high, shape, dtype):
        return self.asarray(self._rng.integers(low, high, shape), dtype)

    def permutation(self, n):
        return self.asarray(self._rng.permutation(n), dt.int64)

    # -- math the array library spells differently ----------------------------------------
    def erf(self, x):
        return _erf(x)

    def round(self, x, decimals: int = 0):
        return self.xp.round(x, decimals)

    def argsort(self, x, axis=-1):
        """Indices that sort `x` along `axis`, ascending (int64; stable)."""
        return self.xp.argsort(x, axis=axis, kind="stable")

    def mean(self, x, axis=None, keepdims=False):
        return self.xp.mean(x, axis=axis, keepdims=keepdims)

    def logsumexp(self, x, axis, keepdims=False):
        m = self.xp.max(x, axis=axis, keepdims=True)
        m = self.xp.where(self.xp.isfinite(m), m, 0)
        s = self.xp.log(self.xp.sum(self.xp.exp(x - m), axis=axis, keepdims=True)) + m
        return s if keepdims else self.xp.squeeze(s, axis=axis)

    # -- movement and indexing ------------------------------------------------------------
    def pad(self, x, pad_width, value=0):
        return self.xp.pad(x, pad_width, mode="constant", constant_values=value)

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

    def scatter_add(self, x, axis, index, src):
        """Copy of `x` with out[..., index[i], ...] += src[i] along `axis` (as scatter_add)."""
        idx = list(self.xp.indices(index.shape, sparse=True))
        idx[axis] = index
        return self.index_add(x, tuple(idx), src)

    def sliding_windows(self, x, window_shape, axes):
        """A read-only strided view of all windows of `window_shape` over `axes` (no copy)."""
        return self.xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axes)

    def fold_windows(self, windows, shape, stride, dilation):
        """The adjoint of `sliding_windows` over the last two axes, with stride and dilation.

        `windows` has shape (..., Ho, Wo, KH, KW): window (ho, wo) holds the elements at rows
        ho·sh + i·dh and columns wo·sw + j·dw of an array of `shape` (..., H, W). Returns
        that array with every window element added back where it came from (overlapping
        windows add up). One slice-add per kernel offset (i, j): KH·KW vectorised steps.
        """
        out = self.xp.zeros(shape, dtype=windows.dtype)
        ho, wo, kh, kw = windows.shape[-4:]
        (sh, sw), (dh, dw) = stride, dilation
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
                cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
                out[..., rows, cols] += windows[..., i, j]
        return out

    def contiguous(self, x):
        return self.xp.ascontiguousarray(x)

    def qr(self, x):
        """Reduced QR decomposition of a 2-D array: (q, r) with x = q @ r."""
        return self.xp.linalg.qr(x)


# ---------------------------------------------------------------------------------------
# Helpers shared by the accelerator backends (MLX, CuPy). NumPy itself needs none of them.
# ---------------------------------------------------------------------------------------


class ScalarAxisReductions:
    """Reductions that accept axis 0 (or -1) on a 0-d array, meaning the whole array.

    NumPy allows `np.sum(np.float32(2), axis=0)`, and op code relies on it for 0-d
    tensors; MLX (and possibly CuPy) reject it. Mix this class in before NumpyBackend.
    """

    def sum(self, x, axis=None, keepdims=False):
        return self.xp.sum(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def prod(self, x, axis=None, keepdims=False):
        return self.xp.prod(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def max(self, x, axis=None, keepdims=False):
        return self.xp.max(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def min(self, x, axis=None, keepdims=False):
        return self.xp.min(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return self.xp.mean(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def any(self, x, axis=None, keepdims=False):
        return self.xp.any(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def all(self, x, axis=None, keepdims=False):
        return self.xp.all(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def argmax(self, x, axis=None, keepdims=False):
        return self.xp.argmax(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def argmin(self, x, axis=None, keepdims=False):
        return self.xp.argmin(x, axis=scalar_axis(x, axis), keepdims=keepdims)

    def logsumexp(self, x, axis, keepdims=False):
        return NumpyBackend.logsumexp(self, x, scalar_axis(x, axis), keepdims)

    def cumsum(self, x, axis=None):
        if x.ndim == 0:  # as NumPy: the cumulative sum of a 0-d array has one element
            return self.xp.reshape(x, (1,))
        return self.xp.cumsum(x, axis=axis)


def scalar_axis(x, axis):
    """NumPy's leniency: axis 0 or -1 of a 0-d array is the whole array (axis=None)."""
    if x.ndim == 0 and isinstance(axis, int) and axis in (0, -1):
        return None
    return axis


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


def scatter_index(xp, axis: int, index) -> tuple:
    """The full index of PyTorch's scatter/gather along `axis`: `index` on that axis and
    arange(n) on every other axis (shaped to broadcast), as a tuple for `index_add`."""
    full = []
    for d, n in enumerate(index.shape):
        if d == axis:
            full.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = n
            full.append(xp.reshape(xp.arange(n), tuple(shape)))
    return tuple(full)


def _erf(x):
    try:
        from scipy.special import erf
    except ImportError:  # exact but slow fallback, keeps the core free of SciPy
        return np.vectorize(math.erf, otypes=[x.dtype])(x).astype(x.dtype, copy=False)
    return erf(x).astype(x.dtype, copy=False)
