"""The stage contract (issue 27), checked on the source so it cannot quietly erode.

- every stage module has ``run_stage(ctx: RunContext, options)``, ``check(ctx: RunContext, options)`` and
  ``planned_steps(recipe)``, and no function in ``converters/`` types its ``ctx`` as ``Any``;
- ``converters.context`` (what every stage gets) reaches no stage module, even through other modules or
  imports inside functions: the stages sit above it;
- a stage records its comparison through ``ctx.record``: nothing in ``converters/`` subscripts
  ``ctx.comparisons``, so no stage writes (or reads) another's record;
- the convert CLI reads no comparison by key: each record prints its own lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.structure.test_imports import ROOT, import_graph, project_modules

CONVERTERS = ROOT / "converters"


def _stage_modules() -> dict:
    """``STAGE_MODULES`` of converters/pipeline.py, read from its AST (no import)."""
    tree = ast.parse((CONVERTERS / "pipeline.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "STAGE_MODULES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("converters/pipeline.py has no STAGE_MODULES")


def _functions(path: Path) -> dict:
    tree = ast.parse(path.read_text(), str(path))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_stage_module_has_the_three_typed_entries():
    stages = _stage_modules()
    assert {"load", "quantize", "export"} <= set(stages)
    for name, (module, _section) in stages.items():
        path = ROOT / (module.replace(".", "/") + ".py")
        functions = _functions(path)
        for entry in ("run_stage", "check", "planned_steps"):
            assert entry in functions, f"stage {name!r} ({path.name}) has no {entry}()"
        for entry in ("run_stage", "check"):
            first = functions[entry].args.args[0]
            assert first.arg == "ctx" and ast.unparse(first.annotation) == "RunContext", (
                f"{path.name}: {entry}'s first argument must be `ctx: RunContext`"
            )


def test_no_function_types_its_context_as_any():
    bad = []
    for path in sorted(CONVERTERS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.arg)
                and node.arg == "ctx"
                and (node.annotation is None or ast.unparse(node.annotation) in ("Any", "typing.Any", "object"))
            ):
                bad.append(f"{path.name}:{node.lineno}")
    assert not bad, f"`ctx` must be typed RunContext: {bad}"


def test_the_context_reaches_no_stage_module():
    graph = import_graph(project_modules())
    stages = {module for module, _ in _stage_modules().values()}
    seen, todo = set(), ["converters.context"]
    while todo:
        module = todo.pop()
        for target in graph.get(module, ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert not seen & stages, f"converters.context imports stage modules (directly or not): {sorted(seen & stages)}"


def test_the_walk_above_would_see_a_stage_import():
    # guards the test: the quantize stage itself does reach the context
    graph = import_graph(project_modules())
    assert "converters.context" in graph["converters.quantize"]


def test_no_module_subscripts_the_run_comparisons():
    pattern = re.compile(r"\bctx\.comparisons\s*(\[|\.setdefault|\.get|\.pop)")
    bad = [
        f"{path.name}:{i}"
        for path in sorted(CONVERTERS.rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not bad, f"record comparisons with ctx.record(<Comparison>), never by key: {bad}"


def test_the_convert_cli_reads_no_comparison_by_key():
    text = (ROOT / "edge_sdk" / "cli" / "convert.py").read_text()
    assert not re.search(r"comparisons\s*(\[|\.get)", text), "edge_sdk/cli/convert.py reads a stage's record by key"


# -- one home for each decision (issue 27 item 4) ----------------------------------------------------------------
MODEL_SUFFIX = re.compile(
    r"""(suffix[^\n]*["']\.(onnx|tflite|keras|h5|hdf5)["']"""
    r"""|lower\(\)\.endswith\(["']\.(onnx|tflite|keras|h5)["'])"""
)


def _lines_matching(pattern: re.Pattern, roots, skip=()) -> list:
    hits = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if path.relative_to(ROOT).as_posix() in skip:
                continue
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{i}")
    return hits


def test_the_input_kind_is_decided_in_converters_inputs_only():
    # a model path's kind (.onnx / .tflite / .keras / .h5 / SavedModel / zoo name) is converters.inputs.input_kind;
    # nothing else in the converters or the CLI reads a model file's suffix
    hits = _lines_matching(MODEL_SUFFIX, [CONVERTERS, ROOT / "edge_sdk" / "cli"], skip={"converters/inputs.py"})
    assert not hits, f"use converters.inputs.input_kind: {hits}"
    assert MODEL_SUFFIX.search('if Path(p).suffix.lower() == ".onnx":')  # the pattern sees the old way


def test_dataset_and_zoo_names_are_listed_once():
    # messages and help read training.names (DATASETS_TEXT, ZOO_MODELS_TEXT); nothing else spells the lists out
    pattern = re.compile(
        r"digits, mnist, adult|\(\s*\"digits\",\s*\"mnist\""
        r"|\"cnn\",\s*\"cnn-student\"|cnn, cnn-student, wide"
    )
    roots = [CONVERTERS, ROOT / "edge_sdk", ROOT / "training"]
    hits = _lines_matching(pattern, roots, skip={"training/names.py"})
    assert not hits, f"use training.names: {hits}"


def test_schemes_are_defined_once():
    # manifest kind, suffix, calibration need and the LiteRT mapping of a scheme live in converters/schemes.py
    pattern = re.compile(
        r"^\s*(MANIFEST_KIND|MODE_SCHEMES|NEEDS_CALIBRATION|ARTIFACT_SUFFIX|LITERT_SCHEMES"
        r"|LITERT_KINDS|MODES)\s*[:=]"
    )
    hits = _lines_matching(pattern, [CONVERTERS], skip={"converters/schemes.py"})
    assert not hits, f"define schemes in converters/schemes.py: {hits}"


def test_shape_text_has_one_home():
    hits = _lines_matching(re.compile(r"def _?shape_text\("), [CONVERTERS, ROOT / "edge_sdk", ROOT / "training"])
    assert len(hits) <= 1, f"one shape_text: {hits}"
