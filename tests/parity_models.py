"""Small real models on scikit-learn's digits for the parity tests.

* ``build_digits_cnn``: a tiny CNN trained a few epochs (about 95% test accuracy);
* ``add_activation_outlier``: the same function, rewritten so one hidden unit
  carries a constant activation of 2000 that the next layer's bias cancels. The
  float model's outputs do not change, but that unit stretches the int8 range of
  the hidden tensor until ordinary activations round to zero: full int8 loses
  many points, which is what the auto-tuner must recover.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

OUTLIER_VALUE = 2000.0


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as NHWC float32 in [0, 1]: (x_train, y_train, x_test, y_test), 1300 / 497 images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[:1300], order[1300:]
    return x[train], y[train], x[test], y[test]


def build_digits_cnn(x_train: np.ndarray, y_train: np.ndarray, epochs: int = 12, seed: int = 0):
    """Train conv8-conv16-pool-dense32-dense32-dense10 on digits (tf_keras)."""
    from converters._tf import tf_keras

    tf_keras.utils.set_random_seed(seed)
    layers = tf_keras.layers
    model = tf_keras.Sequential(
        [
            layers.Input((8, 8, 1), name="image"),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a"),
            layers.Conv2D(16, 3, activation="relu", name="conv_b"),
            layers.MaxPool2D(name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(32, activation="relu", name="hidden_a"),
            layers.Dense(32, activation="relu", name="hidden_b"),
            layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def add_activation_outlier(model, x_train: np.ndarray, value: float = OUTLIER_VALUE):
    """Make the least-used unit of ``hidden_a`` a constant ``value`` and cancel it in ``hidden_b``'s bias."""
    from converters._tf import tf_keras

    clone = tf_keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    probe = tf_keras.Model(clone.input, clone.get_layer("hidden_a").output)
    unit = int(np.argmin(probe.predict(x_train, verbose=0).mean(axis=0)))
    kernel, bias = clone.get_layer("hidden_a").get_weights()
    kernel[:, unit] = 0.0
    bias[unit] = value
    clone.get_layer("hidden_a").set_weights([kernel, bias])
    kernel_b, bias_b = clone.get_layer("hidden_b").get_weights()
    bias_b = bias_b - kernel_b[unit, :] * value
    clone.get_layer("hidden_b").set_weights([kernel_b, bias_b])
    return clone


def to_tflite(model, calibration: np.ndarray, mode: str = "int8") -> bytes:
    """Convert a tf_keras model: ``int8`` (int8 in/out), ``float32`` or ``dynamic``."""
    from converters._tf import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode in ("int8", "dynamic"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":

        def representative():
            for i in range(min(200, len(calibration))):
                yield [calibration[i : i + 1]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def save_savedmodel(model, path: Path) -> Path:
    """A plain SavedModel with a ``serving_default`` signature (no Keras metadata)."""
    from converters._tf import tf

    spec = tf.TensorSpec([None, 8, 8, 1], tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(image):
        return {"probs": model(image, training=False)}

    tf.saved_model.save(model, str(path), signatures={"serving_default": serve})
    return path


def _write(model, directory: Path, x_train, y_train, x_test, y_test) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    keras_path = directory / "model.keras"
    model.save(keras_path)
    sm = save_savedmodel(model, directory / "saved_model")
    int8 = directory / "model_int8.tflite"
    int8.write_bytes(to_tflite(model, x_train, "int8"))
    np.savez(directory / "test.npz", x=x_test, y=y_test)
    np.savez(directory / "train.npz", x=x_train, y=y_train)
    return {
        "keras": keras_path,
        "savedmodel": sm,
        "int8": int8,
        "test": directory / "test.npz",
        "train": directory / "train.npz",
        "dir": directory,
    }


def write_digits_artifacts(directory: Path) -> dict[str, dict[str, Path]]:
    """Train once; write ``normal/`` and ``outlier/`` (model.keras, saved_model/, model_int8.tflite, test/train.npz)."""
    x_train, y_train, x_test, y_test = digits_split()
    model = build_digits_cnn(x_train, y_train)
    normal = _write(model, directory / "normal", x_train, y_train, x_test, y_test)
    outlier = _write(add_activation_outlier(model, x_train), directory / "outlier", x_train, y_train, x_test, y_test)
    return {"normal": normal, "outlier": outlier}


if __name__ == "__main__":  # reproduce the docs' figures: python tests/parity_models.py OUTDIR
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "parity-demo")
    for kind, paths in write_digits_artifacts(target).items():
        print(kind, {k: str(v) for k, v in paths.items()})
