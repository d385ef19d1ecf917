"""The fast path never writes into memory the interpreter may have moved.

A Keras 3 Flatten + Dense model, int8 in and out, loaded from bytes and fed float32 rows
straight away: LiteRT re-plans its arena on the first Invoke, so a view of the input buffer
taken after AllocateTensors points at freed memory. Writing through it corrupted the heap
("free(): corrupted unsorted chunks", SIGABRT on a later load). glibc's MALLOC_CHECK_=3 makes
such corruption abort at once, so the check runs in a child process.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest


@pytest.fixture(scope="module")
def keras3_int8(tmp_path_factory, digits_x):
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    out = tmp_path_factory.mktemp("keras3_int8")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1), name="image"), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([digits_x[i:i + 1]] for i in range(len(digits_x)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path = out / "keras3_int8.tflite"
    path.write_bytes(converter.convert())
    np.save(out / "x.npy", digits_x)
    return path


CHILD = textwrap.dedent("""
    import gc, sys
    import numpy as np
    import edge_sdk
    data = open(sys.argv[1], "rb").read()
    x = np.load(sys.argv[2])
    first = None
    for round_ in range(20):
        model = edge_sdk.load(data, num_threads=1)
        outs = [model.predict_all({"image": x[i:i + 1]})["%s"] for i in range(10)]
        outs += [model.predict(x[i:i + 1]) for i in range(10)]
        stacked = np.concatenate(outs)
        assert first is None or np.array_equal(stacked, first), "results changed between rounds"
        first = stacked
        del model
        gc.collect()
    print("ok")
""")


def test_fast_path_survives_the_arena_moving_on_first_invoke(keras3_int8, tmp_path):
    import edge_sdk

    output_name = edge_sdk.load(keras3_int8).outputs[0].name
    script = tmp_path / "child.py"
    script.write_text(CHILD % output_name)
    env = {"MALLOC_CHECK_": "3", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(p for p in sys.path if p)}
    run = subprocess.run([sys.executable, str(script), str(keras3_int8), str(keras3_int8.parent / "x.npy")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.returncode, run.stderr[-2000:])


def test_fast_path_equals_the_general_path_on_that_model(keras3_int8, digits_x):
    import edge_sdk

    fast = edge_sdk.load(keras3_int8.read_bytes())
    general = edge_sdk.load(keras3_int8.read_bytes())
    for i in range(len(digits_x)):
        row = digits_x[i:i + 1]
        # float64 is not the fast path's dtype: the general path converts, quantizes and writes
        assert np.array_equal(fast.predict(row), general.predict(row.astype(np.float64)))
