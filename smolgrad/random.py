"""Random number generators: `sg.Generator`, the default generator, and `torch.random`.

    g = sg.Generator().manual_seed(0)          # a generator of your own, passed around
    loader = DataLoader(dataset, batch_size=32, shuffle=True, generator=g)

    sg.manual_seed(0)                          # seeds the default generator; returns it
    state = sg.get_rng_state()                 # where the default stream is now
    a = sg.rand(3)
    sg.set_rng_state(state)                    # back there: sg.rand(3) equals a again
    with sg.random.fork_rng():                 # draws inside leave the state as it was
        sg.randn(5)

This module is `torch.random` under the launcher (`torch.random.manual_seed`, `.seed`,
`.initial_seed`, `.get_rng_state`, `.set_rng_state`, `.fork_rng`); the same functions are
top-level names too (`sg.manual_seed`, ...), as in PyTorch.

**Streams.** Each generator draws from NumPy's PCG64 on the host. The *default generator*
(`sg.default_generator`, used when no `generator=` is given) is the stream of each
backend: `sg.manual_seed(s)` restarts the stream of every loaded backend from `s`, and a
backend loaded later starts from the same seed at its first draw. Its state
(`get_rng_state`) is the cpu backend's stream, as PyTorch's is the CPU generator's. Like
PyTorch, a process starts from the seed 67280421310721, so a program that never seeds
draws the same numbers on every run. The numbers are not PyTorch's for the same seed.

**State.** `get_state()` / `get_rng_state()` give a 1-D tensor of 48 bytes (the seed, then
PCG64's 128-bit state and increment, then its cached 32-bit half). PyTorch's is a uint8
tensor; smolgrad has no uint8 dtype, so the byte values 0..255 are held in int64. The
tensor round-trips through `set_state` / `set_rng_state` and through `sg.save`/`sg.load`.

**Printing.** A generator prints as `<torch._C.Generator object at 0x...>`, the text PyTorch
prints, for the reason dtypes print as `torch.float32` (smolgrad/dtypes.py): a PyTorch
program's output reads the same on smolgrad. Only the printed name is PyTorch's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np

from . import dtypes as dt
from .arrays import get_backend, loaded_backends
from .engine import Tensor

__all__ = ["DEFAULT_SEED", "Generator", "default_generator", "fork_rng", "get_rng_state",
           "initial_seed", "manual_seed", "seed", "set_rng_state"]

DEFAULT_SEED = 67280421310721
STATE_BYTES = 48  # seed (8) + PCG64 state (16) + increment (16) + has_uint32 (4) + uinteger (4)


def _check_seed(seed, who: str) -> int:
    """The seed as an unsigned 64-bit int: negative seeds down to -2**63 wrap, as PyTorch's."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{who}: seed must be an int, got {type(seed).__name__} {seed!r}")
    if not -2**63 <= seed < 2**64:
        raise ValueError(f"{who}: seed {seed} is out of range: it must fit in 64 bits "
                         f"(-2**63 <= seed < 2**64)")
    return int(seed) % 2**64


def _encode_state(initial_seed: int, rng: np.random.Generator) -> Tensor:
    """The generator's position as a 1-D int64 tensor of 48 byte values (see the module doc)."""
    state = rng.bit_generator.state
    raw = (initial_seed.to_bytes(8, "little")
           + state["state"]["state"].to_bytes(16, "little")
           + state["state"]["inc"].to_bytes(16, "little")
           + int(state["has_uint32"]).to_bytes(4, "little")
           + int(state["uinteger"]).to_bytes(4, "little"))
    cpu = get_backend("cpu")
    return Tensor._make(cpu.asarray(np.frombuffer(raw, np.uint8).astype(np.int64), dt.int64), cpu)


def _decode_state(state, who: str) -> tuple[int, dict]:
    """(initial seed, PCG64 state dict) from a tensor made by `_encode_state`."""
    if not isinstance(state, Tensor):
        raise TypeError(f"{who}: the RNG state must be a Tensor from get_state() or "
                        f"get_rng_state(), got {type(state).__name__}")
    if state.dtype.is_floating_point or state.array.shape != (STATE_BYTES,):
        raise RuntimeError(f"{who}: the RNG state must be a 1-D integer tensor of "
                           f"{STATE_BYTES} bytes (from get_state() or get_rng_state()), got "
                           f"shape {tuple(state.shape)} and dtype {state.dtype.name}")
    values = state.backend.to_numpy(state.array)
    if values.min() < 0 or values.max() > 255:
        raise RuntimeError(f"{who}: the RNG state holds bytes (0..255), got values from "
                           f"{values.min()} to {values.max()}")
    raw = values.astype(np.uint8).tobytes()
    number = int.from_bytes
    bit_state = {"bit_generator": "PCG64",
                 "state": {"state": number(raw[8:24], "little"),
                           "inc": number(raw[24:40], "little")},
                 "has_uint32": number(raw[40:44], "little"),
                 "uinteger": number(raw[44:48], "little")}
    return number(raw[:8], "little"), bit_state


class Generator:
    """A seedable stream of random numbers (`torch.Generator`): `manual_seed` (returns the
    generator, so `g = sg.Generator().manual_seed(0)` chains), `seed`, `initial_seed`,
    `get_state`, `set_state`. Pass it as `generator=` to rand, randn, randint, randperm,
    multinomial, DataLoader, random samplers and random_split.

    A new generator starts from the seed 67280421310721, as PyTorch's does."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from `seed` (an int; negative ones wrap as in PyTorch)."""
        self._initial_seed = _check_seed(seed, "Generator.manual_seed")
        self._rng = np.random.default_rng(self._initial_seed)
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy and return the new seed."""
        new_seed = int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(new_seed)
        return new_seed

    def initial_seed(self) -> int:
        """The seed the stream last started from."""
        return self._initial_seed

    def get_state(self) -> Tensor:
        """The stream's position: a 1-D int64 tensor of 48 bytes (see the module doc)."""
        return _encode_state(self._initial_seed, self._rng)

    def set_state(self, new_state: Tensor) -> Generator:
        """Go back to a position saved by `get_state` (the initial seed too)."""
        self._initial_seed, bit_state = _decode_state(new_state, "Generator.set_state")
        self._rng.bit_generator.state = bit_state
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
        return f"<torch._C.Generator object at {id(self):#x}>"


class DefaultGenerator(Generator):
    """The generator behind `sg.manual_seed` and every draw without `generator=`.

    It owns no stream of its own: each backend keeps one (NumPy's generator on the host for
    cpu and mlx, CuPy's on the GPU), so that draws happen where the tensor lives. This object
    seeds them: every loaded backend at once in `manual_seed`, and a backend loaded later at
    its first draw (`seeded_backend`). Its own stream, state and draws are the cpu
    backend's, as PyTorch's default generator is the CPU one.
    """

    def __init__(self):
        self.device = "cpu"
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed: int) -> DefaultGenerator:
        """Restart every backend's stream from `seed` (and those loaded later)."""
        self._initial_seed = _check_seed(seed, "manual_seed")
        for backend in loaded_backends():
            backend.seed(self._initial_seed)
            backend._seeded = True
        return self

    def seeded_backend(self, device=None):
        """The backend of `device`, its stream started from the current seed if this is its
        first draw since it was loaded."""
        backend = get_backend(device)
        if not backend._seeded:
            backend.seed(self._initial_seed)
            backend._seeded = True
        return backend

    @property
    def _rng(self) -> np.random.Generator:
        """The cpu backend's stream (what `get_state` saves and `set_state` restores)."""
        return self.seeded_backend("cpu")._rng

    def set_state(self, new_state: Tensor) -> DefaultGenerator:
        self._initial_seed, bit_state = _decode_state(new_state, "set_rng_state")
        self._rng.bit_generator.state = bit_state
        return self


default_generator = DefaultGenerator()


# -- torch.random's functions -----------------------------------------------------------------
def manual_seed(seed) -> Generator:
    """Seed every device's default stream and return `default_generator`, as
    `torch.manual_seed` (which also takes anything `int()` accepts: 3.7 -> 3, "12" -> 12)."""
    return default_generator.manual_seed(int(seed))


def seed() -> int:
    """Seed every device's default stream from the operating system's entropy; return the
    seed (so that a run can be repeated with `manual_seed` of it)."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the default stream last started from (67280421310721 until seeded)."""
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    """The default (cpu) stream's position: a 1-D tensor of 48 bytes."""
    return default_generator.get_state()


def set_rng_state(new_state: Tensor) -> None:
    """Return the default (cpu) stream to a position saved by `get_rng_state`."""
    default_generator.set_state(new_state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, _caller: str = "fork_rng",
             _devices_kw: str = "devices", device_type: str = "cuda") -> Iterator[None]:
    """`with fork_rng(): ...`: draws inside the block leave every default stream as it was.

    On leaving, the seed and the stream of every backend loaded when the block began are put
    back (PyTorch forks the CPU stream and the `devices` of `device_type`; smolgrad forks
    every backend it has loaded, so `devices` and `device_type` are accepted and need not be
    given). `enabled=False` makes it do nothing."""
    if not enabled:
        yield
        return
    saved_seed = default_generator.initial_seed()
    saved = [(backend, backend._rng, backend._seeded) for backend in loaded_backends()]
    for backend, stream, _ in saved:  # draws inside the block go to copies
        backend._rng = _copy_stream(stream, "fork_rng")
    try:
        yield
    finally:
        default_generator._initial_seed = saved_seed
        for backend, stream, was_seeded in saved:
            backend._rng, backend._seeded = stream, was_seeded


def _copy_stream(stream, who: str):
    """An independent copy of a backend's stream, at the same position."""
    if not isinstance(stream, np.random.Generator):
        raise NotImplementedError(f"{who}: the GPU's random stream (CuPy's) cannot be saved "
                                  f"and restored; fork_rng supports the cpu and mlx devices")
    copy = np.random.default_rng()
    copy.bit_generator.state = stream.bit_generator.state
    return copy
