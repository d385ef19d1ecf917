"""The quality gate's thresholds and verdicts, shared by ``edge-sdk parity`` and ``edge-sdk convert``.

A gate compares a quantized model's parity figures with two thresholds:

* ``max_drop``: the most task accuracy, in percentage points, the quantized model
  may lose against the float model (needs labels);
* ``min_agreement``: the least share of examples, in [0, 1], on which both models
  must pick the same top-1 class (needs no labels).

Exit codes follow the CLI contract: 0 the gate passed (or no threshold was set),
1 it failed, 2 it could not run (a threshold that needs labels, with no labels).
The verdict is one line, so CI logs show at a glance why a merge was stopped.

This module imports no TensorFlow: it works on plain numbers. The flows that
measure those numbers (parity, auto-tuning, writing the tuned model) live in
:mod:`converters.quality`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from edge_sdk.errors import EdgeSdkError

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_ERROR = 2


class GateError(EdgeSdkError, ValueError):
    """A gate threshold that is out of range, or that the data cannot evaluate."""


@dataclasses.dataclass
class GateResult:
    """Outcome of a gate: status ``pass`` | ``fail`` | ``error`` | ``none`` (no threshold set)."""

    status: str
    checks: list[dict[str, Any]]
    verdict: str

    @property
    def passed(self) -> bool:
        """True when every threshold set was met (also when none was set)."""
        return self.status in ("pass", "none")

    @property
    def exit_code(self) -> int:
        """0 pass / no gate, 1 fail, 2 could not run."""
        return {"pass": EXIT_PASS, "none": EXIT_PASS, "fail": EXIT_FAIL}.get(self.status, EXIT_ERROR)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"status": self.status, "exit_code": self.exit_code, "verdict": self.verdict, "checks": self.checks}


def validate_thresholds(
    max_drop: float | None = None, min_agreement: float | None = None, accuracy_budget: float | None = None
) -> None:
    """Raise :class:`GateError` for thresholds outside their ranges (before any work is done).

    ``max_drop`` and ``accuracy_budget`` are accuracy points in [0, 100]; ``min_agreement``
    a fraction in [0, 1]; None means not set.
    """
    if max_drop is not None and (not math.isfinite(max_drop) or max_drop < 0 or max_drop > 100):
        raise GateError(f"--max-drop is in accuracy points: expected a number in [0, 100], got {max_drop}")
    if min_agreement is not None and (not math.isfinite(min_agreement) or not 0 <= min_agreement <= 1):
        hint = " (a fraction: 0.99, not 99)" if min_agreement is not None and 1 < min_agreement <= 100 else ""
        raise GateError(f"--min-agreement is a fraction: expected a number in [0, 1], got {min_agreement}{hint}")
    if accuracy_budget is not None and (not math.isfinite(accuracy_budget) or not 0 <= accuracy_budget <= 100):
        raise GateError(
            f"--accuracy-budget is in accuracy points: expected a number in [0, 100], got {accuracy_budget}"
        )


def evaluate_gate(
    float_accuracy: float | None,
    quantized_accuracy: float | None,
    agreement: float | None,
    *,
    max_drop: float | None = None,
    min_agreement: float | None = None,
    subject: str = "quantized model",
) -> GateResult:
    """Check accuracies (fractions in [0, 1]) and top-1 agreement against the thresholds.

    ``max_drop``/``min_agreement``: the thresholds (None: not checked); ``subject``
    names the model in the verdict.
    The accuracy drop is ``(float_accuracy - quantized_accuracy) * 100`` points;
    a quantized model that does better than the float one has a negative drop.
    """
    validate_thresholds(max_drop, min_agreement)
    checks: list[dict[str, Any]] = []
    if max_drop is not None:
        if float_accuracy is None or quantized_accuracy is None:
            checks.append(
                {
                    "name": "max_drop",
                    "threshold": max_drop,
                    "value": None,
                    "passed": None,
                    "reason": "no labels: accuracy cannot be measured (give --labels or data with 'y')",
                }
            )
        else:
            drop = (float_accuracy - quantized_accuracy) * 100.0
            checks.append({"name": "max_drop", "threshold": max_drop, "value": drop, "passed": drop <= max_drop + 1e-9})
    if min_agreement is not None:
        if agreement is None:
            checks.append(
                {
                    "name": "min_agreement",
                    "threshold": min_agreement,
                    "value": None,
                    "passed": None,
                    "reason": "top-1 agreement not measured (the model has no class output)",
                }
            )
        else:
            checks.append(
                {
                    "name": "min_agreement",
                    "threshold": min_agreement,
                    "value": agreement,
                    "passed": agreement >= min_agreement - 1e-12,
                }
            )
    return GateResult(_status(checks), checks, _verdict(checks, subject))


def gate_from_metrics(
    metrics: Mapping[str, Any],
    *,
    max_drop: float | None = None,
    min_agreement: float | None = None,
    subject: str = "quantized model",
) -> GateResult:
    """:func:`evaluate_gate` on a parity result's ``summary`` dict ``metrics`` (other arguments alike)."""
    return evaluate_gate(
        metrics.get("float_accuracy"),
        metrics.get("quantized_accuracy"),
        metrics.get("top1_agreement"),
        max_drop=max_drop,
        min_agreement=min_agreement,
        subject=subject,
    )


def with_task_checks(
    gate: GateResult,
    result: Mapping[str, Any],
    budgets: Mapping[str, float | None],
    subject: str = "quantized model",
) -> GateResult:
    """``gate`` plus the task's budget checks and a failing check per wiped-out output.

    ``result``: a parity result (:func:`converters.parity.compare_outputs`, with ``task_metrics``
    and ``wipeouts``); ``budgets``: ``{budget name: threshold}`` of the budgets to check (None
    values are not checked; see :data:`edge_sdk.tasks.BUDGETS`). A wiped-out output always fails,
    whatever the thresholds: it is never promoted silently.
    """
    from edge_sdk.tasks import BUDGETS, WIPEOUT_REMEDY, Task, TaskMetrics, budget_checks

    checks = list(gate.checks)
    tm = result.get("task_metrics")
    if tm:
        metrics = TaskMetrics(
            Task(tm["task"]), tm["metrics"], tm.get("labels") or {}, warnings=list(tm.get("warnings") or [])
        )
        checks += budget_checks(metrics, budgets)
        own = BUDGETS.get(metrics.task, ("max_drop",))[0]
        for name, threshold in budgets.items():  # a budget of another task measures nothing here: say so
            if threshold is not None and name != own:
                tasks = " or ".join(t.value for t, spec in BUDGETS.items() if spec[0] == name)
                checks.append(
                    {
                        "name": name,
                        "threshold": threshold,
                        "value": None,
                        "passed": None,
                        "reason": f"it is the budget of {tasks}; this model's task is {metrics.task.value} "
                        f"(its budget: --{own.replace('_', '-')}"
                        + (" or --min-agreement)" if own == "max_drop" else ")"),
                    }
                )
    for w in result.get("wipeouts") or []:
        checks.append(
            {"name": "wipeout", "threshold": None, "value": w["what"], "passed": False, "remedy": WIPEOUT_REMEDY}
        )
    if len(checks) == len(gate.checks):
        return gate
    return GateResult(_status(checks), checks, _verdict(checks, subject))


def _status(checks: list[dict[str, Any]]) -> str:
    if not checks:
        return "none"
    if any(c["passed"] is None for c in checks):
        return "error"
    return "pass" if all(c["passed"] for c in checks) else "fail"


def _describe(check: dict[str, Any]) -> str:
    if check["passed"] is None:
        return f"{check['name']} could not run: {check['reason']}"
    if check["name"] == "max_drop":
        op = "<=" if check["passed"] else ">"
        return f"accuracy drop {check['value']:.2f} points {op} {check['threshold']:.2f}"
    if check["name"] == "wipeout":
        return f"quantization wiped out {check['value']}; remedy: {check['remedy']}"
    if check["name"] != "min_agreement":
        op = ">=" if check["passed"] else "<"
        return (
            f"{check.get('metric', check['name'])} {check['value']:.6g} {op} {check['threshold']:g} ({check['name']})"
        )
    op = ">=" if check["passed"] else "<"
    return f"top-1 agreement {check['value']:.4f} {op} {check['threshold']:.4f}"


def _verdict(checks: list[dict[str, Any]], subject: str) -> str:
    status = _status(checks)
    if status == "none":
        return f"NO GATE: no --max-drop or --min-agreement given for the {subject}"
    word = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}[status]
    return f"{word}: {subject}: " + "; ".join(_describe(c) for c in checks)


class GateFailedError(EdgeSdkError):
    """A gate that ran and failed: the CLI prints the verdict and exits 1 (not 2)."""

    def __init__(self, verdict: str, report: dict[str, Any] | None = None):
        super().__init__(verdict)
        self.verdict = verdict
        self.report = report or {}
