"""Adam and AdamW: per-coordinate steps scaled by running moments of the gradient.

For one parameter p with gradient g, at step t = 1, 2, ... (PyTorch's formulation):

    g   <- -g                                    if maximize
    p   <- p * (1 - lr * weight_decay)           AdamW (decoupled weight decay), or
    g   <- g + weight_decay * p                  Adam (L2 penalty in the gradient)
    m_t <- beta1 * m_{t-1} + (1 - beta1) * g     first moment (mean)
    v_t <- beta2 * v_{t-1} + (1 - beta2) * g^2   second moment (uncentred variance)
    v^  <- max(v^_{t-1}, v_t)                    if amsgrad, else v_t
    p   <- p - lr / (1 - beta1^t) * m_t / (sqrt(v^) / sqrt(1 - beta2^t) + eps)

`eps` is added after the square root of the bias-corrected second moment (the original
smolgrad added it inside the root, which changes the steps when v is small).

`capturable=True` (PyTorch's name) keeps the step count t in a float32 tensor on the
parameter's device and computes the bias corrections there, so that no Python number
changes from one step to the next: a compiled step (`sg.compile`) can then replay the
update. Its numbers differ from the default path in the last bits (float32 instead of
Python's float64 for 1 - beta^t).
"""

from __future__ import annotations

import math

from ..engine import Tensor
from ..ops.creation import tensor, zeros_like
from .optimizer import Optimizer, check_hyper, check_no_differentiable


class Adam(Optimizer):
    """`Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    *, maximize=False, decoupled_weight_decay=False, capturable=False)`; `foreach` and
    `fused` are accepted and ignored."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False):
        name = type(self).__name__
        check_hyper(name, lr, what="learning rate")
        check_hyper(name, eps, what="epsilon value")
        for i, beta in enumerate(betas):
            if not 0.0 <= float(beta) < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta} ({name})")
        check_hyper(name, weight_decay, what="weight_decay value")
        check_no_differentiable(name, differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def update_param(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        """The update of the module docstring, written on the backend's arrays: one backend
        call per arithmetic step and no Tensor or node per step (the Tensor-op version cost
        ~15 op dispatches a parameter, more than the arithmetic for a small model)."""
        lr, eps, weight_decay = float(group["lr"]), group["eps"], group["weight_decay"]
        beta1, beta2 = (float(b) for b in group["betas"])
        capturable = group.get("capturable", False)
        if not state:
            state["step"] = tensor(0.0, device=param.device) if capturable else 0
            state["exp_avg"] = zeros_like(param)
            state["exp_avg_sq"] = zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(param)
        b = param.backend
        p, g = param.array, grad.array
        if group["maximize"]:
            g = b.negative(g)
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p = b.multiply(p, 1 - lr * weight_decay)
            else:
                g = b.add(g, b.multiply(weight_decay, p))
        step, step_size, bias_correction2_sqrt = self._bias_corrections(
            state["step"], lr, beta1, beta2, capturable, param)
        state["step"] = step
        m, v = state["exp_avg"].array, state["exp_avg_sq"].array
        m = b.add(m, b.multiply(1 - beta1, b.subtract(g, m)))      # m + (1 - β1)(g - m)
        v = b.add(b.multiply(v, beta2), b.multiply(1 - beta2, b.multiply(g, g)))
        state["exp_avg"], state["exp_avg_sq"] = Tensor._make(m, b), Tensor._make(v, b)
        if group["amsgrad"]:
            v = b.maximum(state["max_exp_avg_sq"].array, v)
            state["max_exp_avg_sq"] = Tensor._make(v, b)
        denom = b.add(b.divide(b.sqrt(v), bias_correction2_sqrt), eps)
        param._assign(b.subtract(p, b.multiply(step_size, b.divide(m, denom))))

    @staticmethod
    def _bias_corrections(step, lr: float, beta1: float, beta2: float, capturable: bool,
                          param: Tensor):
        """(t, lr / (1 - β1^t), √(1 - β2^t)) for the new step count t: Python numbers, or
        with `capturable` a float32 tensor t and 0-d arrays on the parameter's device."""
        if not capturable:
            t = int(step) + 1
            return t, lr / (1 - beta1 ** t), math.sqrt(1 - beta2 ** t)
        if not isinstance(step, Tensor):  # loaded from a state dict of the default path
            step = tensor(float(step), device=param.device)
        t = step + 1
        return t, (lr / (1 - beta1 ** t)).array, (1 - beta2 ** t).sqrt().array


class AdamW(Adam):
    """Adam with decoupled weight decay (`weight_decay=1e-2` by default):
    `p <- p * (1 - lr * weight_decay)` before the Adam step, instead of an L2 gradient term."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
