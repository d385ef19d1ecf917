"""Other real ``.tflite`` files a user could download (MediaPipe 0.10.21 wheel, docs/converters.md,
"Other real .tflite files"): the defects they showed, each reproduced on a tiny file built here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from converters import litert_quant

pytestmark = pytest.mark.skipif(not litert_quant.available(), reason="the 'quantize' extra is not installed")


def _two_output_float16_file_without_signature() -> bytes:
    """A float16-weight file like MediaPipe's face detector: no SignatureDef, two outputs whose graph
    order (``regressors``, ``classificators``) is not their name order."""
    import tensorflow as tf
    from ai_edge_litert.tools import flatbuffer_utils

    w1 = tf.constant(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    w2 = tf.constant(np.random.default_rng(1).standard_normal((8, 1)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def heads(x):
        return tf.matmul(x, w1) * 100.0, tf.matmul(x, w2)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([heads.get_concrete_function()], heads)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    root = flatbuffer_utils.read_model_from_bytearray(bytearray(converter.convert()))
    root.signatureDefs = []
    graph = root.subgraphs[0]
    for index, name in zip(graph.outputs, ("regressors", "classificators"), strict=True):
        graph.tensors[index].name = name
    return bytes(flatbuffer_utils.convert_object_to_bytearray(root))


def test_float16_parent_agreement_matches_outputs_by_name_not_position(tmp_path: Path):
    """MediaPipe's face_detection_short_range: its exact float32 parent (which gets a SignatureDef, and so
    LiteRT's name-sorted output order) was reported as differing by 412 from the file."""
    from converters.model_files import load_tflite
    from converters.tflite_float_parent import agreement
    from edge_sdk.inspect_model import inspect_model

    data = _two_output_float16_file_without_signature()
    assert inspect_model(data)["kind"] == "float16-weight"
    path = tmp_path / "detector.tflite"
    path.write_bytes(data)
    model = load_tflite(path)
    x = np.random.default_rng(2).standard_normal((16, 8)).astype(np.float32)
    measured = agreement(data, model.tflite_bytes, {model.input_names[0]: x})
    assert measured["bit_identical"] and measured["max_abs_diff"] == 0.0


def _sparse_float16_file() -> bytes:
    """A float16-weight file whose weight is stored sparse behind DENSIFY, like MediaPipe's
    face_detection_full_range_sparse and pose_detection."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    w[rng.random((64, 32)) < 0.8] = 0
    weight = tf.constant(w)

    @tf.function(input_signature=[tf.TensorSpec([1, 64], tf.float32)])
    def dense(x):
        return tf.matmul(x, weight)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([dense.get_concrete_function()], dense)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY, tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def test_sparse_float16_weights_behind_densify_get_an_exact_float32_parent():
    """Refused before with 'the rewritten file is still float16-weight; give edge-sdk the float original'."""
    from converters.tflite_float_parent import agreement, float_parent
    from edge_sdk.inspect_model import inspect_model

    data = _sparse_float16_file()
    assert {op["name"] for op in inspect_model(data)["operators"]} >= {"DENSIFY", "DEQUANTIZE"}
    parent = float_parent(data)
    info = inspect_model(parent.tflite)
    assert info["kind"] == "float" and {op["name"] for op in info["operators"]} == {"FULLY_CONNECTED"}
    assert parent.exact and parent.densified == 1 and parent.record()["densify_ops_removed"] == 1
    x = np.random.default_rng(1).standard_normal((8, 64)).astype(np.float32)
    import edge_sdk

    name = edge_sdk.load(data, num_threads=1).inputs[0].name
    measured = agreement(data, parent.tflite, {name: x})
    assert measured["bit_identical"]
    quantized = litert_quant.quantize_tflite(parent.tflite, "fp16")
    assert inspect_model(quantized)["kind"] == "float16-weight"


def test_unresolved_custom_op_is_a_one_line_refusal_naming_the_op(tmp_path: Path, capsys):
    """MediaPipe's face_landmark_with_attention uses Landmarks2TransformMatrix, TransformTensorBilinear and
    TransformLandmarks, which MediaPipe registers and LiteRT does not: the refusal names the op and the way
    forward instead of relaying LiteRT's 'Encountered unresolved custom op' alone."""
    import tensorflow as tf
    from ai_edge_litert.tools import flatbuffer_utils

    import edge_sdk
    from edge_sdk.cli import main

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def double(x):
        return tf.nn.relu(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()], double)
    root = flatbuffer_utils.read_model_from_bytearray(bytearray(converter.convert()))
    code = root.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = 32  # CUSTOM
    code.customCode = "Landmarks2TransformMatrix"
    path = tmp_path / "with_custom_op.tflite"
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(root)))
    with pytest.raises(edge_sdk.EdgeSdkError, match="custom op Landmarks2TransformMatrix .*variant without"):
        edge_sdk.load(path)
    calibration = tmp_path / "cal.npz"
    np.savez(calibration, x=np.zeros((4, 4), np.float32))
    code_ = main(
        ["convert", str(path), "--recipe", "int8", "--calibration", str(calibration), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code_ == 2 and "custom op Landmarks2TransformMatrix" in err and "Traceback" not in err


def test_float_parent_line_does_not_count_a_step(tmp_path: Path, capsys):
    """The fp16 recipe on MediaPipe's face detector printed ``[convert 5/4 ...]``: the float parent's
    "bit-identical" line was counted as a step."""
    from edge_sdk.cli import main

    path = tmp_path / "detector.tflite"
    path.write_bytes(_two_output_float16_file_without_signature())
    calibration = tmp_path / "cal.npz"
    np.savez(calibration, x=np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32))
    args = ["convert", str(path), "--recipe", "fp16", "--calibration", str(calibration), "--out", str(tmp_path / "o")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "bit-identical" in err
    steps = re.findall(r"\[convert (\d+)/(\d+) ", err)
    assert steps and all(int(k) <= int(n) for k, n in steps), steps


def test_quantized_file_bigger_than_the_input_file_is_said_in_one_line(tmp_path: Path, capsys):
    """MediaPipe's sparse pose_detection (2.96 MB) gave a 6.03 MB fp16 file and a 3.62 MB int8 file silently."""
    from edge_sdk.cli import main

    path = tmp_path / "sparse.tflite"
    path.write_bytes(_sparse_float16_file())
    calibration = tmp_path / "cal.npz"
    np.savez(calibration, x=np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32))
    args = ["convert", str(path), "--recipe", "fp16", "--calibration", str(calibration), "--out", str(tmp_path / "o")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "float16.tflite is" in err and "x the input file sparse.tflite" in err
