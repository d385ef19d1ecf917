"""Keras recurrent layers into TFLite builtins (issue 23 item 6): unrolled, stateless, or refused in one line.

The whole LSTM / GRU conversions (int8, dynamic, fp16 with agreement on held-out digits) run in
tests/converters/test_conformance.py; here, the unrolling itself on untrained tiny models.
"""

from __future__ import annotations

import numpy as np
import pytest


def _model(layer, timesteps=8, **kwargs):
    from converters._tf import tf_keras

    tf_keras.utils.set_random_seed(0)
    batch = {"batch_size": 1} if kwargs.get("stateful") else {}
    rows = tf_keras.Input((timesteps, 4), name="rows", **batch)
    hidden = getattr(tf_keras.layers, layer)(6, name="rnn", **kwargs)(rows)
    return tf_keras.Model(rows, tf_keras.layers.Dense(3, activation="softmax", name="probs")(hidden))


def test_lstm_float32_tflite_is_stateless_and_equals_keras():
    """A fixed-batch fused LSTM keeps its state in variable tensors across invokes; the unrolled one does not."""
    import edge_sdk
    from converters import tflite_convert
    from converters.model_files import from_keras
    from edge_sdk.inspect_model import inspect_model

    model = from_keras(_model("LSTM"))
    tflite = tflite_convert.convert(model, "float32").tflite
    info = inspect_model(tflite)
    assert not any(t["variable"] for t in info["tensors"])
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in {op["name"] for op in info["operators"]}
    x = np.random.default_rng(0).random((5, 8, 4), dtype=np.float32)
    runtime = edge_sdk.load(tflite, num_threads=1)
    one_by_one = np.concatenate([np.asarray(runtime.predict(x[i : i + 1])) for i in (0, 1, 2, 3, 4)])
    np.testing.assert_allclose(one_by_one, model.model.predict(x, verbose=0), atol=1e-5)
    assert model.model.layers[1].unroll is False  # the user's model is left as it was


@pytest.mark.parametrize(
    "layer, kwargs, timesteps, message",
    [
        ("GRU", {"stateful": True}, 8, "are stateful: expected stateless RNN layers"),
        ("LSTM", {}, None, "has a variable number of timesteps"),
    ],
)
def test_what_cannot_unroll_is_refused_in_one_line(layer, kwargs, timesteps, message):
    from converters.errors import ConversionError
    from converters.model_files import from_keras
    from converters.recurrent import convertible

    with pytest.raises(ConversionError, match=message) as info:
        convertible(from_keras(_model(layer, timesteps, **kwargs)))
    assert "\n" not in str(info.value)
