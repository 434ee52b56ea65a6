"""The walk-through page of an `Explanation`: one HTML file that steps through backward.

The page is self-contained (inline SVG, CSS and a little JavaScript; nothing is fetched,
no server): the graph on the left, one step of backward on the right, Next/Prev buttons
and the arrow keys to move. Every step's text is written here in Python, one `<section>`
per step; the script only shows one section at a time and colours the graph:

    current node (orange)   the op whose backward runs in this step
    inputs (blue)           the tensors that receive a gradient from it
    done (grey)             the nodes backward has already processed

Each `<section class="sgx-step">` names its graph boxes in `data-node` (the current
node) and `data-inputs` (the receivers), as indices of `Explanation.graph.nodes`, the
same numbers as the SVG's `<g class="sg-node" data-node="i">`. Without JavaScript (some
notebook viewers) every step is simply shown, one under the other.
"""

from __future__ import annotations

import html
import re
import uuid

from .graph import _fmt
from .layout import to_svg

# ---------------------------------------------------------------------------------------
# The text of one step
# ---------------------------------------------------------------------------------------


def _e(value) -> str:
    return html.escape(str(value))


def _values_html(values) -> str:
    """The values of a small gradient: a number, a row, a matrix, or nested lists."""
    if isinstance(values, float):
        return f'<span class="sgx-scalar">{_fmt(values)}</span>'
    if values and isinstance(values[0], list) and values[0] and isinstance(values[0][0], list):
        return f"<pre>{_e(_nested_text(values))}</pre>"   # 3-D and more: as Python lists
    rows = values if values and isinstance(values[0], list) else [values]
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f'<table class="sgx-matrix">{body}</table>'


def _nested_text(values) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested_text(v) for v in values) + "]"
    return _fmt(values)


def _grad_html(summary, caption: str) -> str:
    """A gradient as the learner sees it: its statistics, and its values when small."""
    stats = ("<tr><th>shape</th><th>mean</th><th>std</th><th>min</th><th>max</th>"
             "<th>norm</th></tr><tr>"
             f"<td>{_e(summary.shape)}</td><td>{_fmt(summary.mean)}</td>"
             f"<td>{_fmt(summary.std)}</td><td>{_fmt(summary.min)}</td>"
             f"<td>{_fmt(summary.max)}</td><td>{_fmt(summary.norm)}</td></tr>")
    values = ("" if summary.values is None else
              f'<div class="sgx-values"><span class="sgx-label">values</span>'
              f"{_values_html(summary.values)}</div>")
    return (f'<div class="sgx-grad"><div class="sgx-caption">{caption}</div>'
            f'<table class="sgx-stats">{stats}</table>{values}</div>')


def _check_html(check) -> str:
    if check is None:
        return ""
    if check.passed is None:
        verdict, css = "SKIPPED", "skip"
        detail = _e(check.note)
    else:
        verdict, css = ("PASS", "pass") if check.passed else ("FAIL", "fail")
        if check.method == "directional":
            detail = (f"along one random direction v: analytic &lang;grad, v&rang; = "
                      f"{_fmt(check.analytic[0])}, numerical {_fmt(check.numerical[0])}")
        else:
            pairs = ", ".join(f"{_fmt(a)} vs {_fmt(n)}"
                              for a, n in zip(check.analytic[:6], check.numerical[:6]))
            more = ", ..." if len(check.analytic) > 6 else ""
            detail = (f"element by element ({len(check.analytic)}), analytic vs numerical: "
                      f"{pairs}{more}")
        detail += (f"; max |error| {check.max_abs_error:.3g} ({_e(check.tolerance)})"
                   + (f"; {_e(check.note)}" if check.note else ""))
    return (f'<p class="sgx-check sgx-{css}"><b>finite-difference check: {verdict}</b> '
            f"{detail}</p>")


def _rule_html(rule: str) -> str:
    """The op's docstring rule, one formula per line (the rule's parts are separated by
    two spaces, as `_rule` joins the docstring's lines and columns)."""
    return '<pre class="sgx-rule">' + "\n".join(_e(p) for p in re.split(r" {2,}", rule)) + \
        "</pre>"


def _input_html(item, root: str) -> str:
    if item.summed_axes:
        how = (f"backward returned shape {_e(item.raw_grad_shape)}; summed over axes "
               f"<b>{_e(item.summed_axes)}</b> to undo broadcasting &rarr; "
               f"{_e(item.grad.shape)}, the shape of {_e(item.name)}")
    else:
        how = f"backward returned shape {_e(item.raw_grad_shape)}: nothing to sum"
    raw = ("" if item.raw_grad is None
           else _grad_html(item.raw_grad, "before summing (the broadcast shape)"))
    return (f'<div class="sgx-input" data-name="{_e(item.name)}">'
            f'<h4>&part;{_e(root)}/&part;{_e(item.name)} '
            f"<small>argument {item.position}, shape {_e(item.shape)}</small></h4>"
            f'<p class="sgx-how">{how}</p>{raw}'
            f"{_grad_html(item.grad, f'gradient received by {_e(item.name)}')}"
            f"{_check_html(item.check)}</div>")


def _step_html(ex, step, nodes: dict) -> str:
    receivers = " ".join(str(nodes[i.name]) for i in step.inputs if i.name in nodes)
    out = _e(step.output_name)
    if step.index == 1:
        lead = (f"Backward starts at <b>{out}</b> with the seed gradient "
                f"&part;{_e(ex.root_name)}/&part;{out} (ones of its shape).")
    else:
        lead = f"Backward has reached <b>{out}</b>, the result of <b>{_e(step.op)}</b>."
    lead += (f" The {_e(step.op)} rule turns the gradient arriving at {out} into a "
             f"gradient for each input that needs one (chain rule: incoming gradient "
             f"&times; local derivative).")
    inputs = "".join(_input_html(i, ex.root_name) for i in step.inputs) or \
        "<p>No input of this op needs a gradient.</p>"
    return (f'<section class="sgx-step" data-step="{step.index}" '
            f'data-node="{nodes.get(step.output_name, "")}" data-inputs="{receivers}">'
            f'<h2><span class="sgx-op">{_e(step.op)}</span> &rarr; {out} '
            f'<small>shape {_e(step.output_shape)} {_e(step.output_dtype)}</small></h2>'
            f'<p class="sgx-lead">{lead}</p>'
            f"<h3>Local rule</h3>{_rule_html(step.rule)}"
            f"<h3>Incoming gradient</h3>"
            f"{_grad_html(step.grad_in, f'&part;{_e(ex.root_name)}/&part;{out}')}"
            f"<h3>What each input receives</h3>{inputs}</section>")


def _final_html(ex, nodes: dict) -> str:
    receivers = " ".join(str(nodes[leaf.name]) for leaf in ex.leaves if leaf.name in nodes)
    where = ("added into each leaf's <code>.grad</code>" if ex.accumulated else
             "not stored (accumulate=False): <code>.grad</code> is unchanged")
    leaves = "".join(
        f'<div class="sgx-leaf" data-name="{_e(leaf.name)}"><h4>{_e(leaf.name)}.grad '
        f"<small>{_e(leaf.kind)}, shape {_e(leaf.shape)}</small></h4>"
        f"{_grad_html(leaf.grad, f'&part;{_e(ex.root_name)}/&part;{_e(leaf.name)}')}</div>"
        for leaf in ex.leaves)
    verdict = {True: "all passed", False: "SOME FAILED", None: "none could run"}
    checks = ("" if not ex.checks else
              f'<p class="sgx-verdict">Finite-difference checks of every step: '
              f"<b>{verdict[ex.passed]}</b>.</p>")
    return (f'<section class="sgx-step sgx-final" data-step="end" data-node="" '
            f'data-inputs="{receivers}"><h2>Done: the leaves&rsquo; gradients</h2>'
            f'<p class="sgx-lead">Backward has processed all {len(ex.steps)} nodes. A leaf '
            f"used more than once received a gradient from each use; their sum is "
            f"{where}.</p>{leaves or '<p>No leaf received a gradient.</p>'}{checks}"
            f"</section>")


def _graph_pane(ex) -> tuple:
    """(the graph pane's content, {tensor name: box index}). The SVG is scaled to fill
    the pane, between 0.7 and 1.6 times its natural size (beyond that the pane scrolls)."""
    if ex.graph is None:
        return '<div class="sgx-graph"><p>(no graph came with this explanation)</p></div>', {}
    nodes = {n.name: i for i, n in enumerate(ex.graph.nodes)}
    try:
        layout = ex.graph.layout()
    except RuntimeError as err:   # networkx is missing: the steps still work
        return f'<div class="sgx-graph"><p>{_e(err)}</p></div>', nodes
    return (f'<div class="sgx-graph" style="--natural-width: {layout.width:g}px">'
            f"{to_svg(layout)}</div>"), nodes


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------

_CSS = """
.sgx { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
       sans-serif; color: #1f2933; background: #fff; outline: none; }
.sgx * { box-sizing: border-box; }
.sgx-header { display: flex; align-items: center; gap: 18px; flex-wrap: wrap;
              padding: 10px 16px; border-bottom: 1px solid #d9e2ec; background: #f5f7fa; }
.sgx-header h1 { font-size: 19px; margin: 0; }
.sgx-legend { font-size: 13px; color: #52606d; display: flex; gap: 12px; }
.sgx-swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px;
              vertical-align: -1px; margin-right: 4px; border: 3px solid; }
.sgx-main { display: flex; height: 640px; }
.sgx-page .sgx-main { height: calc(100vh - 56px); }
.sgx-graph { flex: 0 0 44%; overflow: auto; border-right: 1px solid #d9e2ec;
             background: #fbfcfd; padding: 6px; }
.sgx-graph svg { width: 100%; height: auto; min-width: calc(0.7 * var(--natural-width));
                 max-width: calc(1.6 * var(--natural-width)); display: block; margin: auto; }
.sgx-panel { flex: 1; overflow: auto; padding: 0 22px 24px; }
.sgx-nav { position: sticky; top: 0; background: #fff; padding: 12px 0 10px;
           display: flex; align-items: center; gap: 12px; border-bottom: 1px solid #e4e7eb;
           z-index: 1; }
.sgx-nav button { font: inherit; font-weight: 600; padding: 6px 16px; border-radius: 6px;
                  border: 1px solid #3e4c59; background: #fff; cursor: pointer; }
.sgx-nav button.sgx-next { background: #1f2933; color: #fff; }
.sgx-nav button:disabled { opacity: 0.35; cursor: default; }
.sgx-position { font-weight: 600; min-width: 9em; }
.sgx-hint { color: #7b8794; font-size: 13px; }
.sgx kbd { border: 1px solid #9aa5b1; border-bottom-width: 2px; border-radius: 4px;
           padding: 0 5px; font-size: 12px; background: #fff; }
.sgx-progress { height: 4px; background: #e4e7eb; border-radius: 2px; flex: 1;
                min-width: 60px; }
.sgx-progress div { height: 100%; background: #e8590c; border-radius: 2px; width: 0; }
.sgx h2 { font-size: 21px; margin: 16px 0 6px; }
.sgx h2 small, .sgx h4 small { font-weight: normal; color: #616e7c; font-size: 14px; }
.sgx h3 { font-size: 13px; text-transform: uppercase; letter-spacing: 0.06em;
          color: #7b8794; margin: 18px 0 6px; }
.sgx h4 { font-size: 16px; margin: 4px 0 4px; }
.sgx-op { color: #c2410c; }
.sgx-lead { margin: 4px 0 0; }
.sgx-rule { background: #fff8e6; border-left: 4px solid #f0b429; padding: 8px 12px;
            font: 14px/1.5 "DejaVu Sans Mono", Menlo, Consolas, monospace; margin: 0;
            white-space: pre-wrap; }
.sgx-grad { margin: 6px 0 10px; }
.sgx-caption { font-weight: 600; font-size: 14px; margin-bottom: 2px; }
.sgx table { border-collapse: collapse;
             font: 13px "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.sgx-stats th { font-weight: normal; color: #7b8794; text-align: right; padding: 1px 10px 1px 0; }
.sgx-stats td { text-align: right; padding: 1px 10px 1px 0; }
.sgx-values { display: flex; gap: 10px; align-items: flex-start; margin-top: 4px; }
.sgx-label { color: #7b8794; font-size: 13px; padding-top: 2px; }
.sgx-matrix td { border: 1px solid #d9e2ec; padding: 2px 7px; text-align: right;
                 background: #fff; }
.sgx-scalar { font: 14px "DejaVu Sans Mono", Menlo, monospace; font-weight: 600; }
.sgx-values pre { margin: 0; white-space: pre-wrap; }
.sgx-input, .sgx-leaf { border: 1px solid #d9e2ec; border-left: 4px solid #1c7ed6;
                        border-radius: 6px; padding: 6px 12px; margin: 8px 0; }
.sgx-how { margin: 2px 0 4px; }
.sgx-check { margin: 4px 0 2px; padding: 4px 8px; border-radius: 4px; font-size: 14px; }
.sgx-pass { background: #e3f9e5; } .sgx-fail { background: #ffe3e3; }
.sgx-skip { background: #f0f4f8; }
.sgx-verdict { font-size: 15px; }
.sgx .sg-node rect { transition: fill 0.2s, stroke 0.2s; }
.sgx .sg-node.is-done rect { fill: #e9edf1; stroke: #9aa5b1; }
.sgx .sg-node.is-done text { fill: #7b8794; }
.sgx .sg-node.is-input rect { stroke: #1c7ed6; stroke-width: 3.5px; }
.sgx .sg-node.is-current rect { stroke: #e8590c; stroke-width: 4.5px; fill: #ffe8cc; }
.sgx .sg-edge.is-active { stroke: #e8590c; stroke-width: 2.6px; stroke-dasharray: 7 4;
                          animation: sgx-flow 0.9s linear infinite; }
@keyframes sgx-flow { to { stroke-dashoffset: 22; } }
@media (prefers-reduced-motion: reduce) { .sgx .sg-edge.is-active { animation: none; } }
"""

# The script: show one section at a time, colour the graph, move with buttons and keys.
# `ROOT_ID` is replaced by the widget's element id; `GLOBAL_KEYS` by true for the page
# (arrow keys anywhere) or false in a notebook (only while the widget has the focus).
_JS = """
(function () {
  "use strict";
  var root = document.getElementById("ROOT_ID");
  var steps = Array.prototype.slice.call(root.querySelectorAll(".sgx-step"));
  var boxes = Array.prototype.slice.call(root.querySelectorAll(".sg-node"));
  var edges = Array.prototype.slice.call(root.querySelectorAll(".sg-edge"));
  var pane = root.querySelector(".sgx-graph");
  var prev = root.querySelector(".sgx-prev");
  var next = root.querySelector(".sgx-next");
  var position = root.querySelector(".sgx-position");
  var bar = root.querySelector(".sgx-progress div");
  var current = 0;

  function indices(text) {
    return text ? text.split(" ") : [];
  }

  function centre(box) {
    var b = box.getBoundingClientRect(), p = pane.getBoundingClientRect();
    pane.scrollBy({left: b.left + b.width / 2 - p.left - p.width / 2,
                   top: b.top + b.height / 2 - p.top - p.height / 2, behavior: "smooth"});
  }

  function show(k) {
    current = Math.max(0, Math.min(steps.length - 1, k));
    var step = steps[current];
    var here = step.dataset.node;
    var inputs = indices(step.dataset.inputs);
    var done = steps.slice(0, current).map(function (s) { return s.dataset.node; });
    steps.forEach(function (s, i) { s.hidden = i !== current; });
    var focus = here || inputs[0];   // the last view has no current node: its leaves
    boxes.forEach(function (box) {
      var n = box.dataset.node;
      box.classList.toggle("is-current", n === here);
      box.classList.toggle("is-input", inputs.indexOf(n) >= 0);
      box.classList.toggle("is-done", done.indexOf(n) >= 0 && n !== here);
      if (n === focus) { centre(box); }
    });
    edges.forEach(function (edge) {
      edge.classList.toggle("is-active", edge.dataset.to === here &&
                            inputs.indexOf(edge.dataset.from) >= 0);
    });
    var last = steps.length - 1;
    position.textContent = current < last ?
      "Step " + (current + 1) + " of " + last : "After backward";
    bar.style.width = (100 * current / Math.max(last, 1)) + "%";
    prev.disabled = current === 0;
    next.disabled = current === last;
    root.dataset.current = String(current);
  }

  function onKey(event) {
    var moves = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1};
    if (event.key === "Home") { show(0); }
    else if (event.key === "End") { show(steps.length - 1); }
    else if (moves[event.key]) { show(current + moves[event.key]); }
    else { return; }
    event.preventDefault();
  }

  prev.addEventListener("click", function () { show(current - 1); });
  next.addEventListener("click", function () { show(current + 1); });
  (GLOBAL_KEYS ? document : root).addEventListener("keydown", onKey);
  root.classList.add("sgx-ready");
  show(0);
})();
"""


def _widget(ex, uid: str, global_keys: bool) -> str:
    pane, nodes = _graph_pane(ex)
    sections = [_step_html(ex, s, nodes) for s in ex.steps] + [_final_html(ex, nodes)]
    swatch = '<span class="sgx-swatch" style="border-color:{}"></span>{}'
    legend = " ".join(f"<span>{swatch.format(colour, text)}</span>" for colour, text in
                      (("#e8590c", "current node"), ("#1c7ed6", "receives a gradient"),
                       ("#9aa5b1", "already done")))
    script = _JS.replace("ROOT_ID", uid).replace("GLOBAL_KEYS", str(global_keys).lower())
    return (f'<div class="sgx" id="{uid}" tabindex="0">'
            f'<div class="sgx-header"><h1>Backward from {_e(ex.root_name)}, step by step'
            f"</h1><div class=\"sgx-legend\">{legend}</div></div>"
            f'<div class="sgx-main">{pane}'
            f'<div class="sgx-panel"><div class="sgx-nav">'
            f'<button type="button" class="sgx-prev">&larr; Prev</button>'
            f'<span class="sgx-position">all {len(ex.steps)} steps</span>'
            f'<button type="button" class="sgx-next">Next &rarr;</button>'
            f'<div class="sgx-progress"><div></div></div>'
            f'<span class="sgx-hint">or <kbd>&larr;</kbd> <kbd>&rarr;</kbd> keys</span></div>'
            + "".join(sections) + f"</div></div></div><script>{script}</script>")


def page_html(ex) -> str:
    """The standalone page (a whole HTML document; the arrow keys work anywhere in it)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>smolgrad: backward from {_e(ex.root_name)}, step by step</title>"
            f"<style>body {{ margin: 0; }}{_CSS}</style></head>\n"
            f'<body class="sgx-page">{_widget(ex, "sgx", True)}</body></html>\n')


def widget_html(ex) -> str:
    """The page's content as a fragment for a notebook cell (its own element id, the
    arrow keys only while it has the focus)."""
    return f"<style>{_CSS}</style>" + _widget(ex, f"sgx-{uuid.uuid4().hex[:8]}", False)
