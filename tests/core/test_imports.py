"""The package has no import cycles, and core never imports the GUI.

Every ``import``/``from ... import`` of an s2desktop module counts, at module level and inside functions: an
import inside a function may save start-up time but must not hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "s2desktop"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, known: set[str]) -> list[str]:
    """A dotted name -> the modules importing it runs: the module (or package __init__) and its parents."""
    out = []
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        candidate = ".".join(parts[:i])
        if candidate in known:
            out.append(candidate)
    return out


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Every s2desktop module ``module`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_resolve(alias.name, known))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.update(_resolve(target, known))
            for alias in node.names:  # `from s2desktop.core import catalog` imports s2desktop.core.catalog
                found.update(m for m in _resolve(f"{target}.{alias.name}", known) if m.count(".") > target.count("."))
    # Importing a module runs its parents' __init__ first; a module does not depend on its own package's
    # __init__ in a way that matters for cycles here, so parents of the importer itself are not edges.
    found.discard(module)
    parents = {module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)}
    return {m for m in found if m.startswith(PACKAGE) and m not in parents}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def simple_cycles(graph, component: list[str], limit: int = 50) -> list[str]:
    """Every elementary cycle inside a component (up to ``limit``), each as 'a -> b -> ... -> a', starting at its
    smallest module so each is listed once."""
    members = sorted(component)
    out: list[str] = []

    def walk(start: str, trail: list[str]) -> None:
        for nxt in sorted(graph[trail[-1]]):
            if len(out) >= limit or nxt not in members or nxt < start:
                continue
            if nxt == start:
                out.append(" -> ".join(trail + [start]))
            elif nxt not in trail:
                walk(start, trail + [nxt])

    for start in members:
        walk(start, [start])
    return out


def test_the_graph_sees_imports_inside_functions_and_package_forms():
    graph = import_graph()
    assert "s2desktop.core.errors" in graph["s2desktop.core.catalog"]  # module level
    assert "s2desktop.core.s3" in graph["s2desktop.core.sources"]  # `from s2desktop.core import s3` in a method


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert simple_cycles(graph, ["a", "b", "c"]) == ["a -> b -> c -> a"]
    graph["b"].add("a")
    assert simple_cycles(graph, ["a", "b", "c"]) == ["a -> b -> a", "a -> b -> c -> a"]


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(f"  {cycle}" for c in found for cycle in simple_cycles(graph, c))


def test_core_never_imports_the_gui():
    graph = import_graph()
    bad = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.startswith(f"{PACKAGE}.core")
                 for d in deps if d.startswith(f"{PACKAGE}.gui"))
    assert not bad, "core imports the GUI: " + "; ".join(bad)
