"""Run under `mpiexec -n N`: DDP's no_sync() accumulation and unused-parameter handling.

argv[1] is the device. Expected gradients are computed with a plain (unwrapped) copy of
the model and averaged with all_reduce, independently of DDP's reducer.
"""

import sys

import numpy as np

import smolgrad as sg
import smolgrad.distributed as dist
from smolgrad import nn


class TwoHeads(nn.Module):
    """`head_b` is never used by forward: its parameters get no gradient."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 5)
        self.head_a = nn.Linear(5, 2)
        self.head_b = nn.Linear(5, 2)

    def forward(self, x):
        return self.head_a(self.body(x).tanh())


def expected_grads(model: nn.Module, batches: list, average: bool = True) -> list:
    """The sum over `batches` of each parameter's gradient, averaged over ranks."""
    plain = TwoHeads().to(model.body.weight.device)
    plain.load_state_dict(model.state_dict())
    for x in batches:
        (plain(x) ** 2).sum().backward()
    grads = []
    for p in plain.parameters():
        g = p.grad if p.grad is not None else sg.zeros_like(p)
        g = g.detach().clone()
        if average:
            dist.all_reduce(g, op=dist.ReduceOp.AVG)
        grads.append(g.numpy())
    return grads


def main() -> None:
    device = sys.argv[1]
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    sg.manual_seed(10 + rank)
    batches = [sg.randn(3, 4, device=device) for _ in range(2)]

    # gradient accumulation: the first micro-batch under no_sync, the second synced
    ddp = dist.DistributedDataParallel(TwoHeads().to(device), find_unused_parameters=True)
    want = expected_grads(ddp.module, batches)
    local_first = expected_grads(ddp.module, batches[:1], average=False)
    with ddp.no_sync():
        (ddp(batches[0]) ** 2).sum().backward()
    for p, w in zip(ddp.module.parameters(), local_first):  # not averaged yet
        got = p.grad.numpy() if p.grad is not None else np.zeros_like(w)
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    (ddp(batches[1]) ** 2).sum().backward()
    for p, w in zip(ddp.module.parameters(), want):
        np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-5, atol=1e-6)

    # without find_unused_parameters, the unused head stops the reduction: a clear error
    strict = dist.DistributedDataParallel(TwoHeads().to(device))
    (strict(batches[0]) ** 2).sum().backward()
    try:
        strict(batches[1])
    except RuntimeError as e:
        assert "find_unused_parameters" in str(e) and "head_b" in str(e), str(e)
    else:
        raise AssertionError("a forward after an incomplete reduction did not raise")
    dist.destroy_process_group()
    print(f"OK rank {rank}/{world}", flush=True)


if __name__ == "__main__":
    main()
