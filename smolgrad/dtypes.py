"""Data types, named as in PyTorch.

A `dtype` is a small immutable object (`sg.float32`, `sg.int64`, ...). Each backend maps
it to and from its own array library's dtype, so op code never touches NumPy/MLX/CuPy
dtypes directly.
"""

from __future__ import annotations


class dtype:  # noqa: N801 - PyTorch's spelling
    """A tensor element type: `name`, `itemsize` in bytes, and its category."""

    __slots__ = ("name", "itemsize", "is_floating_point", "is_signed", "_rank")

    def __init__(self, name: str, itemsize: int, is_floating_point: bool, rank: int):
        self.name = name
        self.itemsize = itemsize
        self.is_floating_point = is_floating_point
        self.is_signed = name != "bool"
        self._rank = rank  # order inside a category, for type promotion

    @property
    def category(self) -> int:
        """0 for bool, 1 for integers, 2 for floating point (PyTorch's promotion order)."""
        return 2 if self.is_floating_point else (0 if self.name == "bool" else 1)

    def __repr__(self) -> str:
        """`torch.float32`, as PyTorch prints it (and as tensor reprs name dtypes), so that
        a PyTorch program's output reads the same on smolgrad (`sg.float32 is sg.float32`;
        only the printed name is PyTorch's)."""
        return f"torch.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


bool_ = dtype("bool", 1, False, 0)
int32 = dtype("int32", 4, False, 1)
int64 = dtype("int64", 8, False, 2)
float16 = dtype("float16", 2, True, 1)
bfloat16 = dtype("bfloat16", 2, True, 1)
float32 = dtype("float32", 4, True, 2)
float64 = dtype("float64", 8, True, 3)

ALL = {d.name: d for d in (bool_, int32, int64, float16, bfloat16, float32, float64)}
ALIASES = {"half": float16, "float": float32, "double": float64, "long": int64, "int": int32}

_default_float = float32


def _by_name(name: str) -> dtype:
    return ALL[name]


def as_dtype(d) -> dtype:
    """Accept a smolgrad dtype, its name ('float32', 'half') or a Python type (float, int, bool)."""
    if isinstance(d, dtype):
        return d
    if d is float:  # Python's float is double precision: PyTorch maps it to float64
        return float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        found = ALL.get(d) or ALIASES.get(d)
        if found is not None:
            return found
    name = getattr(d, "name", None) or getattr(d, "__name__", None)  # e.g. numpy dtypes
    if isinstance(name, str) and name in ALL:
        return ALL[name]
    raise TypeError(f"unknown dtype {d!r}; expected one of {sorted(ALL)}")


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d) -> None:
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating point dtypes are allowed, got {d}")
    _default_float = d


def promote_types(a: dtype, b: dtype) -> dtype:
    """PyTorch's promotion for two tensors of the same dimensionality class."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if {a, b} == {float16, bfloat16}:
        return float32
    return a if a._rank >= b._rank else b


def result_type(a: dtype, a_ndim: int, b: dtype, b_ndim: int) -> dtype:
    """Promotion with PyTorch's rule that a 0-d tensor does not widen within its category."""
    if a is b:
        return a
    if a.category == b.category and (a_ndim == 0) != (b_ndim == 0):
        return b if a_ndim == 0 else a
    return promote_types(a, b)


def scalar_result_type(t: dtype, value) -> dtype:
    """dtype of `tensor op python_scalar`: the tensor's, unless the scalar is of a higher kind."""
    if isinstance(value, bool):
        return t
    if isinstance(value, int):
        return int64 if t is bool_ else t
    if isinstance(value, float):
        return t if t.is_floating_point else _default_float
    raise TypeError(f"unsupported scalar {value!r} of type {type(value).__name__}")
