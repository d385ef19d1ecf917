"""The converters' layout rules (issue 17), checked by walking the AST: no import cycle, one-way layers."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Set

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> Dict[str, Set[str]]:
    """``{module: project modules it imports}`` for every module of ``package``, imports inside functions included."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / package).rglob("*.py")}
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        targets: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t.split(".")[0] in ("converters", "training", "edge_sdk")}
    return graph


def _cycles(graph: Dict[str, Set[str]]) -> list:
    nodes = set(graph)
    edges = {m: {t for t in ts if t in nodes and t != m} for m, ts in graph.items()}
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(nodes):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle_among_converters_modules():
    """autotune <-> gate <-> pipeline and export <-> loading used to be cycles."""
    assert _cycles(_imports("converters")) == []


def test_runtime_helpers_import_nothing_heavy():
    """The rules converters share with the runtime live in edge_sdk and never import converters or training."""
    graph = _imports("edge_sdk")
    for module in ("edge_sdk.metrics", "edge_sdk.digest"):
        assert not {t for t in graph[module] if t.split(".")[0] in ("converters", "training")}, module


def test_stage_modules_have_one_entry_and_the_pipeline_loops_over_them():
    from converters import pipeline, recipe

    for name, (module_name, section) in pipeline.STAGE_MODULES.items():
        module = __import__(module_name, fromlist=["run_stage"])
        assert callable(module.run_stage) and callable(module.check) and callable(module.planned_steps), name
        assert section in recipe.SECTIONS
    full = recipe.load("distill-prune-int8")
    assert [name for name, _, _ in pipeline.stage_plan(full)] == ["load", "distill", "prune", "quantize", "export"]
    assert pipeline.planned_steps(full) == 20  # the "[convert i/N]" total the built-in prints
    assert pipeline.planned_steps(recipe.load("int8")) == 6
    assert not hasattr(pipeline, "count_stages")
