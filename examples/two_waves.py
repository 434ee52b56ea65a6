"""The original smolgrad's first example: separate two noisy waves, in smolgrad and
PyTorch side by side, from the same starting weights.

    python examples/two_waves.py                 # 450 full-batch SGD epochs
    python examples/two_waves.py --epochs 100 --device mlx

The data: 200 points on a cosine wave (class 0) and 200 on a sine wave lifted by 3
(class 1), both with Gaussian noise of standard deviation 0.2:

    x in linspace(-1.5, 1, 200)
    class 0: (x, cos(4 x) + noise)        class 1: (x, sin(2 x) + 3 + noise)

The model: an MLP 2 -> 5 -> 10 -> 1 with ReLU, ReLU, Sigmoid, trained with binary
cross-entropy and plain SGD (lr 0.009) on the whole set each step. The two libraries start
from the same weights (PyTorch's initialisation, copied into smolgrad with
load_state_dict), so their loss curves must agree to float32 rounding; the script prints
both, their largest difference, and the time each took.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import smolgrad as sg
from smolgrad import nn, optim


def make_two_waves(n_per_class: int = 200, noise: float = 0.2, seed: int = 42):
    """X (2n, 2) float32 points and y (2n,) float32 labels (0 for the cosine wave)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.5, 1.0, n_per_class)
    lower = np.cos(4 * x) + rng.normal(0.0, noise, n_per_class)
    upper = np.sin(2 * x) + 3.0 + rng.normal(0.0, noise, n_per_class)
    points = np.concatenate([np.stack([x, lower], axis=1), np.stack([x, upper], axis=1)])
    labels = np.concatenate([np.zeros(n_per_class), np.ones(n_per_class)])
    return points.astype(np.float32), labels.astype(np.float32)


def make_smolgrad_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 10), nn.ReLU(),
                         nn.Linear(10, 1), nn.Sigmoid())


def make_torch_mlp(seed: int):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.ReLU(), torch.nn.Linear(5, 10),
                               torch.nn.ReLU(), torch.nn.Linear(10, 1), torch.nn.Sigmoid())


def train_smolgrad(model: nn.Module, points: np.ndarray, labels: np.ndarray, epochs: int,
                   lr: float, device: str = "cpu") -> tuple:
    """Full-batch SGD; returns (loss per epoch, seconds)."""
    model.to(device)
    x, y = sg.tensor(points, device=device), sg.tensor(labels, device=device)
    loss_fn = nn.BCELoss()
    optimizer = optim.SGD(model.parameters(), lr=lr)
    losses = []
    start = time.perf_counter()
    for _ in range(epochs):
        loss = loss_fn(model(x).reshape(-1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, time.perf_counter() - start


def train_torch(model, points: np.ndarray, labels: np.ndarray, epochs: int,
                lr: float) -> tuple:
    """The same loop in PyTorch; returns (loss per epoch, seconds)."""
    import torch

    x, y = torch.from_numpy(points), torch.from_numpy(labels)
    loss_fn = torch.nn.BCELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    start = time.perf_counter()
    for _ in range(epochs):
        loss = loss_fn(model(x).reshape(-1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, time.perf_counter() - start


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(((probabilities.reshape(-1) > 0.5) == (labels > 0.5)).mean())


def compare(epochs: int = 450, lr: float = 0.009, seed: int = 0, device: str = "cpu",
            print_every: int = 50, torch_threads: int = 1) -> dict:
    """Train both from the same weights; print the curves side by side; return them.

    PyTorch runs on `torch_threads` threads (default 1): on matrices this small, extra
    threads only add synchronisation, and on a busy machine they can make PyTorch tens of
    times slower, which would make the timing comparison meaningless.
    """
    try:
        import torch
    except ImportError:
        raise SystemExit("two_waves.py compares against PyTorch: pip install torch") from None
    threads_before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        return _compare(epochs, lr, seed, device, print_every, torch_threads)
    finally:
        torch.set_num_threads(threads_before)


def _compare(epochs: int, lr: float, seed: int, device: str, print_every: int,
             torch_threads: int) -> dict:
    import torch

    points, labels = make_two_waves()
    torch_model = make_torch_mlp(seed)
    sg_model = make_smolgrad_mlp()
    sg_model.load_state_dict({k: v.detach().numpy() for k, v in
                              torch_model.state_dict().items()})
    sg_losses, sg_time = train_smolgrad(sg_model, points, labels, epochs, lr, device)
    torch_losses, torch_time = train_torch(torch_model, points, labels, epochs, lr)

    print(f"two waves: {len(points)} points, MLP 2-5-10-1, SGD lr={lr}, {epochs} epochs")
    print(f"{'epoch':>6} {'smolgrad':>12} {'pytorch':>12} {'|diff|':>10}")
    for i in range(epochs):
        if i % print_every == 0 or i == epochs - 1:
            diff = abs(sg_losses[i] - torch_losses[i])
            print(f"{i + 1:>6} {sg_losses[i]:>12.6f} {torch_losses[i]:>12.6f} {diff:>10.2e}")
    max_diff = float(np.max(np.abs(np.array(sg_losses) - np.array(torch_losses))))
    with sg.no_grad():
        sg_probs = sg_model(sg.tensor(points, device=device)).numpy()
    with torch.no_grad():
        torch_probs = torch_model(torch.from_numpy(points)).numpy()
    print(f"largest loss difference: {max_diff:.2e}")
    print(f"smolgrad ({device}): {sg_time:.3f} s, accuracy "
          f"{100 * accuracy(sg_probs, labels):.1f}%")
    print(f"pytorch  (cpu, {torch_threads} thread{'s' if torch_threads > 1 else ''}): "
          f"{torch_time:.3f} s, accuracy {100 * accuracy(torch_probs, labels):.1f}%")
    return {"smolgrad_losses": sg_losses, "torch_losses": torch_losses,
            "smolgrad_seconds": sg_time, "torch_seconds": torch_time, "max_diff": max_diff}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=450)
    parser.add_argument("--lr", type=float, default=0.009)
    parser.add_argument("--seed", type=int, default=0, help="seed of the shared init")
    parser.add_argument("--device", default="cpu", help="smolgrad's device: cpu, mlx, cuda")
    parser.add_argument("--print-every", type=int, default=50)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="PyTorch's intra-op threads (default 1; see compare())")
    args = parser.parse_args(argv)
    compare(args.epochs, args.lr, args.seed, args.device, args.print_every,
            args.torch_threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
