"""One-value quantized inputs (tabular features) are rounded in Python on predict's fast path; the value
written into the interpreter must be exactly quant.quantize()'s, above all next to halfway points, where
rounding the float64 quotient directly and rounding it to float32 first can disagree."""
import warnings

import numpy as np
import pytest

import edge_sdk
from edge_sdk.quant import QuantizationClipWarning, quantize


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    from runtime_model_factory import build_tabular_models

    return build_tabular_models(tmp_path_factory.mktemp("tabular_rounding"))


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
