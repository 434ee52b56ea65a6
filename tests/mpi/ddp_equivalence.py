"""Run under `mpiexec -n N`: DDP with per-rank batch b equals one process with batch N*b.

argv: device, steps, per-rank batch. Every rank starts from a *different* random model
(seeded by its rank): DDP must broadcast rank 0's weights. Rank r reads its batches
through a DistributedSampler (no shuffle), so at step s the ranks together hold exactly
the samples s*N*b .. (s+1)*N*b - 1, which the single-process reference (run on rank 0,
seeded like rank 0) uses as its batch. After training:
  - every rank's parameters are bitwise identical (checked with all_gather);
  - rank 0's parameters match the reference to float32 tolerance.
"""

import sys

import numpy as np

import smolgrad as sg
import smolgrad.distributed as dist
import smolgrad.nn as nn
import smolgrad.optim as optim
from smolgrad.nn import functional as F


def make_model(seed: int, device: str) -> nn.Module:
    sg.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3)).to(device)


def flat_parameters(model: nn.Module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def main() -> None:
    device, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    global_batch = world * batch
    data_rng = np.random.default_rng(1234)
    features = data_rng.standard_normal((steps * global_batch, 6)).astype(np.float32)
    labels = data_rng.integers(0, 3, steps * global_batch)

    model = dist.DistributedDataParallel(make_model(seed=100 + rank, device=device),
                                         bucket_cap_mb=0.001)  # several buckets
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sampler = dist.DistributedSampler(range(len(labels)), shuffle=False)
    mine = list(sampler)
    assert len(mine) == steps * batch, (len(mine), steps, batch)
    for step in range(steps):
        rows = mine[step * batch:(step + 1) * batch]
        x = sg.tensor(features[rows], device=device)
        y = sg.tensor(labels[rows], device=device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    mine_flat = sg.tensor(flat_parameters(model.module))
    everyone = [sg.zeros_like(mine_flat) for _ in range(world)]
    dist.all_gather(everyone, mine_flat)
    for r, theirs in enumerate(everyone):
        assert np.array_equal(theirs.numpy(), mine_flat.numpy()), f"rank {r} diverged"

    if rank == 0:
        reference = make_model(seed=100, device=device)
        ref_optimizer = optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
        for step in range(steps):
            rows = slice(step * global_batch, (step + 1) * global_batch)
            ref_optimizer.zero_grad()
            x = sg.tensor(features[rows], device=device)
            y = sg.tensor(labels[rows], device=device)
            F.cross_entropy(reference(x), y).backward()
            ref_optimizer.step()
        want, got = flat_parameters(reference), mine_flat.numpy()
        start = flat_parameters(make_model(seed=100, device=device))
        assert not np.allclose(start, want), "training did not move the parameters"
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    dist.destroy_process_group()
    print(f"OK rank {rank}/{world}", flush=True)


if __name__ == "__main__":
    main()
