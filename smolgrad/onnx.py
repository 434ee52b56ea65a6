"""`torch.onnx`: importable so that programs which mention it load; exporting is not
provided (smolgrad records no graph that ONNX could describe), and says so."""

from __future__ import annotations

__all__ = ["export", "is_in_onnx_export"]


def export(*args, **kwargs):
    """Always raises NotImplementedError: smolgrad cannot write ONNX files."""
    raise NotImplementedError(
        "torch.onnx.export: smolgrad cannot export models to ONNX; save the weights with "
        "torch.save(model.state_dict(), path) (safetensors) and export from PyTorch instead")


def is_in_onnx_export() -> bool:
    """False: an ONNX export is never running (models test this to pick traceable code)."""
    return False
