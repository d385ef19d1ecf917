"""Tiny real models on scikit-learn's digits: a conv8-dense10 CNN trained for a moment, and its TFLite files.

Shared by the fuzz tool (``tools/fuzz_tflite.py --make-models``) and the runtime and reliability tests,
which need small models with real (trained, not random) weights, built offline in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def digits_data(n: int = 600):
    """The first ``n`` scikit-learn digits scaled to [0, 1], NHWC float32, and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    return x[:n], digits.target[:n].astype(np.int64)


def train_tiny_digits_cnn(x: np.ndarray, y: np.ndarray, epochs: int):
    """conv8-dense10 on digits (input 'image', output 'probs'), trained for a moment: real, not random, weights."""
    import tf_keras as keras

    # Python's, numpy's and TensorFlow's seeds all: tf.random.set_seed alone left the initial weights to
    # whatever random state earlier code in the process had left, so the model (and tests' agreement
    # figures) changed with test order.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def first_rows(x: np.ndarray, n: int = 100):
    """A TFLite representative dataset: the first ``n`` rows of ``x``, one at a time."""

    def representative():
        for i in range(n):
            yield [x[i : i + 1]]

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


def build_digits_models(out: Path, *, force: bool = False) -> dict[str, Path]:
    """Train a small CNN on digits for a few epochs; write float32.tflite and int8.tflite with manifests.

    ``out`` must be new, empty, or a folder edge-sdk wrote (the marker
    :data:`edge_sdk.outputs.MARKER_FILE` this leaves); any other non-empty folder raises
    :class:`~edge_sdk.errors.OutputError` before training unless ``force=True`` (which writes
    into it: the same-named files are replaced, atomically, others kept).
    """
    import io

    from edge_sdk.fileio import atomic_write_bytes
    from edge_sdk.outputs import check_dir_output, mark_output_dir

    out = Path(out)
    check_dir_output(out, "out", force=force, replace=False, force_hint="force=True")
    import tensorflow as tf

    import edge_sdk
    from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest

    mark_output_dir(out, "training.tiny_models.build_digits_models")  # creates the folder

    x, y = digits_data()
    model = train_tiny_digits_cnn(x[:500], y[:500], epochs=4)
    float_conv = tf.lite.TFLiteConverter.from_keras_model(model)
    int8_conv = full_integer_converter(model, first_rows(x), tf.int8)

    paths: dict[str, Path] = {}
    for name, conv, kind in (("float32", float_conv, "float32"), ("int8", int8_conv, "int8")):
        data = conv.convert()
        path = out / f"{name}.tflite"
        atomic_write_bytes(path, data)
        loaded = edge_sdk.load(data)
        accuracy = float((loaded.predict(x[500:]).argmax(axis=1) == y[500:]).mean())
        manifest = build_manifest(
            data,
            path.name,
            kind=kind,
            stage="quantize" if kind == "int8" else "export",
            inputs=loaded.inputs,
            outputs=loaded.outputs,
            labels=[str(i) for i in range(10)],
            preprocessing={"scale": 1.0 / 16.0, "offset": 0.0},
            metrics={"accuracy": accuracy},
        )
        write_manifest(manifest, manifest_path_for(path))
        paths[name] = path
    buffer = io.BytesIO()
    np.save(buffer, x[500:600])
    atomic_write_bytes(out / "x.npy", buffer.getvalue())
    paths["x"] = out / "x.npy"
    return paths


def digits_token_data(n: int = 1797):
    """scikit-learn's digits as a text-like task: 64 int32 tokens (pixel levels 0-16) and 8 float features.

    Returns ``({"tokens": (n, 64) int32, "features": (n, 8) float32}, labels)``; the features are the
    row means scaled to [0, 1]. Real data with the shape of a small text classifier's inputs.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    tokens = digits.images.reshape(len(digits.images), 64).astype(np.int32)[:n]
    features = (digits.images.mean(axis=2) / 16.0).astype(np.float32)[:n]
    return {"tokens": tokens, "features": features}, digits.target[:n].astype(np.int64)


def build_text_transformer(
    seed: int = 0,
    *,
    width: int = 32,
    heads: int = 2,
    epochs: int = 4,
    train_rows: int = 1200,
    learning_rate: float = 3e-3,
):
    """A Keras 3 transformer encoder classifier, trained briefly on :func:`digits_token_data`.

    Embedding + learned positions, MultiHeadAttention, two LayerNormalizations, a GELU dense block, flatten, a
    second float input joined before the softmax head: the architecture where full int8 runs slower than
    float32 on x86 (attention and normalization fall back to int8 reference kernels).
    """
    import keras  # Keras 3, as a user's model would be

    keras.utils.set_random_seed(seed)
    inputs, labels = digits_token_data()
    tokens = keras.Input((64,), dtype="int32", name="tokens")
    features = keras.Input((8,), dtype="float32", name="features")
    x = keras.layers.Embedding(17, width)(tokens)
    positions = keras.layers.Embedding(64, width)(keras.ops.arange(64))
    x = x + positions
    attended = keras.layers.MultiHeadAttention(heads, width // heads)(x, x)
    x = keras.layers.LayerNormalization()(x + attended)
    hidden = keras.layers.Dense(2 * width, activation="gelu")(x)
    x = keras.layers.LayerNormalization()(x + keras.layers.Dense(width)(hidden))
    x = keras.layers.Flatten()(x)
    x = keras.layers.Concatenate()([x, keras.layers.Dense(8, activation="relu")(features)])
    probs = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    model = keras.Model({"tokens": tokens, "features": features}, probs, name="text_transformer")
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    train = {name: arr[:train_rows] for name, arr in inputs.items()}
    model.fit(train, labels[:train_rows], epochs=epochs, batch_size=32, verbose=0)
    return model


def build_digits_rnn(
    layer: str = "LSTM",
    *,
    keras3: bool = False,
    units: int = 32,
    epochs: int = 3,
    train_rows: int = 1400,
    seed: int = 0,
):
    """A tiny recurrent classifier on scikit-learn's digits read as 8 timesteps of 8 pixels, trained briefly.

    ``layer``: ``LSTM`` or ``GRU`` (stateless, one recurrent layer of ``units``) then a softmax
    ``Dense(10)``; input ``rows`` (8, 8) float32 in [0, 1], output ``probs``. ``keras3``: build it with
    Keras 3 (saved as ``.keras``), else tf_keras (``.h5`` or ``.keras``). Trained on the first
    ``train_rows`` digits for ``epochs``; the rest is held out.
    """
    if keras3:
        import keras
    else:
        import tf_keras as keras
    from sklearn.datasets import load_digits

    if layer not in ("LSTM", "GRU"):
        raise ValueError(f"layer: expected 'LSTM' or 'GRU', got {layer!r}")
    keras.utils.set_random_seed(seed)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    rows = keras.Input((8, 8), name="rows")
    hidden = getattr(keras.layers, layer)(units, name=layer.lower())(rows)
    probs = keras.layers.Dense(10, activation="softmax", name="probs")(hidden)
    model = keras.Model(rows, probs, name=f"digits_{layer.lower()}")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:train_rows], digits.target[:train_rows], epochs=epochs, batch_size=32, verbose=0)
    return model
