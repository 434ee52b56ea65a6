"""`torch.nn.modules.utils`: the size-argument helpers layers use (`_pair(3) == (3, 3)`).

`_ntuple(n)(x)` returns `tuple(x)` when x is iterable, else `(x,) * n`: how a layer accepts
`kernel_size=3` as well as `kernel_size=(3, 5)`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["_ntuple", "_pair", "_quadruple", "_single", "_triple"]


class _ntuple:  # noqa: N801 - PyTorch's spelling
    """A callable turning an int or an iterable into an n-tuple (its name, like PyTorch's,
    is the helper's: _single, _pair, _triple, _quadruple)."""

    def __init__(self, n: int, name: str = "parse"):
        self.n = n
        self.__name__ = name

    def __call__(self, x) -> tuple:
        if isinstance(x, Iterable) and not isinstance(x, str):
            return tuple(x)
        return (x,) * self.n


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")
