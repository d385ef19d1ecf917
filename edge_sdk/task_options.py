"""What the tasks are called and the ``[task]`` options: the light leaf of :mod:`edge_sdk.tasks`.

:class:`Task` and its names, the detection head formats, each task's budget (:data:`BUDGETS`) and
:data:`TASK_OPTIONS`: every ``[task]`` recipe key with its default, range and flag. This is their one
home: :class:`converters.recipe.TaskOptions` builds its fields from it, and ``edge-sdk parity`` (also
``--reference`` on a device without the ``converters`` package) adds its task flags from it, so the
flags are the same with and without converters installed.

Standard library only (no numpy): building the CLI's parsers imports it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from edge_sdk.errors import EdgeSdkError


class TaskError(EdgeSdkError, ValueError):
    """A task name, head format or label array that does not fit the model."""


class Task(str, enum.Enum):  # noqa: UP042 - members equal their strings; StrEnum changes str()
    """What a model does."""

    CLASSIFICATION = "classification"
    MULTILABEL = "multilabel"
    REGRESSION = "regression"
    AUTOENCODER = "autoencoder"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"
    EMBEDDING = "embedding"
    GENERIC = "generic"


TASKS = tuple(t.value for t in Task)
TASK_CHOICES = ("auto",) + TASKS
ALIASES = {"anomaly": Task.AUTOENCODER, "classifier": Task.CLASSIFICATION, "multi-label": Task.MULTILABEL}
HEAD_FORMATS = ("auto", "yolov8", "yolov5", "ssd")

#: each task's budget: (recipe key / flag stem, metric it checks, default, what it means)
BUDGETS: dict[Task, tuple[str, str, str]] = {
    Task.REGRESSION: ("min_correlation", "correlation", "Pearson correlation of the outputs with float's"),
    Task.AUTOENCODER: (
        "min_correlation",
        "score_correlation",
        "correlation of the anomaly score (reconstruction MSE) with float's",
    ),
    Task.DETECTION: ("min_recall", "recall_min", "recall and precision of float's detections (IoU >= 0.5)"),
    Task.SEGMENTATION: ("min_iou", "mask_iou", "mean mask IoU against float's masks"),
    Task.EMBEDDING: ("min_cosine", "cosine_mean", "mean cosine similarity with float's embeddings"),
    Task.GENERIC: ("min_snr_db", "snr_db_min", "worst output's signal-to-noise ratio against float, in dB"),
}


@dataclasses.dataclass(frozen=True)
class TaskOption:
    """One ``[task]`` recipe key: declared here, on the runtime side, and nowhere else.

    ``edge-sdk parity --reference`` runs on a device without the ``converters`` package and needs the
    same task flags as ``convert``; :class:`converters.recipe.TaskOptions` builds its fields from
    :data:`TASK_OPTIONS`. ``low``/``high``: a closed numeric range (None: not a number or unbounded).
    """

    key: str
    default: Any
    help: str
    flag: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    @property
    def dest(self) -> str:
        """The argparse destination of :attr:`flag` (``--min-iou``: ``min_iou``)."""
        return (self.flag or self.key).lstrip("-").replace("-", "_")

    def allowed(self) -> str:
        """The allowed values in words, as ``convert --describe`` words them."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        return "any"

    def check(self, value: float) -> float:
        """``value`` when it is a finite number in the range; else :class:`TaskError` naming the flag."""
        if not math.isfinite(value) or (
            self.low is not None and self.high is not None and not self.low <= value <= self.high
        ):
            raise TaskError(f"{self.flag or self.key}: must be {self.allowed()}, got {value!r}")
        return value


#: the ``[task]`` recipe keys, their defaults, ranges and flags (converters.recipe.TaskOptions reads them)
TASK_OPTIONS: tuple[TaskOption, ...] = (
    TaskOption(
        "task",
        "auto",
        "what the model does (auto: inferred from its outputs; recorded in the manifest)",
        "--task",
        choices=TASK_CHOICES,
    ),
    TaskOption(
        "min_correlation",
        0.98,
        "regression: least correlation of the outputs with float's; autoencoder: "
        "of the anomaly score (reconstruction MSE)",
        "--min-correlation",
        "R",
        low=-1,
        high=1,
    ),
    TaskOption(
        "min_recall",
        0.9,
        "detection: least recall and precision of the float model's detections (same class, IoU >= 0.5)",
        "--min-recall",
        "FRACTION",
        low=0,
        high=1,
    ),
    TaskOption(
        "min_iou",
        0.9,
        "segmentation: least mean mask IoU against the float model's masks",
        "--min-iou",
        "IOU",
        low=0,
        high=1,
    ),
    TaskOption(
        "min_cosine",
        0.98,
        "embedding: least mean cosine similarity with the float model's embeddings",
        "--min-cosine",
        "COSINE",
        low=-1,
        high=1,
    ),
    TaskOption(
        "min_snr_db",
        20.0,
        "generic: least signal-to-noise ratio of every output against float, in dB",
        "--min-snr-db",
        "DB",
        low=-100,
        high=200,
    ),
    TaskOption(
        "detection_head",
        "auto",
        "detection: the head format (yolov8 [B,4+C,N]; yolov5 [B,N,5+C]; ssd boxes "
        "[B,N,4] + scores [B,N,C]; auto: two outputs are ssd, one is yolov8)",
        "--head",
        choices=HEAD_FORMATS,
    ),
    TaskOption("score_threshold", 0.25, "detection: least class score a box needs before NMS", low=0, high=1),
)
TASK_OPTION = {o.key: o for o in TASK_OPTIONS}
DEFAULT_BUDGETS: dict[str, float] = {o.key: o.default for o in TASK_OPTIONS if o.key.startswith("min_")}


def parse_task(value: Any) -> Task | None:
    """``value`` as a :class:`Task` (None/``auto``/empty: infer it); raises :class:`TaskError` for unknown names."""
    if value is None or isinstance(value, Task):
        return value
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if text in ALIASES:
        return ALIASES[text]
    try:
        return Task(text)
    except ValueError:
        raise TaskError(f"--task: expected one of {', '.join(TASK_CHOICES)}, got {value!r}") from None
