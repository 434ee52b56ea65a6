"""Run by tests/test_distributed.py under `mpiexec -n N`: every collective, checked exactly.

argv[1] is the device. Each rank asserts its own results; an assertion error aborts the
whole job (smolgrad.distributed's exception hook), so the test sees a non-zero exit.
"""

import sys

import numpy as np

import smolgrad as sg
import smolgrad.distributed as dist


def rank_values(rank: int, dtype) -> np.ndarray:
    """A 2x3 array that differs per rank, with small integer values (exact in any dtype)."""
    return (np.arange(6).reshape(2, 3) * (rank + 1) - 2 * rank).astype(dtype)


def main() -> None:
    device = sys.argv[1]
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    assert dist.is_initialized()
    every = [rank_values(r, np.float32) for r in range(world)]

    expected = {
        dist.ReduceOp.SUM: np.sum(every, axis=0),
        dist.ReduceOp.AVG: np.sum(every, axis=0) / np.float32(world),
        dist.ReduceOp.MAX: np.max(every, axis=0),
        dist.ReduceOp.MIN: np.min(every, axis=0),
        dist.ReduceOp.PRODUCT: np.prod(every, axis=0),
    }
    for op, want in expected.items():
        t = sg.tensor(rank_values(rank, np.float32), device=device)
        dist.all_reduce(t, op=op)
        got = t.numpy()
        assert t.dtype == sg.float32 and t.device == device, (op, t.dtype, t.device)
        assert np.array_equal(got, want.astype(np.float32)), (op, got, want)

    # integers and float64 keep their dtype
    for np_dtype, sg_dtype in ((np.int64, sg.int64), (np.float64, sg.float64)):
        t = sg.tensor(rank_values(rank, np_dtype), device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        assert t.dtype == sg_dtype
        want = np.max([rank_values(r, np_dtype) for r in range(world)], axis=0)
        assert np.array_equal(t.numpy(), want), (t.numpy(), want)

    # a leaf that requires grad can be reduced in place (not recorded by autograd)
    w = sg.tensor(rank_values(rank, np.float32), device=device, requires_grad=True)
    dist.all_reduce(w)
    assert w.requires_grad and w.grad_fn is None
    assert np.array_equal(w.detach().numpy(), expected[dist.ReduceOp.SUM])

    # broadcast from the last rank
    src = world - 1
    t = sg.tensor(rank_values(rank, np.float32), device=device)
    dist.broadcast(t, src=src)
    assert np.array_equal(t.numpy(), rank_values(src, np.float32)), t.numpy()

    # all_gather into preallocated tensors
    t = sg.tensor(rank_values(rank, np.float32), device=device)
    gathered = [sg.zeros(2, 3, device=device) for _ in range(world)]
    dist.all_gather(gathered, t)
    for r, g in enumerate(gathered):
        assert np.array_equal(g.numpy(), rank_values(r, np.float32)), (r, g.numpy())

    dist.barrier()
    dist.destroy_process_group()
    print(f"OK rank {rank}/{world}", flush=True)


if __name__ == "__main__":
    main()
