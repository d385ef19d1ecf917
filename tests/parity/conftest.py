"""Fixtures for the parity tests: real digits models, trained once per session."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """``{"normal": {...}, "outlier": {...}}`` paths; see model_factory.write_digits_artifacts."""
    from model_factory import write_digits_artifacts

    return write_digits_artifacts(tmp_path_factory.mktemp("parity-digits"))


@pytest.fixture(scope="session")
def other_signature_tflite(tmp_path_factory):
    """A float .tflite taking 64 features instead of an 8x8x1 image (an unrelated model)."""
    from converters._tf import tf, tf_keras

    tf_keras.utils.set_random_seed(1)
    model = tf_keras.Sequential([tf_keras.layers.Input((64,), name="features"),
                                 tf_keras.layers.Dense(10, activation="softmax", name="probs")])
    path = tmp_path_factory.mktemp("parity-other") / "other.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@pytest.fixture(scope="session")
def other_outputs_tflite(tmp_path_factory):
    """A float .tflite with the digits model's input but 3 classes instead of 10."""
    from converters._tf import tf, tf_keras

    tf_keras.utils.set_random_seed(2)
    model = tf_keras.Sequential([tf_keras.layers.Input((8, 8, 1), name="image"), tf_keras.layers.Flatten(),
                                 tf_keras.layers.Dense(3, activation="softmax", name="probs")])
    path = tmp_path_factory.mktemp("parity-other-out") / "three.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path
