"""`torch.backends.cudnn`: cuDNN switches, kept with PyTorch's defaults.

smolgrad never calls cuDNN, so `is_available()` is False and `version()` None everywhere, and
`benchmark`, `deterministic`, `allow_tf32` and `enabled` are plain module attributes that a
program may set and read back without effect (smolgrad's convolutions are deterministic).
"""

from __future__ import annotations

enabled: bool = True
benchmark: bool = False
deterministic: bool = False
allow_tf32: bool = True


def is_available() -> bool:
    return False


def version() -> None:
    return None
