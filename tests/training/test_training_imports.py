"""training/ has no import cycle between its modules, counting imports inside functions (issue #17)."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[2] / "training"


def _import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in TRAINING.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        tree = ast.parse((TRAINING / f"{module}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # "from training import zoo" names the module in the alias, "from training.zoo import x" in .module
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            for target in targets:
                parts = target.split(".")
                if parts[0] == "training" and len(parts) > 1 and parts[1] in modules and parts[1] != module:
                    graph[module].add(parts[1])
    return graph


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str]:
    """A path start -> ... -> start if one exists, else []."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return []


def test_no_import_cycle_between_training_modules():
    graph = _import_graph()
    assert "dataset_type" in graph["tfrecord"] and "tfrecord" in graph["datasets"]  # the walk sees both kinds
    cycles = [_cycle_through(graph, m) for m in sorted(graph)]
    assert not [c for c in cycles if c], [" -> ".join(c) for c in cycles if c]


def test_datasets_still_exports_the_dataset_type():
    from training import dataset_type, datasets, tfrecord

    assert datasets.Dataset is dataset_type.Dataset is tfrecord.Dataset
    assert datasets.SPLITS == tfrecord.SPLITS == ("train", "val", "test")
