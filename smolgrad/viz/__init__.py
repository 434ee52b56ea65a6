"""Teaching tools: look at the graph autograd recorded, and watch backward walk it.

    import smolgrad as sg
    from smolgrad.viz import draw_graph, explain_backward

    x = sg.randn(4, 3)
    w = sg.randn(3, 2, requires_grad=True)
    b = sg.zeros(2, requires_grad=True)
    loss = ((x @ w + b) ** 2).mean()

    draw_graph(loss, params={"x": x, "w": w, "b": b}).save("graph.svg")
    explanation = explain_backward(loss, params={"x": x, "w": w, "b": b}, check=True)
    print(explanation)                                  # the terminal version
    explanation.save_html("backward.html")              # open it in a browser

`draw_graph` turns the recorded graph into a picture: Graphviz DOT text always, SVG on
any machine (the built-in layered layout, `layout.py`, places the boxes with networkx),
PNG/PDF with matplotlib, or Graphviz's own drawing when its `dot` program is installed.
`explain_backward` runs the real backward pass with the engine's observer hook
(`smolgrad.engine.run_backward(..., observer=...)`) and writes down, for every node in the
order backward reaches it, what came in, which derivative rule was applied, which axes
were summed away to undo broadcasting, and, on request, whether a finite-difference
experiment agrees with that one step; `.save_html(path)` makes that a page to click
through (`page.py`).

Both read the graph through the same public pieces the engine uses: `tensor.grad_fn` (the
node), `node.inputs` (its positional arguments), `node.needs_input_grad` and
`smolgrad.engine.topological_order`. Every number they show is computed from the tensors.

    graph.py    naming the tensors, GraphNode, DOT text, Graph, draw_graph, module boxes
    layout.py   the layered layout without Graphviz; SVG and matplotlib drawing
    explain.py  explain_backward, Explanation, the finite-difference check of one step
    page.py     the self-contained HTML walk-through page
"""

from .explain import (
    Explanation,
    GradSummary,
    InputStep,
    LeafGrad,
    Step,
    StepCheck,
    explain_backward,
)
from .graph import Graph, GraphNode, draw_graph

__all__ = ["Explanation", "Graph", "GraphNode", "GradSummary", "InputStep", "LeafGrad", "Step",
           "StepCheck", "draw_graph", "explain_backward"]
