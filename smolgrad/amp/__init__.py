"""`torch.amp`: automatic mixed precision, `autocast` and `GradScaler`.

    scaler = sg.amp.GradScaler("cpu")
    with sg.autocast("cpu", dtype=sg.bfloat16):   # a documented no-op on smolgrad's backends
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)                          # skipped when a gradient is inf/NaN
    scaler.update()

`GradScaler` is real (PyTorch's algorithm, checked against torch in the tests);
`autocast` keeps every op in the dtype of its inputs for now (see autocast_mode.py).
"""

from .autocast_mode import autocast, custom_bwd, custom_fwd, is_autocast_available
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd", "is_autocast_available"]
