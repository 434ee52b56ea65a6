"""Small helpers shared by the op modules (argument normalisation, not math)."""

from __future__ import annotations


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """A dim in [-ndim, ndim) as a non-negative axis, or a clear IndexError."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """None -> all axes; an int or a sequence of ints -> a sorted tuple of axes."""
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):
        return tuple(range(ndim))  # PyTorch: an empty dim list reduces everything
    if isinstance(dim, int):
        dim = (dim,)
    axes = tuple(sorted({normalize_dim(d, ndim, op) for d in dim}))
    if ndim == 0:
        return ()
    return axes


def shape_arg(size: tuple) -> tuple:
    """Sizes given as varargs (2, 3) or as one tuple/list ((2, 3),)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)
