"""The converters' layout (issue 17): stage modules with one entry, and a pipeline that loops over them.

Import cycles and the one-way layers are checked for the whole project in tests/structure/test_imports.py.
"""


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


def test_each_stage_record_renders_its_own_summary_entry_and_lines():
    # the CLI prints PipelineResult.lines; summary.json keeps the keys and values it always had
    from converters.context import Artifact, render_comparisons
    from converters.export import ExportComparison
    from converters.prune import PruneComparison
    from converters.quantize import QuantizeComparison

    def artifact(name, sha, parent, gz, stage):
        return Artifact(name, f"{name}.tflite", "float32", stage, sha, gz * 2, gz, parent, {}, {})

    dense, pruned = artifact("float32", "a", None, 1000, "input"), artifact("pruned-float32", "b", "a", 900, "prune")
    shipped = artifact("pruned-int8", "c", "b", 250, "quantize")
    prune = PruneComparison(0.5, "none", 0.5, [], dense=dense, pruned=pruned)
    ctx = type("Ctx", (), {"artifacts": [dense, pruned, shipped]})()
    prune.finish(ctx)  # the quantize stage never touches prune's record
    quantize = QuantizeComparison("int8", "pruned-int8", 0.25, 0.25, input_size_ratio=0.3, input_gzip_ratio=0.28)
    comparisons, lines = render_comparisons(
        {"export": ExportComparison(), "quantize": quantize, "prune": prune, "gate": {"verdict": "PASS"}}
    )
    assert list(comparisons) == ["quantize", "prune", "gate"]  # an export with nothing skipped is left out
    assert comparisons["prune"] == {
        "target_sparsity": 0.5,
        "structured": "none",
        "overall_sparsity": 0.5,
        "layers": [],
        "gzip_ratio_vs_dense_float32": 0.25,
        "dense_float32": "float32",
    }
    assert list(comparisons["quantize"]) == [
        "mode",
        "artifact",
        "input_size_ratio",
        "input_gzip_ratio",
        "final_size_ratio",
        "final_gzip_ratio",
    ]
    assert lines == [
        "prune: 50.0% of prunable weights are zero; pruned+quantized gzip is 0.250x the dense float32 gzip",
        "quantize: int8 file is 0.300x float32",
    ]  # in line order, whatever the record order
