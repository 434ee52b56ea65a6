"""Data-parallel training over MPI: the process group, collectives, and DDP.

Data parallelism in one paragraph: start N copies of the same training script (ranks),
e.g. `mpiexec -n 4 python train.py`. Every rank holds a full copy of the model, starting
from the same weights (rank 0's, broadcast when the model is wrapped). Each step, every
rank runs forward and backward on its own slice of the batch (`DistributedSampler` deals
the slices), then the ranks average their gradients with an all-reduce, so every rank
takes the same optimizer step and the copies stay identical. With per-rank batch b, N
ranks compute exactly the step that one process would compute with batch N*b:

    mean over the N*b samples of dL/dw  =  (1/N) * sum over ranks of (mean over its b)

The pieces, with PyTorch's names (`torch.distributed`):

    init_process_group()      join the MPI world (a world of 1 when not launched by MPI)
    get_rank(), get_world_size(), is_initialized(), destroy_process_group()
    all_reduce(t, op)         every rank's t becomes op(t on all ranks)   (in place)
    broadcast(t, src)         every rank's t becomes rank src's t         (in place)
    all_gather(ts, t)         ts[i] becomes rank i's t                    (in place)
    barrier()                 wait until every rank gets here
    DistributedDataParallel   a Module wrapper that averages gradients during backward
    DistributedSampler        each rank's share of the dataset's indices

Transport: mpi4py. MPI moves host memory: tensors on "mlx" or "cuda" are copied to NumPy
arrays, reduced, and copied back (the `mpich` wheel from PyPI is not CUDA-aware, so there
is no device-to-device path to take). This module is the one place in smolgrad where
NumPy is imported above the backends: MPI's buffers *are* host arrays.

A rank that dies must not leave the others blocked in a collective forever: when the
world has more than one rank, `init_process_group` installs an exception hook that prints
the traceback and calls `MPI_Abort`, which ends every rank of the job with a non-zero
exit status.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
import time
import traceback
from collections.abc import Iterator

import numpy as np

from .engine import Tensor, is_grad_enabled, topological_order
from .nn.module import Module
from .utils.data import distributed as _sampler_module
from .utils.data.distributed import DistributedSampler

__all__ = [
    "DistributedDataParallel", "DistributedSampler", "ReduceOp", "all_gather", "all_reduce",
    "barrier", "broadcast", "destroy_process_group", "get_rank", "get_world_size",
    "init_process_group", "is_available", "is_initialized",
]

# Environment variables that MPI launchers set in the processes they start: MPICH/Hydra
# (PMI_*), Open MPI (OMPI_*), PMIx-based launchers, MVAPICH.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE",
                            "MV2_COMM_WORLD_SIZE")
_LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                            "MV2_COMM_WORLD_RANK")


class ReduceOp(enum.Enum):
    """How `all_reduce` combines the ranks' values (elementwise)."""

    SUM = "sum"
    AVG = "avg"          # SUM divided by the world size (floating point tensors only)
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"


class _ProcessGroup:
    """The world this process belongs to: its communicator, rank and size.

    `comm` is mpi4py's `MPI.COMM_WORLD`, or None for a world of one process (not launched
    by MPI, or mpi4py not installed), where every collective is the identity.
    """

    def __init__(self, comm, rank: int, world_size: int, backend: str):
        self.comm = comm
        self.rank = rank
        self.world_size = world_size
        self.backend = backend
        self.previous_excepthook = None


_world: _ProcessGroup | None = None


def is_available() -> bool:
    """Can this process talk MPI (is mpi4py importable)?"""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _launched_world_size() -> int | None:
    """The world size an MPI launcher announced in the environment, or None if no MPI
    launcher started this process."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name)
        if value:
            return int(value)
    if any(os.environ.get(name) for name in _LAUNCHER_RANK_VARIABLES):
        return 1
    return None


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout=None, world_size: int = -1, rank: int = -1) -> None:
    """Join the MPI world started by `mpiexec -n N` / `mpirun -n N`.

    `backend` is "mpi" (None means "mpi"; "gloo" and "nccl" are PyTorch's other transports
    and are not provided). Rank and world size come from MPI; `world_size=` and `rank=`,
    when given, are checked against them. `init_method` and `timeout` are accepted for
    PyTorch compatibility and unused: MPI's launcher already connected the processes.

    A process not started by an MPI launcher (plain `python train.py`) becomes a world of
    one process, rank 0, without loading MPI: the same script runs single-process
    unchanged.
    """
    global _world
    if _world is not None:
        raise RuntimeError("init_process_group: the process group is already initialized; "
                           "call destroy_process_group() first to start a new one")
    if backend is not None and str(backend).lower() != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not available in "
                         f"smolgrad; the only backend is 'mpi' (launch with "
                         f"`mpiexec -n N python script.py`)")
    launched_size = _launched_world_size()
    if launched_size is None:
        group = _ProcessGroup(None, 0, 1, "mpi")
    else:
        try:
            from mpi4py import MPI
        except ImportError:
            if launched_size > 1:
                raise RuntimeError(
                    f"init_process_group: this process was started by an MPI launcher with "
                    f"{launched_size} processes, but mpi4py is not installed, so the ranks "
                    f"cannot communicate; pip install 'smolgrad[mpi]' (mpi4py, mpich)"
                ) from None
            group = _ProcessGroup(None, 0, 1, "mpi")
        else:
            comm = MPI.COMM_WORLD
            group = _ProcessGroup(comm, comm.Get_rank(), comm.Get_size(), "mpi")
    if world_size not in (-1, None) and world_size != group.world_size:
        raise ValueError(f"init_process_group: world_size={world_size} was requested, but "
                         f"the MPI world has {group.world_size} processes")
    if rank not in (-1, None) and rank != group.rank:
        raise ValueError(f"init_process_group: rank={rank} was requested, but MPI gave this "
                         f"process rank {group.rank}")
    if group.world_size > 1:
        group.previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_uncaught_exception
    _world = group
    _sampler_module.set_process_group_world((group.world_size, group.rank))


def _abort_on_uncaught_exception(exc_type, exc_value, exc_traceback) -> None:
    """sys.excepthook while a multi-rank world is up: print the error, then abort the job.

    Without this, the failing rank would exit while the others wait in their next
    collective for a message that never comes: a hang instead of an error.
    """
    traceback.print_exception(exc_type, exc_value, exc_traceback)
    rank = _world.rank if _world is not None else "?"
    print(f"smolgrad.distributed: rank {rank} raised {exc_type.__name__}; aborting all ranks",
          file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    if _world is not None and _world.comm is not None:
        _world.comm.Abort(1)


def destroy_process_group() -> None:
    """Leave the process group (MPI itself is finalized by mpi4py when Python exits)."""
    global _world
    if _world is None:
        return
    if _world.previous_excepthook is not None and sys.excepthook is _abort_on_uncaught_exception:
        sys.excepthook = _world.previous_excepthook
    _world = None
    _sampler_module.set_process_group_world(None)


def is_initialized() -> bool:
    return _world is not None


def _require_world(op: str) -> _ProcessGroup:
    if _world is None:
        raise ValueError(f"{op}: the default process group has not been initialized; call "
                         f"smolgrad.distributed.init_process_group() first")
    return _world


def _check_group(op: str, group) -> None:
    if group is not None:
        raise NotImplementedError(f"{op}: only the default group (group=None) is supported; "
                                  f"smolgrad has no new_group()")


def get_rank(group=None) -> int:
    """This process's rank, 0 .. world_size - 1."""
    _check_group("get_rank", group)
    return _require_world("get_rank").rank


def get_world_size(group=None) -> int:
    """The number of processes in the world."""
    _check_group("get_world_size", group)
    return _require_world("get_world_size").world_size


def get_backend(group=None) -> str:
    _check_group("get_backend", group)
    return _require_world("get_backend").backend


# ---------------------------------------------------------------------------------------
# Host staging: MPI reads and writes NumPy arrays
# ---------------------------------------------------------------------------------------

# dtypes MPI reduces natively; others travel as the wider type on the right
_WIRE_DTYPES = {np.dtype(np.float16): np.dtype(np.float32),
                np.dtype(np.bool_): np.dtype(np.int32)}


def _to_host(tensor: Tensor) -> np.ndarray:
    """A fresh, contiguous NumPy copy of the tensor's values, in a dtype MPI can reduce."""
    array = np.asarray(tensor.backend.to_numpy(tensor.array))
    wire = _WIRE_DTYPES.get(array.dtype, array.dtype)
    return np.array(array, dtype=wire, order="C", copy=True)


def _write_back(tensor: Tensor, host: np.ndarray) -> None:
    """Make `tensor` hold `host`'s values (its own shape, dtype and device), in place."""
    host = host.reshape(tensor.shape)
    if tensor.dtype.name == "bool":
        host = host != 0
    tensor._assign(tensor.backend.asarray(host))


def _mpi_op(op: ReduceOp):
    from mpi4py import MPI

    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN}[op]


def _check_tensor(op: str, tensor) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a smolgrad Tensor, got {type(tensor).__name__}")


class _CompletedWork:
    """What `async_op=True` returns: the collective already ran, so `wait()` is instant."""

    def wait(self, timeout=None) -> bool:
        return True

    def is_completed(self) -> bool:
        return True


def _finish(async_op: bool):
    return _CompletedWork() if async_op else None


# ---------------------------------------------------------------------------------------
# Collectives on tensors (in place, like torch.distributed)
# ---------------------------------------------------------------------------------------


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None,
               async_op: bool = False):
    """Replace `tensor` on every rank by the elementwise reduction over all ranks.

        SUM: t = t_0 + t_1 + ... + t_{N-1}        AVG: t = SUM / N
        MAX, MIN, PRODUCT: likewise elementwise

    Every rank must call it with a tensor of the same shape and dtype. The tensor is
    changed in place (its autograd history is not extended: this is not differentiable).
    """
    _check_tensor("all_reduce", tensor)
    _check_group("all_reduce", group)
    if not isinstance(op, ReduceOp):
        raise TypeError(f"all_reduce: op must be a smolgrad.distributed.ReduceOp (SUM, AVG, "
                        f"PRODUCT, MAX, MIN), got {op!r}")
    if op is ReduceOp.AVG and not tensor.dtype.is_floating_point:
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating point tensor, got dtype "
                        f"{tensor.dtype.name} (shape {tuple(tensor.shape)}); use SUM and divide")
    world = _require_world("all_reduce")
    if world.comm is None or world.world_size == 1:
        return _finish(async_op)
    send = _to_host(tensor)
    received = np.empty_like(send)
    world.comm.Allreduce(send, received, op=_mpi_op(op))
    if op is ReduceOp.AVG:
        received /= world.world_size
    _write_back(tensor, received)
    return _finish(async_op)


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False):
    """Replace `tensor` on every rank by rank `src`'s tensor (same shape and dtype)."""
    _check_tensor("broadcast", tensor)
    _check_group("broadcast", group)
    world = _require_world("broadcast")
    if not isinstance(src, int) or not 0 <= src < world.world_size:
        raise ValueError(f"broadcast: src must be a rank in [0, {world.world_size - 1}], "
                         f"got {src!r}")
    if world.comm is None or world.world_size == 1:
        return _finish(async_op)
    buffer = _to_host(tensor)
    world.comm.Bcast(buffer, root=src)
    if world.rank != src:
        _write_back(tensor, buffer)
    return _finish(async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Fill `tensor_list[i]` with rank i's `tensor`, on every rank.

    `tensor_list` holds world_size tensors of `tensor`'s shape and dtype (preallocated,
    e.g. `[sg.zeros_like(t) for _ in range(world_size)]`), as in PyTorch.
    """
    _check_tensor("all_gather", tensor)
    _check_group("all_gather", group)
    world = _require_world("all_gather")
    if not isinstance(tensor_list, list) or len(tensor_list) != world.world_size:
        got = len(tensor_list) if isinstance(tensor_list, list) else type(tensor_list).__name__
        raise ValueError(f"all_gather: tensor_list must be a list of world_size = "
                         f"{world.world_size} tensors, got {got}")
    for i, out in enumerate(tensor_list):
        _check_tensor("all_gather", out)
        if out.shape != tensor.shape or out.dtype != tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] has shape {tuple(out.shape)} and dtype "
                             f"{out.dtype.name}, but the input tensor has shape "
                             f"{tuple(tensor.shape)} and dtype {tensor.dtype.name}")
    send = _to_host(tensor)
    if world.comm is None or world.world_size == 1:
        _write_back(tensor_list[0], send)
        return _finish(async_op)
    received = np.empty((world.world_size,) + send.shape, dtype=send.dtype)
    world.comm.Allgather(send, received)
    for out, values in zip(tensor_list, received):
        _write_back(out, values)
    return _finish(async_op)


def barrier(group=None, async_op: bool = False):
    """Block until every rank has called barrier()."""
    _check_group("barrier", group)
    world = _require_world("barrier")
    if world.comm is not None and world.world_size > 1:
        world.comm.Barrier()
    return _finish(async_op)


def _broadcast_coalesced(tensors: list, src: int = 0) -> None:
    """Broadcast many tensors with one Bcast per dtype: pack them into a flat host buffer,
    broadcast it, unpack. Used for a model's parameters and buffers."""
    world = _require_world("broadcast")
    if world.comm is None or world.world_size == 1 or not tensors:
        return
    groups: dict = {}
    for t in tensors:
        groups.setdefault(t.dtype.name, []).append(t)
    for group in groups.values():
        flat = np.concatenate([_to_host(t).ravel() for t in group])
        world.comm.Bcast(flat, root=src)
        if world.rank != src:
            offset = 0
            for t in group:
                _write_back(t, flat[offset:offset + t.numel()])
                offset += t.numel()


# ---------------------------------------------------------------------------------------
# DistributedDataParallel
# ---------------------------------------------------------------------------------------


class _Bucket:
    """Parameters whose gradients travel together in one flat all-reduce.

    `indices` are positions in the reducer's parameter list; `missing` counts those whose
    gradient has not arrived yet in this iteration.
    """

    def __init__(self, indices: list, dtype_name: str, numel: int):
        self.indices = indices
        self.dtype_name = dtype_name
        self.numel = numel
        self.missing = len(indices)
        self.send = None
        self.received = None
        self.request = None


class _GradReadyHook:
    """The hook DDP registers on each parameter: tells the reducer that parameter `index`
    has its gradient for this backward. (A small class rather than a closure, so that the
    state it carries is visible.)"""

    def __init__(self, reducer: _Reducer, index: int):
        self.reducer = reducer
        self.index = index

    def __call__(self, grad: Tensor) -> Tensor | None:
        return self.reducer.mark_ready(self.index, grad)


class _Reducer:
    """Averages the parameters' gradients across ranks, bucket by bucket, during backward.

    The engine calls a leaf's hooks exactly once per backward, with that leaf's complete
    gradient for this backward, just before adding it into `.grad`. So when the hook of
    parameter p fires, the gradient p will hold afterwards is known: `p.grad + grad` (or
    `grad` when `.grad` is None). The reducer records that value; when every parameter of
    a bucket has one, it packs them into one flat array and starts a non-blocking
    all-reduce (MPI_Iallreduce) for the bucket, so communication can overlap the rest of
    backward. Buckets are started strictly in index order, so every rank issues the same
    collectives in the same order (MPI's rule), whatever order its hooks fired in.

    When the last parameter's hook fires, every other parameter has already received its
    gradient: the reducer waits for all buckets, divides by the world size, writes the
    averages into the other parameters' `.grad`, and returns the average for the last one
    in place of its gradient (clearing its `.grad` first, so the engine stores exactly
    the average). When `backward()` returns, every `.grad` holds the average over ranks.
    """

    def __init__(self, params: list, names: list, bucket_cap_bytes: int, world: _ProcessGroup):
        self.params = params
        self.names = names
        self.world = world
        self.buckets = self._make_buckets(bucket_cap_bytes)
        self.bucket_of = {}
        self.offset_of = {}
        for b, bucket in enumerate(self.buckets):
            offset = 0
            for i in bucket.indices:
                self.bucket_of[i] = b
                self.offset_of[i] = offset
                offset += params[i].numel()
        self.local_grads: list = [None] * len(params)
        self.ready = [False] * len(params)
        self.num_ready = 0
        self.num_from_hooks = 0
        self.next_bucket = 0
        self.comm_seconds = 0.0   # time spent packing, reducing and unpacking
        self.enabled = True       # False for a backward after a forward under no_sync()
        self.handles = [p.register_hook(_GradReadyHook(self, i)) for i, p in enumerate(params)]

    def _make_buckets(self, cap_bytes: int) -> list:
        """Group parameters in reverse registration order (roughly the order in which
        backward produces their gradients), one dtype per bucket, up to `cap_bytes`."""
        buckets, current, current_bytes, current_dtype = [], [], 0, None
        for i in reversed(range(len(self.params))):
            p = self.params[i]
            size = p.numel() * p.dtype.itemsize
            if current and (current_dtype != p.dtype.name or current_bytes + size > cap_bytes):
                buckets.append(self._bucket(current, current_dtype))
                current, current_bytes = [], 0
            current.append(i)
            current_bytes += size
            current_dtype = p.dtype.name
        if current:
            buckets.append(self._bucket(current, current_dtype))
        return buckets

    def _bucket(self, indices: list, dtype_name: str) -> _Bucket:
        return _Bucket(indices, dtype_name, sum(self.params[i].numel() for i in indices))

    def remove_hooks(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    @property
    def in_progress(self) -> bool:
        return self.num_ready > 0

    def reset(self) -> None:
        self.local_grads = [None] * len(self.params)
        self.ready = [False] * len(self.params)
        self.num_ready = 0
        self.num_from_hooks = 0
        self.next_bucket = 0
        for bucket in self.buckets:
            bucket.missing = len(bucket.indices)
            bucket.send = bucket.received = bucket.request = None

    def abandon(self) -> None:
        """Complete the all-reduces already started (every rank started them) and drop
        the iteration's state."""
        from mpi4py import MPI

        MPI.Request.Waitall([b.request for b in self.buckets[:self.next_bucket]])
        self.reset()

    def mark_ready(self, index: int, grad: Tensor | None, from_hook: bool = True):
        """Record parameter `index`'s gradient for this iteration (None: unused in this
        forward; it contributes its current `.grad`, or zeros)."""
        if not self.enabled:
            return None
        param = self.params[index]
        if self.ready[index]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter '{self.names[index]}' (shape "
                f"{tuple(param.shape)}) received a gradient twice before the gradients were "
                f"averaged; each parameter must get its gradient from one backward per "
                f"forward (or use no_sync() for the extra backward passes)")
        if grad is None:
            final = param.grad
        else:
            final = grad if param.grad is None else param.grad + grad
        self.local_grads[index] = final
        self.ready[index] = True
        self.num_ready += 1
        self.num_from_hooks += from_hook
        bucket = self.buckets[self.bucket_of[index]]
        bucket.missing -= 1
        if bucket.missing == 0:
            self._launch_ready_buckets()
        if self.num_ready < len(self.params):
            return None
        return self._finish(last=index if from_hook else None)

    def _launch_ready_buckets(self) -> None:
        """Start the all-reduce of every complete bucket, in bucket order."""
        start = time.perf_counter()
        while (self.next_bucket < len(self.buckets)
               and self.buckets[self.next_bucket].missing == 0):
            bucket = self.buckets[self.next_bucket]
            pieces = []
            for i in bucket.indices:
                grad = self.local_grads[i]
                if grad is None:
                    # unused everywhere so far: contributes zeros of the wire dtype
                    pieces.append(np.zeros_like(_to_host(self.params[i]).ravel()))
                else:
                    pieces.append(_to_host(grad).ravel())
            bucket.send = np.concatenate(pieces)
            bucket.received = np.empty_like(bucket.send)
            bucket.request = self.world.comm.Iallreduce(bucket.send, bucket.received,
                                                        op=_mpi_op(ReduceOp.SUM))
            self.next_bucket += 1
        self.comm_seconds += time.perf_counter() - start

    def _finish(self, last: int | None) -> Tensor | None:
        """Wait for every bucket, write the averages into `.grad`; return the last
        parameter's average (the engine stores it) when called from its hook."""
        from mpi4py import MPI

        start = time.perf_counter()
        MPI.Request.Waitall([bucket.request for bucket in self.buckets])
        result = None
        for bucket in self.buckets:
            bucket.received /= self.world.world_size
            offset = 0
            for i in bucket.indices:
                param = self.params[i]
                values = bucket.received[offset:offset + param.numel()].reshape(param.shape)
                offset += param.numel()
                average = Tensor._make(
                    param.backend.astype(param.backend.asarray(values), param.dtype),
                    param.backend)
                if i == last:
                    param.grad = None   # the engine will store `average` as the grad
                    result = average
                else:
                    param.grad = average
        self.reset()
        self.comm_seconds += time.perf_counter() - start
        return result


def _tensors_in(value) -> Iterator[Tensor]:
    """Every Tensor inside a forward's output (a Tensor, or tuples/lists/dicts of them)."""
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)


class DistributedDataParallel(Module):
    """Wrap a model for data-parallel training: gradients are averaged across ranks
    automatically during `backward()`.

        model = DistributedDataParallel(MLP())
        loss = F.cross_entropy(model(x), y)   # forward: the wrapped module's forward
        loss.backward()                       # .grad = average over ranks, on every rank
        optimizer.step()                      # identical step on every rank

    At construction, rank 0's parameters and buffers are broadcast to all ranks, so all
    copies start equal. During backward, gradients go through one non-blocking
    all-reduce per bucket of about `bucket_cap_mb` megabytes (not one per parameter:
    a few large messages cost far less latency than many small ones); see `_Reducer`.

    Args:
        module: the model.
        device_ids, output_device: accepted for PyTorch compatibility; the model stays
            on its own device (tensors are staged through host memory for MPI).
        broadcast_buffers: broadcast rank 0's buffers (e.g. BatchNorm running stats)
            at the start of every forward, as PyTorch does.
        bucket_cap_mb: the bucket size (PyTorch's default: 25).
        find_unused_parameters: walk the forward's graph to find the parameters that
            will get no gradient, so that the reduction does not wait for them. Needed
            when some parameters are unused in a forward; costs a graph walk per step.

    Like PyTorch's DDP it is a Module holding the model as the child `module`: so
    `parameters()`, `train()`, `eval()`, `zero_grad()`, `to()` reach the model, and
    `state_dict()` keys carry a "module." prefix. Save `ddp.module.state_dict()` to get
    checkpoints that load into the bare model (and into a PyTorch model).

    Limits: `no_sync()` for gradient accumulation is supported; `sg.autograd.grad()` with
    respect to the parameters is not reduced (as in PyTorch); every rank must run the
    same number of forward/backward steps, or the ranks wait for each other forever.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a smolgrad nn.Module, got "
                            f"{type(module).__name__}")
        _check_group("DistributedDataParallel", process_group)
        world = _require_world("DistributedDataParallel")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        bucket_cap_mb = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        # object.__setattr__: bookkeeping, not submodules/parameters of this Module
        object.__setattr__(self, "_world", world)
        _broadcast_coalesced([p for _, p in module.named_parameters()], src=0)
        _broadcast_coalesced(list(module.buffers()), src=0)
        reducer = None
        if world.comm is not None and world.world_size > 1 and named:
            reducer = _Reducer([p for _, p in named], [name for name, _ in named],
                               int(bucket_cap_mb * 1024 * 1024), world)
        object.__setattr__(self, "reducer", reducer)

    def forward(self, *args, **kwargs):
        reducer = self.reducer
        training_step = reducer is not None and is_grad_enabled()
        if training_step:
            self._check_previous_reduction(reducer)
            # PyTorch decides at forward time whether the coming backward synchronizes
            reducer.enabled = self.require_backward_grad_sync
        if reducer is not None and self.broadcast_buffers:
            _broadcast_coalesced(list(self.module.buffers()), src=0)
        output = self.module(*args, **kwargs)
        if training_step and self.find_unused_parameters and reducer.enabled:
            self._mark_unused_parameters(reducer, output)
        return output

    def _check_previous_reduction(self, reducer: _Reducer) -> None:
        if not reducer.in_progress:
            return
        if reducer.num_from_hooks == 0:
            # only marks made by find_unused_parameters in a forward that was never
            # followed by backward: finish the all-reduces already started, forget them
            reducer.abandon()
            return
        missing = [name for name, ready in zip(reducer.names, reducer.ready) if not ready]
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise RuntimeError(
            f"DistributedDataParallel: the previous backward produced gradients for only "
            f"{reducer.num_ready} of {len(reducer.params)} parameters, so the gradients were "
            f"never averaged across ranks (no gradient for: {shown}). If some parameters "
            f"are not used in forward, pass find_unused_parameters=True")

    def _mark_unused_parameters(self, reducer: _Reducer, output) -> None:
        roots = [t for t in _tensors_in(output) if t.requires_grad]
        reachable = {id(t) for t in topological_order(roots)} if roots else set()
        for i, param in enumerate(reducer.params):
            if id(param) not in reachable and not reducer.ready[i]:
                reducer.mark_ready(i, None, from_hook=False)

    @contextlib.contextmanager
    def no_sync(self):
        """Forwards run inside this context are followed by a local backward: gradients
        accumulate in `.grad` without averaging. The first synchronized backward after
        it averages the accumulated gradients (gradient accumulation without paying
        for an all-reduce per micro-batch)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous
