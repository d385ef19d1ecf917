"""The latency note (issue 25, item 7): a manifest says "N x slower than float32 here" only after alternated
re-timing confirms it beyond run-to-run noise. Timings are injected (deterministic), never measured here."""

from __future__ import annotations

import json
import types
from itertools import cycle

import numpy as np
import pytest

from converters import latency_check

FLOAT, QUANT = b"float-model-bytes", b"quant-model-bytes"


def _ctx(tmp_path, quick_float_us=10.0, quick_quant_us=16.0):
    """A convert run's context as check_latency reads it: a float32 parent and its int8 child."""
    (tmp_path / "float32.tflite").write_bytes(FLOAT)
    (tmp_path / "int8.tflite").write_bytes(QUANT)
    parent = types.SimpleNamespace(
        file="float32.tflite",
        kind="float32",
        sha256="f" * 64,
        parent=None,
        metrics={"latency_us": quick_float_us},
        manifest={"metrics": {}},
    )
    child = types.SimpleNamespace(
        file="int8.tflite",
        kind="int8",
        sha256="q" * 64,
        parent="f" * 64,
        metrics={"latency_us": quick_quant_us},
        manifest={"metrics": {}},
    )
    warned = []
    comparisons = {}
    return types.SimpleNamespace(
        data=types.SimpleNamespace(sample=lambda: {"x": np.zeros((4, 3), np.float32)}),
        latency_runs=20,
        artifacts=[parent, child],
        staging=tmp_path,
        warn=warned.append,
        comparisons=comparisons,
        warned=warned,
        record=lambda c: comparisons.__setitem__(c.key, c),
    )


def _inject(monkeypatch, float_rounds, quant_rounds):
    """measure_latency_us returns these per-round medians, in turn, for each model."""
    timings = {FLOAT: cycle(float_rounds), QUANT: cycle(quant_rounds)}
    monkeypatch.setattr(
        "converters.evaluation.measure_latency_us",
        lambda tflite, example, runs=50, warmup=5, num_threads=1: next(timings[bytes(tflite)]),
    )
    monkeypatch.setattr(latency_check, "xnnpack_fallback_ops", lambda tflite: {})


def test_a_slowdown_seen_in_some_rounds_only_is_not_written(tmp_path, monkeypatch):
    # the median of the quantized rounds is 1.5x float's, but two of the five rounds have it faster:
    # run-to-run noise, not a slowdown (ToyCar's "1.6x slower" while bench measured 0.76x)
    _inject(monkeypatch, [100, 180, 100, 100, 170], [150, 160, 95, 150, 150])
    ctx = _ctx(tmp_path)
    assert latency_check.check_latency(ctx) == []
    child = ctx.artifacts[1]
    assert "latency_note" not in child.manifest and "latency_vs_float32" not in child.metrics
    assert ctx.warned == [] and "latency_warnings" not in ctx.comparisons


def test_a_consistent_gap_smaller_than_the_noise_is_not_written(tmp_path, monkeypatch):
    # slower in every round (1.13x-1.2x), but each model's own rounds wander by 50%
    _inject(monkeypatch, [100, 150, 100, 150, 100], [120, 170, 120, 170, 120])
    ctx = _ctx(tmp_path)
    assert latency_check.check_latency(ctx) == [] and "latency_note" not in ctx.artifacts[1].manifest


def test_a_confirmed_slowdown_is_written_with_its_evidence(tmp_path, monkeypatch):
    _inject(monkeypatch, [100, 102, 99, 101, 100], [200, 205, 198, 202, 199])
    ctx = _ctx(tmp_path)
    notes = latency_check.check_latency(ctx)
    assert len(notes) == 1 and notes[0].startswith("int8.tflite is 2.0x slower than float32.tflite here")
    assert (
        "median of 5 alternated rounds, 5 of them slower by more than the 10% margin (run-to-run noise 2%)" in notes[0]
    )
    manifest = json.loads((tmp_path / "int8.json").read_text())
    assert manifest["latency_note"] == notes[0] and manifest["metrics"]["latency_vs_float32"] == 2.0


def test_one_stray_round_neither_hides_nor_makes_a_slowdown():
    # a neighbour's burst in one quantized round: the gap holds in the other four, the noise is 4%
    steady = latency_check.judge_slowdown([8.7, 8.6, 8.6, 8.9, 8.7], [11.7, 16.7, 11.6, 10.9, 11.5])
    assert steady["confirmed"] and steady["slower_rounds"] == 5 and steady["noise"] < 0.1
    # ... or in one float round, making that round's ratio look fine: still confirmed, by 4 of 5
    assert latency_check.judge_slowdown([100, 100, 250, 100, 100], [200] * 5)["confirmed"]
    # one slow quantized round alone is no slowdown
    assert not latency_check.judge_slowdown([100] * 5, [100, 100, 300, 100, 100])["confirmed"]


def test_judge_slowdown_margin_and_order():
    judged = latency_check.judge_slowdown([100] * 5, [105] * 5)  # no noise, but under the 10% floor
    assert not judged["confirmed"] and judged["margin"] == pytest.approx(0.10)
    assert latency_check.judge_slowdown([100] * 5, [111] * 5)["confirmed"]
    with pytest.raises(ValueError, match="as many float as quantized rounds"):
        latency_check.judge_slowdown([100, 100], [120])


def test_rounds_alternate_in_abba_order(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "converters.evaluation.measure_latency_us",
        lambda tflite, example, runs=50, warmup=5, num_threads=1: calls.append(tflite) or 1.0,
    )
    latency_check.alternated_timings(FLOAT, QUANT, {"x": np.zeros((2, 3), np.float32)}, rounds=4)
    assert calls == [FLOAT, QUANT, QUANT, FLOAT, FLOAT, QUANT, QUANT, FLOAT]
