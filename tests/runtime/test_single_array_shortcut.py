"""predict's one-array shortcut (one float32 array -> one 8-bit input -> one 8-bit output, LiteRT's buffers
used in place) gives the general path's results bit for bit, refuses NaN/inf, and steps aside after resizes."""

import warnings

import numpy as np
import pytest

import edge_sdk
from edge_sdk.quant import QuantizationClipWarning


def shortcut_only(model, monkeypatch):
    """Make every other route fail loudly, so a test proves the shortcut ran."""

    def refuse(*args, **kwargs):
        raise AssertionError("predict left the one-array shortcut")

    monkeypatch.setattr(model, "_call", refuse)


@pytest.mark.parametrize("name", ["int8", "uint8"])
def test_shortcut_equals_the_general_path_bit_for_bit(runtime_models, digits_x, name, monkeypatch):
    model = edge_sdk.load(runtime_models[name])
    general = edge_sdk.load(runtime_models[name])
    scale = np.float32(model.inputs[0].quantization.scale)
    rng = np.random.default_rng(1)
    halfway = ((rng.integers(-300, 300, size=(1, 8, 8, 1)) + 0.5) * scale).astype(np.float32)
    rows = [digits_x[i : i + 1] for i in range(6)] + [
        halfway,
        -halfway,
        digits_x[:1] * 50,
        np.full((1, 8, 8, 1), 3e38, np.float32),
    ]
    model.predict(rows[0])  # takes the views; the first Invoke checks they stayed put
    shortcut = model.backend == "litert"  # the shortcut writes into LiteRT's buffers; tflite-runtime stages
    assert (model._single is not None) == shortcut, model.backend
    expected = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in rows:  # float64 is not the fast dtype: the general path converts, quantizes and writes
            expected.append(general.predict(x.astype(np.float64)))
        if shortcut:
            shortcut_only(model, monkeypatch)
        for x, want in zip(rows, expected, strict=False):
            np.testing.assert_array_equal(model.predict(x), want)
        bad = digits_x[:1].copy()
        bad[0, 1, 2, 0] = np.inf
        with pytest.raises(edge_sdk.NonFiniteInputError, match="'image'.*1 NaN/inf"):
            model.predict(bad)


def test_shortcut_warns_about_clipping_and_steps_aside_after_a_resize(runtime_models, digits_x):
    model = edge_sdk.load(runtime_models["int8"])
    shortcut = model.backend == "litert"  # tflite-runtime: never the shortcut, the same results
    single = [model.predict(digits_x[i : i + 1]) for i in range(3)]
    assert (model._single is not None) == shortcut, model.backend
    np.testing.assert_array_equal(model.predict(digits_x[:3]), np.concatenate(single))  # resizes: shortcut off
    assert model._single is None
    np.testing.assert_array_equal(model.predict(digits_x[1:2]), single[1])
    np.testing.assert_array_equal(model.predict(digits_x[2:3]), single[2])
    assert (model._single is not None) == shortcut  # views re-taken and re-checked for batch 1
    with pytest.warns(QuantizationClipWarning, match="'image'"):
        model.predict(digits_x[:1] * 255)  # raw pixels for a model calibrated on [0, 1]
