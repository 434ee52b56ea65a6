"""`torch.backends.cuda`: matmul precision flags and scaled-dot-product-attention kernels.

`matmul.allow_tf32` is another view of `torch.set_float32_matmul_precision`: True means a
precision other than "highest" (setting True selects "high", False "highest"), as in PyTorch.
"""

from __future__ import annotations

from ..arrays import is_available

__all__ = ["cudnn_sdp_enabled", "enable_cudnn_sdp", "enable_flash_sdp", "enable_math_sdp",
           "enable_mem_efficient_sdp", "flash_sdp_enabled", "is_built", "math_sdp_enabled",
           "matmul", "mem_efficient_sdp_enabled"]

FLOAT32_MATMUL_PRECISIONS = ("highest", "high", "medium")


class _MatmulFlags:
    """`torch.backends.cuda.matmul`: recorded switches (no effect on smolgrad's backends)."""

    __slots__ = ("float32_precision", "allow_fp16_reduced_precision_reduction",
                 "allow_bf16_reduced_precision_reduction")

    def __init__(self):
        self.float32_precision = "highest"  # what torch.get_float32_matmul_precision() says
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        return self.float32_precision != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        self.float32_precision = "high" if value else "highest"


matmul = _MatmulFlags()

class _SdpKernelSwitch:
    """Whether PyTorch may pick one fused attention kernel. smolgrad has one attention
    implementation, so the switch is only recorded and read back."""

    def __init__(self):
        self.enabled = True

    def enable(self, enabled: bool) -> None:
        self.enabled = bool(enabled)

    def is_enabled(self) -> bool:
        return self.enabled


_flash, _efficient, _math, _cudnn = (_SdpKernelSwitch() for _ in range(4))
enable_flash_sdp, flash_sdp_enabled = _flash.enable, _flash.is_enabled
enable_mem_efficient_sdp, mem_efficient_sdp_enabled = _efficient.enable, _efficient.is_enabled
enable_math_sdp, math_sdp_enabled = _math.enable, _math.is_enabled
enable_cudnn_sdp, cudnn_sdp_enabled = _cudnn.enable, _cudnn.is_enabled


def is_built() -> bool:
    """True when smolgrad's "cuda" device works here (CuPy with an NVIDIA GPU)."""
    return is_available("cuda")
