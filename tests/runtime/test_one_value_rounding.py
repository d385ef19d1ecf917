"""One-value quantized inputs (tabular features) are rounded in Python on predict's fast path; the value
written into the interpreter must be exactly quant.quantize()'s, above all next to halfway points, where
rounding the float64 quotient directly and rounding it to float32 first can disagree."""

import warnings

import numpy as np
import pytest

import edge_sdk
from edge_sdk.quant import QuantizationClipWarning, quantize


@pytest.fixture(scope="module")
def tabular(runtime_models):
    """The 13-input Wide & Deep-shaped pair (runtime_model_factory.build_tabular_models, built once per session)."""
    return {name: runtime_models[name] for name in ("tabular_float32", "tabular_int8")}


def near_halves(scale: np.float32, count: int = 400) -> np.ndarray:
    """Float32 values whose quotient by ``scale`` lies at or within a few ulps of k + 0.5, k across the range."""
    rng = np.random.default_rng(7)
    ks = rng.integers(-140, 140, size=count).astype(np.float32)
    centre = ((ks + np.float32(0.5)) * scale).astype(np.float32)
    steps = rng.integers(-3, 4, size=count)
    values = centre.copy()
    for i, step in enumerate(steps):
        for _ in range(abs(int(step))):
            values[i] = np.nextafter(values[i], np.float32(np.inf if step > 0 else -np.inf))
    return values


def test_one_value_inputs_store_exactly_what_quantize_gives_next_to_halves(tabular, monkeypatch):
    model = edge_sdk.load(tabular["tabular_int8"])
    ports = model._default.inputs
    row = {p.name: np.zeros((1, 1), np.float32) for p in ports}
    model.predict(row)  # takes the views
    monkeypatch.setattr(model, "_call_general", lambda *a, **k: pytest.fail("the general path ran"))
    first = ports[0]
    scale = np.float32(first.spec.quantization.scale)
    zero = first.spec.quantization.zero_point
    values = np.concatenate([near_halves(scale), np.float32([0.0, -0.0, 1e-30, 2.0**17 * scale, 3e38, -3e38])])
    # The set must tell the two roundings apart, or it proves nothing about the float32 step.
    quotients = values.astype(np.float64) / np.float64(scale)
    assert any(round(float(q)) != round(float(np.float32(q))) for q in quotients)
    stored_values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationClipWarning)
        for value in values:
            row[first.name] = np.array([[value]], np.float32)
            model.predict(row)
            stored_values.append(int(model._wrapper.GetTensor(first.index, model._default.subgraph)[0, 0]))
    expected = quantize(values, scale, zero, np.int8).astype(int)
    np.testing.assert_array_equal(stored_values, expected)


def with_odd_input_zero_point(path, out_path):
    """The model at ``path`` with its first input's zero point moved to an odd value (one step up)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(path.read_bytes()))
    graph = model.subgraphs[0]
    quantization = graph.tensors[graph.inputs[0]].quantization
    zero = int(quantization.zeroPoint[0])
    quantization.zeroPoint[0] = zero + 1 if zero % 2 == 0 else zero
    out_path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return out_path


def test_array_input_with_an_odd_zero_point_stores_what_quantize_gives(runtime_models, digits_x, tmp_path, monkeypatch):
    """An odd zero point cannot be folded into the rounding constant: the fast path adds it to the low bytes."""
    path = with_odd_input_zero_point(runtime_models["int8"], tmp_path / "odd_zero.tflite")
    model = edge_sdk.load(path)
    spec = model.inputs[0]
    assert spec.quantization.zero_point % 2 == 1
    port = model._default.inputs[0]
    model.predict(digits_x[:1])
    monkeypatch.setattr(model, "_call_general", lambda *a, **k: pytest.fail("the general path ran"))
    scale = np.float32(spec.quantization.scale)
    halfway = (
        (np.arange(-140, 140, 280 / 64, dtype=np.float32)[:64].reshape(1, 8, 8, 1).round() + np.float32(0.5)) * scale
    ).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationClipWarning)
        for x in (digits_x[:1], halfway, -digits_x[1:2] * 3):
            model.predict(x)
            written = model._wrapper.GetTensor(port.index, model._default.subgraph)
            np.testing.assert_array_equal(written, quantize(x, scale, spec.quantization.zero_point, np.int8))
