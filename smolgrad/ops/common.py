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


def shape_arg(size: tuple, op: str = "size", nonnegative: bool = False) -> tuple:
    """Sizes given as varargs (2, 3) or as one tuple/list ((2, 3),), as ints (-1 allowed
    unless `nonnegative`, as the size of a new tensor must be)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = []
    for s in size:
        if isinstance(s, float) or not hasattr(s, "__index__"):
            raise TypeError(f"{op}: sizes must be integers, got {s!r} in {tuple(size)}")
        if nonnegative and s.__index__() < 0:
            raise RuntimeError(f"{op}: negative dimension {s} in size {tuple(size)}")
        shape.append(s.__index__())
    return tuple(shape)


def shown_as(t, torch_name: str):
    """Let `t`'s node print as PyTorch's does (`grad_fn=<MeanBackward0>` where smolgrad's
    last node is the Div that finishes a mean): printing only, for programs and notebooks
    that show a loss. Returns `t`."""
    if t.grad_fn is not None:
        t.grad_fn.torch_name = torch_name
    return t
