"""ONNX input (issue 13 item 2): onnx2tf in a child process from its side folder, GELU fusion, refusals, parity with ORT.

The end-to-end tests convert small ONNX models built with ``onnx.helper`` (benchmarks/conformance.py's
builders, weights trained for a moment on scikit-learn digits) through ``converters.pipeline.run``.
onnx2tf comes from the side folder ``make setup`` installs (``converters.onnx2tf_run.side_folder``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from script_modules import load_benchmark_script  # tests/ is on sys.path (tests/conftest.py)

BAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: any download attempt fails at once


def _conformance():
    return load_benchmark_script("conformance.py", "conformance_for_onnx_tests")


def _no_network(monkeypatch):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, BAD_PROXY)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def _mlp_with_gelu(tmp_path: Path, extra_erf_user: bool = False):
    """A random-weight MLP with PyTorch's GELU pattern; optionally the Erf output is also a graph output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    conformance = _conformance()
    rng = np.random.default_rng(0)
    init = [
        numpy_helper.from_array(rng.normal(0, 0.3, (16, 16)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(16, np.float32), "b"),
    ]
    gelu, gelu_init = conformance.gelu_pattern_nodes("h", "y", "gelu")
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="dense"), *gelu]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])]
    if extra_erf_user:
        outputs.append(helper.make_tensor_value_info("gelu_erf", TensorProto.FLOAT, ["N", 16]))
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])], outputs, init + gelu_init
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _ort(model_or_bytes, feed):
    import onnxruntime as ort

    data = model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feed)


# ------------------------------------------------------------------------------------------------
# fast: graph rewriting and refusals (no onnx2tf run)
# ------------------------------------------------------------------------------------------------
def test_gelu_pattern_is_fused_into_one_gelu_with_the_same_outputs(tmp_path):
    from converters.onnx_checks import default_opset
    from converters.onnx_rewrites import GELU_OPSET, fuse_gelu

    model = _mlp_with_gelu(tmp_path)
    x = np.random.default_rng(1).normal(0, 2, (32, 16)).astype(np.float32)
    want = _ort(model, {"x": x})[0]
    fused, count = fuse_gelu(model)
    ops = [n.op_type for n in fused.graph.node]
    assert count == 1
    assert ops == ["Gemm", "Gelu"], ops
    assert default_opset(fused) >= GELU_OPSET
    np.testing.assert_allclose(_ort(fused, {"x": x})[0], want, atol=1e-5)


def test_gelu_pattern_whose_erf_is_used_elsewhere_is_left_alone(tmp_path):
    from converters.onnx_rewrites import fuse_gelu

    model = _mlp_with_gelu(tmp_path, extra_erf_user=True)
    fused, count = fuse_gelu(model)
    assert count == 0
    assert "Erf" in [n.op_type for n in fused.graph.node]


def test_missing_side_folder_names_the_setup_command(tmp_path, monkeypatch, capsys):
    from edge_sdk.cli import main

    path = tmp_path / "mlp.onnx"
    path.write_bytes(_mlp_with_gelu(tmp_path).SerializeToString())
    monkeypatch.setenv("EDGE_SDK_ONNX2TF_DIR", str(tmp_path / "nowhere"))
    code = main(["convert", str(path), "--recipe", "dynamic", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    line = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert line and "make setup" in line[0] and "onnx2tf" in line[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_op_onnx2tf_cannot_convert_is_refused_by_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from converters.onnx2tf_run import OnnxConversionError
    from converters.onnx_import import load_onnx

    graph = helper.make_graph(
        [helper.make_node("CastLike", ["x", "like"], ["y"], name="cast_like_0")],
        "castlike",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("like", TensorProto.FLOAT16, ["N", 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["N", 4])],
    )
    path = tmp_path / "castlike.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(OnnxConversionError, match=r"unsupported ONNX op\(s\) CastLike .*cast_like_0"):
        load_onnx(path)


def test_not_an_onnx_file_is_refused(tmp_path):
    from converters.errors import ModelLoadError
    from converters.onnx_import import load_onnx

    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(ModelLoadError, match="expected an ONNX model"):
        load_onnx(path)


# ------------------------------------------------------------------------------------------------
# end to end: onnx2tf runs (one child each, ~20-40 s on 2 busy cores)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_cnn(tmp_path_factory):
    """The conformance ONNX CNN (NCHW, trained on digits), its data files, and the model loaded once offline."""
    from converters.onnx_import import load_onnx

    root = tmp_path_factory.mktemp("onnx-cnn")
    data = _conformance().build_onnx_cnn(root / "cnn.onnx", epochs=6)
    np.savez(root / "cal.npz", image=data["x"][:200])
    np.savez(root / "eval.npz", image=data["x"][1400:], y=data["y"][1400:])
    before = hashlib.sha256((root / "cnn.onnx").read_bytes()).hexdigest()
    with pytest.MonkeyPatch.context() as patch:
        _no_network(patch)
        loaded = load_onnx(root / "cnn.onnx")  # onnx2tf runs here, in a child that inherits the bad proxy
    return {"root": root, "sha256": before, "loaded": loaded}


def test_onnx_cnn_int8_matches_onnxruntime_offline(onnx_cnn, tmp_path, monkeypatch):
    """Targets: float32.tflite within 1e-4 of ORT; int8 top-1 agreement >= 98%; nothing downloaded; input untouched."""
    from converters import pipeline
    from converters.evaluation import primary, tflite_outputs

    _no_network(monkeypatch)
    root = onnx_cnn["root"]
    source = root / "cnn.onnx"
    before = onnx_cnn["sha256"]
    out = tmp_path / "out"
    result = pipeline.run(
        "int8", onnx_cnn["loaded"], out, calibration=str(root / "cal.npz"), eval_data=str(root / "eval.npz")
    )
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before  # onnx2tf worked on a copy
    check = result.comparisons["onnx_input"]
    assert check["passed"] and check["max_abs_error"] <= 1e-4, check
    assert check["onnxsim_ran"] is True
    assert check["input_layout"] == {"image": "NCHW"}
    assert [a.name for a in result.artifacts] == ["float32", "int8"]  # no ONNX re-export of an ONNX input
    assert any("'onnx' format is skipped" in w for w in result.warnings)

    manifest = json.loads((out / "int8.json").read_text())
    assert manifest["inputs"][0]["shape"] == [-1, 3, 16, 16]
    assert manifest["preprocessing"]["layout"] == "NCHW"
    float_manifest = json.loads((out / "float32.json").read_text())
    assert float_manifest["metrics"]["onnxruntime_max_abs_error"] == check["max_abs_error"]
    assert float_manifest["parent_sha256"] == before

    import onnxruntime as ort

    x = np.load(root / "eval.npz")["image"]
    want = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = primary(tflite_outputs((out / "int8.tflite").read_bytes(), {"image": x}))
    agreement = float(np.mean(np.argmax(got, 1) == np.argmax(want, 1)))
    assert agreement >= 0.98, agreement


def test_onnx_cnn_beyond_tolerance_is_a_gate_failure(onnx_cnn, tmp_path):
    """The ORT comparison gates the run (GateFailedError: the CLI's exit 1), nothing promoted, when beyond tolerance;
    the message names each output with its error; --keep-rejected keeps the file and a report (issue 24 item 3)."""
    from converters import pipeline
    from converters.gate import GateFailedError

    out = tmp_path / "out"
    with pytest.raises(
        GateFailedError,
        match=r"differs from ONNX Runtime by .* expected <= 1e-12 \(export.onnx_atol\)"
        r": output 0 'probabilities' max abs error .* > 1e-12 .*nothing promoted",
    ) as failed:
        pipeline.run(
            "fp16",
            onnx_cnn["loaded"],
            out,
            eval_data=str(onnx_cnn["root"] / "eval.npz"),
            overrides={"export.onnx_atol": 1e-12, "import.keep_rejected": True},
        )
    assert not out.exists()
    kept = tmp_path / "out.rejected"
    assert str(kept) in str(failed.value)
    assert (kept / "float32.tflite").stat().st_size > 0
    report = json.loads((kept / "report.json").read_text())
    assert report["onnx_input"]["per_output"][0] > 1e-12 and report["onnx_input"]["passed"] is False
    # float rounding missing a tight tolerance: no op-by-op search (it would name no wrong op)
    assert report["onnx_input"]["divergence"]["why"] == "errors are float rounding, not a wrong op"


def test_nhwc_three_channel_input_converts_without_network(tmp_path, monkeypatch):
    """A batch-1 NHWC RGB input (as tf2onnx exports) is where onnx2tf fetches sample images: it must not."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from converters.onnx_import import compare_with_onnxruntime, load_onnx
    from converters.tflite_convert import convert

    rng = np.random.default_rng(0)
    init = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w")]
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "nhwc",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 8, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        init,
    )
    path = tmp_path / "nhwc.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    _no_network(monkeypatch)
    model = load_onnx(path)
    assert [s.shape for s in model.inputs] == [(1, 8, 8, 3)]
    x = {"image": rng.uniform(0, 1, (1, 8, 8, 3)).astype(np.float32)}
    measured = compare_with_onnxruntime(model, convert(model, "float32").tflite, x)
    assert measured["max_abs_error"] <= 1e-5, measured
    assert measured["output_layout"] == ["channels-last"]  # onnx2tf's NCHW output comes out NHWC, recorded


def test_model_needing_select_ops_is_refused_naming_them(tmp_path):
    """What onnx2tf makes of a lone Erf (TensorFlow's Erf, no LiteRT builtin) is refused naming Erf, not converted."""
    from converters._tf import tf
    from converters.model_files import KIND_SAVEDMODEL, InputSpec
    from converters.onnx2tf_run import OnnxConversionError
    from converters.onnx_import import OnnxModel, refuse_select_ops

    class ErfModule(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def serve(self, x):
            return {"output_0": tf.math.erf(x)}

    module = ErfModule()
    directory = tmp_path / "saved_model"
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve})
    loaded = tf.saved_model.load(str(directory))
    model = OnnxModel(
        KIND_SAVEDMODEL,
        tmp_path / "erf.onnx",
        loaded,
        [InputSpec("x", (None, 8), "float32")],
        _saved_model_dir=directory,
    )
    with pytest.raises(OnnxConversionError, match=r"op\(s\) Erf have no LiteRT builtin kernel .*FlexErf"):
        refuse_select_ops(model)


def test_convert_prints_the_onnxruntime_comparison_under_the_table():
    from converters.context import render_comparisons
    from converters.onnx_import import OnnxInputCheck

    record = {"max_abs_error": 6.0e-07, "samples": 397, "tolerance": 1e-4, "input_layout": {"image": "NCHW"}}
    comparisons, lines = render_comparisons({"onnx_input": OnnxInputCheck(record)})  # what convert prints
    assert comparisons == {"onnx_input": record}
    assert (
        "onnx: float32.tflite vs ONNX Runtime max abs error 6e-07 on 397 samples (tolerance 0.0001); "
        "inputs keep the ONNX layout (image NCHW)"
    ) in lines
