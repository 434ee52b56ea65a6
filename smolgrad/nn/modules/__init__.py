"""`torch.nn.modules`: PyTorch's file layout for the layers, mapped onto smolgrad.nn.

PyTorch defines its layers in `torch/nn/modules/<file>.py` and programs import from there
(`from torch.nn.modules.loss import _Loss`, `from torch.nn.modules.module import Module`).
smolgrad keeps its layers one level up, in smolgrad/nn/; this package names those files by
PyTorch's file names, so that `torch.nn.modules.<file>` resolves (under the torch alias,
smolgrad/torch_alias.py) and `torch.nn.modules.loss._Loss` works as an attribute path.
Every layer class is also reachable here, as in PyTorch (`torch.nn.modules.Linear`).
"""

from __future__ import annotations

from .. import (
    activation, container, conv, dropout, linear, loss, module, normalization, pooling, rnn,
    sparse, transformer,
)
from .. import linear as flatten  # Flatten, Unflatten
from .. import normalization as batchnorm  # BatchNorm1d, BatchNorm2d
from . import utils

__all__ = ["activation", "batchnorm", "container", "conv", "dropout", "flatten", "linear",
           "loss", "module", "normalization", "pooling", "rnn", "sparse", "transformer",
           "utils"]


def __getattr__(name: str):
    """Layer classes (`torch.nn.modules.Linear`) are smolgrad.nn's."""
    from ... import nn  # the package above, complete by the time this runs

    if not name.startswith("_") and hasattr(nn, name):
        return getattr(nn, name)
    raise AttributeError(f"module 'torch.nn.modules' (smolgrad.nn.modules) has no attribute "
                         f"{name!r}")
