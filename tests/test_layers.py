"""The layers show in the folders: arrays -> engine -> ops -> nn/optim/data/io -> the rest.

Every `import` in smolgrad/ (at module level or inside a function) is read from the source
with `ast`; no module may import one of a higher layer, and no group of modules may import
each other in a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smolgrad"

# (layer, module prefixes); a module belongs to the first layer with a matching prefix, and
# anything unlisted sits on top (models, viz, compiler, distributed, demo, the torch face).
LAYERS = [
    (0, ["smolgrad.arrays", "smolgrad.dtypes", "smolgrad._size"]),
    (1, ["smolgrad.engine", "smolgrad.grad_mode", "smolgrad.registry",
         "smolgrad._tensor_methods"]),
    (2, ["smolgrad.ops", "smolgrad.random", "smolgrad.autograd"]),
    # nn.parallel and nn.modules are PyTorch's import paths for things defined higher up
    # (DistributedDataParallel): namespace shims of the top layer that live in nn/ by name.
    (4, ["smolgrad.nn.parallel", "smolgrad.nn.modules"]),
    (3, ["smolgrad.nn", "smolgrad.optim", "smolgrad.utils", "smolgrad.io",
         "smolgrad.io_modules", "smolgrad.amp"]),
]
TOP = 4


def layer(module: str) -> int:
    for number, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return number
    return TOP


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """{module: the smolgrad modules it imports}. `from . import x` counts as importing the
    submodule x when there is one, else the package itself."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else ""

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [known(f"{source}.{a.name}") if f"{source}.{a.name}" in modules
                           else known(source) for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, with an explicit
    stack of iterators instead of recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(sorted(graph[start])))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_import_runs_upward():
    upward = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
              for m, targets in sorted(import_graph().items()) for t in sorted(targets)
              if layer(t) > layer(m)]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    assert circles(import_graph()) == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_circle_finder_finds_circles(edges, expected):
    assert circles(edges) == expected


def test_the_graph_sees_imports_inside_functions():
    # ops/views.py once imported ops/movement.py inside a function: such imports count
    graph = import_graph()
    assert "smolgrad.ops.views" in graph["smolgrad.ops.movement"]
    assert "smolgrad.engine" in graph["smolgrad.ops.views"]
