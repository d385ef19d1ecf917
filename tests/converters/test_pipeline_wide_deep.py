"""The distill-prune-int8 recipe on the Wide & Deep model (13 named tabular inputs, one sigmoid output)."""

from __future__ import annotations

import pytest
from pipeline_fixtures import run_recipe  # tests/ is on sys.path (tests/conftest.py)


@pytest.fixture(scope="module")
def wide_deep_run(tmp_path_factory):
    """One short recipe run: 1 epoch per training stage keeps it to seconds; the accuracy bar reflects that."""
    return run_recipe(
        "distill-prune-int8",
        "wide-deep",
        "adult",
        tmp_path_factory.mktemp("wide_deep") / "out",
        # batches of 512: an epoch over adult's 34k rows at the default 64 is most of this file's time
        **{
            "train.epochs": 1,
            "distill.student": "wide-deep",
            "distill.epochs": 1,
            "prune.epochs": 1,
            "train.batch_size": 512,
            "distill.batch_size": 512,
            "prune.batch_size": 512,
            # image-only options: must be skipped with a warning, not crash
            "distill.shift": 2,
            "distill.mixup": 0.4,
            "export.formats": ["tflite"],
            "export.latency_runs": 2,
        },
    )


def test_every_stage_runs_on_the_tabular_model(wide_deep_run):
    names = set(wide_deep_run.manifests)
    assert {
        "float32",
        "int8",
        "student-float32",
        "student-baseline-float32",
        "student-pruned-float32",
        "student-pruned-int8",
    } <= names
    majority = max(wide_deep_run.y_test.mean(), 1 - wide_deep_run.y_test.mean())  # about 0.76 on adult
    for name in ("float32", "student-float32", "student-pruned-int8"):
        assert wide_deep_run.manifests[name]["metrics"]["accuracy"] > majority + 0.02, name
    inputs = wide_deep_run.manifests["student-pruned-int8"]["inputs"]
    assert len(inputs) == 13


def test_image_only_views_are_skipped_with_a_warning(wide_deep_run):
    distill = wide_deep_run.comparisons()["distill"]
    assert distill["shift"] == 0 and distill["mixup"] == 0.0 and distill["transfer"] is None
    assert any("need one NHWC image input" in w for w in wide_deep_run.summary["warnings"])


def test_parity_slices_wide_deep_by_gender_race_and_age_in_decades(wide_deep_run, tmp_path, capsys):
    """Issue 25 item 6: sliced parity on this file's trained Wide & Deep (no second training run)."""
    import json

    from edge_sdk.cli import main

    base = [
        "parity",
        str(wide_deep_run.float32),
        str(wide_deep_run.int8),
        "--data",
        "adult",
        "--no-layers",
        "-q",
        "--slice-by",
        "gender",
        "--slice-by",
        "race",
        "--slice-by",
        "age:decades",
        "--min-slice-count",
        "100",
    ]
    report_file = tmp_path / "parity.json"
    html_file = tmp_path / "parity.html"
    assert main([*base, "--json", str(report_file), "--html", str(html_file)]) == 0
    report = json.loads(report_file.read_text())
    slices = report["parity"]["slices"]
    by_spec = {s["spec"]: {r["slice"]: r for r in s["rows"]} for s in slices["slicings"]}
    samples = report["parity"]["summary"]["samples"]
    assert set(by_spec["gender"]) == {"Female", "Male"}  # decoded from the manifest's vocabulary
    assert {"White", "Black", "Asian-Pac-Islander"} <= set(by_spec["race"])
    assert {"[20, 30)", "[30, 40)", "[40, 50)"} <= set(by_spec["age:decades"])  # years, not standard deviations
    for rows in by_spec.values():
        assert sum(r["count"] for r in rows.values()) == samples
        for r in rows.values():
            assert r["tiny"] == (r["count"] < 100)
            assert r["drop_points"] == pytest.approx(100 * (r["float_accuracy"] - r["quantized_accuracy"]))
    gated = [r for rows in by_spec.values() for r in rows.values() if not r["tiny"]]
    assert any(r["tiny"] for r in by_spec["age:decades"].values())  # [80, 90) and older: reported, not gated
    assert slices["worst"]["drop_points"] == pytest.approx(max(r["drop_points"] for r in gated))
    assert "<h2>Slices</h2>" in html_file.read_text()
    capsys.readouterr()
    worst = slices["worst"]["drop_points"]
    # the gate: exit 1 above the budget, like --max-drop; the table says which slice
    budget_fail = max(0.0, worst - 0.01)
    code = main([*base, "--max-slice-drop", f"{budget_fail}"])
    out = capsys.readouterr().out
    assert "slices by age:decades" in out and "tiny: not gated" in out
    assert code == (1 if worst > budget_fail else 0)
    assert main([*base, "--max-slice-drop", f"{max(worst, 0.0) + 0.5}"]) == 0
    assert "PASS slices: worst slice" in capsys.readouterr().out
