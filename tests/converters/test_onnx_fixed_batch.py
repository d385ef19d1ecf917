"""ONNX models exported with a fixed batch (PyTorch's default, 1) and several inputs, checked in ONNX Runtime."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _two_input_model(batch):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {
        "W1": rng.normal(0, 0.3, (4, 1, 3, 3)),
        "B1": np.zeros(4),
        "W2": rng.normal(0, 0.2, (4 * 8 * 8 + 5, 10)),
        "B2": np.zeros(10),
    }
    nodes = [
        helper.make_node("Conv", ["image", "W1", "B1"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Concat", ["f", "features"], ["cat"], axis=1),
        helper.make_node("Gemm", ["cat", "W2", "B2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "two_inputs",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 1, 8, 8]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, 5]),
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 10])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_fixed_batch_one_model_is_run_one_sample_at_a_time():
    """A [1, ...] model cannot take the 64 calibration samples at once: they go through one by one, in order."""
    from converters.model_files import InputSpec
    from converters.onnx_import import OnnxModel

    rng = np.random.default_rng(1)
    inputs = {"image": rng.random((7, 1, 8, 8), np.float32), "features": rng.random((7, 5), np.float32)}
    specs = [InputSpec("image", (None, 1, 8, 8), "float32"), InputSpec("features", (None, 5), "float32")]
    fixed = OnnxModel(kind="savedmodel", path=None, model=None, inputs=specs, onnx_bytes=_two_input_model(1))
    dynamic = OnnxModel(kind="savedmodel", path=None, model=None, inputs=specs, onnx_bytes=_two_input_model("N"))
    got = fixed.predict(inputs)
    assert got.shape == (7, 10)
    np.testing.assert_allclose(got, dynamic.predict(inputs), rtol=1e-6, atol=1e-7)
    one = {k: v[3:4] for k, v in inputs.items()}
    np.testing.assert_allclose(got[3:4], fixed.predict(one), rtol=1e-6, atol=1e-7)
