"""`edge-sdk parity FLOAT QUANT` with a float .tflite (LiteRT, no TensorFlow) or an .onnx (ONNX Runtime)
as FLOAT, and one-line errors when the two models' inputs do not match (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edge_sdk.cli import main


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    """A 64 -> 10 softmax classifier on digits as float .tflite, int8 .tflite and the same maths in .onnx."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.datasets import load_digits

    from converters._tf import tf, tf_keras

    root = tmp_path_factory.mktemp("linear")
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((64,), name="x")
    outputs = tf_keras.layers.Dense(10, activation="softmax", name="probs")(inputs)
    model = tf_keras.Model(inputs, outputs)
    model.compile(tf_keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x[:1200], y[:1200], epochs=10, verbose=0)
    float_path = root / "float.tflite"
    float_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(200))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    int8_path = root / "int8.tflite"
    int8_path.write_bytes(converter.convert())
    weights, bias = model.get_layer("probs").get_weights()

    def onnx_model(name: str, features: int, element=TensorProto.FLOAT):
        w = weights if features == 64 else weights[:features]
        graph = helper.make_graph(
            [
                helper.make_node("MatMul", ["x", "w"], ["xw"]),
                helper.make_node("Add", ["xw", "b"], ["logits"]),
                helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
            ],
            "linear",
            [helper.make_tensor_value_info("x", element, ["n", features])],
            [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 10])],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")],
        )
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        path = root / name
        onnx.save(proto, path)
        return path

    np.savez(root / "test.npz", x=x[1200:], y=y[1200:])
    return {
        "float": float_path,
        "int8": int8_path,
        "onnx": onnx_model("float.onnx", 64),
        "onnx_narrow": onnx_model("narrow.onnx", 32),
        "test": root / "test.npz",
        "root": root,
    }


def test_float_tflite_reference_runs_without_tensorflow(linear, tmp_path):
    blocker = textwrap.dedent("""
        import sys
        BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnx",
                   "onnxruntime")

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is blocked")
                return None

        sys.meta_path.insert(0, Blocker())
    """)
    report = tmp_path / "r.json"
    body = textwrap.dedent(f"""
        from edge_sdk.cli import main
        code = main(["parity", {str(linear["float"])!r}, {str(linear["int8"])!r}, "--data", {str(linear["test"])!r},
                     "--min-agreement", "0.9", "--json", {str(report)!r}, "-q"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not heavy, heavy
        sys.exit(code)
    """)
    result = subprocess.run([sys.executable, "-c", blocker + body], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    parity = data["parity"]
    assert parity["float_model"]["kind"] == "tflite"
    assert parity["summary"]["top1_agreement"] >= 0.9 and parity["summary"]["float_accuracy"] > 0.85
    assert parity["layers"] is None and "QuantizationDebugger" in parity["layers_note"]


def test_onnx_reference_matches_the_same_float_maths(linear, tmp_path, capsys):
    report = tmp_path / "r.json"
    code = main(
        [
            "parity",
            str(linear["onnx"]),
            str(linear["float"]),
            "--data",
            str(linear["test"]),
            "--min-agreement",
            "0.999",
            "--json",
            str(report),
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr()
    parity = json.loads(report.read_text())["parity"]
    assert parity["float_model"]["kind"] == "onnx"
    assert parity["summary"]["top1_agreement"] == 1.0
    assert parity["outputs"][0]["max_abs_error"] < 1e-5  # ONNX Runtime and LiteRT, the same float maths
    code = main(
        [
            "parity",
            str(linear["onnx"]),
            str(linear["int8"]),
            "--data",
            str(linear["test"]),
            "--min-agreement",
            "0.9",
            "-q",
        ]
    )
    assert code == 0


def test_mismatched_shapes_and_dtypes_are_one_line_errors(linear, capsys):
    code = main(["parity", str(linear["onnx_narrow"]), str(linear["int8"]), "--data", str(linear["test"]), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "different input signatures" in err and "x[?,32]" in err and "Traceback" not in err

    import edge_sdk
    from converters.parity import FloatModel, check_input_dtypes
    from edge_sdk.reference import SignatureMismatchError

    tokens = FloatModel(None, None, [("x", (None, 64), "int32")], [("probs", (None, 10))])
    with pytest.raises(SignatureMismatchError, match="takes int32 but input 'x' of the quantized model takes float32"):
        check_input_dtypes(tokens, edge_sdk.load(linear["float"]), [("x", "x")])
    check_input_dtypes(
        FloatModel(None, None, [("x", (None, 64), "float32")], []), edge_sdk.load(linear["int8"]), [("x", "x")]
    )  # int8 with a scale takes float data


def test_auto_tuner_refuses_a_tflite_reference_in_one_line(linear, capsys):
    code = main(
        [
            "parity",
            str(linear["float"]),
            str(linear["int8"]),
            "--data",
            str(linear["test"]),
            "--accuracy-budget",
            "1",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "needs a Keras model or SavedModel; got a .tflite file" in err and "Traceback" not in err
