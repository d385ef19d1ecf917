"""Fixtures for the converter tests: real digits data (scikit-learn) and tiny tf_keras models.

Models are small enough to train in about a second; they are built once per
session and saved in every input format the converter accepts.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int64")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    return types.SimpleNamespace(
        name="digits",
        task="image",
        x_train=x[:1200],
        y_train=y[:1200],
        x_val=x[1200:1400],
        y_val=y[1200:1400],
        x_test=x[1400:],
        y_test=y[1400:],
        num_classes=10,
        labels=[str(i) for i in range(10)],
        preprocessing={
            "scale": 1 / 16,
            "offset": 0.0,
            "layout": "NHWC",
            "image": {"height": 8, "width": 8, "channels": 1},
        },
    )


@pytest.fixture(scope="session")
def digits():
    """scikit-learn digits as a Dataset-like object (8x8x1 float32 in [0, 1])."""
    return _digits()


def build_cnn(width: int, name: str = "cnn"):
    """A tiny digits CNN in tf_keras with an input called 'image'."""
    from converters._tf import tf_keras

    layers = tf_keras.layers
    inputs = tf_keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(width, 3, activation="relu", name="conv")(inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(width * 4, activation="relu", name="dense")(x)
    outputs = layers.Dense(10, activation="softmax", name="probabilities")(x)
    return tf_keras.Model(inputs, outputs, name=name)


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory, digits):
    """A trained teacher (tf_keras .keras, .h5, SavedModel), an untrained student file, a Keras 3 file."""
    from converters._tf import tf_keras
    from converters.finetune import compile_and_fit

    root: Path = tmp_path_factory.mktemp("digits_models")
    tf_keras.utils.set_random_seed(0)
    teacher = build_cnn(16, "teacher")
    compile_and_fit(teacher, {"image": digits.x_train}, digits.y_train, epochs=6, batch_size=32, learning_rate=3e-3)
    teacher.save(root / "teacher.keras")
    teacher.save(root / "teacher.h5")
    teacher.save(root / "teacher_savedmodel", save_format="tf")
    build_cnn(4, "student").save(root / "student.keras")

    import keras  # Keras 3, as a user might have

    k3 = keras.Sequential(
        [keras.Input((8, 8, 1), name="image"), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    k3.compile("adam", "sparse_categorical_crossentropy")
    k3.fit(digits.x_train, digits.y_train, epochs=15, verbose=0)
    k3.save(root / "keras3.keras")

    np.save(root / "calib.npy", digits.x_train[:200])
    np.savez(root / "eval.npz", image=digits.x_test, y=digits.y_test)
    np.savez(root / "train.npz", x=digits.x_train, y=digits.y_train)
    return types.SimpleNamespace(
        root=root,
        teacher=teacher,
        teacher_keras=root / "teacher.keras",
        teacher_h5=root / "teacher.h5",
        teacher_savedmodel=root / "teacher_savedmodel",
        student_keras=root / "student.keras",
        keras3=root / "keras3.keras",
        calib=root / "calib.npy",
        eval=root / "eval.npz",
        train=root / "train.npz",
    )
