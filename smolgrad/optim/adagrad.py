"""Adagrad: per-coordinate learning rates that shrink with the sum of squared gradients.

For one parameter p with gradient g, at step t = 1, 2, ... (PyTorch's formulation):

    g   <- -g                                    if maximize
    g   <- g + weight_decay * p
    lr_t = lr / (1 + (t - 1) * lr_decay)
    s_t <- s_{t-1} + g^2                         s_0 = initial_accumulator_value
    p   <- p - lr_t * g / (sqrt(s_t) + eps)
"""

from __future__ import annotations

from ..engine import Tensor
from ..ops.creation import full_like
from .optimizer import Optimizer, check_hyper, check_no_differentiable


class Adagrad(Optimizer):
    """`Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10, foreach=None, *, maximize=False)`. As in PyTorch, the state (step and sum) is
    created for every parameter when the optimizer is built."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None):
        check_hyper("Adagrad", lr, what="learning rate")
        check_hyper("Adagrad", lr_decay, what="lr_decay value")
        check_hyper("Adagrad", weight_decay, what="weight_decay value")
        check_hyper("Adagrad", initial_accumulator_value,
                    what="initial_accumulator_value value")
        check_hyper("Adagrad", eps, what="epsilon value")
        check_no_differentiable("Adagrad", differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._initial_state(p, group)

    @staticmethod
    def _initial_state(param: Tensor, group: dict) -> dict:
        start = group["initial_accumulator_value"]
        return {"step": 0, "sum": full_like(param, start)}

    def update_param(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        if not state:  # a group added later with add_param_group
            state.update(self._initial_state(param, group))
        lr = float(group["lr"])
        if group["maximize"]:
            grad = -grad
        step = int(state["step"]) + 1
        state["step"] = step
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        clr = lr / (1 + (step - 1) * group["lr_decay"])
        state_sum = state["sum"] + grad * grad
        state["sum"] = state_sum
        self._write(param, param - clr * (grad / (state_sum.sqrt() + group["eps"])))
