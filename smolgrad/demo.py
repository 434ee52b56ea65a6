"""The smolgrad demo: train a small CNN on handwritten digits, end to end.

    python -m smolgrad.demo                  # or: make demo
    python -m smolgrad.demo --epochs 5 --device mlx --out /tmp/demo
    python -m smolgrad.demo --quick          # a few seconds, to see that everything runs

The data is scikit-learn's bundled digits set (no download): 1,797 grey 8x8 images of the
digits 0-9. A stratified 20% is held out for testing (always the same split). The network:

    image (1, 8, 8)
    -> Conv2d(1, 16, 3, padding=1) -> ReLU -> MaxPool2d(2)     (16, 4, 4)
    -> Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)    (32, 2, 2)
    -> Flatten -> Linear(128, 64) -> ReLU -> Linear(64, 10)     logits for 10 digits

trained with Adam on the cross-entropy loss. The demo prints the test accuracy and writes,
into --out: a plot of the loss and accuracy per epoch (training_curves.png), the
computational graph of one training step (model_graph.svg/.png/.dot; no Graphviz needed),
and backward_walkthrough.html, a page that steps through the backward pass of a tiny MLP.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

import smolgrad as sg
from smolgrad import nn, optim
from smolgrad.nn import functional as F
from smolgrad.utils.data import DataLoader, TensorDataset

SPLIT_SEED = 0        # the train/test split never changes, so runs are comparable
TEST_FRACTION = 0.2


class DigitsCNN(nn.Module):
    """Two conv blocks and two linear layers; about 15k parameters."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: sg.Tensor) -> sg.Tensor:
        """x: (B, 1, 8, 8) -> logits (B, 10)."""
        x = self.pool(F.relu(self.conv1(x)))      # (B, 16, 4, 4)
        x = self.pool(F.relu(self.conv2(x)))      # (B, 32, 2, 2)
        x = x.flatten(1)                          # (B, 128)
        return self.fc2(F.relu(self.fc1(x)))      # (B, 10)


@dataclasses.dataclass
class DemoResult:
    test_accuracy: float
    seconds: float
    history: dict
    plot_path: str
    graph_paths: list
    page_path: str = ""


def load_digits_split(seed: int = SPLIT_SEED) -> tuple:
    """(train_x, train_y, test_x, test_y): images (N, 1, 8, 8) float32 standardised with
    the training set's mean and std, labels int64; the test set is a stratified 20%."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None, :, :]     # (1797, 1, 8, 8), 0..16
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed)
    mean, std = train_x.mean(), train_x.std()
    return (train_x - mean) / std, train_y, (test_x - mean) / std, test_y


@sg.no_grad()
def evaluate_accuracy(model: nn.Module, x: sg.Tensor, y: np.ndarray) -> float:
    model.eval()
    predicted = model(x).argmax(dim=1).cpu().numpy()
    model.train()
    return float((predicted == y).mean())


def save_plot(history: dict, path: str) -> None:
    """Loss (left) and accuracy (right) per epoch, as a PNG, without touching pyplot's
    global state (the Agg canvas draws off-screen)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, history["loss"], marker="o", color="tab:red")
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.plot(epochs, 100 * np.array(history["train_acc"]), marker="o", label="train")
    ax_acc.plot(epochs, 100 * np.array(history["test_acc"]), marker="s", label="test")
    ax_acc.set(title="accuracy", xlabel="epoch", ylabel="%")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle("smolgrad: a CNN on scikit-learn's 8x8 digits")
    fig.tight_layout()
    fig.savefig(path)


def save_graph(model: nn.Module, x: sg.Tensor, y: sg.Tensor, out_dir: str) -> list:
    """Draw the graph of one training step (forward, loss, backward) on a few samples;
    returns the files written: DOT text, an SVG and a PNG (Graphviz's drawing when its
    `dot` program is installed, else smolgrad's own layered layout)."""
    from smolgrad.viz import draw_graph

    loss = F.cross_entropy(model(x), y)
    loss.backward(retain_graph=True)   # keep the graph so that grad norms can be drawn
    names = {"images": x, "labels": y, "loss": loss, **dict(model.named_parameters())}
    graph = draw_graph(loss, params=names)
    model.zero_grad()
    written = graph.save(os.path.join(out_dir, "model_graph.svg"))
    return written + graph.save(os.path.join(out_dir, "model_graph.png"))[1:]


def save_walkthrough(out_dir: str, device: str, seed: int = 0) -> str:
    """The backward pass of a tiny MLP (2 -> 3 -> 1, tanh, squared error on 4 points) as a
    page to click through (`Explanation.save_html`), every step checked by finite
    differences. Returns the path of the page."""
    from smolgrad.viz import explain_backward

    sg.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).to(device)
    points = sg.randn(4, 2, device=device)
    targets = sg.randn(4, 1, device=device)
    loss = F.mse_loss(mlp(points), targets)
    names = {"x": points, "target": targets, "loss": loss, **dict(mlp.named_parameters())}
    explanation = explain_backward(loss, check=True, params=names)
    return explanation.save_html(os.path.join(out_dir, "backward_walkthrough.html"))


def run_demo(epochs: int = 15, batch_size: int = 32, lr: float = 3e-3, device=None,
             out: str = "demo_out", seed: int = 0, train_limit: int | None = None,
             progress: bool = True) -> DemoResult:
    """Train, evaluate, write the plot and the graph; returns what happened."""
    from tqdm.auto import tqdm

    device = str(sg.device(device)) if device is not None else str(sg.get_default_device())
    os.makedirs(out, exist_ok=True)
    train_x, train_y, test_x, test_y = load_digits_split()
    if train_limit:
        train_x, train_y = train_x[:train_limit], train_y[:train_limit]
    sg.manual_seed(seed)
    model = DigitsCNN().to(device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loader = DataLoader(TensorDataset(sg.tensor(train_x, device=device),
                                      sg.tensor(train_y, device=device)),
                        batch_size=batch_size, shuffle=True)
    test_inputs = sg.tensor(test_x, device=device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"digits: {len(train_x)} training / {len(test_x)} test images of 8x8; "
          f"CNN with {n_params:,} parameters on {device}")

    history = {"loss": [], "train_acc": [], "test_acc": []}
    bar = tqdm(total=epochs * len(loader), desc="training", unit="batch", disable=not progress,
               dynamic_ncols=True)
    start, total_seen = time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in loader:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batch = len(y)
            loss_sum += loss.item() * batch
            correct += int((logits.argmax(dim=1) == y).sum().item())
            seen += batch
            total_seen += batch
            rate = total_seen / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(epoch=epoch, loss=f"{loss_sum / seen:.4f}",
                            acc=f"{100 * correct / seen:.1f}%", samples_s=f"{rate:,.0f}",
                            refresh=False)
            bar.update(1)
        scheduler.step()
        history["loss"].append(loss_sum / seen)
        history["train_acc"].append(correct / seen)
        history["test_acc"].append(evaluate_accuracy(model, test_inputs, test_y))
    bar.close()
    seconds = time.perf_counter() - start
    test_accuracy = history["test_acc"][-1]
    n_correct = round(test_accuracy * len(test_y))
    print(f"test accuracy: {100 * test_accuracy:.2f}% ({n_correct}/{len(test_y)}) after "
          f"{epochs} epochs in {seconds:.1f} s")

    plot_path = os.path.join(out, "training_curves.png")
    save_plot(history, plot_path)
    graph_paths = save_graph(model, sg.tensor(train_x[:4], device=device),
                             sg.tensor(train_y[:4], device=device), out)
    page_path = save_walkthrough(out, device, seed)
    print(f"wrote the loss/accuracy plot to {plot_path}")
    print(f"wrote the computational graph of one training step to {', '.join(graph_paths)}")
    print(f"wrote a page that steps through backward of a tiny MLP to {page_path} "
          f"(open it in a browser)")
    return DemoResult(test_accuracy, seconds, history, plot_path, graph_paths, page_path)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m smolgrad.demo",
        description="Train a small CNN on scikit-learn's handwritten digits with smolgrad; "
                    "print the test accuracy; write a loss/accuracy plot, the "
                    "computational graph and a page that steps through backward.")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training set (default 15; 2 with --quick)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--device", default=None,
                        help="cpu, mlx, cuda or gpu (default: SMOLGRAD_DEVICE or cpu)")
    parser.add_argument("--out", default="demo_out",
                        help="folder for the plot and the graph (default: ./demo_out)")
    parser.add_argument("--seed", type=int, default=0, help="seed of init and shuffling")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run (2 epochs on 480 images) to check that all works")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 15)
    if epochs < 1 or args.batch_size < 1:
        raise SystemExit(f"demo: --epochs ({epochs}) and --batch-size ({args.batch_size}) "
                         f"must be at least 1")
    if args.device is not None:
        try:
            sg.device(args.device)
        except ValueError as err:
            raise SystemExit(f"demo: --device {args.device!r}: {err}") from None
        if not sg.is_available(args.device):
            raise SystemExit(f"demo: --device {args.device!r} is not available on this "
                             f"machine (its library or hardware is missing); try --device cpu")
    run_demo(epochs=epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
             out=args.out, seed=args.seed, train_limit=480 if args.quick else None,
             progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
