"""edge_sdk.load(..., accelerator=): LiteRT's CompiledModel API, outputs equal to the interpreter path."""

import numpy as np
import pytest

import edge_sdk
from edge_sdk.pool import ModelPool


@pytest.mark.parametrize("name", ["float32", "int8", "uint8"])
def test_cpu_accelerator_equals_the_interpreter(runtime_models, digits_x, name):
    plain = edge_sdk.load(runtime_models[name])
    compiled = edge_sdk.load(runtime_models[name], accelerator="cpu")
    assert compiled.accelerator == "cpu" and plain.accelerator is None
    for batch in (1, 5, 1, 32):  # dynamic batch: resized both ways
        x = digits_x[:batch]
        np.testing.assert_array_equal(compiled.predict(x), plain.predict(x))
        np.testing.assert_array_equal(compiled.predict(x, raw=True), plain.predict(x, raw=True))


def test_cpu_accelerator_two_inputs_fixed_batch_and_errors(runtime_models, digits_x):
    plain = edge_sdk.load(runtime_models["two_inputs"])
    compiled = edge_sdk.load(runtime_models["two_inputs"], accelerator="cpu")
    feeds = {
        "numeric": np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32),
        "category": np.array([[0], [1], [4], [2]], dtype=np.int64),
    }
    np.testing.assert_array_equal(compiled.predict(feeds), plain.predict(feeds))
    fixed = edge_sdk.load(runtime_models["fixed_batch"], accelerator="cpu")  # batch 1: rows looped
    np.testing.assert_array_equal(
        fixed.predict(digits_x[:3]), edge_sdk.load(runtime_models["fixed_batch"]).predict(digits_x[:3])
    )
    with pytest.raises(edge_sdk.InputShapeError, match="expects rank 4"):
        edge_sdk.load(runtime_models["int8"], accelerator="cpu").predict(digits_x[0])


@pytest.mark.parametrize("accelerator", ["gpu", "npu"])
def test_unavailable_accelerator_is_a_clear_error(runtime_models, accelerator):
    try:
        model = edge_sdk.load(runtime_models["int8"], accelerator=accelerator)
    except edge_sdk.BackendUnavailableError as exc:
        message = str(exc)
        assert message.startswith(f"accelerator '{accelerator}' is not available for this model on this machine")
        assert "\n" not in message and "ERROR: [" not in message
    else:  # a machine with that accelerator: it must then run
        assert model.predict(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 10)


def test_unknown_accelerator_and_pool(runtime_models, digits_x, tmp_path):
    missing = tmp_path / "not_read.tflite"
    with pytest.raises(
        edge_sdk.BackendUnavailableError, match="unknown accelerator 'tpu'; expected one of cpu, gpu, npu"
    ):
        edge_sdk.load(missing, accelerator="tpu")  # refused before the (missing) file is read
    pool = ModelPool(runtime_models["int8"], size=2, accelerator="cpu")
    assert [m.accelerator for m in pool._models] == ["cpu", "cpu"]
    np.testing.assert_array_equal(pool.predict(digits_x), edge_sdk.load(runtime_models["int8"]).predict(digits_x))
