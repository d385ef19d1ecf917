"""The layout rules, checked on the source itself so they cannot quietly break.

Data flows one way (training -> converters -> runtime), and every module has one home:
- no import cycle between the project's modules, counting imports inside functions;
- runtime modules (``edge_sdk`` outside ``edge_sdk.cli``) import nothing from ``converters`` or ``training``;
- library code (everything outside ``edge_sdk.cli``) imports nothing from ``edge_sdk.cli``.

The graph is read from the AST, not by importing, so a lazy import inside a function counts as much
as one at the top of the file. Importing an ancestor package (``edge_sdk`` from ``edge_sdk.model``)
is not an edge: Python imports ancestors first whatever the code says.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("edge_sdk", "converters", "training")


def project_modules() -> dict[str, Path]:
    """Map each dotted module name of the three packages to its file."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imported_names(module: str, path: Path, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    # `from pkg import name` imports pkg, and pkg.name when that is a module
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Edges module -> project module it imports, anywhere in the file."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _imported_names(module, path, node):
                while name and name not in modules:  # a class or function: its module
                    name = name.rpartition(".")[0]
                if not name or name == module:
                    continue
                if module.startswith(name + "."):  # an ancestor package
                    continue
                graph[module].add(name)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def _is_cli(module: str) -> bool:
    # `python -m edge_sdk` is the console entry point, so __main__ belongs to the CLI
    return module in ("edge_sdk.cli", "edge_sdk.__main__") or module.startswith("edge_sdk.cli.")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(project_modules())


def test_the_walker_sees_the_packages(graph):
    # guards the test itself: an empty or mis-rooted graph would pass every rule below
    assert {"edge_sdk.model", "converters.pipeline", "training.zoo"} <= set(graph)
    assert "edge_sdk.errors" in graph["edge_sdk.model"]


def test_the_walker_finds_a_planted_cycle(tmp_path):
    for name, body in {
        "a.py": "def f():\n    from pkg import b\n",
        "b.py": "from .a import f\n",
        "__init__.py": "",
    }.items():
        (tmp_path / "pkg").mkdir(exist_ok=True)
        (tmp_path / "pkg" / name).write_text(body)
    modules = {"pkg": tmp_path / "pkg/__init__.py", "pkg.a": tmp_path / "pkg/a.py", "pkg.b": tmp_path / "pkg/b.py"}
    assert strongly_connected(import_graph(modules)) == [["pkg.a", "pkg.b"]]


def test_no_import_cycles(graph):
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_runtime_imports_neither_converters_nor_training(graph):
    bad = {
        module: sorted(t for t in targets if t.split(".")[0] in ("converters", "training"))
        for module, targets in graph.items()
        if module.split(".")[0] == "edge_sdk" and not _is_cli(module)
    }
    bad = {m: t for m, t in bad.items() if t}
    assert not bad, f"runtime modules importing the heavy layers: {bad}"


def test_library_code_does_not_reach_into_the_cli(graph):
    bad = {
        module: sorted(t for t in targets if t == "edge_sdk.cli" or t.startswith("edge_sdk.cli."))
        for module, targets in graph.items()
        if not _is_cli(module)
    }
    bad = {m: t for m, t in bad.items() if t}
    assert not bad, f"library modules importing the CLI: {bad}"


#: The most code lines (not blank, not a comment alone) a module of edge_sdk/, converters/ or training/ may hold
#: (issue 27: a room shows what it holds). Counted without blank and comment lines so the formatter's layout
#: does not move it.
MAX_MODULE_LINES = 700
SIZED_PACKAGES = ("edge_sdk", "converters", "training")
#: Over the limit for now, each with its reason (remove the entry once the module is split).
OVERSIZED_FOR_NOW: dict[str, str] = {}


def _code_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#"))


def test_modules_stay_small():
    big = {
        name: n
        for package in SIZED_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (name := str(path.relative_to(ROOT))) not in OVERSIZED_FOR_NOW
        and (n := _code_lines(path)) > MAX_MODULE_LINES
    }
    assert not big, f"modules over {MAX_MODULE_LINES} code lines (split them): {big}"
