"""TensorFlow's TFLiteConverter, built in one place: float32 / dynamic-range / float16 / full-int8 flatbuffers
of a float model (:func:`convert`).

Below the stages: the run context makes every float32 artifact with it, the ``quantize``
stage its quantized files, ``auto``/``autotune``/``debugger`` their candidates.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from converters import schemes
from converters.calibration import drop_nan_samples, input_stats, subset
from converters.errors import CalibrationError, ConversionError, RecipeError, first_line
from converters.model_files import LoadedModel
from converters.schemes import CONVERTER_MODES


@dataclasses.dataclass
class QuantizeResult:
    """A converted model and what the conversion found."""

    tflite: bytes
    mode: str
    io: str
    float_ops: dict[str, int]
    inspect_kind: str
    calibration: dict[str, dict[str, Any]] | None = None
    dropped_nan_samples: int = 0

    @property
    def manifest_kind(self) -> str:
        """The manifest ``kind`` field for this artifact: what ``inspect`` reads in the file."""
        from edge_sdk.inspect_model import manifest_kind

        return manifest_kind(
            {"kind": self.inspect_kind, "integer_activations": ["int8"]}, schemes.manifest_kind(self.mode)
        )


def _representative(inputs: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    n = len(next(iter(inputs.values())))
    for i in range(n):
        yield {name: arr[i : i + 1] for name, arr in inputs.items()}


def tflite_converter(model: LoadedModel):
    """A ``tf.lite.TFLiteConverter`` for ``model``: the one place converters are built.

    tf_keras models convert from the Keras model; Keras 3 models and SavedModels from a
    SavedModel directory (:func:`converters.savedmodel.saved_model_dir`, exported once). Keras
    LSTM/GRU layers are unrolled first (:func:`converters.recurrent.convertible`).
    """
    from converters._tf import tf
    from converters.recurrent import convertible

    model = convertible(model)

    if model.is_tf_keras:
        return tf.lite.TFLiteConverter.from_keras_model(model.model)
    from converters.savedmodel import saved_model_dir

    return tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir(model)))


def convert(
    model: LoadedModel,
    mode: str = "float32",
    *,
    calibration: dict[str, np.ndarray] | None = None,
    io: str = "int8",
    calibration_samples: int = 300,
    seed: int = 0,
) -> QuantizeResult:
    """Convert ``model`` to a TFLite flatbuffer in ``mode`` (see module docs).

    ``calibration``: ``{input name: array}`` representative data (int8 only);
    ``io``: ``int8`` or ``float32`` model edges (int8 only); ``calibration_samples``:
    how many calibration samples to use, drawn with ``seed``.
    """
    from converters._tf import tf

    if mode not in CONVERTER_MODES:
        raise RecipeError(f"quantize mode: expected one of {', '.join(CONVERTER_MODES)}, got {mode!r}")
    if io not in ("int8", "float32"):
        raise RecipeError(f"quantize io: expected 'int8' or 'float32', got {io!r}")
    stats = None
    dropped = 0
    converter = tflite_converter(model)
    if mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        refusal = getattr(model, "int8_refusal", "")  # an ONNX model whose calibration would crash the process
        if refusal:
            raise ConversionError(refusal)
        if not calibration:
            raise CalibrationError(
                "int8 quantization needs calibration data: expected a representative dataset "
                "(--calibration FILE.npy|.npz, or a zoo dataset via --dataset), got none; "
                "recipes 'dynamic' and 'fp16' need no data"
            )

        sample = subset(calibration, calibration_samples, seed)
        stats = input_stats(sample)
        sample, dropped = drop_nan_samples(sample)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _representative(sample)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    try:
        with warnings.catch_warnings():
            # TF's calibrator uses the deprecated tf.lite.Interpreter internally; not the user's concern
            warnings.simplefilter("ignore", UserWarning)
            flatbuffer = converter.convert()
    except Exception as exc:  # noqa: BLE001 - TF raises many types; report one line, not a traceback
        raise ConversionError(
            f"TFLite conversion ({mode}) of {model.describe()} failed: {first_line(exc, 400)}"
        ) from None
    from edge_sdk.inspect_model import inspect_model

    info = inspect_model(flatbuffer)
    return QuantizeResult(
        tflite=flatbuffer,
        mode=mode,
        io=io if mode == "int8" else "float32",
        float_ops=dict(info.get("float_ops", {})),
        inspect_kind=str(info.get("kind")),
        calibration=stats,
        dropped_nan_samples=dropped,
    )
