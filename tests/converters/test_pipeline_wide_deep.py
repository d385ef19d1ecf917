"""The distill-prune-int8 recipe on the Wide & Deep model (13 named tabular inputs, one sigmoid output)."""
from __future__ import annotations

import pytest

from pipeline_fixtures import run_recipe  # tests/ is on sys.path (tests/conftest.py)


@pytest.fixture(scope="module")
def wide_deep_run(tmp_path_factory):
    """One short recipe run: 1 epoch per training stage keeps it to seconds; the accuracy bar reflects that."""
    return run_recipe(
        "distill-prune-int8", "wide-deep", "adult", tmp_path_factory.mktemp("wide_deep") / "out",
        # batches of 512: an epoch over adult's 34k rows at the default 64 is most of this file's time
        **{"train.epochs": 1, "distill.student": "wide-deep", "distill.epochs": 1, "prune.epochs": 1,
           "train.batch_size": 512, "distill.batch_size": 512, "prune.batch_size": 512,
           # image-only options: must be skipped with a warning, not crash
           "distill.shift": 2, "distill.mixup": 0.4,
           "export.formats": ["tflite"], "export.latency_runs": 2},
    )


def test_every_stage_runs_on_the_tabular_model(wide_deep_run):
    names = set(wide_deep_run.manifests)
    assert {"float32", "int8", "student-float32", "student-baseline-float32", "student-pruned-float32",
            "student-pruned-int8"} <= names
    majority = max(wide_deep_run.y_test.mean(), 1 - wide_deep_run.y_test.mean())  # about 0.76 on adult
    for name in ("float32", "student-float32", "student-pruned-int8"):
        assert wide_deep_run.manifests[name]["metrics"]["accuracy"] > majority + 0.02, name
    inputs = wide_deep_run.manifests["student-pruned-int8"]["inputs"]
    assert len(inputs) == 13


def test_image_only_views_are_skipped_with_a_warning(wide_deep_run):
    distill = wide_deep_run.comparisons()["distill"]
    assert distill["shift"] == 0 and distill["mixup"] == 0.0 and distill["transfer"] is None
    assert any("need one NHWC image input" in w for w in wide_deep_run.summary["warnings"])
