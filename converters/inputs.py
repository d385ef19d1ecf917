"""What kind of model the user gave: decided here, once, for the convert CLI, the load stage, the pipeline,
loading and parity.

Stdlib only (the convert CLI asks before anything heavy imports, to know whether a run needs TensorFlow):

    kind = input_kind("model.tflite")   # InputKind.TFLITE
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any


class InputKind(str, enum.Enum):  # noqa: UP042 - members equal their strings; StrEnum changes str()
    """The kinds of model ``edge-sdk convert`` and ``edge-sdk parity`` take."""

    TFLITE = "tflite"  # a .tflite file: quantized by the LiteRT quantizer, no TensorFlow involved
    ONNX = "onnx"  # an .onnx file: converted through onnx2tf (converters.onnx_import)
    KERAS = "keras"  # a .keras archive (tf_keras or Keras 3)
    H5 = "h5"  # a Keras 2 .h5/.hdf5 file
    SAVEDMODEL = "savedmodel"  # a directory (a SavedModel when it holds saved_model.pb)
    ZOO = "zoo"  # a zoo model name (training.names.ZOO_MODELS), trained on the fly
    IN_MEMORY = "in-memory"  # a model object, not a path
    OTHER = "other"  # a path of no kind above (loading refuses it, naming what it expected)

    @property
    def needs_tensorflow(self) -> bool:
        """False for a .tflite input: the run goes through the LiteRT quantizer alone."""
        return self is not InputKind.TFLITE


SUFFIXES = {
    ".tflite": InputKind.TFLITE,
    ".onnx": InputKind.ONNX,
    ".keras": InputKind.KERAS,
    ".h5": InputKind.H5,
    ".hdf5": InputKind.H5,
}


def input_kind(source: Any) -> InputKind:
    """The kind of ``source``: a path (str or Path), a zoo name, or an in-memory model (one loaded from a
    path, such as an ``OnnxModel``, counts as the kind of that path).

    A ``.tflite`` counts only when it is a file (a missing one is ``OTHER``, refused by loading);
    a zoo name only when no file or directory of that name exists.
    """
    if not isinstance(source, (str, Path)):
        path = getattr(source, "path", None)
        return (
            input_kind(path)
            if isinstance(path, (str, Path)) and Path(path).suffix.lower() == ".onnx"
            else InputKind.IN_MEMORY
        )
    path = Path(source)
    if isinstance(source, str) and not path.exists():
        from training.names import ZOO_MODELS  # stdlib-only list; no TensorFlow

        if source in ZOO_MODELS:
            return InputKind.ZOO
    if path.is_dir():
        return InputKind.SAVEDMODEL
    kind = SUFFIXES.get(path.suffix.lower(), InputKind.OTHER)
    if kind is InputKind.TFLITE and not path.is_file():
        return InputKind.OTHER
    return kind


__all__ = ["InputKind", "SUFFIXES", "input_kind"]
