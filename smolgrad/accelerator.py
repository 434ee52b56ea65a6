"""`torch.accelerator`: the current accelerator, device-agnostic (PyTorch 2.6+).

smolgrad's accelerator is its "cuda" device when CuPy sees an NVIDIA GPU. Without one, as in
PyTorch on a CPU-only machine: `is_available()` is False, `device_count()` 0,
`current_accelerator()` None, and the calls that need a device raise RuntimeError.
"""

from __future__ import annotations

from . import cuda
from .arrays import device

__all__ = ["current_accelerator", "current_device_index", "device_count", "is_available",
           "set_device_index", "synchronize"]


def is_available() -> bool:
    return cuda.is_available()


def device_count() -> int:
    return cuda.device_count()


def current_accelerator(check_available: bool = False) -> device | None:
    """device('cuda') with a GPU, else None."""
    return device("cuda") if cuda.is_available() else None


def _require(function: str) -> None:
    if not cuda.is_available():
        raise RuntimeError(f"torch.accelerator.{function}: no accelerator is available "
                           f"(smolgrad's 'cuda' device needs CuPy and an NVIDIA GPU)")


def current_device_index() -> int:
    _require("current_device_index")
    return 0


def set_device_index(device_index) -> None:
    _require("set_device_index")
    cuda.set_device(device_index)


def synchronize(device_index=None) -> None:
    _require("synchronize")
    cuda.synchronize(device_index)
