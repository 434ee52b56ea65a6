"""Datasets, samplers and the `DataLoader`, with PyTorch's names, behaviour and module
paths (`smolgrad.utils.data.dataset`, `.sampler`, `.dataloader`, `.distributed`).

The pieces, from the bottom up:

    Dataset        anything with `__getitem__(i)` and `__len__()` (TensorDataset, Subset, ...)
    Sampler        yields dataset indices: SequentialSampler (0, 1, 2, ...), RandomSampler
                   (a fresh permutation per pass), SubsetRandomSampler, ...
    BatchSampler   groups a sampler's indices into lists of `batch_size`
    collate_fn     turns a list of samples into a batch (`default_collate` stacks tensors,
                   arrays and numbers, and recurses into tuples, lists and dicts)
    DataLoader     ties them together: `for x, y in DataLoader(ds, batch_size=32,
                   shuffle=True): ...`
"""

from ...random import Generator
from ._utils.collate import default_collate, default_convert
from ._utils.worker import get_worker_info
from .dataloader import DataLoader
from .dataset import (
    ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset, TensorDataset,
    random_split,
)
from .distributed import DistributedSampler
from .sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "StackDataset", "Subset",
           "ConcatDataset", "ChainDataset", "random_split", "Sampler", "SequentialSampler",
           "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
           "default_collate", "default_convert", "DataLoader", "get_worker_info", "Generator",
           "DistributedSampler"]
