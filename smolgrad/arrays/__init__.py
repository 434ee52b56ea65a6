"""Backends: the array libraries smolgrad runs on, behind one interface.

A backend object offers array primitives (elementwise math, reductions, matmul, reshape,
indexing, creation, randomness, dtype casts). `contract.Backend` is the written interface:
48 required kernels and 48 primitives derived from them once; `numpy_backend.NumpyBackend`
is the reference implementation. Ops call `x.backend.exp(x.array)` and never import an
array library, so adding a backend is one file plus one line in `_FACTORIES` below
(docs/backends.md, "Writing a backend").

Devices: "cpu" (NumPy), "mlx" (MLX's default device), "cuda" (CuPy), and "gpu", which
means the first available of "cuda", "mlx".
"""

from __future__ import annotations

import os

_FACTORIES = {
    "cpu": ("numpy_backend", "NumpyBackend", "numpy"),
    "mlx": ("mlx_backend", "MLXBackend", 'mlx (pip install "mlx[cpu]" on Linux, "mlx" on macOS)'),
    "cuda": ("cupy_backend", "CupyBackend", "cupy (pip install cupy-cuda12x) and an NVIDIA GPU"),
}
_loaded: dict = {}
_unavailable: dict = {}  # device -> why it cannot be used (with the install hint)
_default_device: str | None = None


class device:  # noqa: N801 - PyTorch's spelling
    """A device name such as "cpu", comparable with plain strings (`x.device == "cpu"`)."""

    __slots__ = ("type",)

    def __init__(self, type: str):  # noqa: A002
        self.type = canonical_device(type)

    def __eq__(self, other) -> bool:
        if isinstance(other, device):
            return self.type == other.type
        if isinstance(other, str):
            try:
                return self.type == canonical_device(other)
            except ValueError:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        return f"device(type='{self.type}')"

    def __str__(self) -> str:
        return self.type


def canonical_device(name) -> str:
    """'cpu' | 'mlx' | 'cuda' from a device name, a `device`, 'cuda:0' or 'gpu'."""
    if isinstance(name, device):
        return name.type
    if not isinstance(name, str):
        raise TypeError(f"device must be a string like 'cpu', 'mlx' or 'cuda', got {name!r}")
    base = name.split(":")[0].strip().lower()
    if base == "gpu":
        for candidate in ("cuda", "mlx"):
            if is_available(candidate):
                return candidate
        raise RuntimeError("device 'gpu': neither CuPy with a CUDA GPU nor MLX is available; "
                           "install cupy or mlx, or use device='cpu'")
    if base not in _FACTORIES:
        raise ValueError(f"unknown device {name!r}; expected one of 'cpu', 'mlx', 'cuda', 'gpu'")
    return base


def get_backend(name=None):
    """The backend object for a device (the default device when `name` is None)."""
    if name is None:
        name = get_default_device()
    key = canonical_device(name)
    backend = _loaded.get(key)
    if backend is None:
        if key in _unavailable:  # failed before: do not retry the import on every call
            raise RuntimeError(_unavailable[key])
        module_name, class_name, needs = _FACTORIES[key]
        try:
            module = __import__(f"{__name__}.{module_name}", fromlist=[class_name])
            backend = getattr(module, class_name)()
        except ImportError as e:
            _unavailable[key] = f"device '{key}' needs {needs}, which could not be loaded: {e}"
            raise RuntimeError(_unavailable[key]) from None
        except RuntimeError as e:  # the library imported but cannot run (e.g. no GPU)
            _unavailable[key] = str(e)
            raise
        _loaded[key] = backend
    return backend


def is_available(name: str) -> bool:
    """True when the device's library imports and (for CUDA) a GPU is present."""
    try:
        get_backend(name)
        return True
    except (RuntimeError, ValueError):
        return False


def loaded_backends() -> list:
    return list(_loaded.values())


def get_default_device() -> str:
    global _default_device
    if _default_device is None:
        _default_device = canonical_device(os.environ.get("SMOLGRAD_DEVICE") or "cpu")
    return _default_device


def set_default_device(name) -> None:
    """Choose the device that factories use when no `device=` is given."""
    global _default_device
    key = canonical_device(name)
    get_backend(key)  # fail now, with the install hint, rather than at first use
    _default_device = key
