"""Small real .tflite models for the runtime tests, built with TensorFlow (the convert extra).

Trained for a moment on scikit-learn's bundled digits, so outputs are real
class probabilities, not random weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.tiny_models import digits_data, first_rows, full_integer_converter, train_tiny_digits_cnn


def build_models(out: Path) -> dict[str, Path]:
    """Write every test model into ``out`` and return name -> path."""
    import tensorflow as tf
    import tf_keras as keras

    x, y = digits_data()
    model = train_tiny_digits_cnn(x, y, epochs=3)
    representative = first_rows(x)

    paths: dict[str, Path] = {}

    def write(name: str, converter) -> None:
        path = out / f"{name}.tflite"
        path.write_bytes(converter.convert())
        paths[name] = path

    write("float32", tf.lite.TFLiteConverter.from_keras_model(model))

    for name, io_type in (("int8", tf.int8), ("uint8", tf.uint8)):  # full integer, integer I/O
        write(name, full_integer_converter(model, representative, io_type))

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    write("dynamic_range", conv)

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    write("float16", conv)

    # Fixed batch of 1: the runtime must loop over rows.
    fixed = tf.function(lambda t: model(t), input_signature=[tf.TensorSpec([1, 8, 8, 1], tf.float32)])
    write("fixed_batch", tf.lite.TFLiteConverter.from_concrete_functions([fixed.get_concrete_function()], model))

    # Two named inputs, one of them integer indices (like the Wide & Deep model).
    dense_in = keras.layers.Input((3,), name="numeric")
    idx_in = keras.layers.Input((1,), name="category", dtype="int32")
    emb = keras.layers.Flatten()(keras.layers.Embedding(5, 2)(idx_in))
    joined = keras.layers.Concatenate()([dense_in, emb])
    two = keras.Model([dense_in, idx_in], keras.layers.Dense(2, name="score")(joined))
    write("two_inputs", tf.lite.TFLiteConverter.from_keras_model(two))

    # Several signatures, and state that persists across calls.
    class Counter(tf.Module):
        def __init__(self):
            super().__init__()
            self.total = tf.Variable(tf.zeros([1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([1, 2], tf.float32, name="x")])
        def accumulate(self, x):
            self.total.assign_add(x)
            return {"total": self.total.read_value()}

        @tf.function(input_signature=[tf.TensorSpec([1, 2], tf.float32, name="x")])
        def double(self, x):
            return {"y": x * 2.0}

    counter = Counter()
    saved = out / "counter_savedmodel"
    tf.saved_model.save(
        counter,
        str(saved),
        signatures={
            "accumulate": counter.accumulate.get_concrete_function(),
            "double": counter.double.get_concrete_function(),
        },
    )
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["accumulate", "double"])
    conv.experimental_enable_resource_variables = True
    write("stateful", conv)

    np.save(out / "x.npy", x[:32])
    np.save(out / "y.npy", y[:32])
    return paths


def build_tabular_models(out: Path, features: int = 13) -> dict[str, Path]:
    """A Wide & Deep-shaped toy: ``features`` one-value float inputs -> one sigmoid unit; float32 and full int8."""
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    inputs = [keras.layers.Input((1,), name=f"f{i}") for i in range(features)]
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden))
    samples = rng.normal(size=(200, features)).astype(np.float32)

    def representative():
        for row in samples[:100]:
            yield [row[i].reshape(1, 1) for i in range(features)]

    paths = {"tabular_float32": out / "tabular_float32.tflite", "tabular_int8": out / "tabular_int8.tflite"}
    paths["tabular_float32"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    paths["tabular_int8"].write_bytes(full_integer_converter(model, representative, tf.int8).convert())
    return paths
