"""Samplers: which dataset indices a DataLoader visits, in which order
(`torch.utils.data.sampler`'s names).

    SequentialSampler     0, 1, ..., n - 1
    RandomSampler         a fresh permutation per pass, or (replacement=True) independent
                          uniform draws, made lazily 32 at a time
    SubsetRandomSampler   given indices in a fresh random order per pass
    WeightedRandomSampler draws with probability proportional to weights
    BatchSampler          another sampler's indices grouped into lists of batch_size

Random samplers draw from `generator=` (an `sg.Generator`) when one is given, otherwise
from a fresh generator seeded from the global one (`sg.manual_seed`) at the start of
each pass, so runs are reproducible either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ...engine import Tensor
from ...ops.creation import randint
from ...random import Generator

# RandomSampler(replacement=True) draws this many indices at a time, so that a huge
# num_samples (PyTorch programs pass int(1e10) for "sample forever") costs no memory.
REPLACEMENT_CHUNK = 32


def _global_seed() -> int:
    """A seed drawn from the global generator (the one `sg.manual_seed` seeds)."""
    return int(randint(0, 2**62, (), device="cpu").item())


def _pass_generator(generator: Generator | None, who: str) -> Generator:
    """The generator one pass draws from: `generator` itself, or, when it is None, a fresh
    one seeded from the global generator (so `sg.manual_seed` makes the pass
    reproducible, and two passes differ)."""
    if generator is None:
        return Generator().manual_seed(_global_seed())
    if not isinstance(generator, Generator):
        raise TypeError(f"{who}: generator must be an sg.Generator (or None), got "
                        f"{type(generator).__name__}")
    return generator


def _permutation(n: int, generator: Generator | None, who: str = "random_split") -> list:
    """A random ordering of range(n) drawn from `generator` (see `_pass_generator`)."""
    return _pass_generator(generator, who).randperm(n)


class Sampler:
    """Yields indices into a dataset; subclasses implement `__iter__` (and `__len__`)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Random indices into `data_source`, drawn lazily as the DataLoader asks for them.

    replacement=False: a fresh permutation of range(n) per pass; when `num_samples`
        exceeds n, whole permutations follow one another and the last is cut short.
    replacement=True: `num_samples` independent uniform draws from range(n), made
        `REPLACEMENT_CHUNK` at a time, so `num_samples=int(1e10)` allocates nothing up front.

    `len(sampler) == num_samples` (default: `len(data_source)`, read at each call since a
    dataset may grow). `generator`: an `sg.Generator`, or None for a fresh one per pass
    seeded from the global generator.
    """

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        if n == 0:
            raise ValueError(f"RandomSampler: cannot draw {self.num_samples} samples from an "
                             f"empty data_source")
        generator = _pass_generator(self.generator, "RandomSampler")
        if self.replacement:
            full_chunks, remainder = divmod(self.num_samples, REPLACEMENT_CHUNK)
            for _ in range(full_chunks):
                yield from generator.randint(0, n, REPLACEMENT_CHUNK)
            yield from generator.randint(0, n, remainder)
            return
        full_passes, remainder = divmod(self.num_samples, n)
        for _ in range(full_passes):
            yield from generator.randperm(n)
        yield from generator.randperm(n)[:remainder]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order on every pass."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None):
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        for i in _permutation(len(self.indices), self.generator, "SubsetRandomSampler"):
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices drawn with probability proportional to `weights` (with
    replacement by default)."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Generator | None = None):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or \
                num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        if isinstance(weights, Tensor):
            weights = weights.tolist()
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1 or not np.isfinite(weights).all() or (weights < 0).any() or \
                weights.sum() <= 0:
            raise ValueError(f"WeightedRandomSampler: weights must be a 1-D sequence of "
                             f"finite non-negative numbers with a positive sum, got shape "
                             f"{tuple(weights.shape)}")
        if not replacement and num_samples > np.count_nonzero(weights):
            raise RuntimeError(f"WeightedRandomSampler: cannot draw {num_samples} samples "
                               f"without replacement from {np.count_nonzero(weights)} "
                               f"non-zero weights")
        self.weights = weights
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        generator = _pass_generator(self.generator, "WeightedRandomSampler")
        yield from generator.multinomial(self.weights, self.num_samples, self.replacement)

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Group another sampler's indices into lists of `batch_size` (the last one shorter,
    or dropped with `drop_last=True`)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list]:
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
