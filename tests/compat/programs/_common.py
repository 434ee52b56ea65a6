"""Helpers shared by the compatibility programs (plain PyTorch code: `import torch`).

Each program runs twice, once under the real PyTorch and once under smolgrad through
`python -m smolgrad run`. The two libraries draw different random numbers from the same
seed, so whatever must agree to rounding starts from weights and batches that NumPy makes,
and the last line a program prints is one JSON object (see `report`).
"""

import json
import zlib

import numpy as np
import torch


def numpy_init(model: torch.nn.Module, scale: float = 1.0) -> None:
    """Give every parameter of `model` values drawn by NumPy from a seed made of its name,
    so both libraries start from the same weights whatever their own generators do.

    1-d parameters called `weight` (norm layers) start at 1, other 1-d ones (biases) near
    0, matrices and embeddings at N(0, 1/fan_in) (fan_in = the last dimension), times
    `scale`.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            rng = np.random.default_rng(zlib.crc32(name.encode()))
            if p.dim() == 1 and name.endswith("weight"):
                values = np.ones(p.shape)
            elif p.dim() == 1:
                values = rng.uniform(-0.05, 0.05, size=p.shape)
            else:
                values = rng.normal(0.0, scale / np.sqrt(p.shape[-1]), size=p.shape)
            p.copy_(torch.from_numpy(values.astype(np.float32)))


SYLLABLES = ["ka", "lo", "mi", "ra", "ne", "su", "tor", "vi", "an", "el", "bri", "do"]


def make_words(rng: np.random.Generator, count: int) -> list:
    """`count` made-up names of 1 to 3 syllables (a names.txt of our own)."""
    return ["".join(rng.choice(SYLLABLES, size=rng.integers(1, 4))) for _ in range(count)]


def build_dataset(words: list, stoi: dict, block_size: int) -> tuple:
    """makemore's dataset: every (previous block_size characters, next character) pair,
    with '.' (index 0) padding the start and ending each word. Returns (X, Y) tensors."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def report(deterministic: dict, statistical: dict | None = None,
           checks: dict | None = None) -> None:
    """Print the program's result as the last line of its output.

    deterministic: numbers that must agree between the libraries to float32 rounding;
    statistical: numbers made with each library's own random draws (agree loosely);
    checks: facts each library must make true on its own.
    """
    print(json.dumps({"deterministic": deterministic, "statistical": statistical or {},
                      "checks": checks or {}}))
