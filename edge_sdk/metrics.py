"""Task metrics shared by the converter, parity and the runtime: one rule for "accuracy".

A model's predicted class per example comes from :func:`edge_sdk.reference.class_predictions`
(argmax over the last axis; one output unit is thresholded at 0.5 for probabilities, 0 for
logits), labels become class ids through :func:`edge_sdk.reference.labels_to_classes` (integer
ids, or one-hot rows). Labels outside the model's classes are refused, never counted as
misses: y=57 on a 10-class model is a data error, not a 0% accuracy.

This module imports numpy and edge_sdk only: never TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edge_sdk.errors import EdgeSdkError
from edge_sdk.reference import class_predictions, class_scores, labels_to_classes


class LabelError(EdgeSdkError, ValueError):
    """Labels that do not fit the model's outputs (wrong count, or classes it does not have)."""


def class_count(output: np.ndarray) -> int | None:
    """How many classes a per-example class output has (2 for one sigmoid/logit unit); None if not one."""
    out = class_scores(output)  # [N, 1, ..., 1, classes] counts as [N, classes]; a map is not class scores
    if out is None:
        return None
    return 2 if out.ndim == 1 or out.shape[1] == 1 else int(out.shape[1])


def check_label_range(classes: np.ndarray, n_classes: int | None, source: str = "labels") -> None:
    """Raise :class:`LabelError` when a class id in ``classes`` is outside ``[0, n_classes)``.

    ``classes``: integer class ids (from :func:`labels_to_classes`); ``n_classes``: the
    model's class count (None: unknown, nothing to check); ``source``: names the labels.
    """
    if n_classes is None or not len(classes):
        return
    bad = (classes < 0) | (classes >= n_classes)
    if bad.any():
        shown = ", ".join(str(v) for v in np.unique(classes[bad])[:5])
        raise LabelError(
            f"{source}: expected class ids in [0, {n_classes - 1}] (the model's output has {n_classes} classes), "
            f"got {shown} ({int(bad.sum())} of {len(classes)} labels out of range)"
        )


def label_classes(labels: Any, output: np.ndarray, source: str = "labels") -> np.ndarray:
    """``labels`` as class ids, checked against ``output``'s count and classes (see module docs)."""
    classes = labels_to_classes(np.asarray(labels))
    if len(classes) != len(output):
        raise LabelError(f"{source}: expected {len(output)} labels, one per example, got {len(classes)}")
    check_label_range(classes, class_count(output), source)
    return classes


def accuracy(output: np.ndarray, labels: Any, source: str = "labels") -> float | None:
    """Top-1 accuracy of ``output`` (one row per example) against ``labels``.

    None when ``output`` is not per-example class scores. Raises :class:`LabelError`
    for labels that do not fit the output (``source`` names them in the message).
    """
    predicted = class_predictions(output)
    if predicted is None:
        return None
    classes = label_classes(labels, output, source)
    return float(np.mean(predicted == classes))


def non_finite_count(outputs: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """(non-finite values, all values) over float arrays in ``outputs``; integer arrays count as finite."""
    bad = total = 0
    for value in outputs.values():
        arr = np.asarray(value)
        total += arr.size
        if arr.dtype.kind in "fc":
            bad += int(arr.size - np.count_nonzero(np.isfinite(arr)))
    return bad, total


__all__ = ["LabelError", "accuracy", "check_label_range", "class_count", "label_classes", "non_finite_count"]
