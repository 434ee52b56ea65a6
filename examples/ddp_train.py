"""Data-parallel training of a small MLP over MPI.

    mpiexec -n 2 python examples/ddp_train.py            # two processes
    python examples/ddp_train.py                          # the same script, one process

Every rank builds the same synthetic dataset, reads its own share of it through a
`DistributedSampler`, and trains a copy of the model wrapped in `DistributedDataParallel`,
which averages the gradients across ranks during `backward()`. Only rank 0 prints, shows
progress and writes the checkpoint.

With `--steps N` it instead times N steps on fresh random batches (no data loader) and
prints samples/s and the share of the step spent in gradient all-reduce, e.g. the W2
benchmark workload:

    mpiexec -n 2 python examples/ddp_train.py --features 784 --hidden 512 512 \
        --classes 10 --batch-size 64 --steps 100
"""

from __future__ import annotations

import argparse
import os
import time

import smolgrad as sg
import smolgrad.distributed as dist
from smolgrad import nn, optim
from smolgrad.nn import functional as F
from smolgrad.utils.data import DataLoader, TensorDataset


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="out/ddp_mlp.safetensors",
                        help="written by rank 0 at the end ('' to skip)")
    parser.add_argument("--steps", type=int, default=0,
                        help="benchmark mode: time this many steps instead of training")
    return parser.parse_args()


def make_mlp(features: int, hidden: list, classes: int) -> nn.Sequential:
    layers, width = [], features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def make_dataset(samples: int, features: int, classes: int, seed: int) -> TensorDataset:
    """Gaussian blobs: class c is centred at a random point; the same on every rank
    because every rank uses the same seed."""
    sg.manual_seed(seed)
    centres = sg.randn(classes, features) * 0.3
    labels = sg.randint(0, classes, (samples,))
    points = centres[labels] + sg.randn(samples, features)
    return TensorDataset(points, labels)


def log(*parts) -> None:
    """Print on rank 0 only (every rank runs this script)."""
    if dist.get_rank() == 0:
        print(*parts, flush=True)


def train(args: argparse.Namespace, model: dist.DistributedDataParallel) -> None:
    dataset = make_dataset(args.samples, args.features, args.classes, args.seed)
    sampler = dist.DistributedSampler(dataset, shuffle=True, seed=args.seed)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a different shuffle each epoch, the same on all ranks
        model.train()
        total = sg.zeros(2)       # (sum of losses, number of batches) on this rank
        for x, y in progress(loader, f"epoch {epoch + 1}/{args.epochs}"):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()       # DDP averages the gradients across ranks here
            optimizer.step()
            total += sg.tensor([loss.item(), 1.0])
        dist.all_reduce(total, op=dist.ReduceOp.SUM)  # the loss over the whole world
        accuracy = evaluate(model.module, dataset)
        log(f"epoch {epoch + 1}/{args.epochs}  loss {total[0].item() / total[1].item():.4f}"
            f"  train accuracy {accuracy:.3f}")
    if args.checkpoint and dist.get_rank() == 0:
        os.makedirs(os.path.dirname(args.checkpoint) or ".", exist_ok=True)
        # the bare model's state dict: keys without DDP's "module." prefix
        sg.save(model.module.state_dict(), args.checkpoint)
        log(f"checkpoint written to {args.checkpoint}")
    dist.barrier()  # nobody exits while rank 0 is still writing


def progress(loader: DataLoader, description: str):
    """A progress bar on rank 0 (when tqdm is installed); the plain loader elsewhere."""
    if dist.get_rank() != 0:
        return loader
    try:
        from tqdm import tqdm
    except ImportError:
        return loader
    return tqdm(loader, desc=description, leave=False)


@sg.no_grad()
def evaluate(model: nn.Module, dataset: TensorDataset) -> float:
    model.eval()
    points, labels = dataset.tensors
    predictions = model(points).argmax(dim=1)
    return (predictions == labels).float().mean().item()


def benchmark(args: argparse.Namespace, model: dist.DistributedDataParallel) -> None:
    """Time `args.steps` training steps on random batches; report samples/s (the whole
    world's) and the share of time spent in the gradient all-reduce on rank 0."""
    optimizer = optim.SGD(model.parameters(), lr=args.lr)
    x = sg.randn(args.batch_size, args.features)
    y = sg.randint(0, args.classes, (args.batch_size,))
    warmup = 5
    for step in range(warmup + args.steps):
        if step == warmup:
            dist.barrier()
            start = time.perf_counter()
            comm_at_start = model.reducer.comm_seconds if model.reducer else 0.0
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    dist.barrier()
    seconds = time.perf_counter() - start
    comm = (model.reducer.comm_seconds if model.reducer else 0.0) - comm_at_start
    world = dist.get_world_size()
    samples = args.steps * args.batch_size * world
    log(f"ranks {world}  per-rank batch {args.batch_size}  global batch "
        f"{args.batch_size * world}  {samples / seconds:.0f} samples/s  "
        f"{1000 * seconds / args.steps:.2f} ms/step  all-reduce {100 * comm / seconds:.1f}%"
        f" of the step")


def main() -> None:
    args = parse_args()
    dist.init_process_group("mpi")
    sg.manual_seed(args.seed + dist.get_rank())  # different on purpose: DDP broadcasts
    model = dist.DistributedDataParallel(make_mlp(args.features, args.hidden, args.classes))
    log(f"{dist.get_world_size()} rank(s); model: {model.module}")
    if args.steps:
        benchmark(args, model)
    else:
        train(args, model)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
