"""`DistributedSampler`: give each of N processes its own share of a dataset's indices.

In data-parallel training every process (rank) runs the same loop over a `DataLoader`; the
sampler makes the ranks see disjoint slices of the data, so that one epoch over the world
covers the dataset once:

    sampler = DistributedSampler(dataset)              # rank and world size from MPI
    loader = DataLoader(dataset, batch_size=64, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)                        # a new shuffle every epoch
        for x, y in loader: ...

How the indices are dealt out (the same rules as PyTorch's sampler):

1. All ranks build the same ordering of `range(len(dataset))`: shuffled with a generator
   seeded by `seed + epoch` (every rank uses the same seed, so they agree without talking),
   or left in order when `shuffle=False`.
2. The ordering is made a multiple of `num_replicas` long: with `drop_last=False` it is
   padded by repeating indices from its start (a few samples are seen twice per epoch);
   with `drop_last=True` the tail is cut off (a few samples are skipped this epoch).
3. Rank r takes every `num_replicas`-th index starting at r: positions r, r+N, r+2N, ...

So every rank gets exactly `num_samples = total_size / num_replicas` indices, which keeps
the ranks in lock step (the same number of batches, hence the same number of gradient
all-reduces; a rank with one batch more would wait forever for the others).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sized

# (world size, rank) of smolgrad.distributed's process group while one is up. That module
# sits above this one in the layers, so it reports here (set_process_group_world) rather
# than this module asking it: no import runs upward.
_process_group_world: tuple[int, int] | None = None


def set_process_group_world(world: tuple[int, int] | None) -> None:
    """Called by `smolgrad.distributed` when its process group starts ((size, rank)) and
    ends (None); the sampler's defaults for `num_replicas` and `rank` come from here."""
    global _process_group_world
    _process_group_world = world


def _world_from_process_group() -> tuple[int, int]:
    """(world size, rank) of the initialised process group, or a clear error."""
    if _process_group_world is None:
        raise RuntimeError("DistributedSampler: num_replicas/rank were not given and the "
                           "process group is not initialized; call "
                           "smolgrad.distributed.init_process_group() first, or pass "
                           "num_replicas= and rank= explicitly")
    return _process_group_world


class DistributedSampler:
    """Yield this rank's share of `range(len(dataset))` (see the module docstring).

    Args:
        dataset: anything with `len()`.
        num_replicas: the number of ranks (default: the process group's world size).
        rank: this process's rank in `[0, num_replicas)` (default: the process group's).
        shuffle: shuffle the indices, with the same permutation on every rank.
        seed: the base seed of the shuffle; must be equal on every rank.
        drop_last: cut the tail instead of padding, so no index is repeated.
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None,
                 rank: int | None = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        if num_replicas is None or rank is None:
            world_size, world_rank = _world_from_process_group()
            num_replicas = world_size if num_replicas is None else num_replicas
            rank = world_rank if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got "
                             f"{num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be in "
                             f"the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last:
            # the largest multiple of num_replicas that fits in n
            self.num_samples = n // num_replicas
        else:
            # the smallest multiple of num_replicas that holds n
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch, hence the shuffle. Call it before each epoch on every rank;
        without it every epoch repeats the same order."""
        self.epoch = epoch

    def _ordering(self) -> list[int]:
        """The world's ordering of all indices: shuffled by `seed + epoch`, then padded or
        cut to `total_size`."""
        indices = list(range(len(self.dataset)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(indices)
        if self.total_size <= len(indices):
            return indices[:self.total_size]
        if not indices:
            return []
        padding = self.total_size - len(indices)
        repeats = math.ceil(padding / len(indices))
        return indices + (indices * repeats)[:padding]

    def __iter__(self) -> Iterator[int]:
        ordering = self._ordering()
        return iter(ordering[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler(num_replicas={self.num_replicas}, rank={self.rank}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})")
