"""The task of a convert run, and the wipe-out check every quantized artifact passes.

* :func:`determine_task` (the load stage, before any conversion): the recipe's ``[task] task``
  (``--task``), else :func:`edge_sdk.tasks.infer_task` on the float model's outputs for a few
  rows of the run's data; recorded as ``ctx.task`` and in every manifest (``task``).
* :func:`check_wipeouts` (after the stages, before promotion): each artifact of the
  ``quantize`` stage is run beside the float32 .tflite it came from; an output (or a channel
  group of it, e.g. a YOLO head's class rows) that collapsed to a constant or lost most of
  its range fails the run (:class:`converters.gate.GateFailedError`, exit 1, nothing
  promoted), naming the output and the remedies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from converters.context import Comparison, RunContext

INFER_ROWS = 64
#: manifest kinds whose activations stay float: a wipe-out there comes from the weights
WEIGHT_ONLY_KINDS = frozenset({"weight-only-int4", "weight-only-int8", "dynamic-range", "float16"})
CHECK_ROWS = 500


@dataclasses.dataclass
class TaskComparison(Comparison):
    """summary.json's ``comparisons["task"]``: the task the input model does, why, and each quantized file's
    task figures against its float32."""

    key: ClassVar[str] = "task"
    line_order: ClassVar[int] = 0
    task: str = ""
    why: str = ""
    quantized: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, "why": self.why}
        if self.quantized:
            out["quantized"] = self.quantized
        return out

    def lines(self) -> list[str]:
        lines = [f"task: {self.task} ({self.why})"]
        for file, figures in self.quantized.items():
            shown = ", ".join(
                f"{k.replace('_', ' ')} {v:.4g}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}"
                for k, v in figures.items()
            )
            lines.append(f"  {file} vs its float32: {shown}")
        return lines


def determine_task(ctx: RunContext) -> None:
    """Set ``ctx.task`` / ``ctx.task_why`` from the recipe or the float model's outputs (see module docs)."""
    from converters.evaluation import tflite_outputs
    from edge_sdk.tasks import infer_task, parse_task

    declared = parse_task(ctx.recipe.task.task)
    sample, _ = ctx.check_data()
    if sample is None:
        ctx.task, ctx.task_why = declared, "declared (--task)" if declared else "no data to infer it from"
        return
    rows = {k: np.asarray(v)[:INFER_ROWS] for k, v in sample.items()}
    outputs = _float_outputs(ctx.model, rows, tflite_outputs)
    if declared is not None:
        from edge_sdk.tasks import task_metrics

        # the float model against itself: a task its outputs cannot have (a detection head, a reconstruction,
        # a per-pixel map the model does not give) is refused now, not after the conversion
        pairs = [(name, name) for name in outputs]
        task_metrics(
            declared,
            outputs,
            outputs,
            pairs,
            inputs=rows,
            head=ctx.recipe.task.detection_head,
            score_threshold=ctx.recipe.task.score_threshold,
        )
        ctx.task, ctx.task_why = declared, "declared (--task)"
        return
    ctx.task, ctx.task_why = infer_task(rows, outputs)


def _float_outputs(model: Any, rows: Mapping[str, np.ndarray], tflite_outputs: Any) -> dict[str, np.ndarray]:
    from converters.model_files import KIND_TFLITE

    if model.kind == KIND_TFLITE:
        return tflite_outputs(model.tflite_bytes, rows)
    from converters.parity import load_float_model

    return load_float_model(model).predict_all(rows)


def wipeouts_of(ctx: RunContext, artifact: Any, parent: Any) -> list[dict[str, Any]]:
    """Outputs of ``artifact`` quantization collapsed, against its float32 ``parent`` (both in staging).

    Also records the task's figures of ``artifact`` against ``parent`` (:class:`TaskComparison`'s
    ``quantized[file]`` and the artifact manifest's ``metrics.task``) when the task is known.
    """
    from converters.evaluation import tflite_outputs
    from edge_sdk.manifest import manifest_path_for, write_manifest
    from edge_sdk.tasks import find_wipeouts, task_metrics

    sample, on = ctx.check_data()
    if sample is None:
        return []
    rows = {k: np.asarray(v)[:CHECK_ROWS] for k, v in sample.items()}
    f = tflite_outputs((ctx.staging / parent.file).read_bytes(), rows)
    q = tflite_outputs((ctx.staging / artifact.file).read_bytes(), rows)
    pairs = [(name, name) for name in f if name in q]
    if ctx.task is not None and pairs:
        labels = None
        if ctx.data.eval_x is not None and ctx.data.eval_y is not None and on.startswith("the eval data"):
            labels = np.asarray(ctx.data.eval_y)[:CHECK_ROWS]
        try:
            figures = task_metrics(
                ctx.task,
                f,
                q,
                pairs,
                inputs=rows,
                labels=labels,
                head=ctx.recipe.task.detection_head,
                score_threshold=ctx.recipe.task.score_threshold,
            )
        except Exception as exc:  # noqa: BLE001 - labels the task cannot read: the figures without them
            figures = task_metrics(
                ctx.task,
                f,
                q,
                pairs,
                inputs=rows,
                head=ctx.recipe.task.detection_head,
                score_threshold=ctx.recipe.task.score_threshold,
            )
            figures.notes.append(f"labels not used: {exc}")
        record = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in figures.metrics.items()}
        record.update(
            {f"{k} (labels)": (round(v, 6) if isinstance(v, float) else v) for k, v in figures.labels.items()}
        )
        ctx.recorded(TaskComparison).quantized[artifact.file] = record
        artifact.metrics["task"] = record
        artifact.manifest["metrics"] = artifact.metrics
        write_manifest(artifact.manifest, manifest_path_for(ctx.staging / artifact.file))
    return find_wipeouts(f, q, pairs)


def check_wipeouts(ctx: RunContext) -> None:
    """Fail the run when a ``quantize``-stage artifact wiped out an output (see module docs)."""
    from converters.gate import GateFailedError
    from edge_sdk.tasks import wipeout_message

    by_sha = {a.sha256: a for a in ctx.artifacts}
    problems = []
    wiped: dict[str, list[dict[str, Any]]] = {}
    for artifact in ctx.artifacts:
        parent = by_sha.get(artifact.parent) if artifact.parent else None
        if (
            artifact.stage != "quantize"
            or not artifact.file.endswith(".tflite")
            or parent is None
            or parent.kind != "float32"
            or not parent.file.endswith(".tflite")
        ):
            continue
        found = wipeouts_of(ctx, artifact, parent)
        if found and artifact.kind in WEIGHT_ONLY_KINDS:  # float activations: the weights lost it
            problems.append(
                f"{artifact.file}: quantization wiped out "
                + "; ".join(w["what"] for w in found)
                + f" ({artifact.kind}: only the weights are quantized, the activations stay float); "
                "remedy: more weight bits (--scheme weight-only-int8, dynamic or fp16), or keep the "
                "layers before that output float (--keep-float REGEX)"
            )
            wiped[artifact.file] = found
        elif found:
            problems.append(wipeout_message(found, artifact.file))
            wiped[artifact.file] = found
    if problems:
        raise GateFailedError("FAIL: " + " | ".join(problems) + " (nothing promoted)", {"wipeouts": wiped})
