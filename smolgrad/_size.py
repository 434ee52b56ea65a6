"""`sg.Size` (PyTorch's `torch.Size`): the type of `Tensor.shape` and `Tensor.size()`.

A Size is a tuple of ints, so everything that works on a shape tuple works on it: indexing,
`len`, unpacking (`B, T, C = x.shape`), `==` with a tuple (`x.shape == (2, 3)`), hashing
(equal to the tuple's hash), pickling and `json.dumps` (a list). What it adds, as in
PyTorch:

    >>> s = sg.zeros(2, 3, 4).shape
    >>> s                      # repr and str: PyTorch's text
    torch.Size([2, 3, 4])
    >>> s.numel()              # the product of the sizes: 24 (1 for Size([]))
    >>> s[1:], s + (5,), 2 * s[:1]
    (torch.Size([3, 4]), torch.Size([2, 3, 4, 5]), torch.Size([2, 2]))

It prints `torch.Size(...)`, not `smolgrad.Size(...)`, for the same reason dtypes print as
`torch.float32` (smolgrad/dtypes.py): a PyTorch program run on smolgrad prints what it
printed on PyTorch. Only the printed name is PyTorch's; the type is `smolgrad.Size`.

Like a tuple (and unlike a list), a Size is never equal to a list: `Size([2]) == [2]` is
False, in PyTorch too.

`Tensor.shape` wraps the backend array's shape tuple with `tuple.__new__(Size, ...)`: one C
call, no per-item check (the array's sizes are ints already), so the property costs about
what `tuple(...)` cost before. Code inside smolgrad that only needs the numbers reads
`t.array.shape`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable

__all__ = ["Size"]


class Size(tuple):
    """A shape: a tuple of ints that prints as `torch.Size([2, 3])`.

    `Size(sizes)` takes any iterable of ints (Python ints, NumPy integers, 0-d integer
    tensors: anything with `__index__`). Slicing, `+` and `*` give a Size, as in PyTorch.
    """

    __slots__ = ()

    def __new__(cls, sizes: Iterable = ()) -> Size:
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
            raise TypeError(f"Size() takes an iterable of 'int', got {type(sizes).__name__} "
                            f"{sizes!r}")
        items = tuple(sizes)
        for position, item in enumerate(items):
            if isinstance(item, bool) or not hasattr(item, "__index__"):
                raise TypeError(f"Size() takes an iterable of 'int' (item {position} is "
                                f"'{type(item).__name__}')")
        return super().__new__(cls, (operator.index(item) for item in items))

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds: the product of the sizes."""
        return math.prod(self)

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return tuple.__new__(Size, item) if isinstance(index, slice) else item

    def __add__(self, other) -> Size:
        if not isinstance(other, tuple):
            raise TypeError(f"can only concatenate tuple (not {type(other).__name__}) to "
                            f"torch.Size")
        return tuple.__new__(Size, tuple.__add__(self, other))

    def __radd__(self, other) -> Size:
        """`(1,) + size`: Python asks the subclass first, so the result stays a Size."""
        if not isinstance(other, tuple):
            return NotImplemented
        return tuple.__new__(Size, tuple.__add__(other, self))

    def __mul__(self, times) -> Size:
        return tuple.__new__(Size, tuple.__mul__(self, times))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"torch.Size({list(self)})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if spec:
            raise TypeError("unsupported format string passed to torch.Size.__format__")
        return repr(self)

    def __reduce__(self):
        return (Size, (tuple(self),))
