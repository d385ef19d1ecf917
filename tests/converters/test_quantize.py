"""Post-training quantization modes, float-op report, sparsity through int8, QAT."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from converters import model_files, quantize, tflite_convert
from converters.errors import CalibrationError
from edge_sdk.inspect_model import inspect_model
from edge_sdk.metrics import accuracy


def _accuracy(tflite: bytes, digits) -> float:
    model = edge_sdk.load(tflite, verify=False)
    return accuracy(model.predict(digits.x_test), digits.y_test)


@pytest.fixture(scope="module")
def teacher(digits_models):
    return model_files.load(digits_models.teacher_keras)


@pytest.fixture(scope="module")
def float_result(teacher):
    return tflite_convert.convert(teacher, "float32")


def test_full_int8_is_integer_everywhere_and_keeps_accuracy(teacher, float_result, digits):
    result = tflite_convert.convert(teacher, "int8", calibration={"image": digits.x_train}, calibration_samples=200)
    info = inspect_model(result.tflite)
    assert info["kind"] == "full-integer" and result.float_ops == {}
    assert result.manifest_kind == "int8"
    model = edge_sdk.load(result.tflite, verify=False)
    assert model.inputs[0].dtype == np.int8 and model.outputs[0].dtype == np.int8
    assert model.inputs[0].quantization is not None
    assert len(result.tflite) < 0.3 * len(float_result.tflite)
    float_acc = _accuracy(float_result.tflite, digits)
    assert float_acc > 0.85
    assert _accuracy(result.tflite, digits) >= float_acc - 0.02
    stats = result.calibration["image"]
    assert stats["samples"] == 200 and stats["nan_count"] == 0
    assert 0.0 <= stats["min"] < stats["mean"] < stats["max"] <= 1.0


def test_int8_with_float_io_keeps_float_edges(teacher, digits):
    result = tflite_convert.convert(teacher, "int8", calibration={"image": digits.x_train[:100]}, io="float32")
    model = edge_sdk.load(result.tflite, verify=False)
    assert model.inputs[0].dtype == np.float32 and model.outputs[0].dtype == np.float32
    assert result.float_ops == {}  # QUANTIZE/DEQUANTIZE at the edges are not counted as float compute


def test_dynamic_and_float16_modes(teacher, float_result, digits):
    dynamic = tflite_convert.convert(teacher, "dynamic")
    assert inspect_model(dynamic.tflite)["kind"] == "dynamic-range"
    assert dynamic.float_ops  # activations stay float by design, and the report says which ops
    assert any("by design" in line for line in quantize.summarize_float_ops(dynamic))
    half = tflite_convert.convert(teacher, "float16")
    assert inspect_model(half.tflite)["kind"] == "float16-weight"
    assert 0.45 < len(half.tflite) / len(float_result.tflite) < 0.6
    assert abs(_accuracy(half.tflite, digits) - _accuracy(float_result.tflite, digits)) < 0.01


def test_int8_without_calibration_data_is_refused(teacher):
    with pytest.raises(CalibrationError, match="needs calibration data"):
        tflite_convert.convert(teacher, "int8", calibration=None)


def test_keras3_model_takes_post_training_int8(digits_models, digits):
    model = model_files.load(digits_models.keras3)
    result = tflite_convert.convert(model, "int8", calibration={"image": digits.x_train[:100]})
    assert inspect_model(result.tflite)["kind"] == "full-integer"
    float_acc = accuracy(model.predict({"image": digits.x_test}), digits.y_test)
    assert float_acc > 0.8
    assert _accuracy(result.tflite, digits) >= float_acc - 0.03


def test_pruned_zeros_survive_int8_and_qat(teacher, digits):
    from converters import prune

    pruned = prune.prune(
        teacher.model,
        {"image": digits.x_train},
        digits.y_train,
        target_sparsity=0.75,
        epochs=2,
        batch_size=32,
        min_share=0.0,
    )
    as_loaded = model_files.from_keras(pruned.model)
    ptq = tflite_convert.convert(as_loaded, "int8", calibration={"image": digits.x_train[:100]})
    sparsity = quantize.weight_sparsity(ptq.tflite)
    assert sparsity and min(sparsity.values()) >= 0.74
    qat_model = quantize.qat(pruned.model, {"image": digits.x_train}, digits.y_train, epochs=1, preserve_sparsity=True)
    qat = tflite_convert.convert(model_files.from_keras(qat_model), "int8", calibration={"image": digits.x_train[:100]})
    assert inspect_model(qat.tflite)["kind"] == "full-integer"
    assert min(quantize.weight_sparsity(qat.tflite).values()) >= 0.74
    assert _accuracy(qat.tflite, digits) > 0.8
