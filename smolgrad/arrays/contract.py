"""The backend contract: what an array library must provide for smolgrad to run on it.

A backend is an object whose methods take and return arrays of one library (NumPy, MLX,
CuPy, ...). Op code calls it (`ctx.backend.exp(x.array)`) and never imports a library.
`Backend` below is the whole interface, in two parts:

- **Required kernels** (marked `@kernel`; the list is `REQUIRED`): what cannot be built
  from the other primitives. A backend provides each one, by binding the library's
  function of the same name (`LIBRARY_FUNCTIONS`) or by writing a method. A kernel it does
  not provide stays a stub that raises `MissingKernel` when called, naming the backend,
  the kernel and the op that needed it: a library without, say, `einsum` still runs every
  op except the ones that use it.
- **Derived primitives** (`DERIVED`): written once here in terms of the kernels (`square`
  is multiply(x, x), `clip` is maximum then minimum, `mean` is sum / count, ...). A
  backend overrides one only where its library has a faster or more accurate native
  version (NumPy's `log10`, MLX's `logsumexp`); every library listed in
  `LIBRARY_FUNCTIONS` that has the name gets it bound automatically.

Every primitive keeps these rules: arguments are arrays of this backend or Python
scalars; results are new arrays or read-only views; **inputs are never mutated** (setitem
and index_add return a new array); broadcasting and dtype promotion follow NumPy (Python
scalars are "weak": float16 array + 2.0 stays float16); an `axis` is None (every axis), an
int or a tuple of ints, negative ones counting from the end; `dtype` arguments are
smolgrad dtypes (`smolgrad.dtypes`), never library dtypes.

Data attributes (`ATTRIBUTES`): `name` and `device` (strings), `lazy` (True when results
are only computed on `eval`, as in MLX), `has_float64`, `has_bfloat16`,
`dtypes_by_native` (library dtype -> smolgrad dtype, read by `Tensor.dtype`), `xp` (the
library module, or None) and `_seeded` (set by `sg.manual_seed`'s bookkeeping).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import sys

import numpy as np

from .. import dtypes as dt

_ARRAYS_DIR = os.path.dirname(os.path.abspath(__file__))


class MissingKernel(NotImplementedError):
    """A backend was asked for a required kernel that neither its library nor its class
    provides. Raised when the kernel is called, so only the ops that need it fail."""

    def __init__(self, backend: Backend, kernel_name: str, op: str):
        self.backend, self.kernel_name, self.op = backend, kernel_name, op
        cls = type(backend).__name__
        library = getattr(backend.xp, "__name__", "its array library")
        super().__init__(
            f"the {backend.name} backend has no '{kernel_name}' kernel (needed by {op}); "
            f"{library} has no function of that name and {cls} defines no method for it: "
            f"add {cls}.{kernel_name} (the contract is smolgrad/arrays/contract.py, see "
            f"docs/backends.md, 'Writing a backend'), or run this op on another device")


def kernel(stub):
    """Declare a required kernel: `stub` gives its name, signature and contract (the
    docstring). On a backend that provides no such kernel, calling it raises MissingKernel."""

    def missing(self, *args, **kwargs):
        raise MissingKernel(self, stub.__name__, _needing_op(stub.__name__))

    functools.update_wrapper(missing, stub)
    missing.required = True
    return missing


def _needing_op(kernel_name: str) -> str:
    """Which op asked for a missing kernel, read from the call stack (the error path only).

    The nearest Function whose forward or backward is running ("Einsum.forward"), else the
    nearest function outside smolgrad/arrays; a derived primitive in between is named too
    ("Stack.forward, through 'stack'")."""
    frame = sys._getframe(2)  # the caller of the `missing` stub
    through, outside = None, None
    while frame is not None:
        code = frame.f_code
        if os.path.dirname(os.path.abspath(code.co_filename)) == _ARRAYS_DIR:
            if code.co_name in DERIVED and code.co_name != kernel_name:
                through = code.co_name
        else:
            ctx = frame.f_locals.get("ctx")
            if code.co_name in ("forward", "backward") and hasattr(ctx, "name"):
                outside = f"{ctx.name}.{code.co_name}"
                break
            outside = outside or code.co_name
        frame = frame.f_back
    op = outside or "an op"
    return f"{op}, through '{through}'" if through else op


class Backend:
    """The interface every backend offers: required kernels plus primitives derived from them.

    `natives` maps each smolgrad dtype the library supports to the library's own dtype
    object (the one its arrays report as `.dtype`). `library`, when given, is a module
    whose functions are bound by name for every entry of `LIBRARY_FUNCTIONS` that the
    subclass does not define itself; names the module lacks keep this class's version
    (a derivation, or the stub of a required kernel)."""

    name = "abstract"
    device = "none"
    lazy = False
    xp = None
    _seeded = False  # set by smolgrad/random.py once sg.manual_seed's seed reached this backend
    LIBRARY_FUNCTIONS: tuple = ()

    def __init__(self, natives: dict, library=None):
        self.xp = library
        self._to_native = dict(natives)
        self._from_native = {v: k for k, v in self._to_native.items()}
        self.dtypes_by_native = self._from_native  # read by Tensor.dtype (a hot path)
        self.has_float64 = dt.float64 in self._to_native
        self.has_bfloat16 = dt.bfloat16 in self._to_native
        self._rng = np.random.default_rng()  # host generator of the derived random draws
        if library is not None:
            self._bind_library(library)

    def _bind_library(self, library) -> None:
        """Bind `library.<name>` for each name of LIBRARY_FUNCTIONS the library has and no
        class between this one and `Backend` defines (a subclass's own method wins)."""
        for name in self.LIBRARY_FUNCTIONS:
            function = getattr(library, name, None)
            if function is not None and not self._defines(name):
                setattr(self, name, function)

    @classmethod
    def _defines(cls, name: str) -> bool:
        """Whether a class of this backend's MRO in front of `Backend` defines `name`."""
        for klass in cls.__mro__:
            if klass is Backend:
                return False
            if name in vars(klass):
                return True
        return False

    def __repr__(self) -> str:
        return f"<backend {self.name} on {self.device}>"

    # =====================================================================================
    # Required kernels
    # =====================================================================================

    # -- conversion -----------------------------------------------------------------------
    @kernel
    def asarray(self, data, dtype: dt.dtype | None = None):
        """An array from Python data, a NumPy array or an array of this library (no copy
        when it already is one of `dtype`); without `dtype`, NumPy's inference."""

    @kernel
    def astype(self, x, dtype: dt.dtype):
        """`x` with elements of `dtype` (x itself when it already has it)."""

    @kernel
    def to_numpy(self, x) -> np.ndarray:
        """A NumPy array with x's values (bfloat16 as float32); evaluates a lazy `x`."""

    @kernel
    def copy(self, x):
        """A new array with x's values and dtype, in row-major order, sharing no memory."""

    @kernel
    def is_array(self, x) -> bool:
        """Whether `x` is an array of this library."""

    # -- creation -------------------------------------------------------------------------
    @kernel
    def full(self, shape: tuple, value, dtype: dt.dtype):
        """An array of `shape` filled with `value`."""

    @kernel
    def arange(self, start, stop, step, dtype: dt.dtype):
        """start, start + step, ... up to (excluding) stop, as a 1-d array."""

    # -- elementwise, broadcasting --------------------------------------------------------
    @kernel
    def add(self, a, b):
        """a + b."""

    @kernel
    def subtract(self, a, b):
        """a - b."""

    @kernel
    def multiply(self, a, b):
        """a * b."""

    @kernel
    def divide(self, a, b):
        """a / b, true division (integers give floating point)."""

    @kernel
    def power(self, a, b):
        """a ** b."""

    @kernel
    def maximum(self, a, b):
        """The larger of a and b; NaN if either is NaN."""

    @kernel
    def minimum(self, a, b):
        """The smaller of a and b; NaN if either is NaN."""

    @kernel
    def negative(self, x):
        """-x."""

    @kernel
    def abs(self, x):
        """|x| (abs(-0.0) is 0.0)."""

    @kernel
    def sign(self, x):
        """-1, 0 or 1 by the sign of x, in x's dtype; NaN for NaN."""

    @kernel
    def exp(self, x):
        """e ** x."""

    @kernel
    def log(self, x):
        """The natural logarithm; -inf at 0, NaN below."""

    @kernel
    def sqrt(self, x):
        """The square root; NaN below 0."""

    @kernel
    def sin(self, x):
        """sin x (radians)."""

    @kernel
    def cos(self, x):
        """cos x (radians)."""

    @kernel
    def tanh(self, x):
        """The hyperbolic tangent."""

    @kernel
    def floor(self, x):
        """The largest integer <= x, in a floating point dtype."""

    # -- comparison, logic and selection (bool results) ------------------------------------
    @kernel
    def equal(self, a, b):
        """a == b, a bool array."""

    @kernel
    def less(self, a, b):
        """a < b, a bool array."""

    @kernel
    def logical_and(self, a, b):
        """bool(a) and bool(b), elementwise."""

    @kernel
    def logical_or(self, a, b):
        """bool(a) or bool(b), elementwise."""

    @kernel
    def logical_not(self, x):
        """not bool(x), elementwise."""

    @kernel
    def where(self, condition, a, b):
        """a where condition is true, else b (all three broadcast together)."""

    # -- reductions -----------------------------------------------------------------------
    @kernel
    def sum(self, x, axis=None, keepdims: bool = False):
        """The sum over `axis` (bool and int32 sum in int64, as NumPy)."""

    @kernel
    def prod(self, x, axis=None, keepdims: bool = False):
        """The product over `axis`."""

    @kernel
    def max(self, x, axis=None, keepdims: bool = False):
        """The largest element over `axis` (NaN wins); an error for an empty axis."""

    @kernel
    def min(self, x, axis=None, keepdims: bool = False):
        """The smallest element over `axis` (NaN wins); an error for an empty axis."""

    @kernel
    def argmax(self, x, axis=None, keepdims: bool = False):
        """The int64 index of the first largest element along one axis (of the flattened
        array for axis=None); NaN counts as the largest."""

    @kernel
    def argmin(self, x, axis=None, keepdims: bool = False):
        """The int64 index of the first smallest element (NaN counts as the smallest)."""

    @kernel
    def cumsum(self, x, axis: int | None = None):
        """Running sums along `axis` (of the flattened array for None; 0-d gives shape (1,))."""

    @kernel
    def argsort(self, x, axis: int = -1):
        """int64 indices that sort x along `axis`, ascending, stable (ties keep order)."""

    # -- linear algebra -------------------------------------------------------------------
    @kernel
    def matmul(self, a, b):
        """a @ b with NumPy's rules (1-d operands, batch broadcasting); exact for integers."""

    @kernel
    def einsum(self, subscripts: str, *operands):
        """Einstein summation, as numpy.einsum."""

    @kernel
    def qr(self, x) -> tuple:
        """The reduced QR decomposition (q, r) of a 2-d array, x = q @ r."""

    # -- shape ----------------------------------------------------------------------------
    @kernel
    def reshape(self, x, shape: tuple):
        """x's elements in row-major order in `shape` (one entry may be -1); a view when
        the layout allows."""

    @kernel
    def transpose(self, x, axes: tuple | None = None):
        """x with its axes permuted (reversed when None); a view."""

    @kernel
    def broadcast_to(self, x, shape: tuple):
        """x broadcast to `shape`; a read-only view."""

    @kernel
    def concatenate(self, arrays, axis: int = 0):
        """The arrays joined along an existing axis."""

    # -- indexing -------------------------------------------------------------------------
    @kernel
    def getitem(self, x, index):
        """x[index] with NumPy's rules (ints, slices, None, Ellipsis, int and bool arrays);
        an IndexError for an out-of-bounds index."""

    @kernel
    def setitem(self, x, index, value):
        """A new array: x with x[index] = value (x itself is not changed)."""

    @kernel
    def index_add(self, x, index, value):
        """A new array: x with value added at x[index], repeated indices accumulating."""

    # =====================================================================================
    # Derived primitives: written once, in terms of the kernels
    # =====================================================================================

    # -- dtypes and conversion ------------------------------------------------------------
    def native(self, d: dt.dtype):
        """The library's dtype for smolgrad dtype `d`; a TypeError naming the device if none."""
        try:
            return self._to_native[d]
        except KeyError:
            raise TypeError(f"dtype {d} is not supported on device '{self.device}' "
                            f"({self.name} has no {d.name})") from None

    def dtype_of(self, x) -> dt.dtype:
        """The smolgrad dtype of an array of this library."""
        try:
            return self._from_native[x.dtype]
        except KeyError:
            raise TypeError(f"arrays of dtype {x.dtype} are not supported by smolgrad") from None

    def item(self, x):
        """The one element of `x` as a Python number (a sync point on accelerators)."""
        return self.to_numpy(x).item()

    def eval(self, *arrays) -> None:
        """Compute lazy arrays now; a no-op for eager libraries."""

    def contiguous(self, x):
        """x in row-major order (may be x itself when it already is)."""
        return self.copy(x)

    # -- creation -------------------------------------------------------------------------
    def zeros(self, shape: tuple, dtype: dt.dtype):
        """An array of zeros."""
        return self.full(shape, 0, dtype)

    def ones(self, shape: tuple, dtype: dt.dtype):
        """An array of ones."""
        return self.full(shape, 1, dtype)

    def empty(self, shape: tuple, dtype: dt.dtype):
        """An array whose values are not specified (here: zeros)."""
        return self.full(shape, 0, dtype)

    def eye(self, n: int, m: int | None, dtype: dt.dtype):
        """The (n, m) identity matrix: 1 where row == column."""
        m = n if m is None else m
        rows = self.reshape(self.arange(0, n, 1, dt.int64), (n, 1))
        cols = self.reshape(self.arange(0, m, 1, dt.int64), (1, m))
        return self.astype(self.equal(rows, cols), dtype)

    def linspace(self, start, stop, steps: int, dtype: dt.dtype):
        """`steps` evenly spaced numbers from start to stop, both included."""
        wide = dt.float64 if self.has_float64 else dt.float32
        step = (stop - start) / (steps - 1) if steps > 1 else 0.0
        out = self.add(self.multiply(self.arange(0, steps, 1, wide), step), start)
        if steps > 1:
            out = self.setitem(out, steps - 1, stop)  # the end point exactly
        return self.astype(out, dtype)

    # -- randomness: NumPy's generator on the host, seeded by sg.manual_seed --------------
    def seed(self, seed: int) -> None:
        """Restart this backend's generator from `seed`."""
        self._rng = np.random.default_rng(seed)

    def uniform(self, shape: tuple, low, high, dtype: dt.dtype):
        """Numbers drawn uniformly from [low, high)."""
        return self.asarray(self._rng.uniform(low, high, shape), dtype)

    def normal(self, shape: tuple, mean, std, dtype: dt.dtype):
        """Numbers drawn from a normal distribution N(mean, std²)."""
        return self.asarray(self._rng.normal(mean, std, shape), dtype)

    def randint(self, low: int, high: int, shape: tuple, dtype: dt.dtype):
        """Integers drawn uniformly from [low, high)."""
        return self.asarray(self._rng.integers(low, high, shape), dtype)

    def permutation(self, n: int):
        """0 .. n-1 in a random order (int64)."""
        return self.asarray(self._rng.permutation(n), dt.int64)

    # -- comparison and logic -------------------------------------------------------------
    def not_equal(self, a, b):
        """a != b (True where either is NaN)."""
        return self.logical_not(self.equal(a, b))

    def greater(self, a, b):
        """a > b."""
        return self.less(b, a)

    def less_equal(self, a, b):
        """a <= b."""
        return self.logical_or(self.less(a, b), self.equal(a, b))

    def greater_equal(self, a, b):
        """a >= b."""
        return self.less_equal(b, a)

    def logical_xor(self, a, b):
        """bool(a) != bool(b), elementwise."""
        return self.not_equal(self.not_equal(a, 0), self.not_equal(b, 0))

    def isnan(self, x):
        """x is NaN: the one value not equal to itself."""
        return self.not_equal(x, x)

    def isinf(self, x):
        """x is +inf or -inf."""
        return self.equal(self.abs(x), math.inf)

    def isfinite(self, x):
        """x is neither NaN nor infinite."""
        return self.logical_not(self.logical_or(self.isnan(x), self.isinf(x)))

    def any(self, x, axis=None, keepdims: bool = False):
        """Whether some element over `axis` is non-zero (False for an empty axis)."""
        return self.less(0, self.sum(self.not_equal(x, 0), axis=axis, keepdims=keepdims))

    def all(self, x, axis=None, keepdims: bool = False):
        """Whether every element over `axis` is non-zero (True for an empty axis)."""
        return self.equal(self.sum(self.equal(x, 0), axis=axis, keepdims=keepdims), 0)

    # -- elementwise math -----------------------------------------------------------------
    def square(self, x):
        """x * x."""
        return self.multiply(x, x)

    def log10(self, x):
        """log x / log 10 (a native log10 is more accurate)."""
        return self.multiply(self.log(x), 1 / math.log(10))

    def log2(self, x):
        """log x / log 2."""
        return self.multiply(self.log(x), 1 / math.log(2))

    def log1p(self, x):
        """log(1 + x) (a native log1p keeps the precision of small x)."""
        return self.log(self.add(x, 1))

    def expm1(self, x):
        """e ** x - 1 (a native expm1 keeps the precision of small x)."""
        return self.subtract(self.exp(x), 1)

    def ceil(self, x):
        """The smallest integer >= x: -floor(-x)."""
        return self.negative(self.floor(self.negative(x)))

    def clip(self, x, low, high):
        """x limited to [low, high]: min(max(x, low), high); None means no bound."""
        if low is not None:
            x = self.maximum(x, low)
        return x if high is None else self.minimum(x, high)

    def round(self, x, decimals: int = 0):
        """x rounded to `decimals` places, halves to even (as NumPy and PyTorch).

        Rounds y = x·10^decimals to an integer: floor(y), plus 1 when the remainder is
        above one half, or exactly one half and floor(y) is odd. Integers stay as they are.
        (The sign of a zero result may differ from a native round.)"""
        if not self.dtype_of(x).is_floating_point:
            return self.copy(x)
        scale = 10.0 ** decimals
        y = self.multiply(x, scale) if decimals else x
        down = self.floor(y)
        rest = self.subtract(y, down)
        odd = self.equal(self.subtract(down, self.multiply(self.floor(self.multiply(down, 0.5)),
                                                           2)), 1)
        up = self.logical_or(self.less(0.5, rest),
                             self.logical_and(self.equal(rest, 0.5), odd))
        out = self.where(up, self.add(down, 1), down)
        return self.divide(out, scale) if decimals else out

    def erf(self, x):
        """The error function 2/√π ∫₀ˣ e^(-t²) dt, computed on the host with Python's
        math.erf (exact; slow: a native erf is much faster)."""
        host = self.to_numpy(x)
        values = np.vectorize(math.erf, otypes=[np.float64])(host)
        return self.asarray(values, self.dtype_of(x))

    def outer(self, a, b):
        """The outer product of the flattened a and b: out[i, j] = a[i] * b[j]."""
        return self.multiply(self.reshape(a, (-1, 1)), self.reshape(b, (1, -1)))

    # -- reductions -----------------------------------------------------------------------
    def mean(self, x, axis=None, keepdims: bool = False):
        """sum / count over `axis` (NaN for an empty axis); integers give floating point."""
        total = self.sum(x, axis=axis, keepdims=keepdims)
        out_size = math.prod(total.shape)
        count = math.prod(x.shape) // out_size if out_size else 1
        return self.divide(total, count)

    def logsumexp(self, x, axis, keepdims: bool = False):
        """log Σ exp(x) over `axis`, stable: the max m is taken out first,
        log Σ exp(x - m) + m (a finite m only: a row of -inf gives -inf, not NaN)."""
        axis = lenient_axis(x, axis)
        m = self.max(x, axis=axis, keepdims=True)
        m = self.where(self.isfinite(m), m, 0)
        s = self.log(self.sum(self.exp(self.subtract(x, m)), axis=axis, keepdims=True))
        s = self.add(s, m)
        return s if keepdims else self.reshape(s, reduced_shape(x.shape, axis))

    # -- shape and movement ---------------------------------------------------------------
    def stack(self, arrays, axis: int = 0):
        """The arrays (all of one shape) joined along a new axis."""
        ndim = arrays[0].ndim + 1
        axis = axis % ndim
        expanded = [self.reshape(a, a.shape[:axis] + (1,) + a.shape[axis:]) for a in arrays]
        return self.concatenate(expanded, axis=axis)

    def flip(self, x, axis=None):
        """x reversed along `axis` (every axis for None)."""
        axes = normalize_axes(axis, x.ndim)
        index = tuple(slice(None, None, -1) if d in axes else slice(None)
                      for d in range(x.ndim))
        return self.getitem(x, index)

    def roll(self, x, shift, axis=None):
        """x shifted cyclically by `shift` along `axis` (the flattened x for None); shift
        and axis may be tuples of one length."""
        if axis is None:
            return self.reshape(self.roll(self.reshape(x, (-1,)), shift, 0), x.shape)
        shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
        axes = axis if isinstance(axis, (tuple, list)) else (axis,)
        for s, a in zip(shifts, axes):
            a = a % x.ndim
            n = x.shape[a]
            k = s % n if n else 0
            if k:
                head = (slice(None),) * a + (slice(n - k, None),)
                tail = (slice(None),) * a + (slice(0, n - k),)
                x = self.concatenate([self.getitem(x, head), self.getitem(x, tail)], axis=a)
        return x

    def tril(self, x, k: int = 0):
        """The lower triangle of the last two axes: x where column - row <= k, else 0
        (in x's dtype)."""
        return self.where(self._band(x, k), x, self.zeros((), self.dtype_of(x)))

    def triu(self, x, k: int = 0):
        """The upper triangle of the last two axes: x where column - row >= k, else 0
        (in x's dtype)."""
        return self.where(self._band(x, k - 1), self.zeros((), self.dtype_of(x)), x)

    def _band(self, x, k: int):
        """(rows, cols) mask of the last two axes of x: column - row <= k."""
        n, m = x.shape[-2], x.shape[-1]
        rows = self.reshape(self.arange(0, n, 1, dt.int64), (n, 1))
        cols = self.reshape(self.arange(0, m, 1, dt.int64), (1, m))
        return self.less_equal(self.subtract(cols, rows), k)

    def pad(self, x, pad_width, value=0):
        """x surrounded by `value`: pad_width holds one (before, after) pair per axis."""
        shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pad_width))
        inside = tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, pad_width))
        return self.setitem(self.full(shape, value, self.dtype_of(x)), inside, x)

    # -- indexing -------------------------------------------------------------------------
    def take_along_axis(self, x, index, axis: int):
        """out[..., i, ...] = x[..., index[..., i, ...], ...] along `axis` (NumPy's rule:
        index has x's number of axes; the others broadcast)."""
        return self.getitem(x, along_axis_index(self, axis % x.ndim, index, x.shape))

    def scatter_add(self, x, axis: int, index, src):
        """A new array: x with out[..., index[i], ...] += src[i] along `axis` (PyTorch's
        scatter_add: index and src of one shape, repeats accumulating)."""
        return self.index_add(x, along_axis_index(self, axis, index, index.shape), src)

    def nonzero(self, x) -> tuple:
        """The indices of the non-zero elements, one int64 array per axis, in row-major
        order (found on the host: the result's size depends on the values)."""
        return tuple(self.asarray(i, dt.int64) for i in np.nonzero(self.to_numpy(x)))

    def sliding_windows(self, x, window_shape: tuple, axes: tuple):
        """Every window of `window_shape` over `axes`, as NumPy's sliding_window_view:
        shape (..., n - w + 1, ..., w, ...), the window axes at the end (here a copy: one
        slice per window offset, stacked)."""
        axes = tuple(a % x.ndim for a in axes)
        shape = list(x.shape)
        for a, w in zip(axes, window_shape):
            if shape[a] < w:
                raise ValueError(f"sliding_windows: window {w} is larger than axis {a} of "
                                 f"size {x.shape[a]}")
            shape[a] -= w - 1
        pieces = []
        for offset in itertools.product(*(range(w) for w in window_shape)):
            index = [slice(None)] * x.ndim
            for a, o in zip(axes, offset):
                index[a] = slice(o, o + shape[a])
            pieces.append(self.reshape(self.getitem(x, tuple(index)), tuple(shape) + (1,)))
        stacked = self.concatenate(pieces, axis=-1)  # offsets in row-major order
        return self.reshape(stacked, tuple(shape) + tuple(window_shape))

    def fold_windows(self, windows, shape: tuple, stride: tuple, dilation: tuple):
        """The adjoint of `sliding_windows` over the last two axes, with stride and dilation.

        `windows` has shape (..., Ho, Wo, KH, KW): window (ho, wo) holds the elements at rows
        ho·sh + i·dh and columns wo·sw + j·dw of an array of `shape` (..., H, W). Returns
        that array with every window element added back where it came from (overlapping
        windows add up). One strided add per kernel offset (i, j): KH·KW vectorised steps.
        """
        out = self.zeros(shape, self.dtype_of(windows))
        for i, j, rows, cols in window_offsets(windows.shape, stride, dilation):
            out = self.index_add(out, (Ellipsis, rows, cols),
                                 self.getitem(windows, (Ellipsis, i, j)))
        return out


REQUIRED: tuple = tuple(n for n, f in vars(Backend).items() if getattr(f, "required", False))
DERIVED: tuple = tuple(n for n, f in vars(Backend).items()
                       if callable(f) and not n.startswith("_") and n not in REQUIRED)
ATTRIBUTES: tuple = ("name", "device", "lazy", "has_float64", "has_bfloat16",
                     "dtypes_by_native", "xp", "_seeded", "_rng")


# ---------------------------------------------------------------------------------------
# Axis and index helpers, shared by the backends
# ---------------------------------------------------------------------------------------


def lenient_axis(x, axis):
    """NumPy's leniency: axis 0 or -1 of a 0-d array is the whole array (axis=None)."""
    if x.ndim == 0 and isinstance(axis, int) and axis in (0, -1):
        return None
    return axis


def normalize_axes(axis, ndim: int) -> tuple:
    """`axis` (None, an int or a tuple) as a tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim for a in axis)


def reduced_shape(shape: tuple, axis) -> tuple:
    """The shape left after reducing `axis` without keepdims."""
    axes = normalize_axes(axis, len(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def window_offsets(windows_shape: tuple, stride: tuple, dilation: tuple):
    """For windows of shape (..., Ho, Wo, KH, KW): each kernel offset (i, j) with the rows
    and columns (slices) of the folded array that the windows' element (i, j) came from."""
    ho, wo, kh, kw = windows_shape[-4:]
    (sh, sw), (dh, dw) = stride, dilation
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
            yield i, j, rows, cols


def along_axis_index(backend: Backend, axis: int, index, shape: tuple) -> tuple:
    """The full advanced index of gather/scatter along `axis`: `index` on that axis and
    arange(shape[d]) on every other axis d (shaped to broadcast against index)."""
    full = []
    for d, n in enumerate(shape):
        if d == axis:
            full.append(index)
        else:
            at = [1] * len(shape)
            at[d] = n
            full.append(backend.reshape(backend.arange(0, n, 1, dt.int64), tuple(at)))
    return tuple(full)
