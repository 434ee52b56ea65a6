"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.

For one parameter p with gradient g, at step t (PyTorch's formulation):

    g   <- -g                          if maximize
    g   <- g + weight_decay * p        (L2 penalty folded into the gradient)
    b_1 <- g                           (first step: the buffer starts as the gradient)
    b_t <- momentum * b_{t-1} + (1 - dampening) * g
    d   <- g + momentum * b_t          if nesterov, else b_t   (d = g without momentum)
    p   <- p - lr * d
"""

from __future__ import annotations

from ..engine import Tensor
from .optimizer import Optimizer, check_hyper, check_no_differentiable


class SGD(Optimizer):
    """`SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
    *, maximize=False)`; `foreach` and `fused` are accepted and ignored (one code path)."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None):
        check_hyper("SGD", lr, what="learning rate")
        check_hyper("SGD", momentum, what="momentum value")
        check_hyper("SGD", weight_decay, what="weight_decay value")
        check_no_differentiable("SGD", differentiable)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def update_param(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        lr, momentum = float(group["lr"]), group["momentum"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad.clone()
            else:
                buf = buf * momentum + (1 - group["dampening"]) * grad
            state["momentum_buffer"] = buf
            grad = grad + momentum * buf if group["nesterov"] else buf
        self._write(param, param - lr * grad)
