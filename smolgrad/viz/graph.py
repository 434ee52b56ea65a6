"""Teaching tools: look at the graph autograd recorded, and watch backward walk it.

    import smolgrad as sg
    from smolgrad.viz import draw_graph, explain_backward

    x = sg.randn(4, 3)
    w = sg.randn(3, 2, requires_grad=True)
    b = sg.zeros(2, requires_grad=True)
    loss = ((x @ w + b) ** 2).mean()

    draw_graph(loss, params={"x": x, "w": w, "b": b}).save("graph.svg")
    print(explain_backward(loss, params={"x": x, "w": w, "b": b}, check=True))

`draw_graph` turns the recorded graph into Graphviz DOT text (and into SVG/PNG when the
Graphviz `dot` program is installed). `explain_backward` runs the real backward pass with
the engine's observer hook (`smolgrad.engine.run_backward(..., observer=...)`) and writes
down, for every node in the order backward reaches it, what came in, which derivative rule
was applied, which axes were summed away to undo broadcasting, and, on request, whether a
finite-difference experiment agrees with that one step.

Both read the graph through the same public pieces the engine uses: `tensor.grad_fn` (the
node), `node.inputs` (its positional arguments), `node.needs_input_grad` and
`smolgrad.engine.topological_order`. Every number they print is computed from the tensors.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import dtypes as dt
from .engine import Tensor, no_grad, run_backward, topological_order

# ---------------------------------------------------------------------------------------
# Walking the graph and naming its tensors
# ---------------------------------------------------------------------------------------

_FREED = ("{who}: the graph behind this tensor was already freed by a backward() without "
          "retain_graph=True (node {op} has no inputs left). Call {who} before backward(), "
          "or run the first backward with backward(retain_graph=True).")


@dataclass
class _Entry:
    """One tensor of the graph, with the name and role shown to the reader."""

    tensor: Tensor
    name: str
    kind: str  # "output", "op", "parameter", "leaf" or "constant"


def _param_names(params, who: str) -> tuple:
    """({id(tensor): name}, from_module) from a Module, a dict name -> tensor, or
    (name, tensor) pairs. The names keep the order they were given in."""
    if params is None:
        return {}, False
    from_module = hasattr(params, "named_parameters")
    if from_module:
        items = list(params.named_parameters())
    elif isinstance(params, dict):
        items = list(params.items())
    else:
        try:
            items = [(name, t) for name, t in params]
        except (TypeError, ValueError):
            raise TypeError(f"{who}: params must be a Module, a dict of name -> Tensor or a "
                            f"list of (name, Tensor) pairs, got {type(params).__name__}") from None
    names: dict = {}
    for name, t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"{who}: params[{name!r}] is a {type(t).__name__}, expected a "
                            f"Tensor")
        names.setdefault(id(t), str(name))  # a tied weight keeps its first name
    return names, from_module


def _as_roots(outputs, who: str) -> list:
    if isinstance(outputs, Tensor):
        roots = [outputs]
    elif isinstance(outputs, (list, tuple)):
        roots = list(outputs)
    else:
        roots = []
    if not roots or not all(isinstance(r, Tensor) for r in roots):
        raise TypeError(f"{who}: expected a Tensor (or a list of Tensors), got "
                        f"{type(outputs).__name__}")
    return roots


def _inputs_first(roots: list) -> list:
    """The graph's tensors, each after the tensors it was computed from, arguments visited
    left to right (a depth-first post-order: `x, w, x*w, b, x*w + b`). Tensor arguments
    that need no gradient (data, targets) are included; the walk does not go below them."""
    order, seen = [], set()
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        t, finished = stack.pop()
        if finished:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        node = t.grad_fn
        if node is not None:
            for inp in reversed(node.inputs):
                if isinstance(inp, Tensor) and id(inp) not in seen:
                    stack.append((inp, False))
    return order


def _forward_order(roots: list, params, who: str) -> list:
    """Every tensor of the graph as an `_Entry`, inputs before the results made from them.

    The engine's own `topological_order` checks first that the graph is still alive (a
    backward without retain_graph releases every node it passes).
    """
    names, from_module = _param_names(params, who)
    for r in roots:
        if r.grad_fn is None and not r.requires_grad:
            raise RuntimeError(f"{who}: the tensor of shape {r.shape} has no graph: it does "
                               f"not require grad (was it computed under no_grad(), or from "
                               f"tensors without requires_grad=True?)")
    try:
        topological_order(roots)
    except RuntimeError as err:
        op = "?"
        for r in roots:
            if r.grad_fn is not None:
                op = _first_freed(r) or op
        raise RuntimeError(_FREED.format(who=who, op=op)) from err
    root_ids = {id(r) for r in roots}
    entries = []
    counts = {"t": 0, "leaf": 0, "const": 0}
    for t in _inputs_first(roots):
        if t.grad_fn is not None:
            kind, prefix = ("output" if id(t) in root_ids else "op"), "t"
        elif not t.requires_grad:
            kind, prefix = "constant", "const"
        else:
            is_param = type(t).__name__ == "Parameter" or (from_module and id(t) in names)
            kind, prefix = ("parameter" if is_param else "leaf"), "leaf"
        name = names.get(id(t))
        if name is None:
            name = f"{prefix}{counts[prefix]}"
            counts[prefix] += 1
        entries.append(_Entry(t, name, kind))
    return entries


def _first_freed(root: Tensor) -> str | None:
    """The name of the first released node met walking down from `root` (for the error)."""
    stack, seen = [root], set()
    while stack:
        t = stack.pop()
        node = t.grad_fn
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node._freed:
            return node.name
        stack.extend(i for i in node.inputs if isinstance(i, Tensor))
    return None


def _describe_index(part) -> str:
    """One entry of an indexing key as written in Python: `:`, `1:6`, `...`, `None`."""
    if isinstance(part, slice):
        text = ":".join("" if v is None else str(v) for v in (part.start, part.stop))
        return text + (f":{part.step}" if part.step is not None else "")
    if part is Ellipsis:
        return "..."
    if hasattr(part, "shape"):
        return f"array{tuple(part.shape)}"
    return repr(part)


def _describe_arg(a) -> str:
    """A short text for a non-tensor argument of a node (a dim, a shape, a flag...)."""
    if a is None or isinstance(a, (bool, int, float, str)):
        text = repr(a)
    elif isinstance(a, slice) or (isinstance(a, tuple) and any(
            isinstance(v, slice) or v is Ellipsis for v in a)):
        parts = a if isinstance(a, tuple) else (a,)
        text = "[" + ", ".join(_describe_index(v) for v in parts) + "]"
    elif isinstance(a, (tuple, list)) and all(
            isinstance(v, (bool, int, float, str, type(None))) for v in a):
        text = repr(tuple(a))
    elif hasattr(a, "shape"):
        text = f"array{tuple(a.shape)}"
    elif isinstance(a, dt.dtype):
        text = a.name
    else:
        text = type(a).__name__
    return text if len(text) <= 40 else text[:37] + "..."


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


def _to_float64(t: Tensor) -> np.ndarray:
    return np.asarray(t.backend.to_numpy(t.array), dtype=np.float64)


def _norm(t: Tensor) -> float:
    return float(np.linalg.norm(_to_float64(t).ravel()))


def _fmt(v: float) -> str:
    return f"{v:.4g}"


# ---------------------------------------------------------------------------------------
# draw_graph
# ---------------------------------------------------------------------------------------


@dataclass
class GraphNode:
    """One tensor as drawn: its name, the op that made it (None for leaves), its role."""

    name: str
    kind: str
    op: str | None
    shape: tuple
    dtype: str
    grad_norm: float | None
    args: list = field(default_factory=list)   # non-tensor arguments of the op, as text
    inputs: list = field(default_factory=list)  # names of the tensors it was computed from


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_STYLE = {
    "output": 'shape=box, style="rounded,filled,bold", fillcolor="#f6c6c6"',
    "op": 'shape=box, style="rounded,filled", fillcolor="#fdf1c7"',
    "parameter": 'shape=box, style=filled, fillcolor="#cfe3f7"',
    "leaf": 'shape=box, style=filled, fillcolor="#d8f0d2"',
    "constant": 'shape=box, style=filled, fillcolor="#e8e8e8"',
}


def _node_label(n: GraphNode) -> str:
    if n.op is not None:
        head = f"{n.name} = {n.op}"
        if n.args:
            head += f"({', '.join(n.args)})"
    else:
        head = f"{n.name} ({n.kind})"
    lines = [head, f"{n.shape} {n.dtype}"]
    if n.grad_norm is not None:
        lines.append(f"grad norm {_fmt(n.grad_norm)}")
    return "\\n".join(_dot_escape(line) for line in lines)


def _to_dot(nodes: list) -> str:
    ids = {n.name: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["digraph smolgrad {", '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    for n in nodes:
        lines.append(f'  {ids[n.name]} [label="{_node_label(n)}", {_STYLE[n.kind]}];')
    for n in nodes:
        for pos, src in enumerate(n.inputs):
            label = f' [label="{pos}"]' if len(n.inputs) > 1 else ""
            lines.append(f"  {ids[src]} -> {ids[n.name]}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_program() -> str | None:
    return shutil.which("dot")


def _render(dot: str, fmt: str) -> bytes:
    """DOT text -> image bytes with Graphviz (the Python package when it is installed,
    else the `dot` program directly)."""
    try:
        import graphviz
    except ImportError:
        graphviz = None
    if graphviz is not None:
        return graphviz.Source(dot).pipe(format=fmt)
    done = subprocess.run([_dot_program(), f"-T{fmt}"], input=dot.encode(),
                          capture_output=True, check=True)
    return done.stdout


class Graph:
    """The drawing of a graph. `.dot` is the Graphviz DOT text (always available),
    `.nodes` the same content as data, `.save(path)` writes it to disk, and notebooks
    show it as SVG when Graphviz's `dot` program is installed (else as DOT text)."""

    _IMAGE_FORMATS = ("svg", "png", "pdf")

    def __init__(self, nodes: list, format: str | None = None):  # noqa: A002 - our API name
        if format is not None and format not in self._IMAGE_FORMATS + ("dot",):
            raise ValueError(f"draw_graph: format must be one of 'dot', 'svg', 'png', 'pdf' "
                             f"or None, got {format!r}")
        self.nodes = nodes
        self.format = format
        self.dot = _to_dot(nodes)
        self._svg: str | None = None

    @staticmethod
    def can_render() -> bool:
        """Is Graphviz's `dot` program on PATH (needed for SVG/PNG, not for DOT)?"""
        return _dot_program() is not None

    def render(self, format: str = "svg") -> bytes:  # noqa: A002
        """The image bytes in `format` ('svg', 'png', 'pdf'); needs Graphviz's `dot`."""
        if format not in self._IMAGE_FORMATS:
            raise ValueError(f"Graph.render: format must be one of {self._IMAGE_FORMATS}, got "
                             f"{format!r}")
        if not self.can_render():
            raise RuntimeError("Graph.render: Graphviz's `dot` program was not found on PATH; "
                               "install Graphviz (apt install graphviz, brew install "
                               "graphviz) or use the DOT text in `.dot` / `.save('g.dot')`")
        return _render(self.dot, format)

    def save(self, path) -> list:
        """Write the graph; returns the paths written.

        `g.dot` (or `.gv`): the DOT text only. `g.svg` / `g.png` / `g.pdf`: `g.dot` always,
        and the image when Graphviz's `dot` program is installed (otherwise a warning says
        so and only the DOT file is written). A path without a suffix gets `.dot` plus the
        image in `draw_graph(..., format=...)` (none when format is None or 'dot').
        """
        path = Path(path)
        suffix = path.suffix.lower().lstrip(".")
        if suffix in ("dot", "gv"):
            path.write_text(self.dot)
            return [str(path)]
        if suffix in self._IMAGE_FORMATS:
            fmt, dot_path, image_path = suffix, path.with_suffix(".dot"), path
        else:
            fmt = self.format if self.format in self._IMAGE_FORMATS else None
            dot_path = path.with_name(path.name + ".dot")
            image_path = path.with_name(f"{path.name}.{fmt}") if fmt else None
        dot_path.write_text(self.dot)
        written = [str(dot_path)]
        if image_path is not None:
            if self.can_render():
                image_path.write_bytes(_render(self.dot, fmt))
                written.append(str(image_path))
            else:
                warnings.warn(f"Graph.save: Graphviz's `dot` program is not on PATH, so "
                              f"{image_path} was not written; the graph is in {dot_path} "
                              f"(render it later with `dot -T{fmt} {dot_path}`)", stacklevel=2)
        return written

    def _repr_svg_(self) -> str | None:
        if not self.can_render():
            return None  # IPython then falls back to the next representation
        if self._svg is None:
            self._svg = _render(self.dot, "svg").decode("utf-8")
        return self._svg

    def _repr_html_(self) -> str:
        svg = self._repr_svg_()
        if svg is not None:
            return svg
        return ("<p>Graphviz's <code>dot</code> program is not installed; here is the "
                "graph as DOT text:</p><pre>" + html.escape(self.dot) + "</pre>")

    def __str__(self) -> str:
        return self.dot

    def __repr__(self) -> str:
        return f"<Graph: {len(self.nodes)} tensors; .dot, .save(path)>"


def _display_grads(roots: list, entries: list) -> dict:
    """{id(tensor): gradient norm} to print next to each tensor, or {} before backward.

    Leaves (and tensors with retain_grad) show their `.grad`. Other tensors keep no
    gradient after backward, so for a single scalar output their gradient d(output)/d(t)
    is computed again here, by a backward with gradient 1 that stores nothing
    (`accumulate=False`); it needs the graph alive (retain_graph=True).
    """
    stored = {id(e.tensor): e.tensor.grad for e in entries if e.tensor.grad is not None}
    if not any(e.tensor.grad_fn is None for e in entries if id(e.tensor) in stored):
        return {}  # no leaf has a gradient: backward has not run yet
    norms = {key: _norm(g) for key, g in stored.items()}
    if len(roots) == 1 and roots[0].numel() == 1 and roots[0].grad_fn is not None:
        root = roots[0]
        wanted = [e.tensor for e in entries
                  if e.tensor.grad_fn is not None and id(e.tensor) not in norms]
        if wanted:
            seed = Tensor._make(root.backend.ones(root.array.shape, root.dtype), root.backend)
            try:
                grads = run_backward([root], [seed], retain_graph=True, inputs=wanted,
                                     accumulate=False)
            except RuntimeError as err:  # e.g. an in-place change since the forward pass
                warnings.warn(f"draw_graph: could not recompute the gradients of the "
                              f"intermediate tensors ({err}); showing the leaves' .grad only",
                              stacklevel=3)
                grads = [None] * len(wanted)
            for t, g in zip(wanted, grads):
                if g is not None:
                    norms[id(t)] = _norm(g)
    return norms


def draw_graph(output, params=None, format: str | None = None,  # noqa: A002
               show_grads: bool | None = None) -> Graph:
    """Draw the graph that autograd recorded for `output` (a Tensor or a list of them).

    Every tensor becomes one box: an op's result shows `name = Op(non-tensor args)`, its
    shape and dtype; leaves are labelled by role (parameter, leaf, constant). Names come
    from `params`: a Module (its `named_parameters()`), a dict name -> Tensor (any tensor
    of the graph may be named, inputs and outputs too) or (name, Tensor) pairs; unnamed
    tensors are numbered t0, t1, ... (op results), leaf0, ... and const0, ...
    An edge label is the argument position when an op has several tensor inputs.

    Gradient norms: when some leaf of the graph has a `.grad` (that is, after backward),
    each box also shows the L2 norm of its gradient: `.grad` for leaves, and for the other
    tensors of a scalar output a gradient recomputed here with a backward that stores
    nothing (it runs the tensors' hooks again). `show_grads=False` leaves them out;
    `show_grads=True` insists (an error when there are none to show).

    When to call it: before `backward()`, or after `backward(retain_graph=True)`. A
    backward without retain_graph frees the graph (each node forgets its inputs), so there
    is nothing left to draw: that raises a RuntimeError saying so.

    `format` ('svg', 'png', 'pdf' or 'dot') is the image `Graph.save` writes for a path
    without a suffix. Returns a `Graph`: `.dot` (DOT text), `.nodes`, `.save(path)`,
    `.render(format)`, and rich display in notebooks.
    """
    roots = _as_roots(output, "draw_graph")
    entries = _forward_order(roots, params, "draw_graph")
    grads = {} if show_grads is False else _display_grads(roots, entries)
    if show_grads and not grads:
        raise RuntimeError("draw_graph: show_grads=True but no tensor of the graph has a "
                           "gradient yet; call backward(retain_graph=True) first")
    by_id = {id(e.tensor): e for e in entries}
    nodes = []
    for e in entries:
        t, node = e.tensor, e.tensor.grad_fn
        args, inputs = [], []
        if node is not None:
            for a in node.inputs:
                if isinstance(a, Tensor):
                    inputs.append(by_id[id(a)].name)
                else:
                    args.append(_describe_arg(a))
        nodes.append(GraphNode(name=e.name, kind=e.kind,
                               op=node.name if node is not None else None,
                               shape=t.shape, dtype=t.dtype.name,
                               grad_norm=grads.get(id(t)), args=args, inputs=inputs))
    return Graph(nodes, format)


# ---------------------------------------------------------------------------------------
# explain_backward
# ---------------------------------------------------------------------------------------


@dataclass
class GradSummary:
    """Summary statistics of one gradient (computed in float64; std with ddof=0)."""

    shape: tuple
    mean: float
    std: float
    min: float
    max: float
    norm: float

    @classmethod
    def of(cls, array: np.ndarray) -> GradSummary:
        flat = np.asarray(array, dtype=np.float64).ravel()
        if flat.size == 0:
            return cls(tuple(array.shape), *(float("nan"),) * 4, 0.0)
        return cls(tuple(array.shape), float(flat.mean()), float(flat.std()),
                   float(flat.min()), float(flat.max()), float(np.linalg.norm(flat)))

    def __str__(self) -> str:
        return (f"shape {self.shape}  mean {_fmt(self.mean)}  std {_fmt(self.std)}  "
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
    `LeafGrad`); `str()` for the terminal, `_repr_html_` for notebooks, and `.passed`
    (True / False / None when no check ran)."""

    def __init__(self, root_name: str, root_shape: tuple, seed: GradSummary, steps: list,
                 leaves: list, accumulated: bool):
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
                out.append(f"  -> {i.name} (argument {i.position}, shape {i.shape})")
                out.append(f"     backward returned {i.raw_grad_shape}, {axes} -> "
                           f"{i.grad.shape}, norm {_fmt(i.grad.norm)}")
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

    def _repr_html_(self) -> str:
        e = html.escape
        rows = []
        for s in self.steps:
            ins = []
            for i in s.inputs:
                axes = str(i.summed_axes) if i.summed_axes else "none"
                text = (f"{e(i.name)} {i.shape}: {i.raw_grad_shape} &rarr; sum axes {axes} "
                        f"&rarr; {i.grad.shape}, norm {_fmt(i.grad.norm)}")
                if i.check is not None:
                    text += f"<br><i>{e(str(i.check))}</i>"
                ins.append(text)
            rows.append(f"<tr><td>{s.index}</td><td><b>{e(s.op)}</b> &rarr; "
                        f"{e(s.output_name)}<br>{s.output_shape} {e(s.output_dtype)}</td>"
                        f"<td><code>{e(s.rule)}</code></td><td>{e(str(s.grad_in))}</td>"
                        f"<td>{'<br>'.join(ins)}</td></tr>")
        leaves = "".join(f"<li>{e(leaf.name)} ({e(leaf.kind)}): {e(str(leaf.grad))}</li>"
                         for leaf in self.leaves)
        return (f"<p>Backward pass from <b>{e(self.root_name)}</b> (shape {self.root_shape})"
                f", seed gradient {e(str(self.seed))}</p>"
                "<table><tr><th>#</th><th>op</th><th>local rule</th><th>incoming grad</th>"
                "<th>inputs: raw grad &rarr; summed axes &rarr; grad</th></tr>"
                + "".join(rows) + f"</table><p>Leaf gradients:</p><ul>{leaves}</ul>")


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
                             shape=inp.shape, raw_grad_shape=raw.shape,
                             summed_axes=tuple(axes), grad=GradSummary.of(final64))
            if self.check:
                item.check = _check_step(node, position, grad, final, self.rng)
            inputs.append(item)
            if inp.grad_fn is None:
                _, total = self.leaf_grads.get(id(inp), (inp, None))
                self.leaf_grads[id(inp)] = (inp, final64 if total is None else total + final64)
        self.steps.append(Step(index=len(self.steps) + 1, op=node.name, rule=_rule(node),
                               output_name=self.names.get(id(t), "?"), output_shape=t.shape,
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
    names = {id(e.tensor): e.name for e in entries}
    kinds = {id(e.tensor): e.kind for e in entries}
    if gradient is None:
        if loss.numel() != 1:
            raise RuntimeError(f"explain_backward: the output has shape {loss.shape}, so "
                               f"the seed gradient cannot be implied; pass gradient= of that "
                               f"shape (as for backward())")
        gradient = Tensor._make(loss.backend.ones(loss.array.shape, loss.dtype), loss.backend)
    elif not isinstance(gradient, Tensor):
        gradient = Tensor(gradient, dtype=loss.dtype, device=loss.device)
    if gradient.shape != loss.shape:
        raise RuntimeError(f"explain_backward: gradient has shape {gradient.shape}, but the "
                           f"output has shape {loss.shape}")
    recorder = _Recorder(names, check)
    run_backward([loss], [gradient], retain_graph=True, accumulate=accumulate,
                 observer=recorder)
    if loss.grad_fn is None:  # a leaf: backward has no step, the seed is its gradient
        recorder.leaf_grads[id(loss)] = (loss, _to_float64(gradient))
    order = {id(e.tensor): i for i, e in enumerate(entries)}
    leaves = [LeafGrad(names.get(key, "?"), kinds.get(key, "leaf"), leaf.shape,
                       GradSummary.of(total))
              for key, (leaf, total) in sorted(recorder.leaf_grads.items(),
                                               key=lambda item: order.get(item[0], 0))]
    return Explanation(names[id(loss)], loss.shape, GradSummary.of(_to_float64(gradient)),
                       recorder.steps, leaves, accumulate)


__all__ = ["Explanation", "Graph", "GraphNode", "GradSummary", "InputStep", "LeafGrad", "Step",
           "StepCheck", "draw_graph", "explain_backward"]
