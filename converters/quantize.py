"""Post-training quantization to TFLite, and quantization-aware training (tfmot).

Modes:

* ``float32``: plain conversion, the reference artifact;
* ``dynamic``: int8 weights, float activations, no data needed;
* ``float16``: float16 weights, no data needed;
* ``int8``: full integer with a representative dataset (the training data or a
  user's .npy/.npz); ``io="int8"`` makes inputs and outputs int8 too,
  ``io="float32"`` keeps float at the edges (QUANTIZE/DEQUANTIZE inside).

Pruned weights stay pruned: int8 weights are quantized symmetrically (zero point
0), so an exact zero stays an exact zero; :func:`weight_sparsity` checks it on
the converted file. For QAT of a pruned model, tfmot's prune-preserving scheme
(``Default8BitPrunePreserveQuantizeScheme``) is used so fine-tuning does not
refill the zeros.

After conversion :attr:`QuantizeResult.float_ops` lists the operators that still
compute in float (from ``edge_sdk.inspect_model``).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from converters.calibration import drop_nan_samples, input_stats
from converters.errors import CalibrationError, ConversionError, RecipeError
from converters.loading import LoadedModel

MODES = ("float32", "dynamic", "float16", "int8")
MANIFEST_KIND = {"float32": "float32", "dynamic": "dynamic-range", "float16": "float16", "int8": "int8"}


@dataclasses.dataclass
class QuantizeResult:
    """A converted model and what the conversion found."""

    tflite: bytes
    mode: str
    io: str
    float_ops: Dict[str, int]
    inspect_kind: str
    calibration: Optional[Dict[str, Dict[str, Any]]] = None
    dropped_nan_samples: int = 0

    @property
    def manifest_kind(self) -> str:
        """The manifest ``kind`` field for this artifact."""
        return MANIFEST_KIND[self.mode]


def _representative(inputs: Dict[str, np.ndarray]) -> Iterator[Dict[str, np.ndarray]]:
    n = len(next(iter(inputs.values())))
    for i in range(n):
        yield {name: arr[i : i + 1] for name, arr in inputs.items()}


def _converter(model: LoadedModel):
    from converters._tf import tf

    if model.is_tf_keras:
        return tf.lite.TFLiteConverter.from_keras_model(model.model)
    return tf.lite.TFLiteConverter.from_saved_model(str(model.saved_model_dir()))


def convert(
    model: LoadedModel,
    mode: str = "float32",
    *,
    calibration: Optional[Dict[str, np.ndarray]] = None,
    io: str = "int8",
    calibration_samples: int = 300,
    seed: int = 0,
) -> QuantizeResult:
    """Convert ``model`` to a TFLite flatbuffer in ``mode`` (see module docs)."""
    from converters._tf import tf

    if mode not in MODES:
        raise RecipeError(f"quantize mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if io not in ("int8", "float32"):
        raise RecipeError(f"quantize io: expected 'int8' or 'float32', got {io!r}")
    stats = None
    dropped = 0
    converter = _converter(model)
    if mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if not calibration:
            raise CalibrationError(
                "int8 quantization needs calibration data: expected a representative dataset "
                "(--calibration FILE.npy|.npz, or a zoo dataset via --dataset), got none; "
                "recipes 'dynamic' and 'fp16' need no data"
            )
        from converters._train import subset

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
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]
        raise ConversionError(f"TFLite conversion ({mode}) of {model.describe()} failed: {first}") from None
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


def weight_sparsity(tflite: bytes, min_elements: int = 256) -> Dict[str, float]:
    """Share of exact zeros in each constant weight tensor of a .tflite (biases skipped).

    A quantized 0.0 is stored as the tensor's zero point (0 for symmetric conv/dense weights).
    """
    from edge_sdk.inspect_model import _schema

    schema = _schema()
    root = schema.ModelT.InitFromPackedBuf(tflite, 0)
    out: Dict[str, float] = {}
    type_to_dtype = {0: np.float32, 1: np.float16, 9: np.int8, 3: np.uint8}
    for sg in root.subgraphs or []:
        for tensor in sg.tensors or []:
            buf = root.buffers[tensor.buffer] if 0 < tensor.buffer < len(root.buffers) else None
            data = getattr(buf, "data", None)
            if data is None or int(tensor.type) not in type_to_dtype or len(tensor.shape) < 2:
                continue
            arr = np.frombuffer(bytes(bytearray(data)), dtype=type_to_dtype[int(tensor.type)])
            if arr.size < min_elements:
                continue
            zero = 0
            quant = tensor.quantization
            zero_points = [] if quant is None or quant.zeroPoint is None else list(np.ravel(quant.zeroPoint))
            if len(set(zero_points)) == 1:
                zero = int(zero_points[0])  # asymmetric per-tensor weights (e.g. GATHER tables) store 0.0 as zp
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            out[name] = float((arr == zero).mean())
    return out


def qat(
    model: Any,
    inputs: Dict[str, np.ndarray],
    labels: np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    learning_rate: float = 1e-4,
    preserve_sparsity: bool = False,
) -> Any:
    """Quantization-aware fine-tuning of a tf_keras model; returns the QAT model.

    With ``preserve_sparsity`` (a pruned model) tfmot's prune-preserving scheme keeps the zeros.
    Convert the result with :func:`convert` in ``int8`` mode.
    """
    from converters._tf import tf_keras, tfmot
    from converters._train import compile_and_fit, task_loss

    if not isinstance(model, tf_keras.Model):
        raise ConversionError(f"QAT needs a tf_keras model (tfmot), got {type(model).__module__}.{type(model).__name__}")
    try:
        if preserve_sparsity:
            annotated = tfmot.quantization.keras.quantize_annotate_model(model)
            qmodel = tfmot.quantization.keras.quantize_apply(
                annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
            )
        else:
            qmodel = tfmot.quantization.keras.quantize_model(model)
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConversionError(f"tfmot could not prepare the model for QAT: {first}") from None
    # the loss follows the original output layer: tfmot's wrappers hide the activation
    compile_and_fit(qmodel, inputs, labels, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    loss=task_loss(model))
    return qmodel


def summarize_float_ops(result: QuantizeResult) -> List[str]:
    """Human lines about operators that stayed float (empty when all integer)."""
    if not result.float_ops:
        return []
    ops = ", ".join(f"{name} x{count}" for name, count in sorted(result.float_ops.items()))
    if result.mode == "int8":
        return [f"operators that stayed float in the int8 model: {ops}"]
    return [f"{result.mode}: activations stay float by design ({ops})"]
