"""The fast path never writes into memory the interpreter may have moved.

A Keras 3 Flatten + Dense model, int8 in and out, loaded from bytes and fed float32 rows
straight away: its Flatten is Shape/StridedSlice/Pack/Reshape, so the Reshape's output is a
dynamic tensor, allocation stops preparing ops there, and the first Invoke prepares the rest and
re-plans (grows, moves) the arena: a view of the input buffer taken after AllocateTensors then
points at freed memory. Writing through it corrupted the heap ("free(): corrupted unsorted
chunks", SIGABRT on a later load). glibc's MALLOC_CHECK_=3 makes such corruption abort at once,
so those checks run in a child process. Graphs without dynamic tensors keep their buffers in
place until the next allocation, and there the fast path writes straight into them.
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
    model = keras.Sequential(
        [keras.Input((8, 8, 1), name="image"), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([digits_x[i : i + 1]] for i in range(len(digits_x)))
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
    run = subprocess.run(
        [sys.executable, str(script), str(keras3_int8), str(keras3_int8.parent / "x.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.returncode, run.stderr[-2000:])


def test_fast_path_equals_the_general_path_on_that_model(keras3_int8, digits_x):
    import edge_sdk

    fast = edge_sdk.load(keras3_int8.read_bytes())
    general = edge_sdk.load(keras3_int8.read_bytes())
    for i in range(len(digits_x)):
        row = digits_x[i : i + 1]
        # float64 is not the fast path's dtype: the general path converts, quantizes and writes
        assert np.array_equal(fast.predict(row), general.predict(row.astype(np.float64)))


def quantized_ports(model):
    return [p for p in model._default.inputs if p.quantizer is not None]


def test_views_go_straight_into_the_interpreter_only_where_its_buffers_stay_put(keras3_int8, runtime_models, digits_x):
    """A static graph gets views of LiteRT's own input buffers (no SetTensor per input); the Keras 3 graph,
    whose Reshape shape is computed at run time (so Invoke re-plans the arena), keeps staging buffers."""
    from ai_edge_litert.interpreter import Interpreter

    static = edge_sdk_load(runtime_models["int8"])
    static.predict(digits_x[:1])
    port = quantized_ports(static)[0]
    assert port.staging is None
    interpreter = static._interpreter
    assert port.view.ctypes.data == interpreter.tensor(port.index)().ctypes.data

    dynamic = edge_sdk_load(keras3_int8)
    dynamic.predict(digits_x[:1])
    assert quantized_ports(dynamic)[0].staging is not None
    # what the load-time check relies on: LiteRT leaves that graph's output without memory until Invoke
    bare = Interpreter(model_content=keras3_int8.read_bytes())
    bare.allocate_tensors()
    with pytest.raises(ValueError, match="null"):
        bare.tensor(bare.get_output_details()[0]["index"])()


def test_the_first_invoke_check_catches_the_real_move_if_the_load_check_were_fooled(keras3_int8, digits_x, monkeypatch):
    from edge_sdk.model import Model

    monkeypatch.setattr(Model, "_views_stay_put", lambda self, sig: True)
    model = edge_sdk_load(keras3_int8)
    general = edge_sdk_load(keras3_int8)
    first = model.predict(digits_x[:1])  # written through a view, then LiteRT moved its arena in Invoke
    assert not model._default.direct and quantized_ports(model)[0].staging is not None
    for i in range(4):
        row = digits_x[i : i + 1]
        assert np.array_equal(model.predict(row), general.predict(row.astype(np.float64)))
    assert np.array_equal(first, general.predict(digits_x[:1].astype(np.float64)))


def test_a_buffer_seen_moving_after_invoke_turns_views_off_for_good(runtime_models, digits_x, monkeypatch):
    model = edge_sdk_load(runtime_models["int8"])
    expected = [model.predict(digits_x[i : i + 1]) for i in range(4)]
    sig = model._default
    original = model._refresh_views

    def refresh_then_pretend_it_moved(s):
        taken = original(s)
        s.view_addresses = tuple((index, address + 64) for index, address in s.view_addresses)
        return taken

    monkeypatch.setattr(model, "_refresh_views", refresh_then_pretend_it_moved)
    model._generation += 1  # as after an allocation: the next call takes fresh views
    assert np.array_equal(model.predict(digits_x[:1]), expected[0])
    assert quantized_ports(model)[0].staging is not None
    # LiteRT: the views were taken, the "move" was seen and turned them off. Other backends (tflite-runtime)
    # never take views (Model._views_stay_put trusts only LiteRT's tensor()): staging from the start.
    assert (not sig.direct) if views_expected(model) else (sig.direct and sig.view_addresses == ())
    for i in range(4):
        assert np.array_equal(model.predict(digits_x[i : i + 1]), expected[i])


STATIC_CHILD = textwrap.dedent("""
    import gc, sys
    import numpy as np
    import edge_sdk
    data = open(sys.argv[1], "rb").read()
    x = np.load(sys.argv[2])
    first = None
    for round_ in range(10):
        model = edge_sdk.load(data, num_threads=1)
        outs = [model.predict(x[i:i + 1]) for i in range(8)]
        outs += [model.predict(x[:3]), model.predict(x[3:4])]  # resize, allocate, fresh views
        model.reset()
        outs += [model.predict(x[i:i + 1]) for i in range(8)]
        stacked = np.concatenate(outs)
        assert first is None or np.array_equal(stacked, first), "results changed between rounds"
        # LiteRT: written straight into its buffers; other backends (tflite-runtime): staging buffers, by design
        staged = [p.staging is not None for p in model._default.inputs if p.quantizer is not None]
        assert staged and (not any(staged) if model.backend == "litert" else all(staged)), (model.backend, staged)
        first = stacked
        del model
        gc.collect()
    print("ok")
""")


def test_direct_views_survive_resizes_and_rebuilds_under_malloc_check(runtime_models, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(STATIC_CHILD)
    env = {"MALLOC_CHECK_": "3", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(p for p in sys.path if p)}
    run = subprocess.run(
        [sys.executable, str(script), str(runtime_models["int8"]), str(runtime_models["x"])],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.returncode, run.stderr[-2000:])


def edge_sdk_load(path):
    import edge_sdk

    return edge_sdk.load(path.read_bytes(), num_threads=1)


def views_expected(model):
    """Direct views of the interpreter's buffers are taken on LiteRT only (see Model._views_stay_put)."""
    return model.backend == "litert"


@pytest.mark.parametrize("raw", [False, True])
def test_outputs_read_through_a_view_are_never_handed_out(runtime_models, digits_x, raw):
    """The 8-bit output is dequantized straight from LiteRT's buffer; what predict returns is the app's own."""
    model = edge_sdk_load(runtime_models["int8"])
    first = model.predict(digits_x[:1], raw=raw)
    kept = first.copy()
    out_view = model._default.outputs[0].out_view
    if views_expected(model):
        assert out_view is not None
        assert not np.shares_memory(first, out_view)
    else:  # tflite-runtime: read with GetTensor (a copy), never through a view
        assert out_view is None
    later = model.predict(digits_x[1:2], raw=raw)
    assert not np.array_equal(later, kept)  # a different digit: the buffer did change underneath
    assert np.array_equal(first, kept)
