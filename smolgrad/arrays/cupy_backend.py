"""The CuPy backend: smolgrad on NVIDIA GPUs.

CuPy mirrors NumPy's API, so `CupyBackend` is `NumpyBackend` with `xp = cupy` plus a few
overrides, for what CuPy spells differently or does not check:

- `to_numpy` copies to the host (`cupy.asnumpy`); `erf` comes from cupyx.scipy.special.
- Integer-array indices are bounds-checked first: CuPy would silently wrap an index
  that is past the end, where NumPy and PyTorch raise IndexError.
- `index_add` uses `cupyx.scatter_add` (CUDA's atomicAdd: int32, float16, float32,
  float64); other dtypes (int64, bool) take a slower, exact round trip through the host.
- Randomness uses CuPy's own generator on the GPU (`cupy.random.RandomState`), seeded by
  `sg.manual_seed`: a seed is reproducible on "cuda", but draws different numbers from
  "cpu" and "mlx" (which share NumPy's generator). Drawing on the host and copying would
  make every dropout mask cross the PCIe bus.

CuPy runs kernels asynchronously on a CUDA stream; Python only waits where a value must
reach the host (the *sync points*): `.item()`, `.numpy()`, `.tolist()`, `repr`, moving
a tensor to another device, `nonzero` and boolean-mask indexing (the result's size
depends on the values), and the bounds check of integer-array indices.

CuPy is imported only when device "cuda" is first used; without CuPy or without a GPU,
asking for "cuda" raises a RuntimeError that says what to install, and
`sg.is_available("cuda")` is False.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from .contract import along_axis_index
from .numpy_backend import NumpyBackend, ScalarAxisReductions, index_arrays_by_dim

NEEDS = ("device 'cuda' needs cupy (pip install cupy-cuda12x, or cupy-cuda11x for CUDA 11) "
         "and an NVIDIA GPU")

# dtypes CUDA's atomicAdd (behind cupyx.scatter_add) supports
_ATOMIC_ADD_DTYPES = ("int32", "float16", "float32", "float64")


def _import_cupy():
    """(cupy, cupyx, cupyx.scipy.special), or a RuntimeError saying what is missing."""
    try:
        import cupy
        import cupyx
        import cupyx.scipy.special as special
    except Exception as e:  # ImportError, or CUDA libraries that fail to load
        raise RuntimeError(f"{NEEDS}; importing cupy failed: {e}") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, or no device
        raise RuntimeError(f"{NEEDS}; CUDA found no usable GPU: {e}") from None
    if count == 0:
        raise RuntimeError(f"{NEEDS}; CUDA found no GPU")
    return cupy, cupyx, special


class CupyBackend(ScalarAxisReductions, NumpyBackend):
    """Array primitives over CuPy, on the current CUDA device."""

    name = "cupy"
    device = "cuda"

    def __init__(self):
        cupy, cupyx, special = _import_cupy()
        # binds the LIBRARY_FUNCTIONS that CuPy has and CupyBackend does not define; a
        # function an old CuPy lacks fails only the ops that need it (MissingKernel)
        super().__init__(xp=cupy)
        self._cupyx = cupyx
        self._special = special
        self._rng = cupy.random.RandomState()

    # -- conversion (each of these is a sync point) ---------------------------------------
    def to_numpy(self, x) -> np.ndarray:
        return self.xp.asnumpy(x)

    # -- randomness on the GPU -------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self._rng = self.xp.random.RandomState(seed)

    def _float_draw(self, dtype: dt.dtype):
        """The dtype to draw in: CuPy draws float32 or float64; float16 is cast after."""
        return np.float64 if dtype is dt.float64 else np.float32

    def uniform(self, shape, low, high, dtype):
        out = self._rng.uniform(low, high, shape, dtype=self._float_draw(dtype))
        return self.astype(out, dtype)

    def normal(self, shape, mean, std, dtype):
        out = self._rng.normal(mean, std, shape, dtype=self._float_draw(dtype))
        return self.astype(out, dtype)

    def randint(self, low, high, shape, dtype):
        return self.astype(self._rng.randint(low, high, shape, dtype=np.int64), dtype)

    def permutation(self, n):
        return self.astype(self._rng.permutation(n), dt.int64)

    # -- math CuPy keeps elsewhere ---------------------------------------------------------
    def erf(self, x):
        if x.dtype == np.float16:  # compute in float32, return float16
            return self._special.erf(x.astype(np.float32)).astype(np.float16)
        return self._special.erf(x)

    # -- indexing (bounds-checked: CuPy wraps out-of-range indices) -----------------------
    def getitem(self, x, index):
        return x[self._checked(x.shape, index, None)]  # GetItem names the op

    def setitem(self, x, index, value):
        """Return a copy of `x` with `x[index] = value`."""
        out = x.copy()
        out[self._checked(x.shape, index, "setitem")] = value
        return out

    def index_add(self, x, index, value):
        """Return a copy of `x` with `value` added at `index`, repeated indices accumulating.

        cupyx.scatter_add accumulates with atomicAdd, which CUDA has for int32, float16,
        float32 and float64; for other dtypes the sum is done on the host (exact, slow)."""
        index = self._checked(x.shape, index, "index_put")
        if x.dtype.name not in _ATOMIC_ADD_DTYPES:
            host = self.to_numpy(x).copy()
            host_index = tuple(self.to_numpy(i) if self.is_array(i) else i for i in index)
            host_value = self.to_numpy(value) if self.is_array(value) else value
            np.add.at(host, host_index, host_value)
            return self.xp.asarray(host)
        out = x.copy()
        if self.is_array(value) and value.dtype != x.dtype:
            value = value.astype(x.dtype)
        self._cupyx.scatter_add(out, index, value)
        return out

    def scatter_add(self, x, axis, index, src):
        """`x` with out[..., index[i], ...] += src[i] along `axis` (PyTorch's scatter_add)."""
        self._check_bounds([(index, x.shape[axis], axis)], "scatter_add")
        return self.index_add(x, along_axis_index(self, axis, index, index.shape), src)

    def take_along_axis(self, x, index, axis):
        self._check_bounds([(index, x.shape[axis], axis)], "gather")
        return self.xp.take_along_axis(x, index, axis)

    def sliding_windows(self, x, window_shape, axes):
        """A read-only strided view of all windows of `window_shape` over `axes` (no copy),
        shaped as NumPy's sliding_window_view (window axes appended at the end)."""
        tricks = self.xp.lib.stride_tricks
        if hasattr(tricks, "sliding_window_view"):
            return tricks.sliding_window_view(x, window_shape, axis=axes)
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        window_shape = (window_shape,) if isinstance(window_shape, int) else tuple(window_shape)
        shape = list(x.shape)
        for a, w in zip(axes, window_shape):
            shape[a] -= w - 1
        strides = tuple(x.strides) + tuple(x.strides[a] for a in axes)  # in bytes
        return tricks.as_strided(x, tuple(shape) + window_shape, strides)

    # -- helpers ---------------------------------------------------------------------------
    def _checked(self, shape: tuple, index, op: str | None) -> tuple:
        """The index as a tuple, with every integer (Python or array) within bounds."""
        if not isinstance(index, tuple):
            index = (index,)
        index = tuple(self.xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)
        arrays = [(i, n, d) for i, n, d in index_arrays_by_dim(shape, _count_masks(index), op)
                  if self.is_array(i) and i.dtype.kind in "iu"]
        self._check_bounds(arrays, op)
        return index

    def _check_bounds(self, checks, op: str | None) -> None:
        """IndexError when an index array has values outside [-n, n): one sync for all."""
        checks = [c for c in checks if c[0].size]
        if not checks:
            return
        xp = self.xp
        flags = xp.asnumpy(xp.stack([xp.any((i < -n) | (i >= n)) for i, n, _ in checks]))
        for (i, n, dim), flag in zip(checks, flags):
            if flag:
                prefix = f"{op}: " if op else ""
                raise IndexError(f"{prefix}index out of bounds for dimension {dim} with size "
                                 f"{n} (indices range from {int(i.min())} to {int(i.max())})")


def _count_masks(index: tuple) -> tuple:
    """The index with each k-dimensional boolean mask standing for k axes (as NumPy reads
    it), so that `index_arrays_by_dim` assigns the right axis to the arrays after it."""
    out = []
    for i in index:
        if getattr(i, "dtype", None) is not None and i.dtype.kind == "b":
            out.extend([slice(None)] * i.ndim)
        else:
            out.append(i)
    return tuple(out)
