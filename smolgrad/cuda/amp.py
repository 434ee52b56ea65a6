"""`torch.cuda.amp`: PyTorch's older spelling of `torch.amp` with device "cuda".

PyTorch deprecates these names and warns (FutureWarning) when they are used; so does
smolgrad. Without a GPU both disable themselves with a warning, as PyTorch's do.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from .. import amp as _amp
from .. import dtypes as dt


class autocast(_amp.autocast):  # noqa: N801 - PyTorch's spelling
    """`torch.amp.autocast("cuda", ...)` (see smolgrad/amp: float16 by default)."""

    _warning_stacklevel = 3  # one frame more than the base class: this __init__

    def __init__(self, enabled: bool = True, dtype: dt.dtype = dt.float16,
                 cache_enabled: bool = True):
        warnings.warn("torch.cuda.amp.autocast(args...) is deprecated. Please use "
                      "torch.amp.autocast('cuda', args...) instead.", FutureWarning,
                      stacklevel=2)
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_amp.GradScaler):
    """`torch.amp.GradScaler("cuda", ...)`."""

    _warning_stacklevel = 3  # one frame more than the base class: this __init__

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True):
        warnings.warn("torch.cuda.amp.GradScaler(args...) is deprecated. Please use "
                      "torch.amp.GradScaler('cuda', args...) instead.", FutureWarning,
                      stacklevel=2)
        super().__init__("cuda", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval,
                         enabled=enabled)


def custom_fwd(fwd: Callable | None = None, *, cast_inputs: dt.dtype | None = None) -> Callable:
    """`torch.amp.custom_fwd(device_type="cuda")`: returns the forward unchanged."""
    return _amp.custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd: Callable | None = None) -> Callable:
    """`torch.amp.custom_bwd(device_type="cuda")`: returns the backward unchanged."""
    return _amp.custom_bwd(bwd, device_type="cuda")
