"""`DistributedSampler` at PyTorch's path (`torch.utils.data.distributed`); it is written
in `smolgrad/utils/distributed_sampler.py`."""

from ..distributed_sampler import DistributedSampler

__all__ = ["DistributedSampler"]
