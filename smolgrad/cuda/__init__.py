"""`torch.cuda`: the CUDA device's state, as PyTorch programs query and set it.

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.cuda.manual_seed_all(1337)
    torch.cuda.synchronize()                 # before reading a timer
    print(torch.cuda.max_memory_allocated())

smolgrad's "cuda" device is CuPy on the current GPU. On a machine without CuPy or without
an NVIDIA GPU, everything here behaves as PyTorch does on a machine without CUDA:
`is_available()` is False, `device_count()` 0, seeding, `synchronize()`, `empty_cache()`
and `reset_peak_memory_stats()` do nothing, the memory counters read 0 and `memory_stats()`
is empty; the calls that must name a real GPU (`current_device()`, `get_device_name()`,
`get_device_properties()`, `mem_get_info()`) raise RuntimeError saying CUDA is not available.

With a GPU, they act on it through CuPy: `synchronize` waits for the device, the memory
counters read CuPy's memory pool (allocated = bytes in use by arrays, reserved = bytes the
pool holds), `empty_cache` returns the pool's free blocks to the driver. smolgrad drives one
GPU (the current one), so `device_count()` is 1 there. CuPy's pool keeps no peak, so
`max_memory_allocated()`/`max_memory_reserved()` are the largest values these functions
have read since the last `reset_peak_memory_stats()`.
"""

from __future__ import annotations

import os

from ..arrays import get_backend, is_available as _is_available, loaded_backends
from . import amp

__all__ = [
    "amp", "current_device", "device_count", "empty_cache", "get_device_capability",
    "get_device_name", "get_device_properties", "is_available", "is_bf16_supported",
    "is_initialized", "manual_seed", "manual_seed_all", "max_memory_allocated",
    "max_memory_reserved", "mem_get_info", "memory_allocated", "memory_reserved",
    "memory_stats", "reset_peak_memory_stats", "seed", "seed_all", "set_device",
    "synchronize",
]

_peaks = {"allocated": 0, "reserved": 0}  # largest values read since the last reset


def is_available() -> bool:
    """True when CuPy imports and sees an NVIDIA GPU (the "cuda" device works)."""
    return _is_available("cuda")


def device_count() -> int:
    """1 with a GPU (smolgrad drives the current one), 0 without."""
    return 1 if is_available() else 0


def is_initialized() -> bool:
    """True once the "cuda" device has been used (its backend loaded) in this process."""
    return any(backend.device == "cuda" for backend in loaded_backends())


def _cupy(function: str):
    """CuPy, for a function that needs a real GPU; RuntimeError naming `function` if none."""
    if not is_available():
        raise RuntimeError(f"torch.cuda.{function}: CUDA is not available (smolgrad's 'cuda' "
                           f"device needs CuPy and an NVIDIA GPU)")
    return get_backend("cuda").xp


def _check_device_index(function: str, device) -> None:
    """smolgrad drives one GPU: accept None, 0, "cuda", "cuda:0" or a cuda device object."""
    index = getattr(device, "index", device)
    if isinstance(device, str) or hasattr(device, "type"):
        name = str(getattr(device, "type", device))
        if name.split(":")[0] != "cuda":
            raise ValueError(f"torch.cuda.{function}: expected a cuda device, got {device!r}")
        index = int(name.split(":")[1]) if ":" in name else None
    if index not in (None, 0):
        raise ValueError(f"torch.cuda.{function}: smolgrad drives one GPU (device 0), "
                         f"got device {device!r}")


def current_device() -> int:
    _cupy("current_device")
    return 0


def set_device(device) -> None:
    """Accepts device 0 (the only one smolgrad drives); a no-op."""
    _check_device_index("set_device", device)
    _cupy("set_device")


def _properties(function: str, device) -> dict:
    _check_device_index(function, device)
    xp = _cupy(function)
    return xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)


def get_device_properties(device=None) -> dict:
    """CuPy's property dict of the GPU (name, totalGlobalMem, major, minor, ...)."""
    return _properties("get_device_properties", device)


def get_device_name(device=None) -> str:
    name = _properties("get_device_name", device)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def get_device_capability(device=None) -> tuple[int, int]:
    properties = _properties("get_device_capability", device)
    return int(properties["major"]), int(properties["minor"])


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether smolgrad's CuPy backend has bfloat16 arrays (False without a GPU)."""
    return is_available() and bool(getattr(get_backend("cuda"), "has_bfloat16", False))


# -- randomness ------------------------------------------------------------------------------
def manual_seed(seed: int) -> None:
    """Seed the GPU's generator (a no-op without a GPU, as in PyTorch)."""
    if not is_available():
        return
    backend = get_backend("cuda")
    backend.seed(int(seed))
    backend._seeded = True  # so that a later sg.manual_seed-driven first draw keeps this seed


def manual_seed_all(seed: int) -> None:
    """Seed every GPU's generator: smolgrad drives one, so `manual_seed(seed)`."""
    manual_seed(seed)


def seed() -> None:
    """Seed the GPU's generator from the operating system's entropy (no-op without a GPU)."""
    manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)


def seed_all() -> None:
    seed()


# -- synchronisation and memory --------------------------------------------------------------
def synchronize(device=None) -> None:
    """Wait until every kernel queued on the GPU has finished (a no-op without a GPU)."""
    _check_device_index("synchronize", device)
    if is_available():
        get_backend("cuda").xp.cuda.runtime.deviceSynchronize()


def empty_cache() -> None:
    """Give the memory pool's unused blocks back to the driver (a no-op without a GPU)."""
    if is_available():
        xp = get_backend("cuda").xp
        xp.get_default_memory_pool().free_all_blocks()
        xp.get_default_pinned_memory_pool().free_all_blocks()


def _pool_bytes() -> tuple[int, int]:
    """(allocated, reserved) bytes of CuPy's pool, updating the peaks; (0, 0) without a GPU."""
    if not is_available():
        return 0, 0
    pool = get_backend("cuda").xp.get_default_memory_pool()
    allocated, reserved = int(pool.used_bytes()), int(pool.total_bytes())
    _peaks["allocated"] = max(_peaks["allocated"], allocated)
    _peaks["reserved"] = max(_peaks["reserved"], reserved)
    return allocated, reserved


def memory_allocated(device=None) -> int:
    """Bytes held by live arrays on the GPU (0 without a GPU)."""
    _check_device_index("memory_allocated", device)
    return _pool_bytes()[0]


def memory_reserved(device=None) -> int:
    """Bytes the memory pool holds from the driver, in use or cached (0 without a GPU)."""
    _check_device_index("memory_reserved", device)
    return _pool_bytes()[1]


def max_memory_allocated(device=None) -> int:
    _check_device_index("max_memory_allocated", device)
    _pool_bytes()
    return _peaks["allocated"]


def max_memory_reserved(device=None) -> int:
    _check_device_index("max_memory_reserved", device)
    _pool_bytes()
    return _peaks["reserved"]


def reset_peak_memory_stats(device=None) -> None:
    _check_device_index("reset_peak_memory_stats", device)
    _peaks["allocated"] = _peaks["reserved"] = 0


def memory_stats(device=None) -> dict:
    """PyTorch's keys for current and peak bytes; empty without a GPU (as in PyTorch)."""
    _check_device_index("memory_stats", device)
    if not is_available():
        return {}
    allocated, reserved = _pool_bytes()
    return {"allocated_bytes.all.current": allocated,
            "allocated_bytes.all.peak": _peaks["allocated"],
            "reserved_bytes.all.current": reserved,
            "reserved_bytes.all.peak": _peaks["reserved"]}


def mem_get_info(device=None) -> tuple[int, int]:
    """(free, total) bytes of GPU memory, from the driver."""
    _check_device_index("mem_get_info", device)
    free, total = _cupy("mem_get_info").cuda.runtime.memGetInfo()
    return int(free), int(total)
