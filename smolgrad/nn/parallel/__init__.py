"""`torch.nn.parallel`: the data-parallel wrappers, at PyTorch's import path.

- `DistributedDataParallel` is smolgrad's DDP over MPI (smolgrad/distributed.py; launch with
  `mpirun -n N python -m smolgrad run train.py`). `torch.nn.parallel.distributed` names that
  module, as in PyTorch.
- `DataParallel` (one process, the batch split over several GPUs) runs the wrapped module on
  its own device as it is: smolgrad drives one GPU, and PyTorch's DataParallel does the
  same when it has one device or none. Like PyTorch's, it keeps the model as the child
  `module`, so state_dict keys carry a "module." prefix.

This package sits in nn/ for PyTorch's path but imports smolgrad.distributed (a layer above
nn): nn/__init__ does not import it, so `import smolgrad.nn` never loads MPI code.
"""

from __future__ import annotations

from ... import distributed
from ...distributed import DistributedDataParallel
from ..module import Module

__all__ = ["DataParallel", "DistributedDataParallel", "distributed"]


class DataParallel(Module):
    """Wrap `module`; forward calls it unchanged (see the module docstring).

    device_ids, output_device, dim: accepted for PyTorch compatibility.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module = module
        self.device_ids = list(device_ids) if device_ids is not None else []
        self.output_device = output_device
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
