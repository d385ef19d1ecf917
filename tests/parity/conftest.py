"""Fixtures for the parity tests: real digits models, trained once per session."""

import os

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


@pytest.fixture(scope="session")
def digits(parity_digits):
    """The shared parity digits models (tests/conftest.py ``parity_digits``), by this folder's old name."""
    return parity_digits


@pytest.fixture(scope="session")
def other_signature_tflite(tmp_path_factory):
    """A float .tflite taking 64 features instead of an 8x8x1 image (an unrelated model)."""
    from converters._tf import tf, tf_keras

    tf_keras.utils.set_random_seed(1)
    model = tf_keras.Sequential(
        [tf_keras.layers.Input((64,), name="features"), tf_keras.layers.Dense(10, activation="softmax", name="probs")]
    )
    path = tmp_path_factory.mktemp("parity-other") / "other.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@pytest.fixture(scope="session")
def other_outputs_tflite(tmp_path_factory):
    """A float .tflite with the digits model's input but 3 classes instead of 10."""
    from converters._tf import tf, tf_keras

    tf_keras.utils.set_random_seed(2)
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Input((8, 8, 1), name="image"),
            tf_keras.layers.Flatten(),
            tf_keras.layers.Dense(3, activation="softmax", name="probs"),
        ]
    )
    path = tmp_path_factory.mktemp("parity-other-out") / "three.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path
