"""`sg.Generator`: a random number generator object you can seed and pass around.

    g = sg.Generator().manual_seed(0)
    loader = DataLoader(dataset, batch_size=32, shuffle=True, generator=g)

Like `torch.Generator`, a new generator starts from a fixed seed (67280421310721), so two
fresh generators draw the same numbers. It draws on the host (NumPy's PCG64), which is all
that shuffling and splitting datasets need; the numbers differ from PyTorch's.
"""

from __future__ import annotations

import os

import numpy as np

DEFAULT_SEED = 67280421310721


class Generator:
    """A seedable source of random indices (`manual_seed`, `seed`, `initial_seed`,
    `get_state`, `set_state`, as in PyTorch; the state is a plain dict here)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from `seed` (any int; negative ones wrap as in PyTorch)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Generator.manual_seed: seed must be an int, got {seed!r}")
        self._initial_seed = int(seed) % 2**64
        self._rng = np.random.default_rng(self._initial_seed)
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy and return the new seed."""
        new_seed = int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(new_seed)
        return new_seed

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> dict:
        """The generator's position in its stream (a dict of ints, savable with sg.save)."""
        return {"initial_seed": self._initial_seed, "bit_generator": self._rng.bit_generator.state}

    def set_state(self, state: dict) -> Generator:
        self._initial_seed = int(state["initial_seed"])
        self._rng = np.random.default_rng(self._initial_seed)
        self._rng.bit_generator.state = state["bit_generator"]
        return self

    # -- draws (used by samplers and random_split) ------------------------------------------
    def randperm(self, n: int) -> list:
        """A random ordering of range(n), as a list of ints."""
        return self._rng.permutation(int(n)).tolist()

    def randint(self, low: int, high: int, size: int) -> list:
        """`size` ints drawn uniformly from [low, high)."""
        return self._rng.integers(low, high, size).tolist()

    def multinomial(self, weights, num_samples: int, replacement: bool) -> list:
        """`num_samples` indices drawn with probability proportional to `weights`."""
        p = np.asarray(weights, dtype=np.float64)
        return self._rng.choice(len(p), size=num_samples, replace=replacement,
                                p=p / p.sum()).tolist()

    def __repr__(self) -> str:
        return f"<smolgrad.Generator device='{self.device}' initial_seed={self._initial_seed}>"
