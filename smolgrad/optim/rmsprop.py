"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

For one parameter p with gradient g (PyTorch's formulation):

    g   <- -g                                     if maximize
    g   <- g + weight_decay * p
    s_t <- alpha * s_{t-1} + (1 - alpha) * g^2    running mean of squares
    a_t <- alpha * a_{t-1} + (1 - alpha) * g      if centered: running mean
    r   <- sqrt(s_t - a_t^2) + eps  if centered, else sqrt(s_t) + eps
    b_t <- momentum * b_{t-1} + g / r;  p <- p - lr * b_t     if momentum > 0
    p   <- p - lr * g / r                                     otherwise
"""

from __future__ import annotations

from ..engine import Tensor
from ..ops.creation import zeros_like
from .optimizer import Optimizer, check_hyper, check_no_differentiable


class RMSprop(Optimizer):
    """`RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, capturable=False, foreach=None, maximize=False)`."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False):
        check_hyper("RMSprop", lr, what="learning rate")
        check_hyper("RMSprop", eps, what="epsilon value")
        check_hyper("RMSprop", momentum, what="momentum value")
        check_hyper("RMSprop", weight_decay, what="weight_decay value")
        check_hyper("RMSprop", alpha, what="alpha value")
        check_no_differentiable("RMSprop", differentiable)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, capturable=capturable,
                        foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def update_param(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        lr, alpha, eps = float(group["lr"]), group["alpha"], group["eps"]
        momentum = group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = zeros_like(param)
            if momentum > 0:
                state["momentum_buffer"] = zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = zeros_like(param)
        if group["maximize"]:
            grad = -grad
        state["step"] = int(state["step"]) + 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        square_avg = state["square_avg"] * alpha + (1 - alpha) * (grad * grad)
        state["square_avg"] = square_avg
        if group["centered"]:
            grad_avg = state["grad_avg"] + (1 - alpha) * (grad - state["grad_avg"])
            state["grad_avg"] = grad_avg
            rms = (square_avg - grad_avg * grad_avg).sqrt() + eps
        else:
            rms = square_avg.sqrt() + eps
        if momentum > 0:
            buf = state["momentum_buffer"] * momentum + grad / rms
            state["momentum_buffer"] = buf
            self._write(param, param - lr * buf)
        else:
            self._write(param, param - lr * (grad / rms))
