"""Helpers of the DataLoader at PyTorch's paths: `collate` (default_collate,
default_convert) and `worker` (get_worker_info)."""

from . import collate, worker

__all__ = ["collate", "worker"]
