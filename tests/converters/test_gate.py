"""The gate: thresholds, verdicts, exit codes (pure numbers, no TensorFlow)."""

import pytest

from converters.gate import GateError, evaluate_gate, validate_thresholds


def test_pass_when_within_both_thresholds():
    result = evaluate_gate(0.95, 0.945, 0.99, max_drop=1.0, min_agreement=0.98)
    assert result.status == "pass" and result.exit_code == 0 and result.passed
    assert result.verdict.startswith("PASS")
    assert "accuracy drop 0.50 points <= 1.00" in result.verdict
    assert "top-1 agreement 0.9900 >= 0.9800" in result.verdict
    assert "\n" not in result.verdict


def test_fail_names_the_failing_check():
    result = evaluate_gate(0.95, 0.90, 0.99, max_drop=1.0, min_agreement=0.98)
    assert result.status == "fail" and result.exit_code == 1 and not result.passed
    assert "accuracy drop 5.00 points > 1.00" in result.verdict
    failing = [c["name"] for c in result.checks if not c["passed"]]
    assert failing == ["max_drop"]


def test_agreement_alone_fails():
    result = evaluate_gate(None, None, 0.90, min_agreement=0.95)
    assert result.exit_code == 1 and "top-1 agreement 0.9000 < 0.9500" in result.verdict


def test_max_drop_without_labels_cannot_run():
    result = evaluate_gate(None, None, 0.999, max_drop=1.0)
    assert result.status == "error" and result.exit_code == 2
    assert "no labels" in result.verdict


def test_no_threshold_is_no_gate():
    result = evaluate_gate(0.9, 0.5, 0.5)
    assert result.status == "none" and result.exit_code == 0 and result.verdict.startswith("NO GATE")


def test_quantized_better_than_float_is_a_negative_drop():
    result = evaluate_gate(0.90, 0.91, 1.0, max_drop=0.0)
    assert result.passed and result.checks[0]["value"] == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"max_drop": -1}, "[0, 100]"),
        ({"max_drop": float("nan")}, "[0, 100]"),
        ({"min_agreement": 99}, "0.99, not 99"),
        ({"min_agreement": -0.1}, "[0, 1]"),
    ],
)
def test_out_of_range_thresholds(kwargs, text):
    with pytest.raises(GateError) as info:
        validate_thresholds(**kwargs)
    assert text in str(info.value)


@pytest.mark.parametrize("budget", [-1.0, 101.0, float("nan"), float("inf")])
def test_accuracy_budget_range_is_checked_with_the_other_thresholds(budget):
    with pytest.raises(GateError, match=r"--accuracy-budget is in accuracy points: expected a number in \[0, 100\]"):
        validate_thresholds(accuracy_budget=budget)


def test_the_gate_module_is_plain_numbers_and_the_flows_live_in_quality():
    """gate.py holds thresholds and verdicts only; convert and parity share converters.quality."""
    import ast
    import inspect

    from converters import gate, quality

    imported = {n.module for n in ast.walk(ast.parse(inspect.getsource(gate))) if isinstance(n, ast.ImportFrom)}
    assert not any(m.startswith("converters") for m in imported if m)
    assert callable(quality.convert_hooks) and callable(quality.parity_check) and callable(quality.write_tuned_model)
    assert not hasattr(gate, "convert_hooks")
