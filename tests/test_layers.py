"""Imports point only forward along the pipeline, and no module imports itself round a circle.

The order is the pipeline the folder names show (README "How the code is laid out"): the units
every stage may use first, then read -> decode -> flows -> verdicts -> timewait -> report, with
`live` and `cli` at the edges. Every module of the package tree is checked, and a unit the list
does not place fails the test: a new module has to be given its place, not skipped."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "teardown"

ORDER = [
    # Used by every stage; no stage of their own.
    "errors", "times", "seq", "memory", "options", "outputs", "schema", "carriers",
    # The pipeline.
    "read", "decode", "dissect", "source", "flows", "http", "packed", "copies", "verdicts", "filters", "present",
    "rows", "timewait", "engine", "analysis", "matching", "points", "compare",
    # At the edges: what users run.
    "terminal", "scale", "crosscheck", "report", "wireshark", "live", "cli", "__main__",
]


def modules() -> dict[str, Path]:
    """Every module of the package tree by dotted name (a package by its __init__.py)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules `name` imports (anywhere in it, lazy imports and TYPE_CHECKING ones too)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            # `from . import x` and `from .a import b` may name modules as well as attributes.
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        out |= {c for c in candidates if c in known and c != name}
    return out


def unit(name: str) -> str:
    """The pipeline unit a module belongs to: its top-level module or package under teardown."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {name: imports(name, path, modules()) for name, path in modules().items()}


def test_every_unit_of_the_package_has_its_place() -> None:
    units = {unit(name) for name in GRAPH} - {"__init__"}
    assert sorted(units - set(ORDER)) == [], "a unit the pipeline order does not place"
    assert sorted(set(ORDER) - units) == [], "the order names a unit that is gone"


def test_no_module_imports_a_later_unit() -> None:
    backwards = [f"{name} imports {target}" for name, targets in GRAPH.items() if unit(name) != "__init__"
                 for target in targets if unit(target) != "__init__"
                 and ORDER.index(unit(target)) > ORDER.index(unit(name))]
    assert backwards == []


def test_no_import_circle() -> None:
    """Between modules, a package's own modules included (the package's __init__ re-exporting
    its modules is the one kind of edge left out: importing a package runs it first anyway)."""
    edges = {n: {t for t in ts if not (n.startswith(t + ".") and modules()[t].name == "__init__.py")}
             for n, ts in GRAPH.items()}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        for target in sorted(edges[node]):
            visit(target, path + [node])
        done.add(node)

    for name in sorted(edges):
        visit(name, [])


def test_relative_and_package_imports_are_resolved() -> None:
    """The graph is read right: `from ..read import open_capture` in a subpackage, `from . import
    x` of a sibling module, and `from .analysis import analyze` at the top all count."""
    assert "teardown.read" in GRAPH["teardown.scale.pieces"]
    assert "teardown.analysis" in GRAPH["teardown.cli"]
    assert {"teardown.timewait.tables", "teardown.timewait.findings"} <= GRAPH["teardown.timewait"]
