"""Export a model as TFLite bytes, a SavedModel, a .keras file or ONNX.

ONNX goes through tf2onnx's ``from_function`` on a ``tf.function`` around the
model (``from_keras`` fails on Keras 3 models), opset 17 or newer, and is
checked against onnxruntime on sample inputs before it is accepted.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from converters.errors import ExportError
from converters.loading import KIND_KERAS3, KIND_SAVEDMODEL, KIND_TF_KERAS, LoadedModel

MIN_OPSET = 17


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]


def export_savedmodel(model: LoadedModel, path: Path) -> Path:
    """Write ``model`` as a SavedModel directory with a ``serving_default`` signature."""
    path = Path(path)
    try:
        if model.kind == KIND_TF_KERAS:
            try:
                from training.export import save_savedmodel  # named inputs/outputs, the project's format
            except ImportError:
                save_savedmodel = None
            if save_savedmodel is not None:
                save_savedmodel(model.model, path)
            else:
                model.model.save(str(path), save_format="tf")
        elif model.kind == KIND_KERAS3:
            model.model.export(str(path), format="tf_saved_model", verbose=False)
        else:
            if model.path is None:
                raise ExportError("a SavedModel input without a path cannot be re-exported")
            shutil.copytree(model.path, path)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"SavedModel export of {model.describe()} to {path} failed: {_first_line(exc)}") from None
    return path


def export_keras(model: LoadedModel, path: Path) -> Path:
    """Write a tf_keras or Keras 3 model as a ``.keras`` file (SavedModel inputs cannot)."""
    if model.kind == KIND_SAVEDMODEL:
        raise ExportError(f"{model.describe()} is a SavedModel without Keras layers; expected a Keras model for .keras export")
    try:
        model.model.save(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f".keras export to {path} failed: {_first_line(exc)}") from None
    return Path(path)


@dataclasses.dataclass
class OnnxResult:
    """The ONNX bytes and how closely onnxruntime matched the source model."""

    onnx: bytes
    opset: int
    max_abs_diff: float
    samples_checked: int
    input_names: list
    output_names: list


def export_onnx(
    model: LoadedModel,
    sample_inputs: Dict[str, np.ndarray],
    *,
    opset: int = MIN_OPSET,
    atol: float = 1e-4,
) -> OnnxResult:
    """Convert ``model`` to ONNX and check onnxruntime's outputs against the model's on ``sample_inputs``."""
    if opset < MIN_OPSET:
        raise ExportError(f"ONNX opset: expected {MIN_OPSET} or newer, got {opset}")
    from converters._tf import tf

    import onnxruntime as ort
    import tf2onnx

    specs = model.inputs
    names = [s.name for s in specs]
    signature = [
        tf.TensorSpec([None] + list(s.shape[1:]), tf.as_dtype(s.dtype), name=s.name) for s in specs
    ]
    if model.kind == KIND_SAVEDMODEL:
        serving = model.model.signatures["serving_default"]

        def call(*args):
            result = serving(**dict(zip(names, args)))
            return result[sorted(result)[0]]
    else:
        keras_model = model.model

        def call(*args):
            feed = args[0] if len(args) == 1 else dict(zip(names, args))
            return keras_model(feed, training=False)

    function = tf.function(call, input_signature=signature)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"tf2onnx could not convert {model.describe()} (opset {opset}): {_first_line(exc)}") from None
    onnx_bytes = proto.SerializeToString()
    try:
        session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"onnxruntime rejected the exported ONNX model: {_first_line(exc)}") from None
    ort_inputs = [i.name for i in session.get_inputs()]
    feed_names = dict(zip(names, ort_inputs))
    feed = {feed_names[n]: sample_inputs[n] for n in names}
    got = np.asarray(session.run(None, feed)[0])
    want = model.predict(sample_inputs)
    if got.shape != want.shape:
        raise ExportError(f"ONNX output shape {got.shape} does not match the model's {want.shape}")
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
    if not diff <= atol:
        raise ExportError(
            f"ONNX export disagrees with the source model: max |diff| {diff:.3g} on "
            f"{len(want)} samples, expected <= {atol:g}"
        )
    return OnnxResult(
        onnx=onnx_bytes,
        opset=opset,
        max_abs_diff=diff,
        samples_checked=int(len(want)),
        input_names=ort_inputs,
        output_names=[o.name for o in session.get_outputs()],
    )


def onnx_quick_latency_us(onnx_bytes: bytes, sample: Dict[str, np.ndarray], input_names: list, runs: int = 20) -> Optional[float]:
    """Median microseconds per single-sample onnxruntime run (1 thread)."""
    import time

    import onnxruntime as ort

    if runs <= 0:
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    feed = {n: v[:1] for n, v in zip(input_names, sample.values())}
    session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)
