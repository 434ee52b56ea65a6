"""L-BFGS: steps along an approximate Newton direction built from the last few gradient
differences, optionally with a strong-Wolfe line search.

All parameters are treated as one flat vector x (their values concatenated, in order) with
the flat gradient g. One `step(closure)` runs up to `max_iter` iterations; `closure()`
re-evaluates the model: it zeroes the gradients, runs forward and backward, returns the
loss. Iteration k (PyTorch's formulation):

    curvature pair   s = t d (the last step),  y = g_k - g_{k-1} (the gradient's change);
                     kept only when y.s > 1e-10 (so the inverse-Hessian estimate H stays
                     positive definite), at most `history_size` pairs, oldest dropped first
    scaling          H_0 = (y.s / y.y) I from the newest pair (1 before there is a pair)
    direction        d = -H g by the two-loop recursion, rho_i = 1 / (y_i.s_i):
                         q = -g
                         newest pair to oldest:  a_i = rho_i s_i.q,   q <- q - a_i y_i
                         r = H_0 q
                         oldest pair to newest:  b_i = rho_i y_i.r,   r <- r + (a_i - b_i) s_i
                         d = r
                     (the very first iteration uses d = -g)
    step length      t = lr; on the very first iteration t = min(1, 1 / |g|_1) lr, so the
                     first step is at most lr long; with line_search_fn="strong_wolfe" t is
                     searched for, starting from that value
    update           x <- x + t d

The loop stops after `max_iter` iterations or `max_eval` closure calls in this step; when
|g|_inf <= tolerance_grad (also checked before the first iteration: nothing to do); when
the step is tiny, |t d|_inf <= tolerance_change; when the loss barely changed,
|f_k - f_{k-1}| < tolerance_change; or when d is not a descent direction,
g.d > -tolerance_change. The direction, the history and the counters live on in `state`,
so the next `step` continues where this one stopped.

The strong Wolfe line search wants a step length t with

    f(x + t d) <= f(x) + c1 t g.d           sufficient decrease   (c1 = 1e-4)
    |g(x + t d).d| <= c2 |g.d|              no steep slope left   (c2 = 0.9)

It first moves t outwards (each new trial extrapolated by cubic interpolation through the
last two trials, into [t + 0.01 (t - t_prev), 10 t]) until an interval is found that must
hold such a t ("bracketing"), then shrinks that interval by cubic interpolation ("zoom"),
using at most 25 evaluations of the closure (Nocedal & Wright, Numerical Optimization,
algorithms 3.5 and 3.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..engine import Tensor, enable_grad, evaluate, no_grad
from ..ops.creation import zeros
from ..ops.movement import cat
from .optimizer import Optimizer, check_hyper

# The line search's constants (PyTorch's): sufficient decrease, curvature, evaluations.
WOLFE_C1 = 1e-4
WOLFE_C2 = 0.9
LINE_SEARCH_MAX_ITERS = 25  # closure calls after the first one
# A curvature pair is kept only when y.s exceeds this, so that H stays positive definite.
MIN_CURVATURE = 1e-10


@dataclass
class _Trial:
    """One evaluation during the line search: step length t, the loss f at x + t d, the flat
    gradient g there and the slope along the direction, gtd = g.d."""

    t: float
    f: float
    g: Tensor
    gtd: float


def _dot(a: Tensor, b: Tensor) -> float:
    return a.dot(b).item()


def _max_abs(v: Tensor) -> float:
    return v.abs().max().item()


def _decrease_too_small(start: _Trial, trial: _Trial) -> bool:
    """The sufficient-decrease (Armijo) condition fails: f(x + t d) > f(x) + c1 t g.d."""
    return trial.f > start.f + WOLFE_C1 * trial.t * start.gtd


def _slope_flat_enough(start: _Trial, trial: _Trial) -> bool:
    """The strong curvature condition holds: |g(x + t d).d| <= c2 |g.d|."""
    return abs(trial.gtd) <= -WOLFE_C2 * start.gtd


def _cubic_minimizer(a: _Trial, b: _Trial, bounds: tuple[float, float] | None = None) -> float:
    """Where the cubic through (a.t, a.f) and (b.t, b.f) with slopes a.gtd and b.gtd has its
    minimum, clamped into `bounds` (default: between a.t and b.t). When the cubic has no
    minimum (or the formula degenerates) the middle of the bounds is returned.

    With `left`, `right` the two trials ordered by t (Nocedal & Wright, eq. 3.59):
        d1 = a.gtd + b.gtd - 3 (a.f - b.f) / (a.t - b.t)
        d2 = sqrt(d1^2 - a.gtd b.gtd)
        t* = right.t - (right.t - left.t) (right.gtd + d2 - d1) / (right.gtd - left.gtd + 2 d2)
    """
    low, high = bounds if bounds is not None else (min(a.t, b.t), max(a.t, b.t))
    left, right = (a, b) if a.t <= b.t else (b, a)
    d1 = a.gtd + b.gtd - 3 * (a.f - b.f) / (a.t - b.t)
    d2_square = d1 * d1 - a.gtd * b.gtd
    if d2_square < 0:
        return (low + high) / 2
    d2 = math.sqrt(d2_square)
    denominator = right.gtd - left.gtd + 2 * d2
    if denominator == 0:
        return (low + high) / 2
    minimum = right.t - (right.t - left.t) * (right.gtd + d2 - d1) / denominator
    return min(max(minimum, low), high)


class LBFGS(Optimizer):
    """`LBFGS(params, lr=1, max_iter=20, max_eval=None (max_iter * 5 // 4),
    tolerance_grad=1e-7, tolerance_change=1e-9, history_size=100, line_search_fn=None)`.

    `line_search_fn` is None (fixed step length lr) or "strong_wolfe". One parameter group
    only; `step(closure)` needs the closure. See the module docstring for the math.
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        check_hyper("LBFGS", lr, what="learning rate")
        if line_search_fn not in (None, "strong_wolfe"):
            raise RuntimeError(f"LBFGS: only 'strong_wolfe' is supported as line_search_fn "
                               f"(or None), got {line_search_fn!r}")
        if isinstance(history_size, bool) or not isinstance(history_size, int) or \
                history_size < 1:
            raise ValueError(f"LBFGS: history_size must be a positive int, got "
                             f"{history_size!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    @property
    def _params(self) -> list:
        return self.param_groups[0]["params"]

    # -- the flat vector view of the parameters ---------------------------------------------
    def _flat_grad(self) -> Tensor:
        """All gradients concatenated into one new vector (zeros where a grad is None)."""
        pieces = [zeros(p.numel(), dtype=p.dtype, device=p.device) if p.grad is None
                  else p.grad.reshape(-1) for p in self._params]
        return cat(pieces).clone()

    def _add_direction(self, t: float, direction: Tensor) -> None:
        """x <- x + t d, written into the parameters in place."""
        offset = 0
        for p in self._params:
            n = p.numel()
            self._write(p, p + t * direction[offset:offset + n].reshape(p.shape))
            offset += n

    def _param_values(self) -> list:
        return [p.detach().clone() for p in self._params]

    def _set_param_values(self, values: list) -> None:
        for p, value in zip(self._params, values):
            self._write(p, value)

    @staticmethod
    def _loss_of(closure):
        """Call the closure with grad mode on (it runs backward) and return its loss."""
        with enable_grad():
            return closure()

    def _trial(self, closure, x_start: list, t: float, direction: Tensor) -> _Trial:
        """Evaluate loss and gradient at x_start + t d, then put the parameters back."""
        self._add_direction(t, direction)
        f = float(self._loss_of(closure))
        g = self._flat_grad()
        self._set_param_values(x_start)
        return _Trial(t, f, g, _dot(g, direction))

    # -- the step -------------------------------------------------------------------------
    def step(self, closure=None):
        """Run up to `max_iter` L-BFGS iterations; return the loss `closure()` gave first
        (before any update), as PyTorch does."""
        if closure is None or not callable(closure):
            raise TypeError("LBFGS.step: L-BFGS evaluates the loss several times per step, "
                            "so it needs a closure that zeroes the gradients, computes the "
                            "loss, calls backward() and returns the loss: "
                            "optimizer.step(closure)")
        with no_grad():
            orig_loss = self._iterate(closure, self.param_groups[0])
        evaluate(self._params + self._history_tensors())
        return orig_loss

    def _history_tensors(self) -> list:
        state = self.state.get(self._params[0], {})
        tensors = [state.get("d"), state.get("prev_flat_grad")]
        tensors += state.get("old_dirs", []) + state.get("old_stps", [])
        return [t for t in tensors if t is not None]

    def _iterate(self, closure, group: dict):
        """The iterations of one step (module docstring); the loop state lives in `state`
        under the first parameter, with PyTorch's key names."""
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        state = self.state.setdefault(self._params[0], {"func_evals": 0, "n_iter": 0})
        orig_loss = self._loss_of(closure)
        loss = float(orig_loss)
        evaluations = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if _max_abs(flat_grad) <= tolerance_grad:
            return orig_loss
        direction, t = state.get("d"), state.get("t")
        # old_dirs holds the gradient changes y, old_stps the steps s (PyTorch's names)
        old_dirs, old_stps = state.get("old_dirs", []), state.get("old_stps", [])
        ro, h_diag = state.get("ro", []), state.get("H_diag", 1.0)
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                direction = -flat_grad
                old_dirs, old_stps, ro, h_diag = [], [], [], 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = direction * t
                ys = _dot(y, s)
                if ys > MIN_CURVATURE:
                    if len(old_dirs) == group["history_size"]:  # forget the oldest pair
                        old_dirs, old_stps, ro = old_dirs[1:], old_stps[1:], ro[1:]
                    # new lists, never appended in place: a state_dict taken earlier stays
                    old_dirs, old_stps, ro = old_dirs + [y], old_stps + [s], ro + [1.0 / ys]
                    h_diag = ys / _dot(y, y)
                direction = _two_loop_direction(flat_grad, old_dirs, old_stps, ro, h_diag)
            prev_flat_grad, prev_loss = flat_grad, loss
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / flat_grad.abs().sum().item()) * lr
            else:
                t = lr
            gtd = _dot(flat_grad, direction)
            if gtd > -tolerance_change:  # not a descent direction: stop
                break
            if group["line_search_fn"] == "strong_wolfe":
                start = _Trial(0.0, loss, flat_grad, gtd)
                found, trial_evaluations = self._strong_wolfe(closure, direction, start, t,
                                                              tolerance_change)
                t, loss, flat_grad = found.t, found.f, found.g
                self._add_direction(t, direction)
                converged = _max_abs(flat_grad) <= tolerance_grad
            else:
                self._add_direction(t, direction)
                trial_evaluations, converged = 0, False
                if n_iter != max_iter:  # the last iteration's loss is left to the next step
                    loss = float(self._loss_of(closure))
                    flat_grad = self._flat_grad()
                    converged = _max_abs(flat_grad) <= tolerance_grad
                    trial_evaluations = 1
            evaluations += trial_evaluations
            state["func_evals"] += trial_evaluations
            if n_iter == max_iter or evaluations >= max_eval or converged:
                break
            if _max_abs(direction * t) <= tolerance_change:  # the step was tiny
                break
            if abs(loss - prev_loss) < tolerance_change:  # the loss stopped changing
                break
        state.update(d=direction, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro,
                     H_diag=h_diag, prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    # -- saving and loading -----------------------------------------------------------------
    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what `state_dict()` returned. L-BFGS keeps one state for all parameters
        (flat vectors and lists of them, under the first parameter's index), so the base
        class's per-parameter shape check does not apply; tensors are moved to the first
        parameter's device and dtype."""
        saved_state = dict(state_dict.get("state", {}))
        super().load_state_dict({**state_dict, "state": {}})
        if not saved_state:
            return
        if len(saved_state) != 1:
            raise ValueError(f"LBFGS.load_state_dict: expected the state of one parameter "
                             f"(L-BFGS keeps one state for all), got {len(saved_state)}")
        (values,) = saved_state.values()
        first = self._params[0]
        self.state[first] = {key: _like_param(value, first) for key, value in values.items()}

    # -- the line search --------------------------------------------------------------------
    def _strong_wolfe(self, closure, direction: Tensor, start: _Trial, t: float,
                      tolerance_change: float) -> tuple[_Trial, int]:
        """A step length satisfying the strong Wolfe conditions (module docstring), searched
        from the parameters' current values `start` (t = 0) outwards from `t`. Returns the
        chosen trial and the number of closure calls; the parameters are left unchanged."""
        x_start = self._param_values()
        trial = self._trial(closure, x_start, t, direction)
        previous, iteration, done = start, 0, False
        # Bracketing: move t outwards until [previous.t, trial.t] must hold an acceptable t.
        while iteration < LINE_SEARCH_MAX_ITERS:
            if _decrease_too_small(start, trial) or (iteration > 1 and trial.f >= previous.f):
                bracket = [previous, trial]
                break
            if _slope_flat_enough(start, trial):
                bracket, done = [trial], True
                break
            if trial.gtd >= 0:  # the loss rises again past trial.t: a minimum lies before
                bracket = [previous, trial]
                break
            bounds = (trial.t + 0.01 * (trial.t - previous.t), trial.t * 10)
            next_t = _cubic_minimizer(previous, trial, bounds)
            previous, trial = trial, self._trial(closure, x_start, next_t, direction)
            iteration += 1
        else:
            bracket = [start, trial]
        # Zoom: shrink the bracket; `low` is the end with the smaller loss.
        low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
        direction_size = _max_abs(direction)
        insufficient_progress = False
        while not done and iteration < LINE_SEARCH_MAX_ITERS:
            if abs(bracket[1].t - bracket[0].t) * direction_size < tolerance_change:
                break
            t, insufficient_progress = self._zoom_point(bracket, insufficient_progress)
            trial = self._trial(closure, x_start, t, direction)
            iteration += 1
            if _decrease_too_small(start, trial) or trial.f >= bracket[low].f:
                bracket[high] = trial
                low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
                continue
            if _slope_flat_enough(start, trial):
                done = True
            elif trial.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = trial
        return bracket[low], iteration + 1

    @staticmethod
    def _zoom_point(bracket: list, insufficient_progress: bool) -> tuple[float, bool]:
        """The next trial step inside the bracket, and whether it makes too little progress.

        It is the cubic's minimum, unless that lands within a tenth of the bracket's width
        of an end: then, if the previous trial was also that close (or the minimum lies on
        or outside an end), it is pushed to a tenth of the width inside the nearer end;
        otherwise it is kept and flagged, so that a second time it gets pushed.
        """
        t = _cubic_minimizer(bracket[0], bracket[1])
        lo_t, hi_t = min(bracket[0].t, bracket[1].t), max(bracket[0].t, bracket[1].t)
        margin = 0.1 * (hi_t - lo_t)
        if min(hi_t - t, t - lo_t) >= margin:
            return t, False
        if insufficient_progress or t >= hi_t or t <= lo_t:
            pushed = hi_t - margin if abs(t - hi_t) < abs(t - lo_t) else lo_t + margin
            return pushed, False
        return t, True


def _two_loop_direction(grad: Tensor, old_dirs: list, old_stps: list, ro: list,
                        h_diag: float) -> Tensor:
    """d = -H g by the two-loop recursion over the curvature pairs (y_i = old_dirs[i],
    s_i = old_stps[i], rho_i = ro[i]; oldest first); see the module docstring."""
    q = -grad
    alphas = [0.0] * len(old_dirs)
    for i in reversed(range(len(old_dirs))):
        alphas[i] = _dot(old_stps[i], q) * ro[i]
        q = q - alphas[i] * old_dirs[i]
    r = q * h_diag
    for i in range(len(old_dirs)):
        beta = _dot(old_dirs[i], r) * ro[i]
        r = r + (alphas[i] - beta) * old_stps[i]
    return r


def _like_param(value, param: Tensor):
    """A loaded state value with its tensors on the parameter's device, in its dtype."""
    if isinstance(value, list):
        return [_like_param(v, param) for v in value]
    if isinstance(value, Tensor):
        return value.detach().to(param.device).to(param.dtype)
    return value
