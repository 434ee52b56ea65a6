"""`Dropout`: in training, zero each element with probability p and scale the survivors by
1 / (1 - p) (so the expected value is unchanged); in eval mode, the identity."""

from __future__ import annotations

from ..engine import Tensor
from . import functional as F
from .module import Module


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: dropout probability has to be between 0 and 1, but "
                             f"got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, p=self.p, training=self.training, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
