"""smolgrad.distributed: real MPI jobs (mpiexec + the scripts in tests/mpi/), the
DistributedSampler's arithmetic, and the world of one process without a launcher.

Each MPI job is bounded by a timeout: a hang is a failure, not a stuck test run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import smolgrad as sg

ROOT = Path(__file__).resolve().parent.parent
MPI_SCRIPTS = Path(__file__).resolve().parent / "mpi"
JOB_TIMEOUT = 60


def _mpiexec() -> str | None:
    beside_python = Path(sys.executable).parent / "mpiexec"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("mpiexec")


def run_mpi(ranks: int, script: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run tests/mpi/<script> on `ranks` processes; return the finished job and its time."""
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("mpiexec not found (pip install mpich, or install an MPI)")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'smolgrad[mpi]')")
    # Open MPI refuses to start as root (CI and the GPU machine run as root) unless told;
    # MPICH ignores these variables.
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    command = [mpiexec, "-n", str(ranks), sys.executable, str(MPI_SCRIPTS / script), *args]
    start = time.monotonic()
    try:
        job = subprocess.run(command, capture_output=True, text=True, timeout=JOB_TIMEOUT,
                             env=env, cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"MPI job {script} on {ranks} ranks hung for {JOB_TIMEOUT} s:\n"
                    f"{e.stdout}\n{e.stderr}")
    return job, time.monotonic() - start


def assert_every_rank_ok(job: subprocess.CompletedProcess, ranks: int) -> None:
    assert job.returncode == 0, f"exit {job.returncode}\n{job.stdout}\n{job.stderr}"
    for r in range(ranks):
        assert f"OK rank {r}/{ranks}" in job.stdout, job.stdout + job.stderr


# -- real MPI jobs -------------------------------------------------------------------------


@pytest.mark.parametrize("ranks", [2, 3])
def test_collectives_are_exact(device, ranks):
    job, _ = run_mpi(ranks, "collectives.py", device)
    assert_every_rank_ok(job, ranks)


def test_ddp_two_ranks_equal_one_process_with_double_batch(device):
    job, _ = run_mpi(2, "ddp_equivalence.py", device, "20", "4")
    assert_every_rank_ok(job, 2)


def test_ddp_three_ranks_uneven_buckets(device):
    job, _ = run_mpi(3, "ddp_equivalence.py", device, "5", "3")
    assert_every_rank_ok(job, 3)


def test_ddp_no_sync_and_unused_parameters(device):
    job, _ = run_mpi(2, "ddp_features.py", device)
    assert_every_rank_ok(job, 2)


def test_a_rank_that_raises_ends_the_job_promptly():
    job, seconds = run_mpi(2, "raise_on_one_rank.py")
    assert job.returncode != 0
    assert "deliberate failure on rank 1" in job.stderr
    assert "unreachable" not in job.stdout
    assert seconds < JOB_TIMEOUT / 2


# -- DistributedSampler ------------------------------------------------------------------


def _shares(n: int, replicas: int, **kwargs) -> list[list[int]]:
    from smolgrad.utils.data.distributed import DistributedSampler

    return [list(DistributedSampler(range(n), num_replicas=replicas, rank=r, **kwargs))
            for r in range(replicas)]


@pytest.mark.parametrize("n, replicas", [(10, 2), (10, 3), (7, 4), (3, 5), (12, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_covers_dataset_once_with_padding(n, replicas, shuffle):
    shares = _shares(n, replicas, shuffle=shuffle, seed=7)
    per_rank = -(-n // replicas)
    assert all(len(s) == per_rank for s in shares)
    together = [i for s in shares for i in s]
    assert set(together) == set(range(n))           # every sample is seen
    assert len(together) - n == per_rank * replicas - n  # only the padding repeats


@pytest.mark.parametrize("n, replicas", [(10, 3), (7, 4), (12, 4)])
def test_sampler_drop_last_has_no_repeats(n, replicas):
    shares = _shares(n, replicas, shuffle=True, drop_last=True)
    together = [i for s in shares for i in s]
    assert all(len(s) == n // replicas for s in shares)
    assert len(set(together)) == len(together) == (n // replicas) * replicas


@pytest.mark.parametrize("n, replicas", [(10, 3), (7, 4), (3, 5), (9, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_matches_torch_without_shuffle(n, replicas, drop_last):
    from torch.utils.data import DistributedSampler as TorchSampler

    ours = _shares(n, replicas, shuffle=False, drop_last=drop_last)
    theirs = [list(TorchSampler(range(n), num_replicas=replicas, rank=r, shuffle=False,
                                drop_last=drop_last)) for r in range(replicas)]
    assert ours == theirs


def test_sampler_set_epoch_reshuffles_consistently():
    from smolgrad.utils.data.distributed import DistributedSampler

    samplers = [DistributedSampler(range(20), num_replicas=2, rank=r, seed=3) for r in range(2)]
    epoch0 = [list(s) for s in samplers]
    assert epoch0 == [list(s) for s in samplers]  # same epoch: same order
    for s in samplers:
        s.set_epoch(1)
    epoch1 = [list(s) for s in samplers]
    assert epoch1 != epoch0
    for shares in (epoch0, epoch1):
        assert sorted(shares[0] + shares[1]) == list(range(20))


def test_sampler_rejects_bad_rank():
    from smolgrad.utils.data.distributed import DistributedSampler

    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


# -- a world of one process (no launcher) ------------------------------------------------


@pytest.fixture
def single_process_world(monkeypatch):
    import smolgrad.distributed as dist

    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                 "PMIX_RANK", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    dist.init_process_group()
    yield dist
    dist.destroy_process_group()


def test_uninitialized_use_is_a_clear_error():
    import smolgrad.distributed as dist

    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.all_reduce(sg.ones(2))


def test_single_process_world_collectives_are_identity(device, single_process_world):
    dist = single_process_world
    assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    t = sg.tensor([1.0, -2.0, 3.0], device=device)
    for op in dist.ReduceOp:
        dist.all_reduce(t, op=op)
    dist.broadcast(t, src=0)
    out = [sg.zeros(3, device=device)]
    dist.all_gather(out, t)
    dist.barrier()
    np.testing.assert_array_equal(out[0].numpy(), [1.0, -2.0, 3.0])
    np.testing.assert_array_equal(t.numpy(), [1.0, -2.0, 3.0])
    with pytest.raises(RuntimeError, match="already initialized"):
        dist.init_process_group()
    with pytest.raises(ValueError, match="src"):
        dist.broadcast(t, src=1)
    with pytest.raises(ValueError, match="world_size = 1"):
        dist.all_gather([t, t], t)
    with pytest.raises(TypeError, match="AVG"):
        dist.all_reduce(sg.tensor([1, 2], device=device), op=dist.ReduceOp.AVG)


def test_unknown_backend_is_a_clear_error():
    import smolgrad.distributed as dist

    with pytest.raises(ValueError, match="nccl"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()
