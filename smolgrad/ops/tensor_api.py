"""What a tensor is, and how it leaves smolgrad: `ndim`, `size()`, `numel()`, `item()`,
`tolist()`, `numpy()`, and the Python protocol (`len`, iteration, `in`, `bool`, `float`,
`int`, `operator.index`, hashing, NumPy's `__array__`).

None of it is autograd, so it lives here rather than in the engine (which keeps `shape`,
`dtype` and `device`, the three its error messages need).
"""

from __future__ import annotations

import math

from ..engine import Tensor, register

# -- what it is ---------------------------------------------------------------------------

def _ndim(self: Tensor) -> int:
    """The number of dimensions."""
    return self.array.ndim


Tensor.ndim = property(_ndim)


@register("dim")
def dim(self: Tensor) -> int:
    """The number of dimensions (`ndim`)."""
    return self.array.ndim


@register("size")
def size(self: Tensor, dim: int | None = None):
    """The shape, or the length of dimension `dim` (negative counts from the end)."""
    if dim is None:
        return self.shape
    n = self.ndim
    if not -n <= dim < n:
        raise IndexError(f"size: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim}) for a tensor of shape "
                         f"{tuple(self.shape)}")
    return self.shape[dim]


@register("numel", function=True)
def numel(self: Tensor) -> int:
    """The number of elements: the product of the shape (1 for a 0-d tensor)."""
    return math.prod(self.array.shape)


@register("element_size")
def element_size(self: Tensor) -> int:
    """Bytes per element."""
    return self.dtype.itemsize


@register("is_floating_point", function=True)
def is_floating_point(self: Tensor) -> bool:
    """True for float16, bfloat16, float32 and float64 tensors."""
    return self.dtype.is_floating_point


@register("is_complex", function=True)
def is_complex(self: Tensor) -> bool:
    """False: smolgrad has no complex dtypes (PyTorch's answer for every real tensor)."""
    return False


@register("is_nonzero", function=True)
def is_nonzero(self: Tensor) -> bool:
    """Whether a one-element tensor's value is not zero (`bool(t)`, but only for exactly one
    element: 0 or several elements raise, as in PyTorch)."""
    count = self.numel()
    if count != 1:
        amount = "no values" if count == 0 else f"{count} values"
        raise RuntimeError(f"is_nonzero: a tensor with {amount} (shape {tuple(self.shape)}) "
                           f"has no single truth value; it needs exactly one element")
    return bool(self.item() != 0)


@register("set_requires_grad")
def set_requires_grad(self: Tensor, flag: bool = True) -> Tensor:
    """The original smolgrad's name for `requires_grad_`."""
    return self.requires_grad_(flag)


# -- leaving smolgrad ---------------------------------------------------------------------


@register("item")
def item(self: Tensor):
    """The value of a one-element tensor as a Python number."""
    if self.numel() != 1:
        raise RuntimeError(f"item: a Tensor with {self.numel()} elements (shape "
                           f"{tuple(self.shape)}) cannot be converted to a Python number")
    return self.backend.item(self.array)


@register("tolist")
def tolist(self: Tensor):
    """The values as nested Python lists (a number for a 0-d tensor)."""
    return self.backend.to_numpy(self.array).tolist()


@register("numpy")
def numpy(self: Tensor):
    """The values as a NumPy array (refused while the tensor requires grad, as in PyTorch:
    the array would leave the graph silently)."""
    if self._requires_grad:
        raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; "
                           "use tensor.detach().numpy()")
    return self.backend.to_numpy(self.array)


@register("__array__")
def array_protocol(self: Tensor, dtype=None, copy=None):
    """`np.asarray(t)`: NumPy's conversion protocol."""
    out = self.numpy()
    return out if dtype is None else out.astype(dtype)


Tensor.__array_priority__ = 1000  # so that `ndarray * Tensor` calls Tensor.__rmul__

# -- the Python protocol ------------------------------------------------------------------


@register("__len__")
def length(self: Tensor) -> int:
    """The size of the first dimension."""
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.array.shape[0]


@register("__iter__")
def iterate(self: Tensor):
    """The sub-tensors along the first dimension, `t[0], t[1], ...`."""
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(len(self)))


@register("__contains__")
def contains(self: Tensor, element) -> bool:
    """`v in t`: does any element equal v (PyTorch's meaning)?"""
    return bool((self == element).any().item())


@register("__bool__")
def truth(self: Tensor) -> bool:
    if self.numel() != 1:
        raise RuntimeError(f"bool: the truth value of a tensor with {self.numel()} "
                           f"elements is ambiguous; use .any() or .all()")
    return bool(self.item())


@register("__float__")
def to_float(self: Tensor) -> float:
    return float(self.item())


@register("__int__")
def to_int(self: Tensor) -> int:
    return int(self.item())


@register("__index__")
def to_index(self: Tensor) -> int:
    """`operator.index(t)`, for use as a list index or size: one-element integer tensors."""
    if self.dtype.is_floating_point or self.numel() != 1:
        raise TypeError("only integer tensors of a single element can be converted to "
                        "an index")
    return int(self.item())


Tensor.__hash__ = object.__hash__  # tensors hash by identity, as in PyTorch (`==` is an op)
