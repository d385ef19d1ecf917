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
