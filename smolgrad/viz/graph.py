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

import dataclasses
import html
import importlib.util
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import dtypes as dt
from ..engine import Tensor, run_backward, topological_order
from .layout import KIND_COLOURS, Layout, layered_layout, to_image, to_svg

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
    left to right (`x, w, x*w, b, x*w + b`): the engine's backward order turned around.
    Tensor arguments that need no gradient (data, targets) are included."""
    order = topological_order(roots, every_input=True)
    return [t for t in reversed(order) if isinstance(t, Tensor)]


def _forward_order(roots: list, params, who: str) -> list:
    """Every tensor of the graph as an `_Entry`, inputs before the results made from them.

    The engine's own `topological_order` checks first that the graph is still alive (a
    backward without retain_graph releases every node it passes).
    """
    names, from_module = _param_names(params, who)
    for r in roots:
        if r.grad_fn is None and not r.requires_grad:
            raise RuntimeError(f"{who}: the tensor of shape {tuple(r.shape)} has no graph: it does "
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
    taken = set(names.values())
    for t in _inputs_first(roots):
        if t.grad_fn is not None:
            kind, prefix = ("output" if id(t) in root_ids else "op"), "t"
        elif not t.requires_grad:
            kind, prefix = "constant", "const"
        else:
            is_param = type(t).__name__ == "Parameter" or (from_module and id(t) in names)
            kind, prefix = ("parameter" if is_param else "leaf"), "leaf"
        name = names.get(id(t))
        while name is None or (id(t) not in names and name in taken):
            name = f"{prefix}{counts[prefix]}"  # never a name the caller gave another tensor
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


def _to_float64(t: Tensor) -> np.ndarray:
    return np.asarray(t.backend.to_numpy(t.array), dtype=np.float64)


def _norm(t: Tensor) -> float:
    return float(np.linalg.norm(_to_float64(t).ravel()))


def _fmt(v: float) -> str:
    return f"{v:.4g}"


# ---------------------------------------------------------------------------------------
# draw_graph
# ---------------------------------------------------------------------------------------

_HEAD_LIMIT = 40  # a longer "name = Op(args)" line puts the arguments on a line of their own


@dataclass
class GraphNode:
    """One box of the drawing: a tensor (its name, the op that made it, None for leaves,
    its role), or with `group_by="module"` a whole module (kind "module"; `members` are the
    names of the tensors inside it), or the note box of a graph cut at `max_nodes`
    (kind "more")."""

    name: str
    kind: str
    op: str | None
    shape: tuple
    dtype: str
    grad_norm: float | None
    args: list = field(default_factory=list)     # non-tensor arguments of the op, as text
    inputs: list = field(default_factory=list)   # names of the boxes it was computed from
    members: list = field(default_factory=list)  # kind "module": the tensors inside
    summary: str = ""                            # kind "module"/"more": a second line

    def label_lines(self) -> list:
        """The text of the box, one string per line (the same in DOT, SVG and PNG)."""
        if self.kind == "more":
            return [self.name, self.summary]
        if self.kind == "module":
            lines = [f"{self.name} (module)"] + ([self.summary] if self.summary else [])
        elif self.op is None:
            lines = [f"{self.name} ({self.kind})"]
        else:
            head = f"{self.name} = {self.op}"
            call = f"({', '.join(self.args)})" if self.args else ""
            if len(head + call) <= _HEAD_LIMIT:
                lines = [head + call]
            else:
                lines = [head, call if len(call) <= 48 else call[:45] + "..."]
        lines.append(f"{tuple(self.shape)} {self.dtype}")
        if self.grad_norm is not None:
            lines.append(f"grad norm {_fmt(self.grad_norm)}")
        return lines


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_style(kind: str) -> str:
    style = {"output": "rounded,filled,bold", "op": "rounded,filled", "module": "filled",
             "more": "dashed"}.get(kind, "filled")
    return f'shape=box, style="{style}", fillcolor="{KIND_COLOURS[kind]}"'


def _to_dot(nodes: list, note: str = "") -> str:
    ids = {n.name: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["digraph smolgrad {", '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    if note:
        lines.append(f'  labelloc=t; label="{_dot_escape(note)}";')
    for n in nodes:
        label = "\\n".join(_dot_escape(line) for line in n.label_lines())
        lines.append(f'  {ids[n.name]} [label="{label}", {_dot_style(n.kind)}];')
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


def _missing_modules(fmt: str) -> list:
    """The Python packages the built-in drawing of `fmt` needs and this machine lacks."""
    wanted = ["networkx"] + (["matplotlib"] if fmt != "svg" else [])
    return [name for name in wanted if importlib.util.find_spec(name) is None]


class Graph:
    """The drawing of a graph. `.dot` is the Graphviz DOT text, `.nodes` the same content
    as data (a list of `GraphNode`), `.note` says what was left out (empty when nothing),
    `.svg()` the built-in SVG picture, `.render(format)` image bytes, `.save(path)` files.

    Two ways to draw: Graphviz's `dot` program when it is installed (the nicest layout),
    else the built-in layered layout (`smolgrad.viz.layout`: networkx places the boxes;
    SVG is written directly, PNG/PDF are drawn by matplotlib). Notebooks show it as SVG.
    """

    _IMAGE_FORMATS = ("svg", "png", "pdf")
    _RENDERERS = ("auto", "graphviz", "builtin")

    def __init__(self, nodes: list, format: str | None = None,  # noqa: A002 - our API name
                 note: str = ""):
        if format is not None and format not in self._IMAGE_FORMATS + ("dot",):
            raise ValueError(f"draw_graph: format must be one of 'dot', 'svg', 'png', 'pdf' "
                             f"or None, got {format!r}")
        self.nodes = nodes
        self.format = format
        self.note = note
        self.dot = _to_dot(nodes, note)
        self._layout: Layout | None = None

    @staticmethod
    def has_graphviz() -> bool:
        """Is Graphviz's `dot` program on PATH?"""
        return _dot_program() is not None

    @classmethod
    def can_render(cls, format: str = "svg") -> bool:  # noqa: A002
        """Can this machine draw `format` ('svg', 'png', 'pdf'): with Graphviz's `dot`, or
        with the built-in layout (networkx; matplotlib too for PNG and PDF)?"""
        return cls.has_graphviz() or not _missing_modules(format)

    def layout(self) -> Layout:
        """The built-in layered layout of the boxes (computed once)."""
        if self._layout is None:
            if _missing_modules("svg"):
                raise RuntimeError("Graph.layout: the built-in drawing needs networkx (pip "
                                   "install networkx, or smolgrad[demo]); or install Graphviz")
            index = {n.name: i for i, n in enumerate(self.nodes)}
            self._layout = layered_layout([n.label_lines() for n in self.nodes],
                                          [n.kind for n in self.nodes],
                                          [[index[s] for s in n.inputs] for n in self.nodes],
                                          self.note)
        return self._layout

    def svg(self) -> str:
        """The built-in SVG picture (text): the same on every machine, whether or not
        Graphviz is installed. Each box is a `<g class="sg-node" data-node="i">`, i its
        index in `.nodes`."""
        return to_svg(self.layout())

    def render(self, format: str = "svg", renderer: str = "auto") -> bytes:  # noqa: A002
        """The image bytes in `format` ('svg', 'png', 'pdf'). `renderer`: 'graphviz' (its
        `dot` program), 'builtin' (networkx layout; matplotlib for PNG/PDF) or 'auto'
        (Graphviz when installed, else built-in)."""
        if format not in self._IMAGE_FORMATS:
            raise ValueError(f"Graph.render: format must be one of {self._IMAGE_FORMATS}, got "
                             f"{format!r}")
        if renderer not in self._RENDERERS:
            raise ValueError(f"Graph.render: renderer must be one of {self._RENDERERS}, got "
                             f"{renderer!r}")
        if renderer == "auto":
            renderer = "graphviz" if self.has_graphviz() else "builtin"
        if renderer == "graphviz":
            if not self.has_graphviz():
                raise RuntimeError("Graph.render: Graphviz's `dot` program was not found on "
                                   "PATH; install Graphviz (apt install graphviz, brew "
                                   "install graphviz) or use renderer='builtin'")
            return _render(self.dot, format)
        missing = _missing_modules(format)
        if missing:
            raise RuntimeError(f"Graph.render: drawing {format.upper()} without Graphviz needs "
                               f"{' and '.join(missing)} (pip install {' '.join(missing)}, or "
                               f"pip install 'smolgrad[demo]'); the DOT text is in `.dot`")
        if format == "svg":
            return self.svg().encode("utf-8")
        return to_image(self.layout(), format)

    def save(self, path, renderer: str = "auto") -> list:
        """Write the graph; returns the paths written.

        `g.dot` (or `.gv`): the DOT text only. `g.svg` / `g.png` / `g.pdf`: the picture
        (see `render` for `renderer`) and `g.dot` beside it. When this machine cannot draw
        that format (no Graphviz and no networkx/matplotlib), a warning says so and only
        the DOT file is written. A path without a suffix gets `.dot` plus the picture in
        `draw_graph(..., format=...)` (none when format is None or 'dot').
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
        if image_path is None:
            return written
        if renderer == "auto" and not self.can_render(fmt):
            warnings.warn(f"Graph.save: {image_path} was not written: there is neither "
                          f"Graphviz's `dot` program nor {' and '.join(_missing_modules(fmt))}"
                          f" (pip install 'smolgrad[demo]'); the graph is in {dot_path} "
                          f"(render it later with `dot -T{fmt} {dot_path}`)", stacklevel=2)
            return written
        image_path.write_bytes(self.render(fmt, renderer))
        written.append(str(image_path))
        return written

    def _repr_svg_(self) -> str | None:
        if not self.can_render("svg"):
            return None  # IPython then falls back to the next representation
        return self.render("svg").decode("utf-8")

    def _repr_html_(self) -> str:
        svg = self._repr_svg_()
        if svg is not None:
            return svg
        return ("<p>Neither Graphviz's <code>dot</code> program nor networkx is installed; "
                "here is the graph as DOT text:</p><pre>" + html.escape(self.dot) + "</pre>")

    def __str__(self) -> str:
        return self.dot

    def __repr__(self) -> str:
        note = f"; {self.note}" if self.note else ""
        return f"<Graph: {len(self.nodes)} boxes{note}; .dot, .svg(), .save(path)>"


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


def graph_nodes(entries: list, grads: dict) -> list:
    """One `GraphNode` per entry of `_forward_order`, with the gradient norms `grads`
    ({id(tensor): norm}) written in."""
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
                               shape=tuple(t.shape), dtype=t.dtype.name,
                               grad_norm=grads.get(id(t)), args=args, inputs=inputs))
    return nodes


def draw_graph(output, params=None, format: str | None = None,  # noqa: A002
               show_grads: bool | None = None, group_by: str | None = None,
               group_depth: int | None = None, max_nodes: int = 200) -> Graph:
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

    Large graphs: `group_by="module"` draws each module as one box (see `group_modules`
    for which tensors go inside; `group_depth=k` groups by the first k parts of the
    module path, e.g. 3 for GPT-2's `transformer.h.0`), and at most `max_nodes` boxes are
    drawn: those nearest the output, plus one box and `Graph.note` saying how many were
    left out.

    When to call it: before `backward()`, or after `backward(retain_graph=True)`. A
    backward without retain_graph frees the graph (each node forgets its inputs), so there
    is nothing left to draw: that raises a RuntimeError saying so.

    `format` ('svg', 'png', 'pdf' or 'dot') is the image `Graph.save` writes for a path
    without a suffix. Returns a `Graph`: `.dot` (DOT text), `.nodes`, `.svg()`,
    `.save(path)`, `.render(format)`, and rich display in notebooks.
    """
    if group_by not in (None, "module"):
        raise ValueError(f"draw_graph: group_by must be None or 'module', got {group_by!r}")
    if group_depth is not None and (group_by is None or group_depth < 1):
        raise ValueError(f"draw_graph: group_depth={group_depth!r} needs group_by='module' "
                         f"and must be at least 1")
    if not isinstance(max_nodes, int) or max_nodes < 2:
        raise ValueError(f"draw_graph: max_nodes must be an int of at least 2, got "
                         f"{max_nodes!r}")
    roots = _as_roots(output, "draw_graph")
    entries = _forward_order(roots, params, "draw_graph")
    grads = {} if show_grads is False else _display_grads(roots, entries)
    if show_grads and not grads:
        raise RuntimeError("draw_graph: show_grads=True but no tensor of the graph has a "
                           "gradient yet; call backward(retain_graph=True) first")
    nodes = graph_nodes(entries, grads)
    if group_by == "module":
        nodes = group_modules(nodes, group_depth)
    nodes, note = keep_nearest(nodes, max_nodes)
    return Graph(nodes, format, note)


# ---------------------------------------------------------------------------------------
# Large graphs: modules as boxes, and a cap on the number of boxes
# ---------------------------------------------------------------------------------------


def _module_of(node: GraphNode, depth: int | None) -> str | None:
    """The module path of a parameter named like `h.0.attn.c_attn.weight` (its name
    without the last part, cut to `depth` parts), or None for anything else."""
    if node.kind not in ("parameter", "leaf") or "." not in node.name:
        return None
    path = node.name.rsplit(".", 1)[0].split(".")
    return ".".join(path[:depth] if depth else path)


def _seeds(nodes: list, depth: int | None) -> dict:
    """{module path: indices of its parameters and of the ops that use them directly}.
    An op that uses the parameters of two modules belongs to neither."""
    index = {n.name: i for i, n in enumerate(nodes)}
    seeds: dict = {}
    for i, n in enumerate(nodes):
        module = _module_of(n, depth)
        if module is not None:
            seeds.setdefault(module, set()).add(i)
    for i, n in enumerate(nodes):
        used = {_module_of(nodes[index[s]], depth) for s in n.inputs} - {None}
        if len(used) == 1:
            seeds[used.pop()].add(i)
    return seeds


def _reachable(edges: dict, starts: set, blocked: set = frozenset()) -> set:
    """Every node reached from `starts` along `edges` ({node: [next nodes]}), not counting
    the starts themselves unless reached again, never entering `blocked`."""
    found, stack = set(), list(starts)
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in found and nxt not in blocked:
                found.add(nxt)
                stack.append(nxt)
    return found


def group_modules(nodes: list, depth: int | None = None) -> list:
    """The boxes with each module's tensors collapsed into one box (kind "module").

    Which tensors a module's box holds, read from the graph alone: the module's parameters
    (named `path.weight` etc., as `named_parameters()` names them), the ops that use them,
    and every tensor on a path between two of those that does not pass through another
    module's parameters or their ops (for a transformer block cut at depth 3: the
    attention and MLP internals and the residual sum between them). Everything else
    (inputs, the loss, ops between modules) keeps its own box. A module whose box would
    have an arrow leaving it and coming back (a weight shared by the first and the last
    layer, as GPT-2's token embedding) is not collapsed: its tensors keep their boxes.
    """
    seeds = _seeds(nodes, depth)
    index = {n.name: i for i, n in enumerate(nodes)}
    forward: dict = {}
    backward: dict = {}
    for i, n in enumerate(nodes):
        for s in n.inputs:
            forward.setdefault(index[s], []).append(i)
            backward.setdefault(i, []).append(index[s])
    every_seed = set().union(*seeds.values()) if seeds else set()
    owner: dict = {}
    for module, own in seeds.items():
        others = every_seed - own
        between = _reachable(forward, own, others) & _reachable(backward, own, others)
        members = own | between
        escapes = (_reachable(forward, members) & _reachable(backward, members)) - members
        if not escapes and not members & owner.keys():
            owner.update(dict.fromkeys(members, module))
    return _collapse(nodes, owner) if owner else nodes


def _collapse(nodes: list, owner: dict) -> list:
    """Replace the nodes owned by a module (owner: {index: module path}) by one box per
    module, listed where its last member was."""
    members: dict = {}
    for i, module in owner.items():
        members.setdefault(module, []).append(i)
    name_of = {n.name: owner.get(i, n.name) for i, n in enumerate(nodes)}
    last = {max(idx): module for module, idx in members.items()}
    out = []
    for i, n in enumerate(nodes):
        if i not in owner:
            out.append(dataclasses.replace(n, inputs=_merged(n.inputs, name_of, members)))
        elif i in last:
            out.append(_module_box(last[i], [nodes[k] for k in sorted(members[last[i]])],
                                   name_of, members))
    return out


def _merged(inputs: list, name_of: dict, modules: dict) -> list:
    """Inputs renamed to their module's box; a module feeding a node twice is one arrow."""
    merged = []
    for name in inputs:
        new = name_of[name]
        if not (new in modules and new in merged):
            merged.append(new)
    return merged


def _module_box(module: str, inside: list, name_of: dict, modules: dict) -> GraphNode:
    names = {n.name for n in inside}
    inputs = [s for n in inside for s in n.inputs if s not in names]
    consumed = {s for n in inside for s in n.inputs}
    last_result = [n for n in inside if n.op is not None and n.name not in consumed]
    shown = (last_result or inside)[-1]
    ops = list(dict.fromkeys(n.op for n in inside if n.op is not None))
    params = [n for n in inside if n.op is None]
    op_text = ", ".join(ops[:3]) + (", ..." if len(ops) > 3 else "")
    count = sum(1 for n in inside if n.op is not None)
    summary = f"{count} op{'s' if count != 1 else ''}: {op_text}" if ops else ""
    if params:
        summary += f"{' · ' if summary else ''}{len(params)} param{'s' * (len(params) > 1)}"
    norms = [n.grad_norm for n in params if n.grad_norm is not None]
    return GraphNode(name=module, kind="module", op=None, shape=tuple(shown.shape),
                     dtype=shown.dtype,
                     grad_norm=float(np.sqrt(sum(v * v for v in norms))) if norms else None,
                     inputs=_merged(inputs, name_of, modules),
                     members=[n.name for n in inside], summary=summary)


def keep_nearest(nodes: list, max_nodes: int) -> tuple:
    """(boxes, note): at most `max_nodes` boxes, those fewest arrows away from the output
    (breadth first, following inputs), and one dashed box standing for the others, which
    receives their arrows. The note says what was left out ("" when nothing was)."""
    if len(nodes) <= max_nodes:
        return nodes, ""
    index = {n.name: i for i, n in enumerate(nodes)}
    used = {s for n in nodes for s in n.inputs}
    queue = [i for i, n in enumerate(nodes) if n.name not in used][::-1]
    kept: list = []
    seen = set(queue)
    while queue and len(kept) < max_nodes - 1:
        i = queue.pop(0)
        kept.append(i)
        for s in reversed(nodes[i].inputs):
            if index[s] not in seen:
                seen.add(index[s])
                queue.append(index[s])
    left_out = len(nodes) - len(kept)
    more = GraphNode(name=f"... {left_out} more", kind="more", op=None, shape=(), dtype="",
                     grad_norm=None, summary="not drawn")
    note = (f"showing {len(kept)} of {len(nodes)} boxes (max_nodes={max_nodes}), those "
            f"nearest the output; raise max_nodes= or pass group_by='module'")
    kept_names = {nodes[i].name for i in kept}
    name_of = {n.name: (n.name if n.name in kept_names else more.name) for n in nodes}
    out = [more] + [dataclasses.replace(nodes[i], inputs=_merged(
        nodes[i].inputs, name_of, {more.name: True})) for i in sorted(kept)]
    return out, note
