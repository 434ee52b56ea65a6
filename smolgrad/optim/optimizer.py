"""The `Optimizer` base class: parameter groups, per-parameter state, the step loop.

An optimizer holds

    param_groups   a list of dicts; each has "params" (a list of Tensors) and that group's
                   hyperparameters ("lr", "momentum", ...), filled in from `defaults`
    state          a dict from parameter (the Tensor itself) to that parameter's own
                   buffers: momentum, running averages, the step count

`step()` walks every parameter that has a gradient and calls `update_param(param, grad,
state, group)`, which each optimizer file (sgd.py, adam.py, ...) writes: the math of one
parameter's update and nothing else. It runs under `no_grad()`, in Tensor ops, so it works
on every backend; the new values are written into the parameter in place (`_assign`), which
bumps the parameter's version counter: a backward that still needs the old value raises
instead of silently using the new one. At the end, `evaluate` makes lazy backends (MLX)
compute the new parameters and buffers now, so memory stays flat over a training loop.

`state_dict()` has PyTorch's layout: parameters are replaced by their position (0, 1, ...
counted across groups), so the dict can be saved and loaded into a fresh optimizer over a
fresh model:

    {"state": {0: {"step": 3, "exp_avg": Tensor, ...}, ...},
     "param_groups": [{"lr": 0.01, ..., "params": [0, 1]}, ...]}
"""

from __future__ import annotations

import copy
import warnings

from ..engine import Tensor, enable_grad, evaluate, no_grad


class _RequiredParameter:
    """Marks a hyperparameter that has no default: every group must give it."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of Tensors, of `(name, Tensor)` pairs, or of dicts (parameter
            groups: `{"params": [...], "lr": 0.1}`; missing keys come from `defaults`).
        defaults: the default hyperparameters of every group.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor; pass [tensor] or "
                            "model.parameters()")
        if isinstance(params, dict):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a dict; pass a list of dicts")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # -- groups ---------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (with its own hyperparameters) to optimize."""
        if not isinstance(param_group, dict):
            raise TypeError(f"add_param_group: param_group must be a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("add_param_group: the group has no 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; "
                            "use a list")
        params = list(params)
        names = None
        if params and all(isinstance(p, tuple) and len(p) == 2 for p in params):
            names = [name for name, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (shape {tuple(p.shape)}, "
                                 f"grad_fn {p.grad_fn!r}); optimize the leaf it came from, or "
                                 f"use .detach().requires_grad_()")
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error", UserWarning, stacklevel=3)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {key}")
            group.setdefault(key, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen & set(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # -- gradients ------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set `.grad` to None (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    # -- the step -------------------------------------------------------------------------
    def step(self, closure=None):
        """Update every parameter that has a gradient; return `closure()`'s loss if given.

        `closure`, when given, re-evaluates the model and returns the loss (it runs with
        grad mode on, before the update).
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        touched = []
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.get(p)
                    if state is None:
                        state = self.state[p] = {}
                    self.update_param(p, p.grad, state, group)
                    touched.append(p)
                    touched.extend(v for v in state.values() if isinstance(v, Tensor))
        evaluate(touched)
        return loss

    def update_param(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        """Update one parameter in place. Each optimizer implements this (and only this)."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_param")

    @staticmethod
    def _write(param: Tensor, value: Tensor) -> None:
        """Store `value` into `param` in place (same Tensor object, version counter + 1)."""
        param._assign(value.array)

    # -- saving and loading ---------------------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's state with parameters replaced by their index (PyTorch's layout).

        Tensors in the result are the optimizer's own buffers (not copies), as in PyTorch;
        `sg.save` writes them out.
        """
        index_of: dict = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and index_of[id(p)] not in state:
                    state[index_of[id(p)]] = dict(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what `state_dict()` returned (possibly after `sg.save`/`sg.load`).

        Floating-point buffers are cast to their parameter's dtype and moved to its device.
        """
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups' "
                             "as returned by Optimizer.state_dict()")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: loaded state dict has {len(saved_groups)} "
                             f"parameter groups, but the optimizer has "
                             f"{len(self.param_groups)}")
        for i, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError(f"load_state_dict: loaded state dict contains a parameter "
                                 f"group ({i}) with {len(saved['params'])} parameters, but the "
                                 f"optimizer's group has {len(mine['params'])}")
        param_of = {}
        for mine, saved in zip(self.param_groups, saved_groups):
            for p, index in zip(mine["params"], saved["params"]):
                param_of[_as_key(index)] = p
        new_state: dict = {}
        for index, values in state_dict.get("state", {}).items():
            p = param_of.get(_as_key(index))
            if p is None:
                continue  # PyTorch also ignores state of unknown parameters
            new_state[p] = {k: _cast_like(k, v, p) for k, v in values.items()}
            for key, value in new_state[p].items():
                # every per-parameter buffer (momentum, exp_avg, ...) has the parameter's shape
                if (isinstance(value, Tensor) and value.ndim > 0
                        and tuple(value.shape) != tuple(p.shape)):
                    raise ValueError(f"{type(self).__name__}.load_state_dict: state "
                                     f"'{key}' of parameter {index} has shape "
                                     f"{tuple(value.shape)}, but the parameter has shape "
                                     f"{tuple(p.shape)}; the state dict belongs to "
                                     f"another model")
        new_groups = []
        for mine, saved in zip(self.param_groups, saved_groups):
            group = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            group["params"] = mine["params"]
            new_groups.append(group)
        self.state = new_state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # PyTorch keeps per-instance hooks here; smolgrad keeps the class small.
    def __getstate__(self) -> dict:
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _as_key(index):
    """State-dict keys are ints; tolerate '0' strings from hand-written JSON."""
    return int(index) if isinstance(index, str) and index.isdigit() else index


def _cast_like(key: str, value, param: Tensor):
    """A loaded buffer in the parameter's dtype and on its device (the step stays as is)."""
    if not isinstance(value, Tensor):
        if key != "step" and hasattr(value, "dtype") and hasattr(value, "shape"):
            value = Tensor(value, dtype=param.dtype, device=param.device)  # a NumPy array
        return value
    if key == "step":
        return value
    if value.backend is not param.backend:
        value = value.to(param.device)
    if value.dtype.is_floating_point and value.dtype is not param.dtype:
        value = value.to(param.dtype)
    return value.detach()


def check_no_differentiable(name: str, differentiable: bool) -> None:
    """smolgrad's optimizer steps are not recorded in the graph (PyTorch's
    `differentiable=True`); fail loudly rather than silently dropping the gradient."""
    if differentiable:
        raise NotImplementedError(f"{name}: differentiable=True is not supported by smolgrad "
                                  f"(optimizer steps run under no_grad); write the update "
                                  f"with Tensor ops yourself to differentiate through it")


def check_hyper(name: str, value, low: float = 0.0, what: str = "value") -> None:
    """A ValueError in PyTorch's words when a hyperparameter is out of range."""
    if isinstance(value, Tensor):
        value = value.item()
    if not value >= low:
        raise ValueError(f"Invalid {what}: {value} ({name})")
