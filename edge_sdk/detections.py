"""Decoding detection heads (numpy only): the YOLO and SSD layouts, class-aware NMS, matching, mAP@0.5.

:func:`edge_sdk.tasks.detection_metrics` judges a quantized detector with these; split from
:mod:`edge_sdk.tasks`, which re-exports the public names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from edge_sdk.task_options import HEAD_FORMATS, TaskError


def yolo_layout(shape: Sequence[int]) -> str | None:
    """``"channels_first"`` for ``[B, 4+C, N]``, ``"channels_last"`` for ``[B, N, 4+C]``, else None."""
    if len(shape) != 3 or shape[1] is None or shape[2] is None:
        return None
    a, b = int(shape[1]), int(shape[2])
    if a >= 5 and b > a:
        return "channels_first"
    if b >= 5 and a > b:
        return "channels_last"
    return None


def ssd_pair(outs: Mapping[str, np.ndarray]) -> tuple[str, str] | None:
    names = list(outs)
    for boxes, scores in ((names[0], names[1]), (names[1], names[0])):
        b, s = outs[boxes], outs[scores]
        if b.ndim == 3 and b.shape[2] == 4 and s.ndim == 3 and s.shape[:2] == b.shape[:2] and s.shape[2] >= 1:
            return boxes, scores
    return None


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes ``a`` [n, 4] and ``b`` [m, 4]."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float = 0.45, max_det: int = 100
) -> np.ndarray:
    """Indices kept by greedy class-aware non-maximum suppression, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        overlap = _box_iou(boxes[i : i + 1], boxes[rest])[0]
        order = rest[(overlap < iou) | (classes[rest] != classes[i])]
    return np.asarray(keep, np.int64)


@dataclasses.dataclass
class Detections:
    """One image's detections: xyxy boxes, scores and classes."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


def decode_detections(
    outputs: Sequence[np.ndarray], head: str = "auto", score_threshold: float = 0.25, iou: float = 0.45
) -> list[Detections]:
    """Decode a detection head into per-image detections after NMS.

    ``outputs``: one array (``yolov8``: ``[B, 4+C, N]`` or ``[B, N, 4+C]``, boxes as
    centre x, centre y, width, height then C class scores; ``yolov5``: ``[B, N, 5+C]`` with
    an objectness column) or two (``ssd``: boxes ``[B, N, 4]`` as x1, y1, x2, y2 and scores
    ``[B, N, C]``). ``head``: the format (``auto``: two outputs are SSD, one is YOLOv8).
    """
    if head == "auto":
        head = "ssd" if len(outputs) == 2 else "yolov8"
    if head not in HEAD_FORMATS:
        raise TaskError(f"detection head: expected one of {', '.join(HEAD_FORMATS)}, got {head!r}")
    if head == "ssd":
        if len(outputs) != 2:
            raise TaskError(f"detection head 'ssd': expected two outputs (boxes, scores), got {len(outputs)}")
        pair = ssd_pair({"a": np.asarray(outputs[0]), "b": np.asarray(outputs[1])})
        if pair is None:
            raise TaskError(
                "detection head 'ssd': expected boxes [B, N, 4] and scores [B, N, C], got shapes "
                + ", ".join(str(list(np.shape(o))) for o in outputs)
            )
        arrays = {"a": np.asarray(outputs[0]), "b": np.asarray(outputs[1])}
        boxes_all, scores_all = arrays[pair[0]], arrays[pair[1]]
    else:
        out = np.asarray(outputs[0], np.float64)
        layout = yolo_layout(out.shape)
        if layout is None and head == "yolov8" and out.ndim == 3 and out.shape[1] == out.shape[2] >= 5:
            layout = "channels_first"  # square [B, 4+C, N] (4 + C == N): YOLOv8 exports rows first
        if len(outputs) != 1 or layout is None:
            raise TaskError(
                f"detection head {head!r}: expected one output [B, 4+C, N] or [B, N, 4+C], got "
                + ", ".join(str(list(np.shape(o))) for o in outputs)
            )
        rows = np.swapaxes(out, 1, 2) if layout == "channels_first" else out  # [B, N, 4+C]
        xywh = rows[..., :4]
        boxes_all = np.concatenate([xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2], axis=-1)
        scores_all = rows[..., 5:] * rows[..., 4:5] if head == "yolov5" else rows[..., 4:]
    result = []
    for b, s in zip(np.asarray(boxes_all, np.float64), np.asarray(scores_all, np.float64), strict=False):
        cls = s.argmax(axis=1)
        conf = s[np.arange(len(s)), cls]
        keep = conf > score_threshold
        b, conf, cls = b[keep], conf[keep], cls[keep]
        idx = nms(b, conf, cls, iou)
        result.append(Detections(b[idx], conf[idx], cls[idx]))
    return result


def match_detections(ref: Detections, other: Detections, threshold: float = 0.5) -> list[float]:
    """IoUs of greedy one-to-one same-class matches (IoU >= threshold) of ``other`` to ``ref``."""
    if not len(ref.boxes) or not len(other.boxes):
        return []
    m = _box_iou(ref.boxes, other.boxes)
    m[ref.classes[:, None] != other.classes[None, :]] = 0.0
    ious, used = [], set()
    for i in np.argsort(-ref.scores, kind="stable"):
        j_order = np.argsort(-m[i], kind="stable")
        for j in j_order:
            if m[i, j] < threshold:
                break
            if int(j) not in used:
                used.add(int(j))
                ious.append(float(m[i, j]))
                break
    return ious


def mean_ap(dets: Sequence[Detections], truth: np.ndarray, threshold: float = 0.5) -> float:
    """mAP@``threshold`` (all-point interpolation) against ``truth`` ``[B, M, 5]`` rows (class, x1, y1, x2, y2; class < 0 = padding)."""
    truth = np.asarray(truth, np.float64)
    aps = []
    for c in np.unique(truth[..., 0][truth[..., 0] >= 0]).astype(int):
        records, n_truth = [], 0
        for i, d in enumerate(dets):
            gt = truth[i][truth[i][:, 0] == c][:, 1:]
            n_truth += len(gt)
            mine = d.classes == c
            boxes, scores = d.boxes[mine], d.scores[mine]
            used = np.zeros(len(gt), bool)
            for k in np.argsort(-scores, kind="stable"):
                hit = False
                if len(gt):
                    ious = _box_iou(boxes[k : k + 1], gt)[0]
                    j = int(ious.argmax())
                    if ious[j] >= threshold and not used[j]:
                        used[j] = hit = True
                records.append((scores[k], hit))
        if n_truth == 0:
            continue
        records.sort(key=lambda r: -r[0])
        hits = np.array([h for _, h in records], bool)
        tp, fp = np.cumsum(hits), np.cumsum(~hits)
        recall = tp / n_truth if len(hits) else np.zeros(0)
        precision = tp / np.maximum(tp + fp, 1) if len(hits) else np.zeros(0)
        mrec = np.r_[0.0, recall, 1.0]
        mpre = np.r_[0.0, precision, 0.0]
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        idx = np.where(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps)) if aps else 0.0
