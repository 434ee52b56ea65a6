"""Train a small network on MNIST, read from the standard IDX files.

    python examples/mnist.py --data ~/data/mnist              # an MLP, 3 epochs
    python examples/mnist.py --data ~/data/mnist --model cnn --epochs 2 --device gpu

The folder must hold the four files of the MNIST distribution, gzipped or not:

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

Nothing is downloaded: fetch them once from any MNIST mirror and point --data at them.

The IDX format (one file per array) is simple enough to parse by hand, which `read_idx`
does:

    bytes 0-1   0x00 0x00                      the magic number starts with two zeros,
    byte  2     the element type code          0x08 uint8, 0x09 int8, 0x0B int16,
                                               0x0C int32, 0x0D float32, 0x0E float64
    byte  3     the number of dimensions n
    then        n sizes, each a big-endian unsigned 32-bit integer
    then        the elements, row-major, big-endian
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import struct
import sys
import time

import numpy as np

import smolgrad as sg
from smolgrad import nn, optim
from smolgrad.nn import functional as F
from smolgrad.utils.data import DataLoader, TensorDataset

# IDX element type code -> the big-endian NumPy dtype of the stored elements.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class IDXError(ValueError):
    """A file that is not a well-formed IDX file."""


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed, by the .gz suffix) into an array of
    the stored shape and element type, in native byte order."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise IDXError(f"{path}: {len(raw)} bytes is too short for an IDX header (4 bytes)")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IDXError(f"{path}: not an IDX file: the magic number must start with two zero "
                       f"bytes, found 0x{zero0:02x} 0x{zero1:02x}")
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise IDXError(f"{path}: unknown IDX element type code 0x{type_code:02x} "
                       f"(known: {known})")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise IDXError(f"{path}: truncated header: {ndim} dimensions need {header_size} "
                       f"bytes, the file has {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    payload = len(raw) - header_size
    if payload != expected:
        what = "truncated" if payload < expected else "has trailing bytes"
        raise IDXError(f"{path}: {what}: shape {shape} of {dtype.newbyteorder('=').name} "
                       f"needs {expected} data bytes, found {payload}")
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header_size)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def find_mnist_file(folder: str, name: str) -> str | None:
    """The path of `name` in folder, as given, gzipped, or with the '.idx' dot spelling
    some mirrors use (train-images.idx3-ubyte); None if none exists."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def load_mnist(folder: str) -> dict:
    """The four MNIST arrays from folder; exits with a clear message when files are
    missing. Images come back as float32 in [0, 1], shape (N, 28, 28); labels int64 (N,)."""
    paths, missing = {}, []
    for key, name in MNIST_FILES.items():
        path = find_mnist_file(folder, name)
        if path is None:
            missing.append(name)
        paths[key] = path
    if missing:
        raise SystemExit(
            f"MNIST files not found in '{os.path.abspath(folder)}': missing "
            f"{', '.join(missing)} (plain or .gz). Download the four MNIST IDX files "
            f"({', '.join(MNIST_FILES.values())}) from an MNIST mirror, put them in that "
            f"folder, or pass --data FOLDER.")
    data = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise SystemExit(f"MNIST {split} files disagree: images of shape {images.shape}, "
                             f"labels of shape {labels.shape}")
        data[f"{split}_images"] = images.astype(np.float32) / 255.0
        data[f"{split}_labels"] = labels.astype(np.int64)
    return data


def make_model(kind: str, height: int, width: int) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(height * width, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # 8 x H/2 x W/2
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 16 x H/4 x W/4
            nn.Flatten(), nn.Linear(16 * (height // 4) * (width // 4), 10))
    raise ValueError(f"unknown model '{kind}' (use mlp or cnn)")


@sg.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: str,
             batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = sg.tensor(images[start:start + batch_size, None], device=device)
        predicted = model(x).argmax(dim=1).numpy()
        correct += int((predicted == labels[start:start + batch_size]).sum())
    model.train()
    return correct / max(len(images), 1)


def train(args: argparse.Namespace) -> dict:
    """Train and evaluate; returns the per-epoch losses and the final test accuracy."""
    data = load_mnist(args.data)
    train_images, train_labels = data["train_images"], data["train_labels"]
    if args.limit:
        train_images, train_labels = train_images[:args.limit], train_labels[:args.limit]
    sg.manual_seed(args.seed)
    height, width = train_images.shape[1:]
    model = make_model(args.model, height, width).to(args.device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    dataset = TensorDataset(sg.tensor(train_images[:, None]), sg.tensor(train_labels))
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
    print(f"MNIST: {len(train_images)} training and {len(data['test_images'])} test images "
          f"of {height}x{width}; model {args.model} on {args.device}")
    epoch_losses = []
    for epoch in range(1, args.epochs + 1):
        start, total, seen = time.perf_counter(), 0.0, 0
        for x, y in loader:
            x, y = x.to(args.device), y.to(args.device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            seen += len(y)
        epoch_losses.append(total / max(seen, 1))
        test_acc = accuracy(model, data["test_images"], data["test_labels"], args.device)
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch}: loss {epoch_losses[-1]:.4f}  test accuracy "
              f"{100 * test_acc:.2f}%  ({seen / elapsed:.0f} samples/s)")
    return {"losses": epoch_losses, "test_accuracy": test_acc}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/mnist",
                        help="folder holding the four MNIST IDX files (default: data/mnist)")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=0,
                        help="use only the first N training images (0: all)")
    parser.add_argument("--device", default="cpu", help="cpu, mlx, cuda or gpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    result = train(args)
    print(f"final test accuracy: {100 * result['test_accuracy']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
