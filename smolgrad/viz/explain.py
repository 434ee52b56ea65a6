"""explain_backward: run the real backward pass and write down every step of it.

It runs `smolgrad.engine.run_backward(..., observer=...)`: the engine calls the observer
for every node in the order backward processes it, with what came in and what each input
received before and after summing away broadcast axes. The result, an `Explanation`,
prints as text, shows as an interactive page in notebooks, and `.save_html(path)` writes
the same page as one file that steps through backward beside the graph (see `page.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import dtypes as dt
from ..engine import Tensor, no_grad, root_gradients, run_backward
from .graph import Graph, _fmt, _forward_order, _to_float64, graph_nodes


def _rule(node) -> str:
    """The local derivative rule: the first paragraph of the op class's docstring."""
    doc = type(node).__doc__
    if not doc or not doc.strip():
        return "(no docstring: this op does not state its rule)"
    lines = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        lines.append(re.sub(r"\s{2,}", "  ", line.strip()))  # keep the column gaps readable
    return "  ".join(lines)



VALUES_LIMIT = 64  # gradients with at most this many elements keep their values


@dataclass
class GradSummary:
    """Summary statistics of one gradient (computed in float64; std with ddof=0), and its
    values as nested lists when it has at most `VALUES_LIMIT` elements (else None)."""

    shape: tuple
    mean: float
    std: float
    min: float
    max: float
    norm: float
    values: list | float | None = None

    @classmethod
    def of(cls, array: np.ndarray) -> GradSummary:
        array = np.asarray(array, dtype=np.float64)
        flat = array.ravel()
        values = array.tolist() if flat.size <= VALUES_LIMIT else None
        if flat.size == 0:
            return cls(tuple(array.shape), *(float("nan"),) * 4, 0.0, values)
        return cls(tuple(array.shape), float(flat.mean()), float(flat.std()),
                   float(flat.min()), float(flat.max()), float(np.linalg.norm(flat)), values)

    def __str__(self) -> str:
        return (f"shape {tuple(self.shape)}  mean {_fmt(self.mean)}  std {_fmt(self.std)}  "
                f"min {_fmt(self.min)}  max {_fmt(self.max)}  norm {_fmt(self.norm)}")


@dataclass
class StepCheck:
    """A finite-difference check of one input's gradient in one step.

    It recomputes the node's forward (its class's `apply`) on float64 copies of the inputs
    with input `position` moved by ±eps along a direction v, and compares
    numerical = <grad_out, (f(x + eps·v) - f(x - eps·v)) / (2·eps)> with
    analytic = <gradient backward returned, v>: each element's basis vector in turn
    ("full", small inputs) or one random direction ("directional").
    """

    passed: bool | None          # None: the check could not be run (see `note`)
    method: str                  # "full", "directional" or "skipped"
    analytic: list               # <backward's gradient, v>, one per direction
    numerical: list              # <grad_out, finite difference>, one per direction
    max_abs_error: float
    tolerance: str
    note: str = ""

    def __str__(self) -> str:
        if self.passed is None:
            return f"check: SKIPPED ({self.note})"
        verdict = "PASS" if self.passed else "FAIL"
        if self.method == "directional":
            what = (f"directional: analytic {_fmt(self.analytic[0])} vs numerical "
                    f"{_fmt(self.numerical[0])}")
        else:
            count = len(self.analytic)
            what = f"full, {count} element{'s' if count != 1 else ''}"
        text = (f"check: {verdict}  {what}, max |error| {self.max_abs_error:.3g} "
                f"({self.tolerance})")
        return text + (f"; {self.note}" if self.note else "")


@dataclass
class InputStep:
    """What one input of a node received in one step."""

    name: str
    position: int                # which positional argument of the op
    shape: tuple
    raw_grad_shape: tuple        # the shape backward returned (may be broadcast)
    summed_axes: tuple           # axes summed away to undo broadcasting
    grad: GradSummary            # the final gradient, in the input's shape
    check: StepCheck | None = None
    raw_grad: GradSummary | None = None  # what backward returned, when axes were summed


@dataclass
class Step:
    """One node of the backward pass, in the order backward processed it."""

    index: int
    op: str
    rule: str
    output_name: str
    output_shape: tuple
    output_dtype: str
    grad_in: GradSummary         # the gradient arriving at the node's output
    inputs: list                 # one InputStep per input that receives a gradient


@dataclass
class LeafGrad:
    """The gradient this backward pass delivered to one leaf (summed over its uses)."""

    name: str
    kind: str
    shape: tuple
    grad: GradSummary


class Explanation:
    """The account of one backward pass: `.steps` (list of `Step`), `.leaves` (list of
    `LeafGrad`), `.graph` (the `Graph` it walked, drawn as before backward); `str()` for
    the terminal, `.save_html(path)` for a page that steps through it, `_repr_html_` for
    notebooks, and `.passed` (True / False / None when no check ran)."""

    def __init__(self, root_name: str, root_shape: tuple, seed: GradSummary, steps: list,
                 leaves: list, accumulated: bool, graph: Graph | None = None):
        self.graph = graph
        self.root_name = root_name
        self.root_shape = root_shape
        self.seed = seed
        self.steps = steps
        self.leaves = leaves
        self.accumulated = accumulated

    @property
    def checks(self) -> list:
        return [i.check for s in self.steps for i in s.inputs if i.check is not None]

    @property
    def passed(self) -> bool | None:
        ran = [c.passed for c in self.checks if c.passed is not None]
        return all(ran) if ran else None

    def __str__(self) -> str:
        out = [f"Backward pass from {self.root_name} (shape {self.root_shape}), "
               f"{len(self.steps)} steps",
               f"seed gradient: {self.seed}"]
        for s in self.steps:
            out.append("")
            out.append(f"step {s.index}: {s.op} -> {s.output_name}  shape {s.output_shape}  "
                       f"{s.output_dtype}")
            out.append(f"  rule:     {s.rule}")
            out.append(f"  grad in:  {s.grad_in}")
            for i in s.inputs:
                axes = (f"summed over axes {i.summed_axes}" if i.summed_axes
                        else "nothing to sum")
                out.append(f"  -> {i.name} (argument {i.position}, shape {tuple(i.shape)})")
                out.append(f"     backward returned {i.raw_grad_shape}, {axes} -> "
                           f"{tuple(i.grad.shape)}, norm {_fmt(i.grad.norm)}")
                if i.check is not None:
                    out.append(f"     {i.check}")
        out.append("")
        where = ("added into .grad" if self.accumulated
                 else "not stored (accumulate=False)")
        out.append(f"leaf gradients ({where}):")
        for leaf in self.leaves:
            out.append(f"  {leaf.name} ({leaf.kind}): {leaf.grad}")
        if self.checks:
            verdict = {True: "all checks passed", False: "SOME CHECKS FAILED",
                       None: "no check could run"}[self.passed]
            out.append(f"finite-difference checks: {verdict}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return self.__str__()

    def save_html(self, path) -> str:
        """Write the walk-through page: one self-contained HTML file (inline SVG, CSS and
        JavaScript; no network, no server) with the graph on one side and, on the other,
        one step of backward at a time: Next/Prev buttons or the arrow keys, in the order
        the engine ran. Returns the path written."""
        from .page import page_html

        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ValueError(f"Explanation.save_html: the file name should end in .html, "
                             f"got {str(path)!r}")
        path.write_text(page_html(self), encoding="utf-8")
        return str(path)

    def _repr_html_(self) -> str:
        """The same walk-through for notebooks (arrow keys work once it has the focus;
        without JavaScript every step is shown, one under the other)."""
        from .page import widget_html

        return widget_html(self)


# -- the finite-difference check of one step --------------------------------------------

_FULL_LIMIT = 20  # inputs with at most this many elements are checked element by element


def _check_step(node, position: int, grad_out: Tensor, grad_in: Tensor,
                rng: np.random.Generator) -> StepCheck:
    """Check one input's gradient of one node against central finite differences.

    The forward is recomputed on the CPU (NumPy: true float64 everywhere; MLX, for one,
    computes float64 exp and friends only to float32 accuracy, too coarse for eps=1e-6),
    and on the node's own device when the op cannot run on the CPU (an argument that is a
    device array, such as an index). The backward result checked is the node's own.
    """
    own = node.backend.device
    devices = ["cpu"] + ([own] if own != "cpu" and getattr(node.backend, "has_float64", True)
                         else [])
    failures = []
    for device in devices:
        try:
            result = _run_check(node, position, grad_out, grad_in, rng, device)
        except Exception as err:  # an op that cannot be recomputed there: try the next
            failures.append(f"on {device}: {type(err).__name__}: {err}")
            continue
        if device != own:
            result.note = "; ".join(filter(None, [result.note, f"recomputed on {device}"]))
        return result
    return StepCheck(None, "skipped", [], [], float("nan"), "",
                     note=f"recomputing {node.name} failed " + "; ".join(failures))


def _float64_copy(a, device: str):
    """A detached copy of a node's argument for the check: float tensors in float64 on
    `device`; other tensors (indices, masks) only moved; plain values as they are."""
    if not isinstance(a, Tensor):
        return a
    a = a.detach()
    if a.device != device:
        a = a.to(device)
    return a.to(dt.float64) if a.dtype.is_floating_point else a


def _forward_at(node, args: list, position: int, value: np.ndarray, device: str) -> Tensor:
    """The node's op run again (its class's `apply`, nothing recorded) with argument
    `position` replaced by `value`."""
    moved = list(args)
    moved[position] = Tensor(value, dtype=dt.float64, device=device)
    with no_grad():
        return type(node).apply(*moved)


def _run_check(node, position: int, grad_out: Tensor, grad_in: Tensor,
               rng: np.random.Generator, device: str) -> StepCheck:
    """numerical <g, (f(x + eps·v) - f(x - eps·v)) / 2eps> vs analytic <grad_in, v>."""
    args = [_float64_copy(a, device) for a in node.inputs]
    base = _to_float64(args[position])
    first = _forward_at(node, args, position, base, device)
    again = _forward_at(node, args, position, base, device)
    if not np.array_equal(_to_float64(first), _to_float64(again), equal_nan=True):
        return StepCheck(None, "skipped", [], [], float("nan"), "",
                         note=f"{node.name}'s forward is random (two runs differ)")
    if first.dtype is dt.float64:
        eps, atol, rtol, note = 1e-6, 1e-5, 1e-3, ""
    else:  # the op itself computes in lower precision (a cast): coarser step, looser bar
        eps, atol, rtol = 1e-3, 1e-3, 1e-2
        note = f"{node.name} computes in {first.dtype.name}, so eps=1e-3"
    g = _to_float64(grad_out)
    analytic_grad = _to_float64(grad_in)
    if base.size <= _FULL_LIMIT:
        method = "full"
        directions = []
        for k in range(base.size):
            v = np.zeros(base.size)
            v[k] = 1.0
            directions.append(v.reshape(base.shape))
    else:
        method = "directional"
        directions = [rng.standard_normal(base.shape)]
    analytic, numerical = [], []
    for v in directions:
        plus = _to_float64(_forward_at(node, args, position, base + eps * v, device))
        minus = _to_float64(_forward_at(node, args, position, base - eps * v, device))
        numerical.append(float(np.sum(g * (plus - minus)) / (2 * eps)))
        analytic.append(float(np.sum(analytic_grad * v)))
    a, n = np.array(analytic), np.array(numerical)
    errors = np.abs(a - n)
    passed = bool(np.all(errors <= atol + rtol * np.abs(n)))
    return StepCheck(passed, method, analytic, numerical, float(errors.max()),
                     f"tol {atol:g} + {rtol:g}·|numerical|", note)


# -- the observer ------------------------------------------------------------------------


class _Recorder:
    """The observer handed to `run_backward`: turns each processed node into a `Step`."""

    def __init__(self, names: dict, check: bool):
        self.names = names  # id(tensor) -> name, for every tensor of the graph
        self.check = check
        self.steps: list = []
        self.leaf_grads: dict = {}  # id(leaf) -> (leaf, summed float64 gradient)
        self.rng = np.random.default_rng(0)

    def __call__(self, t: Tensor, node, grad: Tensor, steps: list) -> None:
        inputs = []
        positions = self._positions(node, steps)
        for (inp, raw, final, axes), position in zip(steps, positions):
            final64 = _to_float64(final)
            item = InputStep(name=self.names.get(id(inp), "?"), position=position,
                             shape=tuple(inp.shape), raw_grad_shape=tuple(raw.shape),
                             summed_axes=tuple(axes), grad=GradSummary.of(final64),
                             raw_grad=GradSummary.of(_to_float64(raw)) if axes else None)
            if self.check:
                item.check = _check_step(node, position, grad, final, self.rng)
            inputs.append(item)
            if inp.grad_fn is None:
                _, total = self.leaf_grads.get(id(inp), (inp, None))
                self.leaf_grads[id(inp)] = (inp, final64 if total is None else total + final64)
        self.steps.append(Step(index=len(self.steps) + 1, op=node.name, rule=_rule(node),
                               output_name=self.names.get(id(t), "?"), output_shape=tuple(t.shape),
                               output_dtype=t.dtype.name, grad_in=GradSummary.of(
                                   _to_float64(grad)), inputs=inputs))

    @staticmethod
    def _positions(node, steps: list) -> list:
        """Which positional argument each reported input is (the engine reports them in
        argument order, skipping those that need no gradient)."""
        positions, j = [], 0
        for inp, *_ in steps:
            while j < len(node.inputs) and not (node.inputs[j] is inp and
                                                node.needs_input_grad[j]):
                j += 1
            positions.append(j)
            j += 1
        return positions


def explain_backward(loss: Tensor, check: bool = False, params=None, gradient=None,
                     accumulate: bool = True) -> Explanation:
    """Run backward from `loss` and narrate it, node by node.

    This is the real backward pass (`smolgrad.engine.run_backward` with an observer that
    watches each node as it is processed), so, like `loss.backward()`, it ADDS the
    gradients into the leaves' `.grad` (and retained non-leaves'). Pass `accumulate=False`
    to only look: then no `.grad` changes. It always keeps the graph (retain_graph=True),
    so `draw_graph` or another backward can follow; the graph must still be alive (call it
    instead of, or before, a `backward()` without retain_graph).

    For each step: the op, its local derivative rule (the first paragraph of the op class's
    docstring), the output's shape and dtype, the incoming gradient's shape and statistics
    (mean, std, min, max, L2 norm), and for each input that receives a gradient: its shape,
    the shape backward returned, the axes summed away to undo broadcasting, and the final
    gradient. With `check=True` each of those gradients is also checked by finite
    differences of that single node (see `StepCheck`).

    `params` names tensors as in `draw_graph`; `gradient` is the seed (default: ones for a
    scalar `loss`, as `backward()` requires). Returns an `Explanation`.
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"explain_backward: expected a Tensor, got {type(loss).__name__}")
    entries = _forward_order([loss], params, "explain_backward")
    graph = Graph(graph_nodes(entries, {}))  # drawn before backward: no gradients yet
    names = {id(e.tensor): e.name for e in entries}
    kinds = {id(e.tensor): e.kind for e in entries}
    (gradient,) = root_gradients([loss], [gradient], "explain_backward", "gradient")
    recorder = _Recorder(names, check)
    run_backward([loss], [gradient], retain_graph=True, accumulate=accumulate,
                 observer=recorder)
    if loss.grad_fn is None:  # a leaf: backward has no step, the seed is its gradient
        recorder.leaf_grads[id(loss)] = (loss, _to_float64(gradient))
    order = {id(e.tensor): i for i, e in enumerate(entries)}
    leaves = [LeafGrad(names.get(key, "?"), kinds.get(key, "leaf"), tuple(leaf.shape),
                       GradSummary.of(total))
              for key, (leaf, total) in sorted(recorder.leaf_grads.items(),
                                               key=lambda item: order.get(item[0], 0))]
    return Explanation(names[id(loss)], tuple(loss.shape), GradSummary.of(_to_float64(gradient)),
                       recorder.steps, leaves, accumulate, graph)
