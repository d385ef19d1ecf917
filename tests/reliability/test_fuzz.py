"""Fuzzing: mutated and truncated real .tflite files through edge_sdk.load + predict, in child processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import fuzz_tflite  # noqa: E402 - importable only after the sys.path insert above (tools/ is not a package)

CI_CASES = 3000


@pytest.fixture(scope="module")
def ci_fuzz(digits_models):
    return fuzz_tflite.run_fuzz(
        [digits_models["float32"], digits_models["int8"]], cases=CI_CASES, seed=0, workers=1, timeout=30
    )


def test_only_edge_sdk_errors_and_every_crash_is_guarded(ci_fuzz):
    """Whether LiteRT itself crashes on a given corrupt file is its luck, not edge-sdk's: which of the
    3,000 mutations crash it depends on the model's exact bytes, and those vary with how TensorFlow
    trained the fixture in this process. What edge-sdk promises is that isolate=True and the manifest
    refuse every file that crashed or hung a worker, and that every other refusal is its own error."""
    report = ci_fuzz.to_dict()
    assert report["files_tried"] == CI_CASES
    assert report["foreign_exceptions"] == 0, report["failures"]
    fatal = [f for f in ci_fuzz.failures if f["outcome"] in ("crash", "hang")]
    assert len(fatal) <= CI_CASES // 1000, fatal  # LiteRT crashed on about 1 in 33,000 at 200,000 cases
    for failure in fatal:
        assert str(failure.get("isolate", "")).startswith("caught"), failure
        assert failure.get("manifest") == "caught", failure
    assert all(f["outcome"] in ("crash", "hang") for f in ci_fuzz.failures), ci_fuzz.failures


def test_the_cases_are_real_refusals_and_real_silent_changes(ci_fuzz):
    report = ci_fuzz.to_dict()
    # Most mutations must be refused, and every kind of mutation must have been tried.
    assert report["refusals"] > CI_CASES * 0.5
    assert set(report["by_mutation"]) == set(fuzz_tflite.MUTATIONS)
    assert {"CorruptModelError", "NotTFLiteError"} <= set(report["refusals_by_error"])
    # Weight corruption loads and runs with different outputs; the manifest sha256 catches every one.
    assert report["silent_wrong_without_manifest"] > 50
    assert report["silent_wrong_caught_by_manifest"] == report["silent_wrong_without_manifest"]
    assert report["by_mutation"]["weights"].get("ran-wrong", 0) > 0


def test_mutations_are_deterministic_and_always_change_the_file(digits_models):
    sources = [fuzz_tflite.load_source(digits_models[name]) for name in ("float32", "int8")]
    for case in range(300):
        index, kind, data = fuzz_tflite.mutate(sources, 5, case)
        assert data != sources[index].data
        assert fuzz_tflite.mutate(sources, 5, case) == (index, kind, data)
    ranges = fuzz_tflite.weight_buffer_ranges(sources[0].data)
    assert sum(end - start for start, end in ranges) > len(sources[0].data) * 0.5  # the float model is mostly weights


def test_the_harness_catches_and_attributes_crashes(digits_models, crash_hook):
    """Workers that die must be counted as crashes, charged to the right case, and restarted."""
    sources = [fuzz_tflite.load_source(digits_models[name]) for name in ("float32", "int8")]
    crash_hook("size%4=1")  # workers segfault on models whose size is 1 modulo 4 (originals are 4-aligned)
    cases = 60
    report = fuzz_tflite.run_fuzz([digits_models["float32"], digits_models["int8"]], cases=cases, seed=3, timeout=30)
    expected = {c for c in range(cases) if len(fuzz_tflite.mutate(sources, 3, c)[2]) % 4 == 1}
    crashed = {f["case"] for f in report.failures if f["outcome"] == "crash"}
    assert expected and crashed == expected
    assert report.cases == cases and not report.ok
    assert all(f["signal"] == "SIGSEGV" and f["isolate"].startswith("caught") for f in report.failures)
