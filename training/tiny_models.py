"""Tiny real models on scikit-learn's digits: a conv8-dense10 CNN trained for a moment, and its TFLite files.

Shared by the fuzz tool (``tools/fuzz_tflite.py --make-models``) and the runtime and reliability tests,
which need small models with real (trained, not random) weights, built offline in seconds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np


def digits_data(n: int = 600):
    """The first ``n`` scikit-learn digits scaled to [0, 1], NHWC float32, and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    return x[:n], digits.target[:n].astype(np.int64)


def train_tiny_digits_cnn(x: np.ndarray, y: np.ndarray, epochs: int):
    """conv8-dense10 on digits (input 'image', output 'probs'), trained for a moment: real, not random, weights."""
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(0)
    model = keras.Sequential([
        keras.layers.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="probs"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def first_rows(x: np.ndarray, n: int = 100):
    """A TFLite representative dataset: the first ``n`` rows of ``x``, one at a time."""
    def representative():
        for i in range(n):
            yield [x[i:i + 1]]
    return representative


def full_integer_converter(model, representative, io_type):
    """A TFLiteConverter for full-integer quantization with ``io_type`` (tf.int8/tf.uint8) input and output."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = io_type
    conv.inference_output_type = io_type
    return conv


def build_digits_models(out: Path) -> Dict[str, Path]:
    """Train a small CNN on digits for a few epochs; write float32.tflite and int8.tflite with manifests."""
    import tensorflow as tf

    import edge_sdk
    from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest

    x, y = digits_data()
    model = train_tiny_digits_cnn(x[:500], y[:500], epochs=4)
    float_conv = tf.lite.TFLiteConverter.from_keras_model(model)
    int8_conv = full_integer_converter(model, first_rows(x), tf.int8)

    paths: Dict[str, Path] = {}
    for name, conv, kind in (("float32", float_conv, "float32"), ("int8", int8_conv, "int8")):
        data = conv.convert()
        path = out / f"{name}.tflite"
        path.write_bytes(data)
        loaded = edge_sdk.load(data)
        accuracy = float((loaded.predict(x[500:]).argmax(axis=1) == y[500:]).mean())
        manifest = build_manifest(data, path.name, kind=kind, stage="quantize" if kind == "int8" else "export",
                                  inputs=loaded.inputs, outputs=loaded.outputs,
                                  labels=[str(i) for i in range(10)],
                                  preprocessing={"scale": 1.0 / 16.0, "offset": 0.0},
                                  metrics={"accuracy": accuracy})
        write_manifest(manifest, manifest_path_for(path))
        paths[name] = path
    np.save(out / "x.npy", x[500:600])
    paths["x"] = out / "x.npy"
    return paths
