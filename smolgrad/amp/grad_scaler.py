"""`GradScaler`: dynamic loss scaling, PyTorch's algorithm.

Why: in float16, small gradients underflow to zero. Multiplying the loss by a large factor
S before `backward()` multiplies every gradient by S (the chain rule is linear), lifting
them into range; dividing the gradients by S before the optimizer step undoes it.

The loop, per iteration (S starts at `init_scale`, 2**16):

    scaler.scale(loss).backward()  # grads are S * dL/dw
    scaler.step(optimizer)         # unscale_: grads *= 1/S, and note any inf/NaN among them;
                                   # then optimizer.step(), skipped if an inf/NaN was found
    scaler.update()                # inf/NaN seen:   S *= backoff_factor (0.5), streak = 0
                                   # else streak += 1; at growth_interval (2000) clean steps
                                   # in a row: S *= growth_factor (2.0), streak = 0

To clip gradients, call `scaler.unscale_(optimizer)` first, then clip, then `step`.
`state_dict()` holds S, the factors, the interval and the streak ("_growth_tracker").

A scaler for "cuda" on a machine without CUDA warns and disables itself (then every method
passes through: `scale` returns its input, `step` just steps), as PyTorch's does.
"""

from __future__ import annotations

import enum
import warnings

from .. import dtypes as dt
from ..arrays import is_available
from ..engine import Tensor, no_grad
from ..ops.creation import full, zeros
from ..ops.elementwise import isfinite


class _Stage(enum.Enum):
    """Where one optimizer is in the current iteration."""

    READY = 0      # nothing done yet this iteration
    UNSCALED = 1   # unscale_ ran: its grads are true gradients, inf/NaN check recorded
    STEPPED = 2    # step ran (or was skipped); update() comes next


class _OptimizerState:
    """Per-optimizer bookkeeping between `scale` and `update`."""

    def __init__(self):
        self.stage = _Stage.READY
        self.found_inf_per_device: dict = {}  # device name -> 0-d float32 Tensor, 1.0 if inf


class GradScaler:
    """Scale the loss, unscale and check the gradients, skip bad steps, adapt the scale.

    device: where the scale lives ("cuda" by default, as in PyTorch; "cpu", "mlx").
    init_scale: the first S. growth_factor (> 1) and backoff_factor (< 1): how S changes.
    growth_interval: clean steps in a row before S grows. enabled: False makes every method
    a pass-through.
    """

    _warning_stacklevel = 2  # warnings point at the line that made the scaler

    def __init__(self, device: str = "cuda", init_scale: float = 2.0**16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        self._device = device
        self._enabled = bool(enabled)
        if self._enabled and device == "cuda" and not is_available("cuda"):
            warnings.warn("GradScaler is enabled, but CUDA is not available. Disabling.",
                          UserWarning, stacklevel=self._warning_stacklevel)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise ValueError(f"GradScaler: growth_factor must be > 1.0, got {growth_factor}")
            if backoff_factor >= 1.0:
                raise ValueError(f"GradScaler: backoff_factor must be < 1.0, got "
                                 f"{backoff_factor}")
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._scale: Tensor | None = None  # made lazily, on the device of the first outputs
        self._init_growth_tracker = 0
        self._growth_tracker = 0  # clean steps in a row since S last changed
        self._per_optimizer_states: dict = {}

    # -- scaling ------------------------------------------------------------------------------
    def scale(self, outputs):
        """`outputs * S`: a Tensor, or a list/tuple (nested) of Tensors, keeping the nesting."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._scale = full((), self._init_scale, dtype=dt.float32,
                                   device=outputs.device)
            return outputs * self._scale.to(outputs.device)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(output) for output in outputs)
        raise ValueError(f"GradScaler.scale: outputs must be a Tensor or a list/tuple of "
                         f"Tensors, got {type(outputs).__name__}")

    def _state_of(self, optimizer) -> _OptimizerState:
        state = self._per_optimizer_states.get(id(optimizer))
        if state is None:
            state = self._per_optimizer_states[id(optimizer)] = _OptimizerState()
        return state

    def _require_scale(self, method: str) -> Tensor:
        if self._scale is None:
            raise RuntimeError(f"GradScaler.{method}: no scale yet; call "
                               f"scaler.scale(loss) (and backward) earlier in the iteration")
        return self._scale

    def unscale_(self, optimizer) -> None:
        """Divide the optimizer's gradients by S in place, and record whether any is inf/NaN.

        Once per optimizer per iteration, before `step` (which calls it if you did not).
        """
        if not self._enabled:
            return
        scale = self._require_scale("unscale_")
        state = self._state_of(optimizer)
        if state.stage is _Stage.UNSCALED:
            raise RuntimeError("GradScaler.unscale_: already called on this optimizer since "
                               "the last update()")
        if state.stage is _Stage.STEPPED:
            raise RuntimeError("GradScaler.unscale_: called after step(); call it before "
                               "step() in each iteration")
        # 1/S computed in float64, then float32, as PyTorch does (exact for powers of two).
        inv_scale = scale.double().reciprocal().float()
        with no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    grad = param.grad
                    if grad is None:
                        continue
                    if grad.dtype == dt.float16:
                        raise ValueError("GradScaler.unscale_: attempting to unscale float16 "
                                         "gradients; keep the parameters (master weights) in "
                                         "float32")
                    device = str(grad.device)
                    non_finite = (~isfinite(grad)).any().to(dt.float32)
                    found = state.found_inf_per_device.get(device)
                    if found is None:
                        found = zeros((), dtype=dt.float32, device=grad.device)
                    state.found_inf_per_device[device] = found.maximum(non_finite)
                    grad.mul_(inv_scale.to(grad.device).to(grad.dtype))
        if not state.found_inf_per_device:  # no gradients at all: record a clean check
            state.found_inf_per_device[str(scale.device)] = zeros((), dtype=dt.float32,
                                                                  device=scale.device)
        state.stage = _Stage.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """`unscale_` if not done yet, then `optimizer.step(*args, **kwargs)` unless an
        inf/NaN gradient was found (then the step is skipped and None returned)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step: closure use is not supported when the "
                               "GradScaler is enabled")
        self._require_scale("step")
        state = self._state_of(optimizer)
        if state.stage is _Stage.STEPPED:
            raise RuntimeError("GradScaler.step: already called since the last update()")
        if state.stage is _Stage.READY:
            self.unscale_(optimizer)
        result = None
        if sum(found.item() for found in state.found_inf_per_device.values()) == 0:
            result = optimizer.step(*args, **kwargs)
        state.stage = _Stage.STEPPED
        return result

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adapt S after the iteration's steps (rules in the module docstring), or set it to
        `new_scale`; then start a new iteration for every optimizer."""
        if not self._enabled:
            return
        scale = self._require_scale("update")
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.requires_grad:
                    raise ValueError("GradScaler.update: new_scale must be a float or a "
                                     "1-element Tensor with requires_grad=False")
                new_scale = new_scale.item()
            self._scale = full((), float(new_scale), dtype=dt.float32, device=scale.device)
        else:
            found_infs = [found.item() for state in self._per_optimizer_states.values()
                          for found in state.found_inf_per_device.values()]
            if not found_infs:
                raise RuntimeError("GradScaler.update: no inf checks were recorded; call "
                                   "scaler.step(optimizer) (or unscale_) before update()")
            self._update_scale(scale, found_any=sum(found_infs) > 0)
        self._per_optimizer_states = {}

    def _update_scale(self, scale: Tensor, found_any: bool) -> None:
        """Back off on inf/NaN; grow after `growth_interval` clean steps in a row (a grown
        scale that would overflow float32 is not taken)."""
        value = scale.item()
        if found_any:
            value *= self._backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                grown = full((), value * self._growth_factor, dtype=dt.float32,
                             device=scale.device)
                if isfinite(grown).item():
                    value = grown.item()
                self._growth_tracker = 0
        self._scale = full((), value, dtype=dt.float32, device=scale.device)

    # -- getters, setters, state ----------------------------------------------------------------
    def get_scale(self) -> float:
        """S as a Python float (1.0 when disabled; init_scale before the first `scale`)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale.item()

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._scale is None else self._growth_tracker

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        """PyTorch's keys: scale, growth_factor, backoff_factor, growth_interval,
        _growth_tracker (empty when disabled)."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty, probably "
                               "saved from a disabled GradScaler")
        missing = {"scale", "growth_factor", "backoff_factor", "growth_interval",
                   "_growth_tracker"} - set(state_dict)
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing keys {sorted(missing)}")
        self._init_scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        self._growth_tracker = self._init_growth_tracker
        if self._scale is not None:
            self._scale = full((), self._init_scale, dtype=dt.float32, device=self._scale.device)
