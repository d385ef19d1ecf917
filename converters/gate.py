"""The quality gate shared by ``edge-sdk parity`` and ``edge-sdk convert``.

A gate compares a quantized model's parity figures with two thresholds:

* ``max_drop``: the most task accuracy, in percentage points, the quantized model
  may lose against the float model (needs labels);
* ``min_agreement``: the least share of examples, in [0, 1], on which both models
  must pick the same top-1 class (needs no labels).

Exit codes follow the CLI contract: 0 the gate passed (or no threshold was set),
1 it failed, 2 it could not run (a threshold that needs labels, with no labels).
The verdict is one line, so CI logs show at a glance why a merge was stopped.

This module imports no TensorFlow: it works on plain numbers.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional

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
    checks: List[Dict[str, Any]]
    verdict: str

    @property
    def passed(self) -> bool:
        """True when every threshold set was met (also when none was set)."""
        return self.status in ("pass", "none")

    @property
    def exit_code(self) -> int:
        """0 pass / no gate, 1 fail, 2 could not run."""
        return {"pass": EXIT_PASS, "none": EXIT_PASS, "fail": EXIT_FAIL}.get(self.status, EXIT_ERROR)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {"status": self.status, "exit_code": self.exit_code, "verdict": self.verdict, "checks": self.checks}


def validate_thresholds(max_drop: Optional[float] = None, min_agreement: Optional[float] = None) -> None:
    """Raise :class:`GateError` for thresholds outside their ranges (before any work is done)."""
    if max_drop is not None and (not math.isfinite(max_drop) or max_drop < 0 or max_drop > 100):
        raise GateError(f"--max-drop is in accuracy points: expected a number in [0, 100], got {max_drop}")
    if min_agreement is not None and (not math.isfinite(min_agreement) or not 0 <= min_agreement <= 1):
        hint = " (a fraction: 0.99, not 99)" if min_agreement is not None and 1 < min_agreement <= 100 else ""
        raise GateError(f"--min-agreement is a fraction: expected a number in [0, 1], got {min_agreement}{hint}")


def evaluate_gate(
    float_accuracy: Optional[float],
    quantized_accuracy: Optional[float],
    agreement: Optional[float],
    *,
    max_drop: Optional[float] = None,
    min_agreement: Optional[float] = None,
    subject: str = "quantized model",
) -> GateResult:
    """Check accuracies (fractions in [0, 1]) and top-1 agreement against the thresholds.

    The accuracy drop is ``(float_accuracy - quantized_accuracy) * 100`` points;
    a quantized model that does better than the float one has a negative drop.
    """
    validate_thresholds(max_drop, min_agreement)
    checks: List[Dict[str, Any]] = []
    if max_drop is not None:
        if float_accuracy is None or quantized_accuracy is None:
            checks.append({
                "name": "max_drop", "threshold": max_drop, "value": None, "passed": None,
                "reason": "no labels: accuracy cannot be measured (give --labels or data with 'y')",
            })
        else:
            drop = (float_accuracy - quantized_accuracy) * 100.0
            checks.append({"name": "max_drop", "threshold": max_drop, "value": drop, "passed": drop <= max_drop + 1e-9})
    if min_agreement is not None:
        if agreement is None:
            checks.append({"name": "min_agreement", "threshold": min_agreement, "value": None, "passed": None,
                           "reason": "top-1 agreement not measured (the model has no class output)"})
        else:
            checks.append({"name": "min_agreement", "threshold": min_agreement, "value": agreement,
                           "passed": agreement >= min_agreement - 1e-12})
    return GateResult(_status(checks), checks, _verdict(checks, subject))


def gate_from_metrics(metrics: Mapping[str, Any], *, max_drop: Optional[float] = None,
                      min_agreement: Optional[float] = None, subject: str = "quantized model") -> GateResult:
    """:func:`evaluate_gate` on a parity result's ``summary`` dict."""
    return evaluate_gate(
        metrics.get("float_accuracy"), metrics.get("quantized_accuracy"), metrics.get("top1_agreement"),
        max_drop=max_drop, min_agreement=min_agreement, subject=subject,
    )


def _status(checks: List[Dict[str, Any]]) -> str:
    if not checks:
        return "none"
    if any(c["passed"] is None for c in checks):
        return "error"
    return "pass" if all(c["passed"] for c in checks) else "fail"


def _describe(check: Dict[str, Any]) -> str:
    if check["passed"] is None:
        return f"{check['name']} could not run: {check['reason']}"
    if check["name"] == "max_drop":
        op = "<=" if check["passed"] else ">"
        return f"accuracy drop {check['value']:.2f} points {op} {check['threshold']:.2f}"
    op = ">=" if check["passed"] else "<"
    return f"top-1 agreement {check['value']:.4f} {op} {check['threshold']:.4f}"


def _verdict(checks: List[Dict[str, Any]], subject: str) -> str:
    status = _status(checks)
    if status == "none":
        return f"NO GATE: no --max-drop or --min-agreement given for the {subject}"
    word = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}[status]
    return f"{word}: {subject}: " + "; ".join(_describe(c) for c in checks)


class GateFailedError(EdgeSdkError):
    """A gate that ran and failed: the CLI prints the verdict and exits 1 (not 2)."""

    def __init__(self, verdict: str, report: Optional[Dict[str, Any]] = None):
        super().__init__(verdict)
        self.verdict = verdict
        self.report = report or {}


def convert_hooks(
    *,
    max_drop: Optional[float] = None,
    min_agreement: Optional[float] = None,
    accuracy_budget: Optional[float] = None,
    dataset: Any = None,
    eval_data: Optional[str] = None,
    calibration: Optional[str] = None,
    progress: bool = True,
) -> List[Any]:
    """``before_promote`` hooks for ``converters.pipeline.run`` (``edge-sdk convert``).

    * ``accuracy_budget``: when the int8 artifact loses more than the budget
      against the float model it was quantized from, :func:`converters.autotune.autotune`
      writes ``<artifact>-autotuned.tflite`` (and its manifest) into the run; a
      budget no mix meets fails the run (the best trade-off is named).
    * ``max_drop`` / ``min_agreement``: the model that would ship (the auto-tuned one
      if any, else the final quantized artifact) is compared with the *input* float
      model on the eval data; a failing gate stops promotion (``--out`` is left as it was).

    The reports go into the run as ``parity.json``, ``parity.html`` and
    ``autotune.json``; the verdict goes into the summary's ``comparisons["gate"]``.
    Failures raise :class:`GateFailedError`.
    """
    validate_thresholds(max_drop, min_agreement)
    if accuracy_budget is not None and (not math.isfinite(accuracy_budget) or not 0 <= accuracy_budget <= 100):
        raise GateError(f"--accuracy-budget is in accuracy points: expected a number in [0, 100], got {accuracy_budget}")
    if max_drop is None and min_agreement is None and accuracy_budget is None:
        return []
    if (max_drop is not None or accuracy_budget is not None) and dataset is None and eval_data is None:
        raise GateError("--max-drop and --accuracy-budget measure accuracy: expected --dataset NAME or "
                        "--eval FILE.npz with labels, got neither")

    def hook(result: Any) -> None:
        _convert_gate(result, max_drop=max_drop, min_agreement=min_agreement, accuracy_budget=accuracy_budget,
                      dataset=dataset, eval_data=eval_data, calibration=calibration, progress=progress)

    return [hook]


def _convert_gate(result: Any, *, max_drop, min_agreement, accuracy_budget, dataset, eval_data, calibration,
                  progress) -> None:
    import json
    import sys

    from converters import pipeline
    from converters.parity import load_float_model, run_parity
    from edge_sdk.fileio import atomic_write_text

    say = (lambda text: print(text, file=sys.stderr)) if progress else (lambda text: None)
    reference = result.artifacts[0]
    if reference.keras_model is None:
        raise GateError("the gate needs the run's float model, but the first artifact has none")
    target_name = (result.comparisons.get("quantize") or {}).get("artifact")
    target = result.get(target_name) if target_name else None
    if target is None:
        tflites = [a for a in result.artifacts if a.file.endswith(".tflite")]
        target = tflites[-1]
    data = pipeline.load_data(reference.keras_model, dataset=dataset, eval_data=eval_data,
                              calibration=calibration)
    if data.eval_x is None:
        raise GateError("the gate needs eval data: expected --dataset NAME or --eval FILE.npz")

    if accuracy_budget is not None and target.kind == "int8":
        target = _autotune_artifact(result, target, data, accuracy_budget, progress, say) or target

    if max_drop is None and min_agreement is None:
        result.comparisons.pop("autotune_report", None)
        return
    say(f"gate: comparing {target.file} with the input float model on {data.eval_source or 'the eval data'}")
    fm = load_float_model(reference.keras_model)
    eval_arrays = dict(data.eval_x)
    if data.eval_y is not None:
        eval_arrays["y"] = data.eval_y
    parity = run_parity(fm, result.staging / target.file, eval_arrays, progress=False)
    s = parity["summary"]
    gate = evaluate_gate(s["float_accuracy"], s["quantized_accuracy"], s["top1_agreement"],
                         max_drop=max_drop, min_agreement=min_agreement, subject=target.file)
    from converters.report import build_report, write_html_report

    report = build_report(parity, gate.to_dict(), result.comparisons.get("autotune_report"))
    atomic_write_text(result.staging / "parity.json", json.dumps(report, indent=2, default=str) + "\n")
    write_html_report(result.staging / "parity.html", report)
    result.comparisons.pop("autotune_report", None)
    result.comparisons["gate"] = gate.to_dict()
    if gate.status == "error":
        raise GateError(gate.verdict)
    if not gate.passed:
        raise GateFailedError(gate.verdict + " (nothing promoted)", {"parity": parity, "gate": gate.to_dict()})


def _autotune_artifact(result: Any, target: Any, data: Any, budget: float, progress: bool, say) -> Any:
    import json

    from converters.autotune import autotune
    from converters.parity import load_float_model
    from edge_sdk.fileio import atomic_write_bytes, atomic_write_text
    from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest

    parent = next((a for a in result.artifacts if a.sha256 == target.parent and a.keras_model is not None), None)
    if parent is None:
        raise GateError(f"--accuracy-budget: cannot find the float model {target.file} was quantized from")
    if data.eval_y is None:
        raise GateError("--accuracy-budget needs labelled eval data (--dataset or --eval with 'y')")
    fm = load_float_model(parent.keras_model)
    calibration = data.calibration_x or data.train_x or data.eval_x
    say(f"auto-tune: {target.file} against {parent.name} with an accuracy budget of {budget:g} points")
    tuned = autotune(fm, {k: v[:300] for k, v in calibration.items()}, data.eval_x, data.eval_y,
                     budget_points=budget, progress=progress)
    report = tuned.to_dict()
    atomic_write_text(result.staging / "autotune.json", json.dumps(report, indent=2, default=str) + "\n")
    result.comparisons["autotune"] = {"budget_points": budget, "met": tuned.met, "chosen": report["chosen"],
                                      "message": tuned.message}
    result.comparisons["autotune_report"] = report  # for the HTML report; removed before the summary
    say(f"auto-tune: {tuned.message}")
    if not tuned.met:
        raise GateFailedError(f"FAIL: auto-tune: {tuned.message} (nothing promoted)", {"autotune": report})
    if not tuned.chosen.float_layers:
        return None  # full int8 already within budget: ship the pipeline's artifact
    variant = tuned.chosen
    import edge_sdk

    model = edge_sdk.load(variant.tflite)
    name = f"{target.name}-autotuned"
    file = f"{name}.tflite"
    atomic_write_bytes(result.staging / file, variant.tflite)
    metrics = {"accuracy": round(variant.accuracy, 6), "latency_us": round(variant.latency_us, 1),
               "accuracy_drop_points": round(variant.drop_points, 3), "float_layers": len(variant.float_layers)}
    manifest = build_manifest(
        variant.tflite, file, kind="int8", stage="autotune", inputs=model.inputs, outputs=model.outputs,
        labels=target.manifest.get("labels"), preprocessing=target.manifest.get("preprocessing"),
        parent_sha256=parent.sha256, recipe=dict(target.manifest.get("recipe") or {},
                                                 autotune={"accuracy_budget_points": budget,
                                                           "float_layers": variant.float_layers}),
        metrics=metrics,
    )
    write_manifest(manifest, manifest_path_for(result.staging / file))
    from converters.pipeline import Artifact

    artifact = Artifact(name, file, "int8", "autotune", manifest["sha256"], manifest["size_bytes"],
                        manifest["gzip_size_bytes"], parent.sha256, metrics, manifest)
    result.artifacts.append(artifact)
    return artifact
