"""The MLX backend: smolgrad on Apple's MLX (Apple-silicon GPU on macOS, CPU on Linux).

MLX looks like NumPy, so `MLXBackend` is `NumpyBackend` with `xp = mlx.core`: the
library functions of the same names are bound (MLX has all but `nonzero`, which comes
from the contract's derivation), and it overrides only what MLX does differently:

- **Laziness.** An MLX operation only records what to compute; the numbers appear when
  something needs them (`mx.eval`, `.item()`, conversion to NumPy). `lazy = True` tells
  the engine so: `sg.engine.evaluate` calls `eval` on the gradients after each backward,
  optimizers call it on the parameters after each step, and `item`/`to_numpy` evaluate
  by themselves. Without those points a training loop would grow one endless graph.
- **Immutability.** smolgrad never mutates an array in place; `setitem`, `index_add` and
  `scatter_add` return new arrays (`array.at[index].add(v)` accumulates repeats).
- **Indexing.** MLX has no boolean-mask indexing (the result's size would depend on the
  values) and does not check bounds (an index past the end reads garbage or crashes), so
  masks become integer indices (one evaluation) and integer indices are checked first.
- **dtypes.** MLX has bfloat16 (NumPy and CuPy do not). float64 runs on MLX's CPU device
  only: on the GPU, asking for float64 raises a clear error.
- **Randomness.** Numbers are drawn with NumPy's generator (seeded by `sg.manual_seed`)
  and converted, so one seed gives the same numbers on "cpu" and "mlx".
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from .. import dtypes as dt
from .contract import along_axis_index, lenient_axis
from .numpy_backend import NumpyBackend, ScalarAxisReductions, index_arrays_by_dim


class MLXBackend(ScalarAxisReductions, NumpyBackend):
    """Array primitives over `mlx.core`, on MLX's default device."""

    name = "mlx"
    device = "mlx"
    lazy = True

    def __init__(self):
        natives = {
            dt.bool_: mx.bool_, dt.int32: mx.int32, dt.int64: mx.int64,
            dt.float16: mx.float16, dt.bfloat16: mx.bfloat16, dt.float32: mx.float32,
        }
        if mx.default_device() != mx.gpu:  # float64 runs on MLX's CPU only
            natives[dt.float64] = mx.float64
        # binds the LIBRARY_FUNCTIONS that mlx.core has and MLXBackend does not define
        super().__init__(xp=mx, natives=natives)

    # -- dtypes and conversion ------------------------------------------------------------
    def native(self, d: dt.dtype):
        try:
            return self._to_native[d]
        except KeyError:
            if d is dt.float64:
                raise TypeError("dtype float64 is not supported on device 'mlx' (MLX's GPU "
                                "has no float64); use float32, or run MLX on its CPU with "
                                "mlx.core.set_default_device(mlx.core.cpu)") from None
            raise TypeError(f"dtype {d} is not supported on device 'mlx'") from None

    def dtype_of(self, x) -> dt.dtype:
        try:
            return self._from_native[x.dtype]
        except KeyError:
            raise TypeError(f"MLX arrays of dtype {x.dtype} are not supported by smolgrad "
                            f"(device 'mlx')") from None

    def is_array(self, x) -> bool:
        return isinstance(x, mx.array)

    def asarray(self, data, dtype: dt.dtype | None = None):
        """An MLX array from Python data, a NumPy array or an MLX array.

        Without `dtype`, NumPy's inference is kept (Python floats give float64, as on
        "cpu"); MLX's own `mx.array` would silently turn float64 data into float32.
        """
        if isinstance(data, mx.array):
            return data if dtype is None else self.astype(data, dtype)
        host = np.asarray(data)
        if dtype is None:
            dtype = _numpy_dtype(host)
        if host.size == 0:  # MLX mishandles arrays made from empty NumPy buffers
            return mx.zeros(host.shape, dtype=self.native(dtype))
        native = self.native(dtype)
        if dtype is dt.bfloat16:  # NumPy has no bfloat16: go through float32
            return mx.array(host.astype(np.float32)).astype(native)
        return mx.array(host, dtype=native)

    def to_numpy(self, x) -> np.ndarray:
        """A NumPy copy (evaluates `x`). bfloat16 comes back as float32 (NumPy has none)."""
        if x.dtype == mx.bfloat16:
            x = x.astype(mx.float32)
        return np.array(x)

    def copy(self, x):
        return mx.array(x)

    def eval(self, *arrays) -> None:
        """Compute these lazy arrays now (and everything they depend on)."""
        if arrays:
            mx.eval(*arrays)

    def full(self, shape, value, dtype):
        """An array of `shape` filled with `value`, in `dtype` (mx.full keeps a Python
        value's own kind: full((), 0, bool) would be int32)."""
        return self.astype(mx.full(shape, value, dtype=self.native(dtype)), dtype)

    def contiguous(self, x):
        return mx.contiguous(x)

    # -- library functions MLX spells differently ------------------------------------------
    # Reductions are bound as LenientAxis (axis 0 of a 0-d array, as NumPy allows);
    # nonzero, which MLX lacks, is the contract's derivation (on the host).
    def argmax(self, x, axis=None, keepdims=False):
        out = mx.argmax(x, axis=lenient_axis(x, axis), keepdims=keepdims)
        return out.astype(mx.int64)  # MLX returns uint32 indices

    def argsort(self, x, axis=-1):
        return mx.argsort(x, axis=axis).astype(mx.int64)  # MLX returns uint32 indices

    def argmin(self, x, axis=None, keepdims=False):
        out = mx.argmin(x, axis=lenient_axis(x, axis), keepdims=keepdims)
        return out.astype(mx.int64)

    def logsumexp(self, x, axis, keepdims=False):
        """log Σ exp(x) over `axis`, stable (MLX subtracts the max; a row of -inf gives -inf)."""
        return mx.logsumexp(x, axis=lenient_axis(x, axis), keepdims=keepdims)

    def matmul(self, a, b):
        """MLX multiplies floating point matrices only; integers go through an exact
        broadcast-multiply-and-sum (a[..., i, k, None] * b[..., None, k, j], summed over k)."""
        if mx.issubdtype(a.dtype, mx.floating) or mx.issubdtype(b.dtype, mx.floating):
            return mx.matmul(a, b)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out = mx.sum(mx.expand_dims(a2, -1) * mx.expand_dims(b2, -3), axis=-2)
        if a.ndim == 1:
            out = mx.squeeze(out, -2)
        if b.ndim == 1:
            out = mx.squeeze(out, -1)
        return out

    def take_along_axis(self, x, index, axis):
        _check_bounds([(index, x.shape[axis], axis)], "gather")
        return mx.take_along_axis(x, index, axis)

    def tril(self, x, k: int = 0):
        """mx.tril in x's dtype (MLX gives int32 for a bool x)."""
        return _like(mx.tril(x, k), x)

    def triu(self, x, k: int = 0):
        """mx.triu in x's dtype (MLX gives int32 for a bool x)."""
        return _like(mx.triu(x, k), x)

    def qr(self, x):
        """Reduced QR of a 2-D array. MLX runs its linear algebra on the CPU stream only."""
        return mx.linalg.qr(x, stream=mx.cpu)

    # -- math the array library spells differently ----------------------------------------
    def erf(self, x):
        return mx.erf(x)

    def round(self, x, decimals: int = 0):
        return mx.round(x, decimals)

    # -- movement and indexing (MLX arrays are immutable: every update is a new array) -----
    def getitem(self, x, index):
        return x[_checked_index(x.shape, index, None)]  # GetItem names the op

    def setitem(self, x, index, value):
        """Return a copy of `x` with `x[index] = value`."""
        out = mx.array(x)
        out[_checked_index(x.shape, index, "setitem")] = _like(value, x)
        return out

    def index_add(self, x, index, value):
        """Return `x` with `value` added at `index`, repeated indices accumulating."""
        return x.at[_checked_index(x.shape, index, "index_put")].add(_like(value, x))

    def scatter_add(self, x, axis, index, src):
        """`x` with out[..., index[i], ...] += src[i] along `axis` (PyTorch's scatter_add)."""
        _check_bounds([(index, x.shape[axis], axis)], "scatter_add")
        return x.at[along_axis_index(self, axis, index, index.shape)].add(_like(src, x))

    def sliding_windows(self, x, window_shape, axes):
        """All windows of `window_shape` over `axes`, like NumPy's sliding_window_view:
        shape (..., n - w + 1, ..., w, ...), the window axes appended at the end.

        Built with `as_strided` over the row-major layout (strides counted in elements)."""
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        window_shape = (window_shape,) if isinstance(window_shape, int) else tuple(window_shape)
        strides = [1] * x.ndim
        for d in range(x.ndim - 2, -1, -1):
            strides[d] = strides[d + 1] * x.shape[d + 1]
        out_shape = list(x.shape)
        for a, w in zip(axes, window_shape):
            if out_shape[a] < w:
                raise ValueError(f"sliding_windows: window {w} is larger than axis {a} of "
                                 f"size {x.shape[a]}")
            out_shape[a] = out_shape[a] - w + 1
        out_shape += list(window_shape)
        out_strides = strides + [strides[a] for a in axes]
        return mx.as_strided(mx.contiguous(x), out_shape, out_strides)


def _numpy_dtype(host: np.ndarray) -> dt.dtype:
    """The smolgrad dtype of a NumPy array (Python ints become int64, as in NumPy)."""
    try:
        return dt.as_dtype(host.dtype.name)
    except TypeError:
        raise TypeError(f"device 'mlx': arrays of dtype {host.dtype} are not supported") \
            from None


def _like(value, x):
    """`value` as an MLX array of `x`'s dtype (a Python number stays a number)."""
    if isinstance(value, mx.array):
        return value.astype(x.dtype) if value.dtype != x.dtype else value
    if isinstance(value, np.ndarray):
        return mx.array(value).astype(x.dtype)
    return value


def _checked_index(shape: tuple, index, op: str):
    """Make an index safe for MLX: bool masks -> integer arrays, every integer in bounds.

    NumPy raises IndexError for an index past the end; MLX would read or write outside
    the array. Checking integer arrays costs one small evaluation (a sync).
    """
    if not isinstance(index, tuple):
        index = (index,)
    resolved = []
    for i in index:
        if isinstance(i, np.ndarray):
            i = mx.array(i)
        if isinstance(i, mx.array) and i.dtype == mx.bool_:  # a mask: its True positions
            resolved.extend(mx.array(k, dtype=mx.int64) for k in np.nonzero(np.array(i)))
        elif isinstance(i, bool):
            raise IndexError(f"{_prefix(op)}a Python bool as an index is not supported on "
                             f"device 'mlx'")
        else:
            resolved.append(i)
    checks = index_arrays_by_dim(shape, tuple(resolved), op)
    _check_bounds(checks, op)
    return tuple(resolved)


def _check_bounds(checks, op: str) -> None:
    """Raise IndexError when an index array has a value outside [-n, n) (one evaluation).

    `checks` holds (index_array, size_of_its_axis, axis) triples."""
    checks = [c for c in checks if c[0].size]
    if not checks:
        return
    flags = mx.stack([mx.any((i < -n) | (i >= n)) for i, n, _ in checks]).tolist()
    for (i, n, dim), flag in zip(checks, flags):
        if flag:
            raise IndexError(f"{_prefix(op)}index out of bounds for dimension {dim} with "
                             f"size {n} (indices range from {mx.min(i).item()} to "
                             f"{mx.max(i).item()})")


def _prefix(op: str | None) -> str:
    return f"{op}: " if op else ""
