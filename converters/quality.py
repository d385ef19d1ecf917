"""Quality checks: parity -> gate -> auto-tune -> tuned-model manifest, for ``convert`` and ``parity``.

Both commands measure the same things and decide the same way; this module is the one
place that does it:

* :func:`parity_check` is ``edge-sdk parity FLOAT QUANTIZED --data ...``: compare the two
  models (:func:`converters.parity.run_parity`), apply the thresholds
  (:func:`converters.gate.evaluate_gate`), optionally auto-tune
  (:func:`converters.autotune.autotune`) and write the chosen model;
* :func:`convert_hooks` gives ``edge-sdk convert`` the same checks as ``before_promote``
  hooks of :func:`converters.pipeline.run`: auto-tune the int8 artifact when it loses
  more than the budget, then gate the model that would ship against the input float model;
* :func:`write_tuned_model` is the one writer of an auto-tuned model and its manifest.

Thresholds and verdicts themselves are plain numbers in :mod:`converters.gate`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from converters.gate import GateError, GateFailedError, GateResult, evaluate_gate, validate_thresholds, with_task_checks
from edge_sdk.errors import EdgeSdkError


# ------------------------------------------------------------------------------------------------
# the tuned model
# ------------------------------------------------------------------------------------------------
def write_tuned_model(
    path: Any, tuned: Any, *, parent_sha256: str | None, base_manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write the auto-tuner's model (the chosen variant, else the best trade-off) and its manifest.

    ``path``: the .tflite to write (the manifest goes beside it); ``tuned``: an
    :class:`converters.autotune.AutotuneResult`; ``parent_sha256``: the float model it
    was tuned from; ``base_manifest``: the manifest of the artifact it replaces, whose
    labels, preprocessing and recipe carry over. Returns the manifest.
    """
    import edge_sdk
    from edge_sdk.fileio import atomic_write_bytes
    from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest

    base = base_manifest or {}
    variant = tuned.chosen or tuned.best_tradeoff
    model = edge_sdk.load(variant.tflite)
    atomic_write_bytes(path, variant.tflite)
    metrics = {
        "accuracy": round(variant.accuracy, 6),
        "float_accuracy": round(tuned.float_accuracy, 6),
        "accuracy_drop_points": round(variant.drop_points, 3),
        "latency_us": round(variant.latency_us, 1),
        "float_layers": len(variant.float_layers),
    }
    if getattr(tuned, "metric", None):  # judged by a task's own metric (edge_sdk.tasks), not accuracy
        metrics = {
            tuned.metric: round(variant.accuracy, 6),
            "budget": tuned.budget_points,
            "latency_us": round(variant.latency_us, 1),
            "float_layers": len(variant.float_layers),
        }
    manifest = build_manifest(
        variant.tflite,
        Path(path).name,
        kind="int8",
        stage="autotune",
        inputs=model.inputs,
        outputs=model.outputs,
        labels=base.get("labels"),
        preprocessing=base.get("preprocessing"),
        parent_sha256=parent_sha256,
        recipe=dict(
            base.get("recipe") or {},
            autotune={"accuracy_budget_points": tuned.budget_points, "float_layers": variant.float_layers},
        ),
        metrics=metrics,
        # the training statistics (beside it in the same run) and any allowed data finding carry over
        **{k: base[k] for k in ("data_stats", "data_check") if k in base},
    )
    write_manifest(manifest, manifest_path_for(path))
    return manifest


# ------------------------------------------------------------------------------------------------
# edge-sdk parity
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ParityOutcome:
    """What :func:`parity_check` measured and decided."""

    result: dict[str, Any]  # converters.parity.run_parity's result
    gate: GateResult
    tuned: dict[str, Any] | None  # AutotuneResult.to_dict(), plus "written" when a model was written
    report: dict[str, Any]  # the JSON/HTML report
    slice_gate: dict[str, Any] | None = None  # edge_sdk.slices.slice_gate, with --slice-by

    @property
    def exit_code(self) -> int:
        """0 pass (or no gate), 1 the gate failed or no mix met the budget, 2 the gate could not run."""
        code = self.gate.exit_code
        if self.tuned is not None and not self.tuned["met"] and code == 0:
            code = 1
        if self.slice_gate is not None and self.slice_gate["exit_code"] and code != 2:
            code = max(code, self.slice_gate["exit_code"])
        return code

    @property
    def verdict(self) -> str:
        """One line: the gate's verdict, and the auto-tuner's when it ran."""
        verdict = self.gate.verdict
        if self.gate.status == "none" and self.slice_gate is not None and self.slice_gate["status"] != "none":
            verdict = self.slice_gate["verdict"]  # the only gate asked for
        elif self.slice_gate is not None and self.slice_gate["status"] != "none":
            verdict += f" | {self.slice_gate['verdict']}"
        if self.tuned is not None:
            verdict += f" | auto-tune: {self.tuned['message']}"
        return verdict


def parity_check(
    float_path: str,
    quant_path: str,
    data: str,
    *,
    labels: str | None = None,
    samples: int | None = None,
    worst: int = 10,
    layers: bool = True,
    calibration: str | None = None,
    max_drop: float | None = None,
    min_agreement: float | None = None,
    accuracy_budget: float | None = None,
    autotune_out: str | None = None,
    num_threads: int | None = None,
    progress: bool = True,
    slice_by: Any = (),
    max_slice_drop: float | None = None,
    min_slice_count: int | None = None,
    train_stats: str | None = None,
    allow_drift: bool = False,
    task: Any = None,
    budgets: dict[str, float | None] | None = None,
    head: str = "auto",
    score_threshold: float = 0.25,
) -> ParityOutcome:
    """Compare ``float_path`` with ``quant_path`` on ``data``, gate the result, auto-tune when asked.

    ``labels``: .npy of class ids replacing the data's ``y``; ``samples``: use the first N
    examples; ``worst``: how many worst examples to list; ``layers``: run the per-layer
    debugger; ``calibration``: data for it and the auto-tuner (default: a dataset name's
    train split, else the eval data); ``max_drop``/``min_agreement``/``accuracy_budget``:
    thresholds (see :mod:`converters.gate`); ``autotune_out``: where to write the tuned
    model; ``num_threads``: interpreter threads; ``progress``: lines on stderr;
    ``slice_by``/``max_slice_drop``/``min_slice_count``: sliced evaluation and its gate
    (:mod:`edge_sdk.slices`); ``train_stats``/``allow_drift``: the training statistics the data is
    checked against first (default: those the float model's manifest points to) and whether anomalies
    are only reported (:mod:`converters.datacheck`); ``task``: the model's task (None: the manifest's,
    else inferred); ``budgets``: the task budgets to gate on (``{"min_iou": 0.9, ...}``, None values
    unchecked); ``head``/``score_threshold``: detection decoding. A wiped-out output fails the gate
    whatever the thresholds.
    """
    from converters.autotune import autotune
    from converters.html_report import build_report
    from converters.parity import load_eval_data, load_float_model, run_parity

    validate_thresholds(max_drop, min_agreement)
    slice_by = _check_slicing(slice_by, max_slice_drop, min_slice_count)
    if max_slice_drop is not None and not _data_has_labels(data, labels):
        from edge_sdk.slices import SliceError

        raise SliceError(_needs_labels("--max-slice-drop gates accuracy per slice", data))
    if max_drop is not None and not _data_has_labels(data, labels):
        # refused before any model loads, as --max-slice-drop: the gate could only say "could not run" at the end
        raise GateError(_needs_labels("--max-drop gates the accuracy drop", data))
    if autotune_out and accuracy_budget is None:
        raise EdgeSdkError("--autotune-out needs --accuracy-budget POINTS")
    if calibration is None and not Path(data).suffix and not Path(data).exists():
        calibration = data  # a dataset name: calibrate on its train split
    fm = load_float_model(float_path)
    if accuracy_budget is not None:
        fm.require_tensorflow_model("--accuracy-budget (the auto-tuner)")
    drift = _check_data_first(float_path, fm, data, labels, samples, train_stats, allow_drift)
    result = run_parity(
        fm,
        quant_path,
        data,
        labels=labels,
        limit=samples,
        worst=worst,
        layers=layers,
        calibration=calibration,
        num_threads=num_threads,
        progress=progress,
        task=task,
        head=head,
        score_threshold=score_threshold,
        **({"slice_by": slice_by, "min_slice_count": min_slice_count} if slice_by else {}),
    )
    s = result["summary"]
    gate = evaluate_gate(
        s["float_accuracy"],
        s["quantized_accuracy"],
        s["top1_agreement"],
        max_drop=max_drop,
        min_agreement=min_agreement,
        subject=Path(quant_path).name,
    )
    gate = with_task_checks(gate, result, budgets or {}, subject=Path(quant_path).name)
    tuned = None
    if accuracy_budget is not None:
        ev = load_eval_data(data, fm.inputs, labels=labels, limit=samples)
        cal = ev.inputs if calibration is None else load_eval_data(calibration, fm.inputs, split="train").inputs
        cal = {k: v[:200] for k, v in cal.items()}
        task = result["task"]["name"]  # classification keeps the accuracy budget; other tasks their own
        tuned_result = autotune(
            fm,
            cal,
            ev.inputs,
            ev.labels,
            budget_points=accuracy_budget,
            float_accuracy=s["float_accuracy"],
            progress=progress,
            task=task,
            budgets=_task_budgets(budgets),
            head=head,
            score_threshold=score_threshold,
        )
        tuned = tuned_result.to_dict()
        if autotune_out:
            write_tuned_model(autotune_out, tuned_result, parent_sha256=next(iter(fm.sha256s()), None))
            tuned["written"] = str(autotune_out)
    report = build_report(result, gate.to_dict(), tuned)
    if drift is not None:
        result["data_drift"] = report["data_drift"] = drift  # the drift table and chart (converters.html_report)
    slices = None
    if slice_by:
        from edge_sdk.slices import slice_gate

        slices = slice_gate(result.get("slices"), max_slice_drop)
        report["slice_gate"] = slices
    return ParityOutcome(result, gate, tuned, report, slices)


def _needs_labels(what: str, data: Any) -> str:
    shown = data if isinstance(data, (str, Path)) else "arrays"
    return f"{what}: expected labels (--labels FILE.npy, or 'y' in a .npz), got none in --data {shown}"


def _data_has_labels(data: Any, labels: Any = None) -> bool:
    """Whether ``data`` (as :func:`load_eval_data` takes it) comes with labels, known without loading any model.

    ``labels`` given: yes; a .npy or a bare array: no; a .npz or a dict: when it has ``y``; a dataset name:
    yes (its split has labels). A file that cannot be read counts as labelled: reading it says what is wrong.
    """
    import numpy as np

    if labels is not None:
        return True
    if isinstance(data, np.ndarray):
        return False
    if isinstance(data, Mapping):
        return "y" in data
    path = Path(str(data))
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return False
    if suffix == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as loaded:
                return "y" in loaded.files
        except Exception:  # noqa: BLE001 - numpy raises several types for bad files; load_eval_data names the file
            return True
    return True


def _check_slicing(slice_by: Any, max_slice_drop: float | None, min_slice_count: int | None) -> list[str]:
    """``--slice-by`` specs parsed and ``--max-slice-drop`` checked before any model is loaded."""
    from edge_sdk.slices import SliceError, check_max_slice_drop, parse_slice_spec

    specs = [slice_by] if isinstance(slice_by, str) else list(slice_by or ())
    for spec in specs:
        parse_slice_spec(spec)
    check_max_slice_drop(max_slice_drop)
    if max_slice_drop is not None and not specs:
        raise SliceError("--max-slice-drop gates the worst slice: expected --slice-by FEATURE (or class), got none")
    if min_slice_count is not None and min_slice_count < 1:
        raise SliceError(f"--min-slice-count: expected at least 1, got {min_slice_count}")
    return specs


def _check_data_first(
    float_path: str,
    fm: Any,
    data: str,
    labels: str | None,
    samples: int | None,
    train_stats: str | None,
    allow_drift: bool,
) -> dict[str, Any] | None:
    """The parity data against the training statistics, before any model runs (None: no statistics)."""
    from converters.datacheck import check_parity, load_stats, stats_beside_model
    from converters.parity import load_eval_data

    if not train_stats and stats_beside_model(float_path) is None:
        return None
    if train_stats:
        load_stats(train_stats)  # a bad file is named before the data is read
    ev = load_eval_data(data, fm.inputs, labels=labels, limit=samples)
    return check_parity(float_path, ev.inputs, ev.source, train_stats=train_stats, allow_drift=allow_drift)


def _task_budgets(given: dict[str, float | None] | None) -> dict[str, float]:
    """The [task] budgets (recipe defaults) with the ones given on the command line applied."""
    from converters.recipe import TaskOptions

    out = TaskOptions().budgets()
    out.update({k: v for k, v in (given or {}).items() if v is not None})
    return out


# ------------------------------------------------------------------------------------------------
# edge-sdk convert
# ------------------------------------------------------------------------------------------------
def convert_hooks(
    *,
    max_drop: float | None = None,
    min_agreement: float | None = None,
    accuracy_budget: float | None = None,
    dataset: Any = None,
    eval_data: str | None = None,
    calibration: str | None = None,
    progress: bool = True,
    budgets: dict[str, float | None] | None = None,
) -> list[Callable[[Any], None]]:
    """``before_promote`` hooks for ``converters.pipeline.run`` (``edge-sdk convert``).

    * ``accuracy_budget``: when the int8 artifact loses more than the budget
      against the float model it was quantized from, :func:`converters.autotune.autotune`
      writes ``<artifact>-autotuned.tflite`` (and its manifest) into the run; a
      budget no mix meets fails the run (the best trade-off is named).
    * ``max_drop`` / ``min_agreement``: the model that would ship (the auto-tuned one
      if any, else the final quantized artifact) is compared with the *input* float
      model on the eval data; a failing gate stops promotion (``--out`` is left as it was).
    * ``budgets``: task budgets given on the command line (``{"min_iou": 0.95}``; see
      :data:`edge_sdk.tasks.BUDGETS`): the shipped model is compared with the input float model
      on the eval data (labels optional) and judged by the run's task (``ctx.task``).
    * ``dataset`` / ``eval_data`` / ``calibration``: the run's data, as given to convert;
      ``progress``: lines on stderr.

    The reports go into the run as ``parity.json``, ``parity.html`` and
    ``autotune.json``; the verdict goes into the summary's ``comparisons["gate"]``.
    Failures raise :class:`converters.gate.GateFailedError`.
    """
    validate_thresholds(max_drop, min_agreement, accuracy_budget)
    budgets = {k: v for k, v in (budgets or {}).items() if v is not None}
    if max_drop is None and min_agreement is None and accuracy_budget is None and not budgets:
        return []
    if (max_drop is not None or accuracy_budget is not None) and dataset is None and eval_data is None:
        raise GateError(
            "--max-drop and --accuracy-budget measure accuracy: expected --dataset NAME or "
            "--eval FILE.npz with labels, got neither"
        )
    if budgets and dataset is None and eval_data is None:
        raise GateError(
            f"--{next(iter(budgets)).replace('_', '-')} compares the shipped model with the float model: "
            "expected --dataset NAME or --eval FILE.npz (labels optional), got neither"
        )
    if max_drop is not None and dataset is None and eval_data is not None:
        _require_labels(eval_data)

    def hook(result: Any) -> None:
        _convert_gate(
            result,
            max_drop=max_drop,
            min_agreement=min_agreement,
            accuracy_budget=accuracy_budget,
            dataset=dataset,
            eval_data=eval_data,
            calibration=calibration,
            progress=progress,
            budgets=budgets,
        )

    return [hook]


def _require_labels(eval_data: str) -> None:
    """--max-drop measures accuracy: refuse an --eval without 'y' now, not after the conversion."""
    import numpy as np

    try:
        with np.load(eval_data, allow_pickle=False) as loaded:
            keys = list(getattr(loaded, "files", []))
    except Exception:  # noqa: BLE001 - a bare .npy or an unreadable file: the data loader says what is wrong
        keys = []
    if "y" not in keys:
        raise GateError(
            f"--max-drop measures accuracy against labels: expected labels under key 'y' in --eval "
            f"{eval_data}, got keys {keys or 'none (a bare array)'}; without labels use a task budget "
            "(--min-agreement, --min-iou, --min-snr-db ...)"
        )


def _convert_gate(
    result: Any, *, max_drop, min_agreement, accuracy_budget, dataset, eval_data, calibration, progress, budgets=None
) -> None:
    from converters.context import load_data
    from converters.html_report import build_report, write_html_report
    from converters.parity import load_float_model, run_parity
    from edge_sdk.fileio import atomic_write_text

    say = (lambda text: print(text, file=sys.stderr)) if progress else (lambda text: None)
    input_float32 = result.artifacts[0]  # the input model's float32 artifact: its float model is the baseline
    if input_float32.keras_model is None:
        raise GateError("the gate needs the run's float model, but the first artifact has none")
    target_name = (result.comparisons.get("quantize") or {}).get("artifact")
    target = result.get(target_name) if target_name else None
    if target is None:
        tflites = [a for a in result.artifacts if a.file.endswith(".tflite")]
        target = tflites[-1]
    data = load_data(input_float32.keras_model, dataset=dataset, eval_data=eval_data, calibration=calibration)
    if data.eval_x is None:
        raise GateError("the gate needs eval data: expected --dataset NAME or --eval FILE.npz")

    if accuracy_budget is not None and target.kind == "int8":
        target = _autotune_artifact(result, target, data, accuracy_budget, progress, say, budgets) or target

    if max_drop is None and min_agreement is None and not budgets:
        result.comparisons.pop("autotune_report", None)
        return
    say(f"gate: comparing {target.file} with the input float model on {data.eval_source or 'the eval data'}")
    fm = load_float_model(input_float32.keras_model)
    eval_arrays = dict(data.eval_x)
    if data.eval_y is not None:
        eval_arrays["y"] = data.eval_y
    task = (result.comparisons.get("task") or {}).get("task")
    parity = run_parity(
        fm,
        result.staging / target.file,
        eval_arrays,
        progress=False,
        task=task,
        head=result.recipe.task.detection_head,
        score_threshold=result.recipe.task.score_threshold,
    )
    s = parity["summary"]
    gate = evaluate_gate(
        s["float_accuracy"],
        s["quantized_accuracy"],
        s["top1_agreement"],
        max_drop=max_drop,
        min_agreement=min_agreement,
        subject=target.file,
    )
    gate = with_task_checks(gate, parity, budgets or {}, subject=target.file)
    report = build_report(parity, gate.to_dict(), result.comparisons.get("autotune_report"))
    atomic_write_text(result.staging / "parity.json", json.dumps(report, indent=2, default=str) + "\n")
    write_html_report(result.staging / "parity.html", report)
    result.comparisons.pop("autotune_report", None)
    result.comparisons["gate"] = gate.to_dict()
    if gate.status == "error":  # the CLI says "error: " itself
        raise GateError(gate.verdict.removeprefix("ERROR: ") + " (nothing promoted)")
    if not gate.passed:
        raise GateFailedError(gate.verdict + " (nothing promoted)", {"parity": parity, "gate": gate.to_dict()})


def _autotune_artifact(
    result: Any,
    target: Any,
    data: Any,
    budget: float,
    progress: bool,
    say,
    budgets: dict[str, float | None] | None = None,
) -> Any:
    from converters.autotune import autotune
    from converters.context import Artifact
    from converters.parity import load_float_model
    from edge_sdk.fileio import atomic_write_text

    parent = next((a for a in result.artifacts if a.sha256 == target.parent and a.keras_model is not None), None)
    if parent is None:
        raise GateError(f"--accuracy-budget: cannot find the float model {target.file} was quantized from")
    from edge_sdk.tasks import BUDGETS, parse_task

    task = parse_task((result.comparisons.get("task") or {}).get("task"))
    by_task = task is not None and task in BUDGETS
    if data.eval_y is None and not by_task:
        raise GateError("--accuracy-budget needs labelled eval data (--dataset or --eval with 'y')")
    fm = load_float_model(parent.keras_model)
    fm.require_tensorflow_model("--accuracy-budget (the auto-tuner)")
    calibration = data.calibration_x or data.train_x or data.eval_x
    say(f"auto-tune: {target.file} against {parent.name} with an accuracy budget of {budget:g} points")
    options = result.recipe.task
    tuned = autotune(
        fm,
        {k: v[:300] for k, v in calibration.items()},
        data.eval_x,
        data.eval_y,
        budget_points=budget,
        progress=progress,
        task=task if by_task else None,
        budgets=_task_budgets(budgets),
        head=options.detection_head,
        score_threshold=options.score_threshold,
    )
    report = tuned.to_dict()
    atomic_write_text(result.staging / "autotune.json", json.dumps(report, indent=2, default=str) + "\n")
    result.comparisons["autotune"] = {
        "budget_points": budget,
        "met": tuned.met,
        "chosen": report["chosen"],
        "message": tuned.message,
    }
    result.comparisons["autotune_report"] = report  # for the HTML report; removed before the summary
    say(f"auto-tune: {tuned.message}")
    chosen = tuned.chosen  # met: a variant was chosen
    if not tuned.met or chosen is None:
        raise GateFailedError(f"FAIL: auto-tune: {tuned.message} (nothing promoted)", {"autotune": report})
    if not chosen.float_layers:
        return None  # full int8 already within budget: ship the pipeline's artifact
    name = f"{target.name}-autotuned"
    file = f"{name}.tflite"
    manifest = write_tuned_model(
        result.staging / file, tuned, parent_sha256=parent.sha256, base_manifest=target.manifest
    )
    artifact = Artifact(
        name,
        file,
        "int8",
        "autotune",
        manifest["sha256"],
        manifest["size_bytes"],
        manifest["gzip_size_bytes"],
        parent.sha256,
        manifest["metrics"],
        manifest,
    )
    result.artifacts.append(artifact)
    return artifact
