"""`torch.amp`: automatic mixed precision, `autocast` and `GradScaler`.

    scaler = sg.amp.GradScaler("cpu")
    with sg.autocast("cpu", dtype=sg.float16):    # matmul/linear/conv in float16,
        loss = loss_fn(model(x), y)                 # losses in float32
    scaler.scale(loss).backward()
    scaler.step(optimizer)                          # skipped when a gradient is inf/NaN
    scaler.update()

`GradScaler` is real (PyTorch's algorithm, checked against torch in the tests);
`autocast` casts per op with PyTorch's policy (smolgrad/ops/autocast.py) where the backend
has the dtype, and is a warned no-op where it does not (NumPy has no bfloat16: see
autocast_mode.py). `torch.is_autocast_enabled` and `torch.get_autocast_dtype`
(top level, as in PyTorch) read its state.
"""

from .autocast_mode import autocast, custom_bwd, custom_fwd, is_autocast_available
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd", "is_autocast_available"]
