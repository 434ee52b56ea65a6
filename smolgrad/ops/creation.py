"""Factories: tensor, zeros, ones, full, arange, linspace, eye, rand, randn, randint, ...

Every factory takes `dtype=`, `device=` and `requires_grad=` keywords, and sizes as
varargs or one tuple, as in PyTorch. Also here: the `Tensor.new_*` methods (new_zeros,
new_ones, new_full, new_empty, new_tensor) and PyTorch's legacy constructors
(`sg.FloatTensor`, `sg.LongTensor`, ...).
"""

from __future__ import annotations

import builtins
import math

from .. import dtypes as dt
from ..arrays import get_backend
from ..engine import Tensor, register
from ..random import Generator, default_generator
from ..random import manual_seed as seed_default_generator
from .common import shape_arg
from .construction import infer_dtype


def _finish(data, backend, requires_grad: bool) -> Tensor:
    t = Tensor._make(data, backend)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _size(size: tuple, kw: dict, op: str) -> tuple:
    """The shape from varargs, one tuple, or PyTorch's `size=` keyword."""
    if "size" in kw:
        if size:
            raise TypeError(f"{op}: give the size either positionally or as size=, not both")
        size = (kw.pop("size"),)
    if kw:
        raise TypeError(f"{op}() got an unexpected keyword argument '{next(iter(kw))}'")
    return shape_arg(size, op, nonnegative=True)


def _dtype(dtype, default=None):
    return dt.as_dtype(dtype) if dtype is not None else (default or dt.get_default_dtype())


@register(function=True)
def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor from data, inferring the dtype like torch.tensor."""
    if data is None or isinstance(data, (str, bytes)):
        raise TypeError(f"tensor: could not infer dtype of {type(data).__name__}; pass "
                        f"numbers, nested lists of numbers, an array or a Tensor")
    dtype = dt.as_dtype(dtype) if dtype is not None else infer_dtype(data)
    if device is None and isinstance(data, Tensor):
        device = data.device
    try:
        t = Tensor(data, dtype=dtype, device=device)
    except ValueError as e:
        if "inhomogeneous" in str(e) or "sequence" in str(e):
            raise ValueError(f"tensor: the nested lists have uneven lengths (a ragged array); "
                             f"every row must have the same length ({e})") from None
        raise
    except (TypeError, RuntimeError) as e:  # e.g. objects that are not numbers
        raise type(e)(f"tensor: could not convert the data to {dtype.name} on device "
                      f"'{device or 'default'}': {e}") from None
    return t.requires_grad_(True) if requires_grad else t


@register(function=True)
def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return tensor(data, dtype=dtype, device=device)


@register(function=True)
def from_numpy(array) -> Tensor:
    """A CPU tensor with the array's values and dtype (any strides, any supported dtype)."""
    if not hasattr(array, "__array_interface__") or not hasattr(array, "dtype"):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}; "
                        f"use sg.tensor(data) for lists and numbers")
    backend = get_backend("cpu")
    dtype = dt.as_dtype(array.dtype.name)  # the name ignores byte order ('>f4' -> float32)
    data = backend.asarray(backend.contiguous(array), dtype)
    if tuple(data.shape) != tuple(array.shape):  # contiguous() makes a 0-d array 1-d
        data = backend.reshape(data, tuple(array.shape))
    return Tensor._make(data, backend)


@register(function=True)
def zeros(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    b = get_backend(device)
    return _finish(b.zeros(_size(size, kw, "zeros"), _dtype(dtype)), b, requires_grad)


@register(function=True)
def ones(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    b = get_backend(device)
    return _finish(b.ones(_size(size, kw, "ones"), _dtype(dtype)), b, requires_grad)


@register(function=True)
def empty(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    b = get_backend(device)
    return _finish(b.zeros(_size(size, kw, "empty"), _dtype(dtype)), b, requires_grad)


@register(function=True)
def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if not isinstance(fill_value, (builtins.bool, builtins.int, builtins.float)):
        if isinstance(fill_value, Tensor) and fill_value.numel() == 1:
            fill_value = fill_value.item()
        else:
            raise TypeError(f"full: fill_value must be a number or a bool, got "
                            f"{type(fill_value).__name__}")
    if dtype is None:
        dtype = infer_dtype(fill_value)
    b = get_backend(device)
    shape = shape_arg((size,), "full", nonnegative=True)
    dtype = _dtype(dtype)
    # the cast makes sure of the dtype: MLX's full keeps a Python value's own kind
    # (full(3, dtype=bool) gives int32 there)
    return _finish(b.astype(b.full(shape, fill_value, dtype), dtype), b, requires_grad)


def _like(input, dtype, device):
    return (dt.as_dtype(dtype) if dtype is not None else input.dtype,
            device if device is not None else input.device)


@register(function=True)
def zeros_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return zeros(input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


@register(function=True)
def ones_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return ones(input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


@register(function=True)
def empty_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros_like(input, dtype=dtype, device=device, requires_grad=requires_grad)


@register(function=True)
def full_like(input, fill_value, dtype=None, device=None,
              requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return full(input.shape, fill_value, dtype=dtype, device=device,
                requires_grad=requires_grad)


@register(function=True)
def arange(start=0, end=None, step=1, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """[start, end) in steps; int64 for integer arguments, the default float otherwise."""
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    if dtype is None:
        is_int = all(isinstance(v, builtins.int) for v in (start, end, step))
        dtype = dt.int64 if is_int else dt.get_default_dtype()
    b = get_backend(device)
    n = max(math.ceil((end - start) / step), 0)
    data = b.add(b.multiply(b.arange(0, n, 1, dt.float64 if b.has_float64 else dt.float32),
                            step), start)
    return _finish(b.astype(data, dt.as_dtype(dtype)), b, requires_grad)


@register(function=True)
def linspace(start, end, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    b = get_backend(device)
    return _finish(b.linspace(start, end, steps, _dtype(dtype)), b, requires_grad)


@register(function=True)
def eye(n: int, m: int | None = None, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    b = get_backend(device)
    return _finish(b.eye(n, n if m is None else m, _dtype(dtype)), b, requires_grad)


@register(function=True)
def manual_seed(seed: int) -> Generator:
    """Seed every backend's random stream (and those loaded later); returns
    `sg.default_generator`, as torch.manual_seed does (smolgrad/random.py)."""
    return seed_default_generator(seed)


def _check_float(op: str, dtype) -> None:
    if not dtype.is_floating_point:
        raise TypeError(f"{op}: draws floating point numbers, got dtype={dtype.name}; use "
                        f"randint for integers")


def _rng_backend(device):
    """The backend to draw on, its stream seeded by `manual_seed` (see smolgrad/random.py)."""
    return default_generator.seeded_backend(device)


def _from_generator(generator, b, kind: str, shape, dtype, low=0, high=1):
    """Draw with a user's `sg.Generator` (NumPy's PCG64 on the host), then move to `b`."""
    rng = getattr(generator, "_rng", None)
    if rng is None:
        raise TypeError(f"{kind}: generator must be an sg.Generator, got "
                        f"{type(generator).__name__}")
    if kind == "rand":
        values = rng.uniform(0.0, 1.0, shape)
    elif kind == "randn":
        values = rng.standard_normal(shape)
    elif kind == "randint":
        values = rng.integers(low, high, shape)
    else:  # randperm
        values = rng.permutation(high)
    return b.asarray(values, dtype)


@register(function=True)
def rand(*size, dtype=None, device=None, requires_grad: bool = False,
         generator=None, **kw) -> Tensor:
    """Uniform on [0, 1)."""
    b = _rng_backend(device)
    shape, dtype = _size(size, kw, "rand"), _dtype(dtype)
    _check_float("rand", dtype)
    data = (b.uniform(shape, 0.0, 1.0, dtype) if generator is None else
            _from_generator(generator, b, "rand", shape, dtype))
    return _finish(data, b, requires_grad)


@register(function=True)
def randn(*size, dtype=None, device=None, requires_grad: bool = False,
          generator=None, **kw) -> Tensor:
    """Standard normal."""
    b = _rng_backend(device)
    shape, dtype = _size(size, kw, "randn"), _dtype(dtype)
    _check_float("randn", dtype)
    data = (b.normal(shape, 0.0, 1.0, dtype) if generator is None else
            _from_generator(generator, b, "randn", shape, dtype))
    return _finish(data, b, requires_grad)


@register(function=True)
def randint(low, high=None, size=(), dtype=None, device=None, generator=None,
            requires_grad: bool = False) -> Tensor:
    """Integers in [low, high): `randint(low, high, size)` or `randint(high, size)`."""
    if isinstance(high, (tuple, list)) and size == ():  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"randint: expects low < high, got low={low}, high={high}")
    b = _rng_backend(device)
    shape, dtype = tuple(size), _dtype(dtype, dt.int64)
    data = (b.randint(low, high, shape, dtype) if generator is None else
            _from_generator(generator, b, "randint", shape, dtype, low, high))
    return _finish(data, b, requires_grad)


@register(function=True)
def randperm(n: int, dtype=None, device=None, generator=None) -> Tensor:
    """A random permutation of 0 .. n-1."""
    b = _rng_backend(device)
    dtype = _dtype(dtype, dt.int64)
    data = (b.astype(b.permutation(n), dtype) if generator is None else
            _from_generator(generator, b, "randperm", (n,), dtype, high=n))
    return _finish(data, b, False)


@register(function=True)
def rand_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return rand(input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


@register(function=True)
def randn_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return randn(input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


# ---------------------------------------------------------------------------------------
# Tensor.new_*: factories whose dtype and device default to an existing tensor's
# ---------------------------------------------------------------------------------------


def _new(factory, op: str, self: Tensor, size: tuple, kw: dict, dtype, device,
         requires_grad: bool) -> Tensor:
    """factory(size) with self's dtype and device unless `dtype=` / `device=` are given."""
    if not size and "size" not in kw:
        raise TypeError(f"{op}() missing 1 required positional argument: 'size'")
    dtype, device = _like(self, dtype, device)
    return factory(_size(size, kw, op), dtype=dtype, device=device,
                   requires_grad=requires_grad)


@register("new_zeros")
def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False,
              **kw) -> Tensor:
    """zeros(size) with self's dtype and device unless `dtype=` / `device=` say otherwise."""
    return _new(zeros, "new_zeros", self, size, kw, dtype, device, requires_grad)


@register("new_ones")
def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False,
             **kw) -> Tensor:
    """ones(size) with self's dtype and device unless `dtype=` / `device=` say otherwise."""
    return _new(ones, "new_ones", self, size, kw, dtype, device, requires_grad)


@register("new_empty")
def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False,
              **kw) -> Tensor:
    """An uninitialised tensor of `size` in PyTorch; zeros here (like sg.empty)."""
    return _new(empty, "new_empty", self, size, kw, dtype, device, requires_grad)


@register("new_full")
def new_full(self, size, fill_value, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """full(size, fill_value) in self's dtype (not the fill value's) and on self's device:
    `int_tensor.new_full((2,), 3.5)` is [3, 3], as in PyTorch."""
    dtype, device = _like(self, dtype, device)
    return full(size, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


@register("new_tensor")
def new_tensor(self, data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor (a copy, not recorded) of `data` in self's dtype and on self's device
    unless given: the dtype is not inferred from the data (`x.new_tensor([1, 2])` of a
    float tensor is float)."""
    dtype, device = _like(self, dtype, device)
    return tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


# ---------------------------------------------------------------------------------------
# Legacy constructors: sg.FloatTensor, sg.LongTensor, ... (torch.FloatTensor and friends)
# ---------------------------------------------------------------------------------------

# PyTorch's legacy type names by dtype name; `Tensor.type()` returns them
LEGACY_NAMES = {
    "float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
    "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
    "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor",
}


class LegacyTensorType:
    """One of PyTorch's legacy tensor types (`sg.FloatTensor`, `sg.LongTensor`, ...): a
    dtype on a device, usable as a constructor, in `isinstance` and in `Tensor.type(...)`.

        sg.FloatTensor(2, 3)       a (2, 3) float32 tensor (zeros; PyTorch leaves it
                                   uninitialised)
        sg.LongTensor([1, 2])      the data as int64 (floats truncate toward zero)
        sg.FloatTensor()           an empty (0,) tensor
        isinstance(x, sg.FloatTensor)   x is a float32 tensor on this type's device

    A tuple is data, as in PyTorch (`FloatTensor((2, 3))` is [2., 3.]); sizes come as
    separate ints. A type whose dtype smolgrad lacks (uint8, int8, int16) raises a clear
    TypeError when used as a constructor or in `type(...)`.
    """

    def __init__(self, dtype_name: str, device: str = "cpu"):
        self.dtype_name = dtype_name
        self.device = device
        self.is_cuda = device == "cuda"
        self.__name__ = LEGACY_NAMES[dtype_name]

    @property
    def dtype(self) -> dt.dtype:
        d = dt.ALL.get(self.dtype_name)
        if d is None:
            raise TypeError(f"{self.__name__}: smolgrad has no {self.dtype_name} dtype; "
                            f"use one of {', '.join(sorted(dt.ALL))}")
        return d

    def __call__(self, *args, device=None) -> Tensor:
        dtype, op = self.dtype, self.__name__
        if device is not None and get_backend(device).device != self.device:
            raise RuntimeError(f"{op}: a legacy constructor makes tensors on '{self.device}' "
                               f"only, got device={device!r}; use sg.tensor(data, "
                               f"device=...) instead")
        if not args:
            return zeros(0, dtype=dtype, device=self.device)
        if all(_is_size(a) for a in args):
            return zeros(shape_arg(args, op, nonnegative=True), dtype=dtype,
                         device=self.device)
        if len(args) > 1:
            raise TypeError(f"{op}(): expected sizes (ints) or one sequence of data, got "
                            f"{args!r}")
        data = args[0]
        if isinstance(data, Tensor):
            if data.dtype is not dtype or data.device != self.device:
                raise TypeError(f"{op}(): expected a {dtype.name} tensor on '{self.device}', "
                                f"got {data.dtype.name} on '{data.device}'; convert it with "
                                f".to({dtype.name})")
            return data  # PyTorch returns the same storage
        if not hasattr(data, "__len__"):
            raise TypeError(f"{op}(): data must be a sequence (got "
                            f"{builtins.type(data).__name__})")
        return tensor(data, dtype=dtype, device=self.device)

    def __instancecheck__(self, obj) -> bool:
        return (isinstance(obj, Tensor) and obj.dtype.name == self.dtype_name
                and obj.device.type == self.device)

    def __repr__(self) -> str:
        return f"smolgrad.{self.__name__}"


def _is_size(value) -> bool:
    return (hasattr(value, "__index__") and not isinstance(value, (builtins.bool, Tensor))
            and not hasattr(value, "__len__"))


def legacy_type(name: str) -> LegacyTensorType:
    """The legacy type named like PyTorch's `Tensor.type()` strings: 'torch.LongTensor',
    'torch.cuda.FloatTensor', 'torch.mlx.HalfTensor' (smolgrad's MLX device)."""
    parts = name.split(".") if isinstance(name, str) else []
    by_name = {v: k for k, v in LEGACY_NAMES.items()}
    devices = {("torch",): "cpu", ("torch", "cuda"): "cuda", ("torch", "mlx"): "mlx"}
    if len(parts) < 2 or tuple(parts[:-1]) not in devices or parts[-1] not in by_name:
        raise ValueError(f"invalid type: {name!r}; expected a name like 'torch.FloatTensor' "
                         f"or 'torch.cuda.LongTensor'")
    return LegacyTensorType(by_name[parts[-1]], devices[tuple(parts[:-1])])


def legacy_type_name(t: Tensor) -> str:
    """PyTorch's type string of a tensor: 'torch.FloatTensor', 'torch.cuda.LongTensor', or
    for the MLX device 'torch.mlx.FloatTensor' (PyTorch has no MLX; its MPS tensors read
    'torch.mps.FloatTensor' in the same way)."""
    device = t.device.type
    prefix = "torch." if device == "cpu" else f"torch.{device}."
    return prefix + LEGACY_NAMES[t.dtype.name]


FloatTensor = LegacyTensorType("float32")
DoubleTensor = LegacyTensorType("float64")
HalfTensor = LegacyTensorType("float16")
BFloat16Tensor = LegacyTensorType("bfloat16")
LongTensor = LegacyTensorType("int64")
IntTensor = LegacyTensorType("int32")
ShortTensor = LegacyTensorType("int16")
CharTensor = LegacyTensorType("int8")
ByteTensor = LegacyTensorType("uint8")
BoolTensor = LegacyTensorType("bool")

# top-level names (sg.FloatTensor, ...), no Tensor methods
for _legacy_type in (FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, LongTensor,
                     IntTensor, ShortTensor, CharTensor, ByteTensor, BoolTensor):
    register(function=True)(_legacy_type)
del _legacy_type
