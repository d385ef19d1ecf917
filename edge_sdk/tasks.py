"""What a model does, and how to judge a quantized copy by it: tasks, per-task metrics, budgets, wipe-outs.

A model's *task* (:class:`Task`) decides which figures say whether its quantized copy
still does the job. Argmax agreement is only meaningful for class scores; a detector
is judged by its decoded boxes, an autoencoder by its anomaly score, a segmenter by
its masks, an embedding model by its neighbourhoods, anything else by signal-to-noise.

* :func:`infer_task` names the task where it is unambiguous (a softmax/sigmoid class
  output; an output shaped like the input: an autoencoder; boxes + scores heads);
  ``--task`` overrides it.
* :func:`task_metrics` computes one task's figures on float vs quantized outputs (and
  against labels when given) and returns a :class:`TaskMetrics` that renders its own
  table rows.
* :data:`BUDGETS` names each task's budget (``min_iou``, ``min_snr_db`` ...) and
  :func:`budget_checks` applies them.
* :func:`find_wipeouts` (:mod:`edge_sdk.wipeouts`) finds outputs (or channel groups, e.g. a YOLO head's class rows)
  whose values collapsed to a constant or lost most of their range after quantizing.

numpy only: the light runtime on a device (``edge-sdk parity --reference``) uses it too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge_sdk.detections import (
    Detections,
    decode_detections,
    match_detections,
    mean_ap,
    nms,
    ssd_pair,
    yolo_layout,
)
from edge_sdk.task_options import (
    BUDGETS,
    DEFAULT_BUDGETS,
    HEAD_FORMATS,
    TASK_CHOICES,
    TASK_OPTION,
    TASK_OPTIONS,
    TASKS,
    Task,
    TaskError,
    TaskOption,
    parse_task,
)
from edge_sdk.wipeouts import WIPEOUT_REMEDY, channel_axis, find_wipeouts, wipeout_message


# ------------------------------------------------------------------------------------------------
# inference
# ------------------------------------------------------------------------------------------------
def _in01(a: np.ndarray) -> bool:
    finite = a[np.isfinite(a)]
    return bool(finite.size) and float(finite.min()) >= -1e-6 and float(finite.max()) <= 1.0 + 1e-6


def infer_task(
    inputs: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    declared: Any = None,
    declared_by: str = "--task",
) -> tuple[Task, str]:
    """(task, why) for a model with ``inputs``/``outputs`` (``{name: array}`` on real data).

    ``declared`` (a name, a :class:`Task`, ``auto`` or None) wins when given; ``why`` then names where it
    came from (``declared_by``: ``--task``, ``the model's manifest`` ...); an inferred task's ``why`` starts
    with ``inferred:``. Rules, in order:
    boxes ``[B, N, 4]`` + scores ``[B, N, C]``: detection (SSD-style); ``[B, K]`` rows summing to 1:
    classification; one output shaped like a float input: autoencoder; ``[B, 4+C, N]`` whose rows 4.. are in [0, 1] and rows 0-3 are not:
    detection (YOLO-style); ``[B, H, W, C]`` as large as an image input: segmentation;
    ``[B, K]`` in [0, 1]: multi-label (K > 1) or
    binary classification (K = 1); anything else: generic (``--task regression`` or
    ``embedding`` to say more).
    """
    task = parse_task(declared)
    if task is not None:
        return task, f"declared by {declared_by}"
    found, why = _infer(inputs, outputs)
    return found, f"inferred: {why}"


def _infer(inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> tuple[Task, str]:
    """:func:`infer_task`'s rules."""
    outs = {k: np.asarray(v) for k, v in outputs.items()}
    ins = {k: np.asarray(v) for k, v in inputs.items()}
    if len(outs) == 2 and ssd_pair(outs) is not None:
        return Task.DETECTION, "an SSD-style pair of outputs: boxes [B, N, 4] and scores [B, N, C]"
    if len(outs) != 1:
        return Task.GENERIC, f"{len(outs)} outputs: no single task rule applies (set --task)"
    out = next(iter(outs.values()))
    if (
        out.ndim == 2
        and out.dtype.kind == "f"
        and out.shape[1] > 1
        and _in01(out)
        and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
    ):  # before the autoencoder rule: 10 features, 10 classes
        return Task.CLASSIFICATION, f"{out.shape[1]} class probabilities summing to 1 (softmax)"
    if (
        any(out.shape[1:] == i.shape[1:] and i.dtype.kind == "f" for i in ins.values())
        and out.ndim >= 2
        and out[0].size > 1
    ):
        return Task.AUTOENCODER, f"the output's shape {list(out.shape[1:])} equals the input's: a reconstruction"
    layout = yolo_layout(out.shape)
    if layout is not None and out.dtype.kind == "f":
        rows = out if layout == "channels_first" else np.swapaxes(out, 1, 2)
        if _in01(rows[:, 4:]) and not _in01(rows[:, :4]):
            return Task.DETECTION, (
                f"one output {list(out.shape[1:])}: 4 box rows then {rows.shape[1] - 4} class "
                "score rows in [0, 1] (YOLO-style)"
            )
    if out.ndim == 4 and out.dtype.kind == "f":
        images = [i for i in ins.values() if i.ndim == 4]
        if images and out.shape[1] >= images[0].shape[1] // 8 and out.shape[1] >= 4:
            return Task.SEGMENTATION, f"a per-pixel map {list(out.shape[1:])} from an image input"
    if out.ndim == 2 and out.dtype.kind == "f":
        if out.shape[1] > 1 and _in01(out) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
            return Task.CLASSIFICATION, f"{out.shape[1]} class probabilities summing to 1 (softmax)"
        if _in01(out):
            if out.shape[1] == 1:
                return Task.CLASSIFICATION, "one sigmoid unit in [0, 1] (binary classification)"
            return Task.MULTILABEL, f"{out.shape[1]} independent scores in [0, 1] (sigmoid: multi-label)"
    return Task.GENERIC, f"output {list(out.shape[1:])} is not class scores (set --task for regression or embedding)"


CLASS_SCORES_TEXT = (
    "expected class scores: [N, classes] or [N, 1, ..., 1, classes] (one position per example), or one unit"
)


def _not_classes_hint(shape: Sequence[int | None]) -> str:
    if len(shape) == 4 and all(d is None or d > 1 for d in shape[1:3]):
        return ": a per-pixel map (--task segmentation judges its masks)"
    return ": several positions per example (--task generic compares them as signals)"


def check_task_outputs(
    task: Task | None, outputs: Sequence[tuple[str, Sequence[int | None]]], declared_by: str = "--task"
) -> None:
    """Refuse a declared ``task`` its primary output cannot have, from the shapes alone (before any model runs).

    ``outputs``: ``[(name, shape)]``, the primary output first. Classification needs class scores
    (:func:`edge_sdk.reference.class_scores`); a ``[N, H, W, C]`` map with H, W > 1 is per-pixel, not one class.
    """
    if task not in (Task.CLASSIFICATION,) or not outputs:
        return
    name, shape = outputs[0]
    if len(shape) > 2 and any(d is not None and d != 1 for d in shape[1:-1]):
        shown = "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
        raise TaskError(
            f"task classification (declared by {declared_by}): {CLASS_SCORES_TEXT}, got output {name!r} "
            f"of shape {shown}" + _not_classes_hint(shape)
        )


# ------------------------------------------------------------------------------------------------
# the result of one task's metrics
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TaskMetrics:
    """One task's figures: ``metrics`` (JSON-ready numbers), rows for the human table, notes."""

    task: Task
    metrics: dict[str, Any]
    labels: dict[str, Any] = dataclasses.field(default_factory=dict)  # figures against labels, when given
    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)  # figures that could not be measured, and why
    per_output: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def rows(self) -> list[list[Any]]:
        """``[metric, value]`` rows (labels' figures after float-vs-quantized ones)."""
        rows: list[list[Any]] = [["task", self.task.value]]
        rows += [[k.replace("_", " "), _round(v)] for k, v in self.metrics.items()]
        rows += [[f"{k.replace('_', ' ')} (labels)", _round(v)] for k, v in self.labels.items()]
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "task": self.task.value,
            "metrics": dict(self.metrics),
            "labels": dict(self.labels),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "per_output": list(self.per_output),
        }


def _round(v: Any) -> Any:
    return round(float(v), 6) if isinstance(v, (float, np.floating)) else v


# ------------------------------------------------------------------------------------------------
# per-task metrics
# ------------------------------------------------------------------------------------------------
def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(signal power / error power) of ``other`` against ``reference`` (inf when equal)."""
    ref = np.asarray(reference, np.float64)
    err = float(np.sum((np.asarray(other, np.float64) - ref) ** 2))
    sig = float(np.sum(ref**2))
    if err == 0.0:
        return float("inf")
    if sig == 0.0:
        return float("-inf")
    return 10.0 * math.log10(sig / err)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays' values (1.0 when both are constant and equal)."""
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return 1.0 if sx == sy and np.allclose(x, y) else 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` for binary ``labels`` (1 = positive/anomaly); None with one class only."""
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # average ranks, ties shared
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def generic_metrics(
    f_out: Mapping[str, np.ndarray], q_out: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]]
) -> TaskMetrics:
    """Per output: SNR in dB, cosine (whole tensor), max and mean absolute error; the worst SNR as the summary."""
    per: list[dict[str, Any]] = []
    for f_name, q_name in pairs:
        f, q = np.asarray(f_out[f_name], np.float64), np.asarray(q_out[q_name], np.float64)
        norms = np.linalg.norm(f) * np.linalg.norm(q)
        per.append(
            {
                "output": f_name,
                "snr_db": snr_db(f, q),
                "cosine": float(np.sum(f * q) / norms) if norms > 0 else float(np.allclose(f, q)),
                "max_abs_error": float(np.abs(f - q).max()) if f.size else 0.0,
                "mean_abs_error": float(np.abs(f - q).mean()) if f.size else 0.0,
            }
        )
    metrics = {
        "snr_db_min": min(p["snr_db"] for p in per),
        "cosine_min": min(p["cosine"] for p in per),
        "max_abs_error": max(p["max_abs_error"] for p in per),
    }
    return TaskMetrics(Task.GENERIC, metrics, per_output=per)


def classification_metrics(
    f: np.ndarray, q: np.ndarray, labels: np.ndarray | None, k: int = 5, multilabel: bool = False
) -> TaskMetrics:
    """Top-1 and top-k agreement (or, multi-label, per-label and exact-set agreement), accuracy with labels."""
    from edge_sdk.reference import class_predictions, class_scores

    f, q = np.asarray(f), np.asarray(q)
    if multilabel:
        t = 0.5 if _in01(f) else 0.0
        fb, qb = f.reshape(len(f), -1) > t, q.reshape(len(q), -1) > t
        metrics: dict[str, Any] = {
            "label_agreement": float(np.mean(fb == qb)),
            "exact_set_agreement": float(np.mean((fb == qb).all(1))),
        }
        out = TaskMetrics(Task.MULTILABEL, metrics)
        if labels is not None:
            y = np.asarray(labels).reshape(fb.shape).astype(bool)
            out.labels = {"float_f1": _f1(fb, y), "quantized_f1": _f1(qb, y)}
            out.labels["f1_drop_points"] = 100.0 * (out.labels["float_f1"] - out.labels["quantized_f1"])
        return out
    fs, qs = class_scores(f), class_scores(q)
    fc, qc = class_predictions(f), class_predictions(q)
    if fs is None or qs is None or fc is None or qc is None:  # a map or a string: two Nones would read 100%
        raise TaskError(
            f"classification metrics: {CLASS_SCORES_TEXT}, got float output shape {list(f.shape)} ({f.dtype}) "
            f"and quantized {list(q.shape)} ({q.dtype})" + _not_classes_hint(f.shape)
        )
    f, q = fs, qs
    metrics = {"top1_agreement": float(np.mean(fc == qc))}
    if f.ndim == 2 and f.shape[1] > k:
        topk = np.argsort(-q, axis=1)[:, :k]
        metrics[f"top{k}_agreement"] = float(np.mean((topk == fc[:, None]).any(axis=1)))
    out = TaskMetrics(Task.CLASSIFICATION, metrics)
    if labels is not None:
        from edge_sdk.metrics import label_classes

        classes = label_classes(labels, f)
        out.labels = {
            "float_accuracy": float(np.mean(fc == classes)),
            "quantized_accuracy": float(np.mean(qc == classes)),
        }
        out.labels["accuracy_drop_points"] = 100.0 * (out.labels["float_accuracy"] - out.labels["quantized_accuracy"])
    return out


def _f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float(np.sum(pred & truth))
    denom = float(np.sum(pred) + np.sum(truth))
    return 1.0 if denom == 0 else 2.0 * tp / denom


def regression_metrics(f: np.ndarray, q: np.ndarray, labels: np.ndarray | None) -> TaskMetrics:
    """MAE, relative L2 error and correlation of the quantized outputs with float's (and MAE vs labels)."""
    f64, q64 = np.asarray(f, np.float64), np.asarray(q, np.float64)
    norm = float(np.linalg.norm(f64))
    metrics = {
        "correlation": correlation(f64, q64),
        "mae": float(np.mean(np.abs(f64 - q64))),
        "relative_error": float(np.linalg.norm(q64 - f64) / norm) if norm > 0 else float(np.linalg.norm(q64)),
        "snr_db": snr_db(f64, q64),
    }
    out = TaskMetrics(Task.REGRESSION, metrics)
    if labels is not None:
        y = np.asarray(labels, np.float64)
        if y.size != f64.size:
            raise TaskError(f"regression labels: expected {f64.size} values (one per output value), got {y.size}")
        y = y.reshape(f64.shape)
        out.labels = {"float_mae": float(np.mean(np.abs(f64 - y))), "quantized_mae": float(np.mean(np.abs(q64 - y)))}
    return out


def reconstruction_scores(inputs: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """Per-example anomaly score: mean squared reconstruction error."""
    x = np.asarray(inputs, np.float64).reshape(len(inputs), -1)
    r = np.asarray(reconstruction, np.float64).reshape(len(reconstruction), -1)
    scores: np.ndarray = np.mean((x - r) ** 2, axis=1)
    return scores


def autoencoder_metrics(inputs: np.ndarray, f: np.ndarray, q: np.ndarray, labels: np.ndarray | None) -> TaskMetrics:
    """The anomaly score's correlation with float's (Pearson and rank), reconstruction MAE, AUC with labels."""
    fs, qs = reconstruction_scores(inputs, f), reconstruction_scores(inputs, q)
    f64, q64 = np.asarray(f, np.float64), np.asarray(q, np.float64)
    rank = correlation(np.argsort(np.argsort(fs)), np.argsort(np.argsort(qs)))
    metrics = {
        "score_correlation": correlation(fs, qs),
        "score_rank_correlation": rank,
        "score_relative_error": float(np.mean(np.abs(qs - fs)) / max(float(np.mean(np.abs(fs))), 1e-12)),
        "reconstruction_mae": float(np.mean(np.abs(f64 - q64))),
        "snr_db": snr_db(f64, q64),
    }
    out = TaskMetrics(Task.AUTOENCODER, metrics)
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if len(y) != len(fs):
            raise TaskError(f"anomaly labels: expected {len(fs)} (one 0/1 per example), got {len(y)}")
        fa, qa = auc(fs, y), auc(qs, y)
        if fa is not None and qa is not None:  # both None or neither: the same labels decide
            out.labels = {"float_auc": fa, "quantized_auc": qa, "auc_drop_points": 100.0 * (fa - qa)}
        else:
            out.notes.append("anomaly labels hold one class only: no AUC")
    return out


def embedding_metrics(f: np.ndarray, q: np.ndarray) -> TaskMetrics:
    """Cosine similarity per example (mean, min) and nearest-neighbour agreement (cosine, first 2000)."""
    f2 = np.asarray(f, np.float64).reshape(len(f), -1)
    q2 = np.asarray(q, np.float64).reshape(len(q), -1)
    fn = f2 / np.maximum(np.linalg.norm(f2, axis=1, keepdims=True), 1e-12)
    qn = q2 / np.maximum(np.linalg.norm(q2, axis=1, keepdims=True), 1e-12)
    cos = np.sum(fn * qn, axis=1)
    metrics: dict[str, Any] = {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
    m = min(len(f2), 2000)
    if m >= 3:
        sf, sq = fn[:m] @ fn[:m].T, qn[:m] @ qn[:m].T
        np.fill_diagonal(sf, -np.inf)
        np.fill_diagonal(sq, -np.inf)
        metrics["nn_agreement"] = float(np.mean(sf.argmax(1) == sq.argmax(1)))
    return TaskMetrics(Task.EMBEDDING, metrics)


def _masks(out: np.ndarray) -> np.ndarray:
    """Class id per pixel: argmax over channels (per-pixel class scores), or a 0.5 / 0 threshold for one channel."""
    a = np.asarray(out)
    if a.ndim == 4 and a.shape[-1] > 1:
        classes: np.ndarray = a.argmax(axis=-1)
        return classes
    a = a.reshape(a.shape[:3]) if a.ndim == 4 else a
    return (a > (0.5 if _in01(a) else 0.0)).astype(np.int64)


def _iou_dice(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None, int]:
    """Mean IoU and Dice of the foreground classes (> 0) over the images where either mask has foreground.

    An image whose two masks are both empty (no person in a selfie) agrees vacuously: counting it as IoU 1
    let a set of such photos pass any budget, so it is left out and counted. Returns ``(iou, dice, empty)``,
    ``empty`` the number of images left out; IoU and Dice are None when every image was empty.
    """
    ious, dices, empty = [], [], 0
    classes = [c for c in np.union1d(np.unique(a), np.unique(b)) if c > 0]
    for i in range(len(a)):
        per_iou, per_dice = [], []
        for c in classes:
            x, y = a[i] == c, b[i] == c
            inter, union, total = np.sum(x & y), np.sum(x | y), np.sum(x) + np.sum(y)
            if union == 0:
                continue
            per_iou.append(inter / union)
            per_dice.append(2 * inter / total)
        if not per_iou:
            empty += 1
            continue
        ious.append(np.mean(per_iou))
        dices.append(np.mean(per_dice))
    if not ious:
        return None, None, empty
    return float(np.mean(ious)), float(np.mean(dices)), empty


def segmentation_metrics(f: np.ndarray, q: np.ndarray, labels: np.ndarray | None) -> TaskMetrics:
    """Mask IoU and Dice of the quantized masks against float's; of both against label masks when given.

    IoU and Dice are means over the images where either mask has foreground (``measured_images``); images
    whose masks are both empty are counted in ``empty_images``, not as IoU 1. When every image is empty the
    IoU is None (not measurable) and a warning says so: a budget on it cannot pass.
    """
    if np.ndim(f) < 3:
        raise TaskError(
            f"task segmentation: expected a per-pixel output [B, H, W] or [B, H, W, C], got {list(np.shape(f))}"
        )
    fm, qm = _masks(f), _masks(q)
    iou, dice, empty = _iou_dice(fm, qm)
    metrics = {
        "mask_iou": iou,
        "mask_dice": dice,
        "pixel_agreement": float(np.mean(fm == qm)),
        "measured_images": len(fm) - empty,
        "empty_images": empty,
    }
    out = TaskMetrics(Task.SEGMENTATION, metrics)
    out.notes.append("mask IoU and Dice: means over images where either mask has foreground (class > 0)")
    if empty == len(fm):
        out.warnings.append(
            f"mask IoU not measurable: all {empty} images have empty masks (no foreground) in both models; "
            "give data where the float model finds something"
        )
    elif empty:
        out.notes.append(f"{empty} of {len(fm)} images with both masks empty are left out of mask IoU and Dice")
    if labels is not None:
        y = np.asarray(labels)
        if y.ndim == 4 and y.shape[-1] == 1:
            y = y[..., 0]
        if y.shape != fm.shape:
            raise TaskError(f"segmentation labels: expected masks of shape {list(fm.shape)}, got {list(y.shape)}")
        y = y.astype(np.int64)
        out.labels = {"float_iou": _iou_dice(fm, y)[0], "quantized_iou": _iou_dice(qm, y)[0]}
        if out.labels["float_iou"] is not None and out.labels["quantized_iou"] is not None:
            out.labels["iou_drop_points"] = 100.0 * (out.labels["float_iou"] - out.labels["quantized_iou"])
    return out


# -- detection -----------------------------------------------------------------------------------
def detection_metrics(
    f_outputs: Sequence[np.ndarray],
    q_outputs: Sequence[np.ndarray],
    labels: np.ndarray | None,
    head: str = "auto",
    score_threshold: float = 0.25,
    iou: float = 0.45,
) -> TaskMetrics:
    """Decode both models' heads, NMS, match: recall/precision of float's detections, matched-box IoU; mAP@0.5 with labels."""
    fd = decode_detections(f_outputs, head, score_threshold, iou)
    qd = decode_detections(q_outputs, head, score_threshold, iou)
    n_f = sum(len(d.boxes) for d in fd)
    n_q = sum(len(d.boxes) for d in qd)
    ious = [v for a, b in zip(fd, qd, strict=False) for v in match_detections(a, b)]
    recall = len(ious) / n_f if n_f else (1.0 if n_q == 0 else 0.0)
    precision = len(ious) / n_q if n_q else (1.0 if n_f == 0 else 0.0)
    metrics = {
        "recall": recall,
        "precision": precision,
        "recall_min": min(recall, precision),
        "matched_iou": float(np.mean(ious)) if ious else 0.0,
        "float_detections": n_f,
        "quantized_detections": n_q,
    }
    out = TaskMetrics(Task.DETECTION, metrics)
    out.notes.append(
        f"head {head}, score > {score_threshold:g}, NMS IoU {iou:g}; matches need the same class "
        "and IoU >= 0.5; recall min = min(recall, precision)"
    )
    if n_f == 0:
        out.notes.append("the float model detects nothing above the score threshold on this data")
    if labels is not None:
        truth = np.asarray(labels)
        if truth.ndim != 3 or truth.shape[0] != len(fd) or truth.shape[2] != 5:
            raise TaskError(
                f"detection labels: expected [{len(fd)}, M, 5] rows (class, x1, y1, x2, y2; class -1 "
                f"pads), got shape {list(truth.shape)}"
            )
        out.labels = {"float_map50": mean_ap(fd, truth), "quantized_map50": mean_ap(qd, truth)}
        out.labels["map50_drop_points"] = 100.0 * (out.labels["float_map50"] - out.labels["quantized_map50"])
    return out


# ------------------------------------------------------------------------------------------------
# the one entry
# ------------------------------------------------------------------------------------------------
def task_metrics(
    task: Task,
    f_out: Mapping[str, np.ndarray],
    q_out: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    *,
    inputs: Mapping[str, np.ndarray] | None = None,
    labels: np.ndarray | None = None,
    head: str = "auto",
    score_threshold: float = 0.25,
) -> TaskMetrics:
    """``task``'s metrics on float (``f_out``) vs quantized (``q_out``) outputs, matched by ``pairs``.

    The first pair is the primary output; ``inputs`` (the examples, needed by the
    autoencoder's score); ``labels`` as the task takes them (class ids; 0/1 anomaly flags;
    label masks; ``[B, M, 5]`` boxes; target values); ``head``/``score_threshold``: detection decoding.
    Every task also carries the generic per-output figures (SNR, cosine, errors).
    """
    f0, q0 = np.asarray(f_out[pairs[0][0]]), np.asarray(q_out[pairs[0][1]])
    if task in (Task.CLASSIFICATION, Task.MULTILABEL):
        result = classification_metrics(f0, q0, labels, multilabel=task == Task.MULTILABEL)
    elif task == Task.REGRESSION:
        result = regression_metrics(f0, q0, labels)
    elif task == Task.AUTOENCODER:
        if not inputs:
            raise TaskError("autoencoder metrics need the inputs the reconstructions are compared with")
        x = next((v for v in inputs.values() if np.shape(v)[1:] == f0.shape[1:]), None)
        if x is None:
            raise TaskError(
                f"task autoencoder: expected an input shaped like the output {list(f0.shape[1:])}, "
                f"got inputs {[list(np.shape(v)[1:]) for v in inputs.values()]}"
            )
        result = autoencoder_metrics(x, f0, q0, labels)
    elif task == Task.DETECTION:
        fs = [np.asarray(f_out[f]) for f, _ in pairs]
        qs = [np.asarray(q_out[q]) for _, q in pairs]
        result = detection_metrics(fs, qs, labels, head, score_threshold)
    elif task == Task.SEGMENTATION:
        result = segmentation_metrics(f0, q0, labels)
    elif task == Task.EMBEDDING:
        result = embedding_metrics(f0, q0)
    else:
        return generic_metrics(f_out, q_out, pairs)
    result.per_output = generic_metrics(f_out, q_out, pairs).per_output
    return result


# ------------------------------------------------------------------------------------------------
# budgets
# ------------------------------------------------------------------------------------------------
def budget_checks(result: TaskMetrics, budgets: Mapping[str, float | None]) -> list[dict[str, Any]]:
    """Gate checks (``{name, threshold, value, passed}``) of ``result`` against its task's budget.

    ``budgets``: ``{budget name: threshold}`` (None: not set, no check). Classification is
    judged by ``--max-drop``/``--min-agreement`` (:mod:`converters.gate`), not here.
    """
    spec = BUDGETS.get(result.task)
    if spec is None:
        return []
    name, metric, _ = spec
    threshold = budgets.get(name)
    if threshold is None:
        return []
    value = result.metrics.get(metric)
    if value is None:
        return [
            {
                "name": name,
                "threshold": threshold,
                "value": None,
                "passed": None,
                "reason": "; ".join(result.warnings) or f"{metric} could not be measured",
            }
        ]
    return [
        {
            "name": name,
            "metric": metric,
            "threshold": float(threshold),
            "value": float(value),
            "passed": bool(float(value) >= float(threshold) - 1e-12),
        }
    ]


def budget_text(task: Task, budgets: Mapping[str, float | None]) -> str:
    """One phrase naming ``task``'s budget and its value (``min_iou 0.9 (mean mask IoU ...)``)."""
    spec = BUDGETS.get(task)
    if spec is None:
        return "accuracy points"
    return f"{spec[0]} {budgets.get(spec[0], DEFAULT_BUDGETS[spec[0]]):g} ({spec[2]})"


def judge_reference(
    inputs: Mapping[str, np.ndarray],
    float_outputs: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    manifest: Mapping[str, Any] | None = None,
    task: Any = None,
    budgets: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """The ``judge`` of :func:`edge_sdk.reference.check_reference` (``parity --reference``, light runtime).

    The task comes from the model's ``manifest`` (``task``) or :func:`infer_task` on the
    reference's inputs and float outputs; returns ``task``, ``task_metrics``, ``task_rows``,
    ``wipeouts``, failing ``checks`` for wiped-out outputs and ``classification``. ``task`` (``--task``)
    overrides the manifest's; ``budgets`` (``--min-iou`` ...) add the task's budget check.
    """
    flag = parse_task(task)
    declared = flag or parse_task((manifest or {}).get("task"))
    source = "--task" if flag is not None else "the model's manifest"
    check_task_outputs(declared, [(f, np.shape(float_outputs[f])) for f, _ in pairs], source)
    task, why = infer_task(inputs, {f: float_outputs[f] for f, _ in pairs}, declared, declared_by=source)
    result = task_metrics(task, float_outputs, outputs, pairs, inputs=inputs)
    wiped = find_wipeouts(float_outputs, outputs, pairs)
    checks = [
        {
            "name": "wipeout",
            "output": w["output"],
            "threshold": 0,
            "value": 1,
            "passed": False,
            "text": f"quantization wiped out {w['what']}; remedy: {WIPEOUT_REMEDY}",
        }
        for w in wiped
    ]
    for c in budget_checks(result, budgets or {}):
        if c["value"] is None:  # not measurable: the check cannot run (None), it neither passes nor fails
            text = f"{c['name']} {task.value} could not run: {c['reason']}"
        else:
            text = (
                f"{c['name']} {task.value}: {c.get('metric', '')} {c['value']:.4g} "
                f"{'>=' if c['passed'] else '<'} {c['threshold']:.4g}"
            )
        checks.append({**c, "output": task.value, "text": text})
    return {
        "task": {"name": task.value, "why": why},
        "task_metrics": result.to_dict(),
        "task_rows": result.rows(),
        "wipeouts": wiped,
        "checks": checks,
        "classification": task == Task.CLASSIFICATION,
    }


__all__ = [
    "BUDGETS",
    "DEFAULT_BUDGETS",
    "Detections",
    "HEAD_FORMATS",
    "TASKS",
    "TASK_CHOICES",
    "TASK_OPTION",
    "TASK_OPTIONS",
    "Task",
    "TaskError",
    "TaskMetrics",
    "TaskOption",
    "WIPEOUT_REMEDY",
    "auc",
    "budget_checks",
    "budget_text",
    "check_task_outputs",
    "channel_axis",
    "correlation",
    "decode_detections",
    "detection_metrics",
    "find_wipeouts",
    "infer_task",
    "judge_reference",
    "mean_ap",
    "nms",
    "parse_task",
    "snr_db",
    "task_metrics",
    "wipeout_message",
    "yolo_layout",
]
