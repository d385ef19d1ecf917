"""edge_sdk.load / Model.predict on real converted models."""

import threading

import numpy as np
import pytest

import edge_sdk
from edge_sdk.quant import dequantize, quantize


def direct_interpreter_outputs(path, x_stored):
    """Outputs of a bare interpreter: set_tensor / invoke / get_tensor, one row at a time."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], x_stored.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x_stored)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]), inp, out


def test_float_predict_equals_direct_interpreter(runtime_models, digits_x):
    model = edge_sdk.load(runtime_models["float32"])
    expected, _, _ = direct_interpreter_outputs(runtime_models["float32"], digits_x)
    got = model.predict(digits_x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name,dtype", [("int8", np.int8), ("uint8", np.uint8)])
def test_quantized_predict_equals_direct_interpreter(runtime_models, digits_x, name, dtype):
    model = edge_sdk.load(runtime_models[name])
    spec_in = model.inputs[0]
    assert spec_in.dtype == dtype and spec_in.is_quantized
    q_in = quantize(digits_x, spec_in.quantization.scale, spec_in.quantization.zero_point, dtype)
    expected_raw, inp, out = direct_interpreter_outputs(runtime_models[name], q_in)
    assert (spec_in.quantization.scale, spec_in.quantization.zero_point) == pytest.approx(inp["quantization"])
    np.testing.assert_array_equal(model.predict(digits_x, raw=True), expected_raw)
    np.testing.assert_array_equal(model.predict(q_in, raw=True), expected_raw)  # stored ints pass through
    dequantized = model.predict(digits_x)
    assert dequantized.dtype == np.float32
    np.testing.assert_array_equal(dequantized, dequantize(expected_raw, *out["quantization"]))


def test_int8_agrees_with_float_model(runtime_models, digits_x):
    labels = np.load(runtime_models["y"])
    float_pred = edge_sdk.load(runtime_models["float32"]).predict(digits_x).argmax(1)
    int8_pred = edge_sdk.load(runtime_models["int8"]).predict(digits_x).argmax(1)
    assert np.mean(float_pred == int8_pred) >= 0.9
    assert np.mean(float_pred == labels) >= 0.6  # a real, if briefly trained, classifier


def test_specs_are_typed_records(runtime_models):
    model = edge_sdk.load(runtime_models["int8"])
    (spec,) = model.inputs
    assert isinstance(spec, edge_sdk.TensorSpec)
    assert spec.name == "image"
    assert spec.shape == (None, 8, 8, 1) and spec.dynamic_dims == (0,)
    assert spec.dtype == np.dtype(np.int8)
    assert spec.quantization.scale > 0
    assert spec.to_dict()["shape"] == [-1, 8, 8, 1]
    assert model.backend == "litert"
    assert model.outputs[0].shape == (None, 10)


def test_dynamic_batch_is_resized_and_equals_row_by_row(runtime_models, digits_x):
    model = edge_sdk.load(runtime_models["int8"])
    batched = model.predict(digits_x[:9])
    rows = np.concatenate([model.predict(digits_x[i : i + 1]) for i in range(9)])
    np.testing.assert_array_equal(batched, rows)
    assert model.predict(digits_x[:3]).shape == (3, 10)


def test_fixed_batch_model_loops_over_rows(runtime_models, digits_x):
    model = edge_sdk.load(runtime_models["fixed_batch"])
    assert model.inputs[0].shape[0] == 1
    got = model.predict(digits_x[:5])
    reference = edge_sdk.load(runtime_models["float32"]).predict(digits_x[:5])
    assert got.shape == (5, 10)
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)


def test_two_inputs_by_name_and_by_position(runtime_models):
    model = edge_sdk.load(runtime_models["two_inputs"])
    names = [s.name for s in model.inputs]
    assert sorted(names) == ["category", "numeric"]
    numeric = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    category = np.array([[0], [1], [4], [2]], dtype=np.int64)  # int64 fits int32: cast safely
    by_name = model.predict({"numeric": numeric, "category": category})
    ordered = [numeric if n == "numeric" else category for n in names]
    np.testing.assert_array_equal(model.predict(ordered), by_name)
    assert by_name.shape == (4, 2)


def test_signatures_and_state(runtime_models):
    model = edge_sdk.load(runtime_models["stateful"])
    assert set(model.signatures) == {"accumulate", "double"}
    x = np.array([[1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(model.predict(x, signature="double"), [[2.0, 4.0]])
    model.predict(x, signature="accumulate")
    total = model.predict(x, signature="accumulate")
    np.testing.assert_array_equal(total, [[2.0, 4.0]])  # state kept across calls
    model.reset()
    np.testing.assert_array_equal(model.predict(x, signature="accumulate"), [[1.0, 2.0]])
    with pytest.raises(edge_sdk.InputNameError, match="unknown signature 'nope'.*accumulate"):
        model.predict(x, signature="nope")


def test_concurrent_predicts_equal_serial(runtime_models, digits_x):
    model = edge_sdk.load(runtime_models["int8"], num_threads=1)
    serial = [model.predict(digits_x[i % 32 : i % 32 + 1 + i % 3]) for i in range(64)]
    results = [None] * 64
    errors = []

    def work(start):
        try:
            for i in range(start, 64, 8):
                results[i] = model.predict(digits_x[i % 32 : i % 32 + 1 + i % 3])
        except Exception as exc:  # noqa: BLE001 - any failure in a thread is collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for a, b in zip(serial, results, strict=False):
        np.testing.assert_array_equal(a, b)


def test_model_pool_matches_single_model(runtime_models, digits_x):
    pool = edge_sdk.ModelPool(runtime_models["int8"], size=2)
    single = edge_sdk.load(runtime_models["int8"])
    np.testing.assert_array_equal(pool.predict(digits_x), single.predict(digits_x))


def test_load_from_bytes_and_threads(runtime_models, digits_x):
    data = runtime_models["float32"].read_bytes()
    model = edge_sdk.load(data, num_threads=2)
    assert model.path is None and model.size_bytes == len(data)
    np.testing.assert_array_equal(model.predict(digits_x), edge_sdk.load(runtime_models["float32"]).predict(digits_x))


def test_backend_by_name(runtime_models):
    assert edge_sdk.load(runtime_models["float32"], backend="litert").backend == "litert"
    with pytest.raises(edge_sdk.BackendUnavailableError, match="unknown backend 'gpu'"):
        edge_sdk.load(runtime_models["float32"], backend="gpu")
