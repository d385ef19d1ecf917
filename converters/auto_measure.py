"""Measuring the ``auto`` stage's candidates side by side: the eval set, accuracy and error statistics against
float32 (or task metrics), and one interleaved latency benchmark of all candidates, locally or on a device.

:class:`Candidate` (one candidate: how it was built or why not, and what was measured) lives here too; building
them is :mod:`converters.auto_candidates`, choosing and reporting :mod:`converters.auto`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from converters.context import RunContext
from converters.errors import DataError, NonFiniteOutputError, first_line
from converters.recipe import AutoOptions

BENCH_ROWS = 64  # real eval rows the benchmark cycles through


# ------------------------------------------------------------------------------------------------
# a candidate and its measurements
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Candidate:
    """One candidate model: how it was built (or why not) and what was measured."""

    name: str
    status: str = "ok"  # ok | failed | skipped
    reason: str = ""  # why it failed or was skipped
    kind: str = ""
    tflite: bytes = dataclasses.field(default=b"", repr=False)
    notes: list[str] = dataclasses.field(default_factory=list)
    artifact: Any = None
    measured: dict[str, Any] = dataclasses.field(default_factory=dict)

    def fail(self, reason: str, status: str = "failed") -> Candidate:
        """Mark the candidate failed (or skipped) with ``reason``; returns it."""
        self.status, self.reason, self.tflite = status, reason, b""
        return self


# ------------------------------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class EvalSet:
    """The rows every candidate runs on, their labels (or None) and the float32 reference's outputs."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str
    reference: np.ndarray | None = None
    reference_accuracy: float | None = None
    task: Any = None  # edge_sdk.tasks.Task of the model (None: judged as before, by argmax or relative error)
    budgets: dict[str, float] = dataclasses.field(default_factory=dict)  # [task] budgets
    reference_all: dict[str, np.ndarray] | None = None  # every output of float32
    head: str = "auto"
    score_threshold: float = 0.25

    @property
    def judged_by_task(self) -> bool:
        """True when the task has its own budget (not classification: accuracy points stay for that)."""
        from edge_sdk.tasks import BUDGETS

        return self.task is not None and self.task in BUDGETS


def _eval_set(ctx: RunContext, options: AutoOptions) -> EvalSet:
    n = options.eval_samples
    data = ctx.data
    if data.eval_x is not None:
        labels = None if data.eval_y is None else np.asarray(data.eval_y)[:n]
        return EvalSet({k: v[:n] for k, v in data.eval_x.items()}, labels, data.eval_source or "the eval data")
    x, source = (
        (data.calibration_x, data.calibration_source or "the calibration data")
        if data.calibration_x is not None
        else (data.train_x, "the training data")
    )
    if x is None:
        raise DataError("auto: expected eval, calibration or training data to compare the candidates on, got none")
    return EvalSet({k: v[:n] for k, v in x.items()}, None, f"{source} (no labels: agreement with float32)")


def quality(
    output: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray | None,
    reference_accuracy: float | None,
    classifier: bool = True,
) -> dict[str, Any]:
    """Accuracy, top-1 agreement and error statistics of ``output`` against the float32 ``reference``.

    ``drop_points`` (what the budget is checked on) is the accuracy lost in points when
    there are labels, else the top-1 disagreement with float32 in points, else (an output
    that is not class scores) the relative L2 error in percent; ``budget_metric`` says which.
    ``classifier=False`` (a task that is not classification): no argmax, no agreement.
    """
    from edge_sdk.metrics import accuracy
    from edge_sdk.reference import class_predictions, error_metrics

    out: dict[str, Any] = {}
    errors = error_metrics(np.asarray(reference, dtype=np.float64), np.asarray(output, dtype=np.float64))
    out["max_abs_error"] = float(errors["max_abs_error"])
    out["mean_abs_error"] = float(errors["mean_abs_error"])
    out["relative_error"] = float(errors["relative_error"])
    ours, theirs = (class_predictions(output), class_predictions(reference)) if classifier else (None, None)
    out["agreement"] = None if ours is None or theirs is None else float(np.mean(ours == theirs))
    out["accuracy"] = accuracy(output, labels, "eval labels") if labels is not None else None
    if out["accuracy"] is not None and reference_accuracy is not None:
        out["drop_points"] = 100.0 * (reference_accuracy - out["accuracy"])
        out["budget_metric"] = "accuracy points lost against float32"
    elif out["agreement"] is not None:
        out["drop_points"] = 100.0 * (1.0 - out["agreement"])
        out["budget_metric"] = "top-1 disagreement with float32, in points"
    else:
        out["drop_points"] = 100.0 * out["relative_error"]
        out["budget_metric"] = "relative L2 error against float32, in percent"
    return out


def task_quality(outputs: Mapping[str, np.ndarray], evalset: EvalSet) -> dict[str, Any]:
    """The task's figures and budget verdict of a candidate's ``outputs`` against float32's (``evalset``).

    Adds ``task_metrics``, ``wipeouts``, ``budget_ok`` (None: judged by ``drop_points`` as before),
    ``budget_why`` and ``budget_text``. A wiped-out output is never within budget, whatever the task.
    """
    from edge_sdk.tasks import BUDGETS, budget_checks, budget_text, find_wipeouts, task_metrics

    ref = evalset.reference_all or {}
    names = list(ref)
    mine = list(outputs)
    pairs = [(f, f if f in outputs else mine[i]) for i, f in enumerate(names) if f in outputs or i < len(mine)]
    out: dict[str, Any] = {"budget_ok": None}
    wiped = find_wipeouts(ref, outputs, pairs) if pairs else []
    if wiped:
        out["wipeouts"] = [w["what"] for w in wiped]
    if evalset.judged_by_task and pairs:
        tm = task_metrics(
            evalset.task,
            ref,
            outputs,
            pairs,
            inputs=evalset.inputs,
            labels=evalset.labels,
            head=evalset.head,
            score_threshold=evalset.score_threshold,
        )
        out["task_metrics"] = tm.to_dict()
        check = budget_checks(tm, evalset.budgets)[0]
        name, metric, _ = BUDGETS[evalset.task]
        out["budget_ok"] = bool(check["passed"])
        out["budget_text"] = budget_text(evalset.task, evalset.budgets)
        op = ">=" if check["passed"] else "<"
        out["budget_why"] = (
            f"{metric} not measurable: {check['reason']}"
            if check["value"] is None
            else f"{metric} {check['value']:.6g} {op} {check['threshold']:g}"
        )
        out["budget_value"] = check["value"]
    if wiped:
        out["budget_ok"] = False
        out["budget_why"] = "wipes out " + "; ".join(out["wipeouts"])
        out.setdefault("budget_text", "no wiped-out output")
    return out


def _outputs_all(tflite: bytes, inputs: Mapping[str, np.ndarray], name: str, on: str) -> dict[str, np.ndarray]:
    from converters.evaluation import check_finite, tflite_outputs

    outputs = tflite_outputs(tflite, inputs)
    check_finite(outputs, f"candidate {name}", on)
    return outputs


def _outputs(tflite: bytes, inputs: Mapping[str, np.ndarray], name: str, on: str) -> np.ndarray:
    from converters.evaluation import primary

    return np.asarray(primary(_outputs_all(tflite, inputs, name, on)))


def _measure_quality(candidate: Candidate, evalset: EvalSet) -> None:
    from converters.evaluation import primary

    try:
        outputs = _outputs_all(candidate.tflite, evalset.inputs, candidate.name, evalset.source)
        output = np.asarray(primary(outputs))
        labels = evalset.labels if not evalset.judged_by_task else None
        assert evalset.reference is not None  # float32's outputs, set before any candidate runs
        candidate.measured.update(
            quality(
                output, evalset.reference, labels, evalset.reference_accuracy, classifier=not evalset.judged_by_task
            )
        )
        candidate.measured.update(task_quality(outputs, evalset))
        if evalset.judged_by_task:  # its own budget decides; "points" would be a relative error in disguise
            candidate.measured["drop_points"] = None
    except NonFiniteOutputError as exc:
        candidate.fail(f"non-finite outputs: {first_line(exc, 200)}")
    except Exception as exc:  # noqa: BLE001 - one broken candidate must not stop the others
        candidate.fail(f"could not run on {evalset.source}: {first_line(exc, 200)}")


def _is_latency(value: object) -> TypeGuard[int | float]:
    """A positive finite number of microseconds (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def _bench_inputs(float32_tflite: bytes, inputs: Mapping[str, np.ndarray], rows: int, folder: Path) -> Path:
    """Real rows as an .npz named by the model's inputs, for the benchmark to cycle through."""
    import edge_sdk

    names = [s.name for s in edge_sdk.load(float32_tflite, verify=False).inputs]
    arrays = dict(inputs) if set(inputs) == set(names) else dict(zip(names, inputs.values(), strict=False))
    path = folder / "bench-inputs.npz"
    # numpy's stub lets **kwds fill allow_pickle (bool); these keys are input names, never that.
    np.savez(path, **{k: np.asarray(v[:rows]) for k, v in arrays.items()})  # type: ignore[arg-type]
    return path


def measure_latency(
    paths: Sequence[Path], inputs_npz: Path | None, options: AutoOptions, progress: bool
) -> dict[str, Any]:
    """One interleaved benchmark of every path (locally or on ``options.target``); the results document."""
    from edge_sdk.bench import BenchOptions, run_benchmark

    bench_options = BenchOptions(
        duration=options.bench_seconds,
        threads=(options.threads,),
        batch=options.batch,
        input_path=str(inputs_npz) if inputs_npz else None,
        progress=progress,
        keep_samples=False,
    )
    if options.target == "local":
        return run_benchmark([str(p) for p in paths], bench_options)
    from edge_sdk.remote import run_remote_benchmark

    return run_remote_benchmark(
        paths,
        options.target,
        bench_options,
        remote_command=options.remote_command,
        ssh_config=options.ssh_config or None,
    )
