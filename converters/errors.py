"""Errors the converter stack raises on purpose.

Each is an :class:`edge_sdk.errors.EdgeSdkError`, so the CLI prints
``error: <message>`` and exits 2 instead of showing a TensorFlow traceback.
Every message names what was expected and what came.
"""

from __future__ import annotations

from edge_sdk import console
from edge_sdk.errors import EdgeSdkError


class ConversionError(EdgeSdkError):
    """A conversion step failed (converter, exporter or a stage inside a recipe)."""


class ModelLoadError(ConversionError):
    """The input model file or directory could not be loaded."""


class StageNotApplicableError(ConversionError):
    """A stage was asked of an input that cannot take it (e.g. tfmot pruning on Keras 3)."""


class RecipeError(ConversionError, ValueError):
    """A recipe file or option that is unknown, mistyped or out of range."""


class CalibrationError(ConversionError, ValueError):
    """Calibration data that is missing or does not fit the model's inputs."""


class DataError(ConversionError, ValueError):
    """Evaluation or training data that does not fit the model."""


class ExportError(ConversionError):
    """An export (TFLite, SavedModel, ONNX) failed or did not match the source model."""


class NonFiniteOutputError(ConversionError):
    """A stage produced a model whose outputs hold NaN or infinity on the run's data."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """:func:`edge_sdk.console.first_line` cut to 300 characters: TensorFlow errors run to pages."""
    return console.first_line(exc, limit)
