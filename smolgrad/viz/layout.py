"""Drawing a graph without Graphviz: a layered layout, written as SVG (or PNG via matplotlib).

The layout follows the usual picture of a computation: inputs at the top, the output at
the bottom, every arrow pointing down from a tensor to the op result that used it.

1. Rows. networkx puts each tensor in a row with `topological_generations` of the
   *reversed* graph: row 0 holds the output, and a tensor sits one row above the lowest
   row that uses it (its longest distance to the output). So a weight sits right above
   the op that consumes it, not at the very top with every other leaf.
2. Order and position within a row, from the output upwards: each box wants to be
   centred over the boxes that use it (the mean of their x, the "barycenter" heuristic
   that keeps chains straight and arrows short). Boxes are sorted by that wish, pushed
   right just enough not to overlap, and the row is shifted back by the mean push.
3. Arrows are cubic Bézier curves from the bottom of the input's box to the top of the
   result's box; an op with several tensor inputs receives them side by side, in argument
   order, with the argument position written above its box.

Every length is in pixels of a monospace font (each character 0.6 em wide), so the
geometry, and the SVG text written from it, is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

FONT_SIZE = 12.0          # px
CHAR_WIDTH = 0.6 * FONT_SIZE  # advance of one character of DejaVu Sans Mono / Menlo
LINE_HEIGHT = 15.0
PAD_X, PAD_Y = 10.0, 7.0  # inside a box, around its text
COL_GAP, ROW_GAP = 22.0, 38.0
MARGIN = 16.0
NOTE_HEIGHT = 26.0        # the strip above the graph that holds `Graph.note`
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"

# fill colour of a box by the tensor's role (Graphviz's DOT output uses the same ones)
KIND_COLOURS = {
    "output": "#f6c6c6",
    "op": "#fdf1c7",
    "parameter": "#cfe3f7",
    "leaf": "#d8f0d2",
    "constant": "#e8e8e8",
    "module": "#e4d9f5",
    "more": "#ffffff",
}
STROKE = "#555555"


@dataclass
class Box:
    """One node as drawn: its centre (x, y), size, and the lines of text it holds."""

    index: int          # position of the node in `Graph.nodes`
    kind: str
    lines: list
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0


@dataclass
class Arrow:
    """One edge: input `source` -> result `target` as a cubic Bézier curve
    (start, control 1, control 2, end), with an optional label at its end."""

    source: int
    target: int
    curve: tuple        # ((x0, y0), (x1, y1), (x2, y2), (x3, y3))
    label: str = ""


@dataclass
class Layout:
    boxes: list
    arrows: list
    width: float
    height: float
    note: str = ""


def _box_size(lines: list) -> tuple:
    longest = max(len(line) for line in lines)
    return longest * CHAR_WIDTH + 2 * PAD_X, len(lines) * LINE_HEIGHT + 2 * PAD_Y


def _rows(edges: list, count: int) -> list:
    """Node indices by row, row 0 = the outputs; within a row, in the nodes' own order."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(range(count))
    g.add_edges_from(edges)
    rows = [sorted(generation) for generation in nx.topological_generations(g.reverse())]
    return rows


def _place_row(row: list, boxes: list, wanted: dict) -> None:
    """Set the x of the boxes of one row: sorted by wanted x, no overlaps, and on average
    where they wanted to be."""
    row.sort(key=lambda i: (wanted[i], i))
    right = float("-inf")
    for i in row:
        box = boxes[i]
        box.x = max(wanted[i], right + COL_GAP + box.width / 2)
        right = box.x + box.width / 2
    shift = sum(wanted[i] - boxes[i].x for i in row) / len(row)
    for i in row:
        boxes[i].x += shift


def layered_layout(labels: list, kinds: list, inputs: list, note: str = "") -> Layout:
    """Positions for a DAG. `labels[i]` is node i's list of text lines, `kinds[i]` its role,
    `inputs[i]` the indices of the nodes it was computed from, in argument order (an index
    may repeat: x * x). Needs networkx."""
    count = len(labels)
    boxes = []
    for i in range(count):
        width, height = _box_size(labels[i])
        boxes.append(Box(i, kinds[i], labels[i], width=width, height=height))
    consumers: list = [[] for _ in range(count)]
    for target, sources in enumerate(inputs):
        for source in sources:
            consumers[source].append(target)
    rows = _rows([(s, t) for t, sources in enumerate(inputs) for s in set(sources)], count)
    for r, row in enumerate(rows):
        wanted = {i: (sum(boxes[c].x for c in consumers[i]) / len(consumers[i])
                      if consumers[i] and r > 0 else 0.0) for i in row}
        _place_row(row, boxes, wanted)

    row_height = max(box.height for box in boxes)
    top = MARGIN + (NOTE_HEIGHT if note else 0.0)
    left = min(box.x - box.width / 2 for box in boxes)
    for r, row in enumerate(rows):
        for i in row:
            boxes[i].x += MARGIN - left
            boxes[i].y = top + (len(rows) - 1 - r) * (row_height + ROW_GAP) + row_height / 2
    width = max(box.x + box.width / 2 for box in boxes) + MARGIN
    height = top + len(rows) * row_height + (len(rows) - 1) * ROW_GAP + MARGIN
    return Layout(boxes, _arrows(boxes, inputs), round(width, 1), round(height, 1), note)


def _arrows(boxes: list, inputs: list) -> list:
    arrows = []
    for target, sources in enumerate(inputs):
        t = boxes[target]
        spacing = min(t.width / max(len(sources), 1), 28.0)
        for k, source in enumerate(sources):
            s = boxes[source]
            start = (s.x, s.y + s.height / 2)
            end = (t.x + (k - (len(sources) - 1) / 2) * spacing, t.y - t.height / 2)
            bend = (end[1] - start[1]) / 2
            curve = (start, (start[0], start[1] + bend), (end[0], end[1] - bend), end)
            curve = tuple((round(x, 1), round(y, 1)) for x, y in curve)
            arrows.append(Arrow(source, target, curve, str(k) if len(sources) > 1 else ""))
    return arrows


# ---------------------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------------------


def _path_data(curve: tuple) -> str:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = curve
    return f"M{x0:g},{y0:g} C{x1:g},{y1:g} {x2:g},{y2:g} {x3:g},{y3:g}"


def to_svg(layout: Layout, title: str = "smolgrad graph") -> str:
    """The layout as a standalone SVG document (text). Each box is a
    `<g class="sg-node" data-node="i" data-kind="...">` and each arrow a
    `<path class="sg-edge" data-from="i" data-to="j">`, so that a page can restyle them."""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:g}" '
           f'height="{layout.height:g}" viewBox="0 0 {layout.width:g} {layout.height:g}" '
           f'font-family="{FONT_FAMILY}" font-size="{FONT_SIZE:g}">',
           f"<title>{escape(title)}</title>",
           '<defs><marker id="sg-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
           'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
           f'<path d="M0,0 L10,5 L0,10 z" fill="{STROKE}"/></marker></defs>',
           '<rect class="sg-background" width="100%" height="100%" fill="#ffffff"/>']
    if layout.note:
        out.append(f'<text class="sg-note" x="{MARGIN:g}" y="{MARGIN + 10:g}" '
                   f'fill="#9c3d00">{escape(layout.note)}</text>')
    out.append('<g class="sg-edges">')
    for a in layout.arrows:
        out.append(f'<path class="sg-edge" data-from="{a.source}" data-to="{a.target}" '
                   f'd="{_path_data(a.curve)}" fill="none" stroke="{STROKE}" '
                   f'stroke-width="1.2" marker-end="url(#sg-arrow)"/>')
        if a.label:
            x, y = a.curve[3]
            out.append(f'<text class="sg-edge-label" x="{x + 3:g}" y="{y - 4:g}" '
                       f'font-size="9" fill="#777777">{a.label}</text>')
    out.append("</g>")
    for b in layout.boxes:
        dash = ' stroke-dasharray="4,3"' if b.kind == "more" else ""
        bold = 2.2 if b.kind == "output" else 1.0
        out.append(f'<g class="sg-node" data-node="{b.index}" data-kind="{b.kind}">')
        out.append(f"<title>{escape(' | '.join(b.lines))}</title>")
        out.append(f'<rect x="{b.x - b.width / 2:g}" y="{b.y - b.height / 2:g}" '
                   f'width="{b.width:g}" height="{b.height:g}" rx="6" '
                   f'fill="{KIND_COLOURS[b.kind]}" stroke="{STROKE}" '
                   f'stroke-width="{bold:g}"{dash}/>')
        first = b.y - b.height / 2 + PAD_Y + LINE_HEIGHT * 0.75
        for k, line in enumerate(b.lines):
            weight = ' font-weight="bold"' if k == 0 else ""
            out.append(f'<text x="{b.x:g}" y="{first + k * LINE_HEIGHT:g}" '
                       f'text-anchor="middle"{weight} xml:space="preserve">'
                       f"{escape(line)}</text>")
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# PNG / PDF with matplotlib
# ---------------------------------------------------------------------------------------


def to_image(layout: Layout, fmt: str, metadata: dict | None = None) -> bytes:
    """The same picture drawn by matplotlib (off-screen, Agg canvas) as PNG or PDF bytes.
    One unit of the layout is one pixel at 100 dpi; PNGs are saved at up to 150 dpi."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    fig = Figure(figsize=(layout.width / 100, layout.height / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, layout.width)
    ax.set_ylim(layout.height, 0)   # y grows downwards, as in SVG
    ax.axis("off")
    points = FONT_SIZE * 72 / 100   # the font size in points at 100 dpi
    if layout.note:
        ax.text(MARGIN, MARGIN + 6, layout.note, family="monospace", fontsize=points,
                color="#9c3d00", va="center")
    codes = [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4]
    for a in layout.arrows:
        ax.add_patch(FancyArrowPatch(path=MplPath(a.curve, codes), arrowstyle="-|>",
                                     mutation_scale=9, color=STROKE, linewidth=1.0))
        if a.label:
            x, y = a.curve[3]
            ax.text(x + 3, y - 4, a.label, fontsize=points * 0.75, color="#777777")
    for b in layout.boxes:
        ax.add_patch(FancyBboxPatch(
            (b.x - b.width / 2, b.y - b.height / 2), b.width, b.height,
            boxstyle="round,pad=0,rounding_size=6", facecolor=KIND_COLOURS[b.kind],
            edgecolor=STROKE, linewidth=2.0 if b.kind == "output" else 0.8,
            linestyle="--" if b.kind == "more" else "-"))
        first = b.y - b.height / 2 + PAD_Y + LINE_HEIGHT / 2
        for k, line in enumerate(b.lines):
            ax.text(b.x, first + k * LINE_HEIGHT, line, ha="center", va="center",
                    family="monospace", fontsize=points,
                    fontweight="bold" if k == 0 else "normal")
    buffer = io.BytesIO()
    dpi = min(150.0, 30000.0 / max(layout.width, layout.height) * 100)
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    return buffer.getvalue()
