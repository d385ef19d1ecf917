"""The flatbuffer inspector, on models whose kind we know."""

import pytest

from edge_sdk import errors
from edge_sdk.inspect_model import inspect_model


@pytest.mark.parametrize(
    "name,kind,io",
    [
        ("float32", "float", "float"),
        ("int8", "full-integer", "integer"),
        ("uint8", "full-integer", "integer"),
        ("dynamic_range", "dynamic-range", "float"),
        ("float16", "float16-weight", "float"),
    ],
)
def test_kind(runtime_models, name, kind, io):
    info = inspect_model(runtime_models[name])
    assert info["kind"] == kind
    assert info["io"] == io


def test_operators_tensors_weights(runtime_models):
    info = inspect_model(runtime_models["int8"])
    ops = {o["name"]: o for o in info["operators"]}
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(ops)
    assert all(o["version"] >= 1 and o["count"] >= 1 for o in info["operators"])
    assert info["float_ops"] == {}
    assert info["weight_bytes"]["int8"] > 0 and "float32" not in info["weight_bytes"]
    assert info["signatures"] == [{"key": "serving_default", "subgraph": 0, "inputs": ["image"], "outputs": ["probs"]}]
    quantized = [t for t in info["tensors"] if t["quantization"]]
    assert quantized and all(t["dtype"] in ("int8", "int32") for t in quantized)
    assert any(m["name"] == "min_runtime_version" for m in info["metadata"])


def test_float_weights_are_four_times_int8(runtime_models):
    f32 = inspect_model(runtime_models["float32"])["weight_bytes"]["float32"]
    i8 = inspect_model(runtime_models["int8"])["weight_bytes"]["int8"]
    assert 3.5 < f32 / i8 < 4.5


def test_multiple_signatures_and_subgraphs(runtime_models):
    info = inspect_model(runtime_models["stateful"])
    assert {s["key"] for s in info["signatures"]} == {"accumulate", "double"}
    assert len(info["subgraphs"]) >= 2


def test_bad_files(tmp_path, runtime_models):
    with pytest.raises(errors.ModelNotFoundError):
        inspect_model(tmp_path / "nope.tflite")
    with pytest.raises(errors.NotTFLiteError):
        inspect_model(b"not a model at all")
    data = runtime_models["int8"].read_bytes()
    with pytest.raises(errors.CorruptModelError):
        inspect_model(data[:200])
