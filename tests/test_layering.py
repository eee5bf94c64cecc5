"""The package's layering reads bottom-up: no two project files import each other (directly or
through others, counting imports inside functions), the front end (``compiler/``, ``specs/``)
never imports a backend, the runtime or torch, the backends never import the compiler's
driver (``compiler/pipeline.py``, ``compiler/passes``) or the user-facing ``netc`` package, and
only the user-facing package imports the importer (``frontends/``)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
# folder in the repository -> the package it installs as (pyproject's package-dir)
PACKAGES = {"netc": "netc", "compiler": "netc.compiler", "specs": "netc.specs", "backends": "netc.backends",
            "runtime": "netc.runtime", "frontends": "netc.frontends"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = PACKAGES[parts[0]].split(".") + parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for folder in PACKAGES for p in sorted((ROOT / folder).rglob("*.py"))}


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (function bodies too), resolved to
    project modules where it names one, else kept as written (``torch``)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:
                out.add(f"{target}.{a.name}" if f"{target}.{a.name}" in known else target)
    return {m for m in out if m != name}


def import_graph() -> nx.DiGraph:
    known = modules()
    g = nx.DiGraph()
    for name, path in known.items():
        g.add_node(name)
        for target in imports(name, path, known):
            g.add_edge(name, target)
    return g


def test_no_two_files_import_each_other():
    g = import_graph()
    project = g.subgraph([n for n in g if n.startswith("netc")])
    cycles = [sorted(c) for c in nx.strongly_connected_components(project) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_the_front_end_knows_no_backend_runtime_or_torch():
    g = import_graph()
    for name in g:
        if name.startswith(("netc.compiler", "netc.specs")):
            bad = [t for t in g.successors(name)
                   if t.split(".")[0] == "torch" or t.startswith(("netc.backends", "netc.runtime", "netc.cli",
                                                                  "netc.program"))]
            assert not bad, f"{name} imports {bad}"


def test_backends_never_import_the_driver():
    g = import_graph()
    for name in g:
        if name.startswith("netc.backends"):
            bad = [t for t in g.successors(name)
                   if t.startswith(("netc.compiler.pipeline", "netc.compiler.passes", "netc.compiler.elaborate",
                                    "netc.runtime", "netc.cli", "netc.program")) or t == "netc"]
            assert not bad, f"{name} imports {bad}"


def test_only_the_user_facing_package_knows_the_importer():
    """``frontends/`` (ONNX in, specs out) is a client of the compiler, like the CLI: the
    compiler, the op catalogue, the backends and the runtime never import it."""
    g = import_graph()
    for name in g:
        if name.startswith(("netc.compiler", "netc.specs", "netc.backends", "netc.runtime")):
            bad = [t for t in g.successors(name) if t.startswith("netc.frontends")]
            assert not bad, f"{name} imports {bad}"
    assert g.has_edge("netc.cmd_import", "netc.frontends.api")


def test_the_import_graph_sees_imports_inside_functions():
    """The checker itself: a function-level import is an edge (as the old elaborate/calls
    cycle was one)."""
    g = import_graph()
    assert g.has_edge("netc.backends.render", "netc.backends.render.dot")  # imported inside `render`
    assert g.has_edge("netc.compiler.elaborate", "netc.compiler.calls")
