"""`torch.backends.mps`: Apple's Metal device in PyTorch. smolgrad has no "mps" device (its
Apple-silicon device is "mlx"), so both answers are False, as on a machine without MPS."""

from __future__ import annotations


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
