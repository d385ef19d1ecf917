"""ONNX files users export (issue 24): fixed input shapes, early refusals, If folding, PyTorch names,
external data, the gate's report.

Most tests refuse or rewrite before onnx2tf runs (no child process); one module-scoped onnx2tf run
converts a PyTorch-style model (inputs ``input.1`` and ``0``, a dynamic dimension fixed with
``--input-shape``, an ``If`` on a sample-rate input made constant) and several tests share it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - after importorskip, so a missing onnx skips the file


def _save(graph, path: Path, opset: int = 17, domains=()) -> Path:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _no_onnx2tf(monkeypatch):
    """Any onnx2tf child run fails the test: these refusals must come before it."""
    import converters.onnx_import as oi

    def forbidden(*args, **kwargs):
        raise AssertionError("onnx2tf ran; the refusal should have come first")

    monkeypatch.setattr(oi, "run_onnx2tf", forbidden)


def _options(**values):
    from converters.recipe import ImportOptions

    return ImportOptions(**values)


def _if_model(path: Path, custom_in_branch: bool = False, dims=("N", 8)) -> Path:
    """PyTorch/Silero style: inputs 'input.1' [N, 8], '0' [N, 8], 'sr' int64 [1]; y = (input.1 * (2 if sr == 16000
    else 3) + 0) @ W; the branches read an outer-scope Constant (what onnx2tf trips on)."""
    rng = np.random.default_rng(0)
    then_nodes = [helper.make_node("Mul", ["input.1", "/Constant_output_0"], ["then_out"], name="then_mul")]
    if custom_in_branch:
        then_nodes = [
            helper.make_node("FancyScale", ["input.1"], ["then_out"], name="custom_scale", domain="com.example")
        ]
    then_branch = helper.make_graph(
        then_nodes, "then", [], [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, None)]
    )
    else_branch = helper.make_graph(
        [helper.make_node("Mul", ["input.1", "three"], ["else_out"], name="else_mul")],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(3.0, np.float32), "three")],
    )
    nodes = [
        helper.make_node(
            "Constant",
            [],
            ["/Constant_output_0"],
            name="/Constant",
            value=numpy_helper.from_array(np.array(2.0, np.float32)),
        ),
        helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], name="/Equal"),
        helper.make_node("Squeeze", ["is16k"], ["cond"], name="/Squeeze"),
        helper.make_node("If", ["cond"], ["scaled"], name="/If", then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Add", ["scaled", "0"], ["sum"], name="/Add"),
        helper.make_node("Gather", ["E", "ids"], ["embedded"], name="/Gather"),  # token ids, as magika's
        helper.make_node("ReduceMean", ["embedded"], ["pooled"], axes=[1], keepdims=0, name="/ReduceMean"),
        helper.make_node("Add", ["sum", "pooled"], ["mixed"], name="/Add_1"),
        helper.make_node("MatMul", ["mixed", "W"], ["y"], name="/MatMul"),
    ]
    graph = helper.make_graph(
        nodes,
        "torch_like",
        [
            helper.make_tensor_value_info("input.1", TensorProto.FLOAT, list(dims)),
            helper.make_tensor_value_info("0", TensorProto.FLOAT, ["N", 8]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("ids", TensorProto.INT32, ["N", 16]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [
            numpy_helper.from_array(np.array([16000], np.int64), "sr16k"),
            numpy_helper.from_array(rng.normal(0, 0.5, (8, 4)).astype(np.float32), "W"),
            numpy_helper.from_array(rng.normal(0, 0.5, (256, 8)).astype(np.float32), "E"),
        ],
    )
    return _save(graph, path, domains=("com.example",) if custom_in_branch else ())


# ------------------------------------------------------------------------------------------------
# refused before onnx2tf runs
# ------------------------------------------------------------------------------------------------
def test_dynamic_height_width_is_refused_before_onnx2tf_naming_the_flag(tmp_path, monkeypatch, capsys):
    """PaddleOCR's classifier [N,3,?,?]: caught before conversion, the message names --input-shape."""
    from edge_sdk.cli import main

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="p2o.Conv.0")],
        "paddle_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, "?", "?"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 4, "?", "?"])],
        [numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w")],
    )
    path = _save(graph, tmp_path / "cls.onnx")
    _no_onnx2tf(monkeypatch)
    code = main(["convert", str(path), "--recipe", "fp16", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and line, err
    assert "input 'x' [?,3,?,?] has dynamic dimension(s) 2, 3" in line[0]
    assert "--input-shape x=1,3,D2,D3" in line[0]
    assert not (tmp_path / "out").exists()


def test_input_shape_fixes_dynamic_dims_and_refuses_what_does_not_fit(tmp_path):
    from converters.errors import ModelLoadError
    from converters.onnx_checks import onnx_input_specs
    from converters.onnx_import import read_onnx
    from converters.onnx_rewrites import fix_input_shapes

    model = read_onnx(_if_model(tmp_path / "m.onnx", dims=("N", "F")))
    fix_input_shapes(model, {"input.1": (1, 8)}, "m.onnx")
    assert [s.shape for s in onnx_input_specs(model)][0] == (1, 8)
    with pytest.raises(ModelLoadError, match=r"--input-shape names input 'image', but the model's inputs are input.1"):
        fix_input_shapes(model, {"image": (1, 8)}, "m.onnx")
    with pytest.raises(ModelLoadError, match=r"has 3 dimensions, input '0' has 2"):
        fix_input_shapes(model, {"0": (1, 8, 1)}, "m.onnx")
    with pytest.raises(ModelLoadError, match=r"changes fixed dimension\(s\) \[1\] of input '0'"):
        fix_input_shapes(model, {"0": (1, 9)}, "m.onnx")


def test_input_shape_flag_is_repeatable_and_reaches_the_recipe():
    import argparse

    from converters import recipe as recipes
    from edge_sdk.cli import convert

    parser = argparse.ArgumentParser()
    convert.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "convert",
            "m.onnx",
            "--input-shape",
            "x=1,3,48,192",
            "--input-shape",
            "y=1,4",
            "--set",
            "import.constant_inputs=sr=16000",
        ]
    )
    recipe = recipes.with_overrides(recipes.load("int8"), convert._overrides(args))
    assert recipe.import_.shapes() == {"x": (1, 3, 48, 192), "y": (1, 4)}
    assert recipe.import_.constants() == {"sr": 16000.0}
    assert recipe.to_dict()["import"]["input_shapes"] == ["x=1,3,48,192", "y=1,4"]  # recorded in manifests
    with pytest.raises(recipes.RecipeError, match="expected NAME=D,D"):
        recipes.with_overrides(recipe, {"import.input_shapes": ["x=1,-3"]})
    with pytest.raises(recipes.RecipeError, match="'-o' is not an onnx2tf option edge-sdk passes through"):
        recipes.with_overrides(recipe, {"import.onnx2tf_args": ["-o", "elsewhere"]})


def test_custom_op_inside_an_if_branch_is_refused_before_onnx2tf(tmp_path, monkeypatch):
    from converters.onnx2tf_run import OnnxConversionError
    from converters.onnx_import import load_onnx

    path = _if_model(tmp_path / "m.onnx", custom_in_branch=True)
    _no_onnx2tf(monkeypatch)
    with pytest.raises(
        OnnxConversionError, match=r"com.example::FancyScale \(1 node, e.g. custom_scale inside If '/If' then_branch\)"
    ):
        load_onnx(path, _options(fold_constants=False))


def test_string_input_is_refused_before_onnx2tf(tmp_path, monkeypatch):
    from converters.onnx2tf_run import OnnxConversionError
    from converters.onnx_import import load_onnx

    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["y"], name="id")],
        "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, ["N"])],
    )
    path = _save(graph, tmp_path / "s.onnx")
    _no_onnx2tf(monkeypatch)
    with pytest.raises(OnnxConversionError, match=r"input 'text' is a string tensor"):
        load_onnx(path)


def test_if_on_an_input_is_refused_naming_the_node_and_the_option(tmp_path, monkeypatch):
    from converters.onnx2tf_run import OnnxConversionError
    from converters.onnx_import import load_onnx

    _no_onnx2tf(monkeypatch)
    with pytest.raises(
        OnnxConversionError,
        match=r"If node '/If' is control flow .* depends on input\(s\) sr: .*"
        r"--set import.constant_inputs=sr=VALUE",
    ):
        load_onnx(_if_model(tmp_path / "m.onnx"))


def test_if_on_a_constant_input_folds_into_its_branch_with_the_same_outputs(tmp_path):
    from converters.onnx_import import read_onnx
    from converters.onnx_rewrites import fold_constant_ifs, make_inputs_constant

    path = _if_model(tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    feed = {
        "input.1": rng.normal(size=(5, 8)).astype(np.float32),
        "0": rng.normal(size=(5, 8)).astype(np.float32),
        "ids": rng.integers(0, 256, (5, 16)).astype(np.int32),
    }
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for rate in (16000, 8000):
        model = read_onnx(path)
        make_inputs_constant(model, {"sr": rate}, "m.onnx")
        folded, count = fold_constant_ifs(model)
        assert count == 1 and "If" not in [n.op_type for n in folded.graph.node]
        onnx.checker.check_model(folded)
        got = ort.InferenceSession(folded.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        want = session.run(None, dict(feed, sr=np.array([rate], np.int64)))[0]
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_paddle_node_names_become_scope_names_tensorflow_takes(tmp_path):
    """paddle2onnx names nodes 'Softmax@0': TensorFlow refuses '@' in a scope and onnx2tf failed at Softmax."""
    from converters.onnx_rewrites import sanitize_node_names

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="Relu@0"),
            helper.make_node("Softmax", ["r"], ["y"], name="Softmax@0"),
            helper.make_node("Identity", ["y"], ["z"]),
        ],
        "p",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 2])],
    )
    model = helper.make_model(graph)
    renamed = sanitize_node_names(model)
    names = [n.name for n in model.graph.node]
    assert names == ["Relu_0", "Softmax_0", "Identity_2"]
    assert renamed == {"Relu_0": "Relu@0", "Softmax_0": "Softmax@0", "Identity_2": ""}


# ------------------------------------------------------------------------------------------------
# external data, gate report
# ------------------------------------------------------------------------------------------------
def test_external_data_is_read_from_the_model_folder_not_the_current_directory(tmp_path, monkeypatch):
    from converters.errors import ModelLoadError
    from converters.onnx_checks import onnx_input_specs
    from converters.onnx_import import OnnxModel, read_onnx

    folder = tmp_path / "model"
    folder.mkdir()
    w = numpy_helper.from_array(np.full((4, 4), 2.0, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [w],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        str(folder / "m.onnx"),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    np.full(16, 5.0, np.float32).tofile(elsewhere / "weights.bin")  # an unrelated file of the same name
    monkeypatch.chdir(elsewhere)
    path = folder / "m.onnx"
    model = OnnxModel("savedmodel", path, None, onnx_input_specs(read_onnx(path)), onnx_bytes=path.read_bytes())
    np.testing.assert_array_equal(model.predict({"x": np.ones((2, 4), np.float32)}), np.full((2, 4), 8.0))
    # the refusals stay: a location outside the folder, a symbolic link
    outside = onnx.load(str(path), load_external_data=False)
    outside.graph.initializer[0].external_data[0].value = "../cwd/weights.bin"
    onnx.save(outside, str(folder / "escape.onnx"))
    with pytest.raises(ModelLoadError, match="points outside the directory"):
        read_onnx(folder / "escape.onnx")
    os.symlink(elsewhere / "weights.bin", folder / "link.bin")
    outside.graph.initializer[0].external_data[0].value = "link.bin"
    onnx.save(outside, str(folder / "link.onnx"))
    with pytest.raises(ModelLoadError, match="symbolic link"):
        read_onnx(folder / "link.onnx")


def test_loose_onnx_atol_does_not_pass_outputs_wrong_by_construction():
    """A YOLO-style box row off by 627 on a 0-640 scale fails even with export.onnx_atol=1000; float noise passes."""
    from converters.onnx_import import judge

    measured = {"per_output": [627.0, 2e-6], "output_scale": [640.0, 1.0], "output_names": ["boxes", "scores"]}
    reasons = judge(measured, atol=1000.0, max_relative=0.01)
    assert reasons == [
        "output 0 'boxes' max abs error 627 (98% of its largest value 640) > 0.01 of it "
        "(import.max_relative_error: wrong by construction, whatever export.onnx_atol allows)"
    ]
    assert judge(measured, atol=1e-4, max_relative=0.01)[0].startswith("output 0 'boxes' max abs error 627")
    assert judge({"per_output": [3e-5], "output_scale": [640.0]}, atol=1e-4, max_relative=0.01) == []


def test_first_diverging_op_is_read_from_onnx2tf_cotof_log():
    from converters.onnx2tf_run import first_divergence

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["/r"], name="Relu_0"),
            helper.make_node("Mul", ["/r", "x"], ["/m"], name="Mul_1"),
            helper.make_node("Add", ["/m", "x"], ["y"], name="Add_2"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
    )
    # onnx2tf 1.29.24's -cotof lines (colours included), as measured on a real run
    log = (
        "\x1b[32mINFO:\x1b[0m \x1b[32monnx_output_name\x1b[0m: /r shape: (1, 2) dtype: float32 "
        "\x1b[32mvalidate_result\x1b[0m: \x1b[7m\x1b[32m Matches \x1b[0m\n"
        "INFO: onnx_output_name: y shape: (1, 2) dtype: float32 validate_result:  Unmatched  max_abs_error: 627.5\n"
        "INFO: onnx_output_name: wa/m shape: (1, 2) dtype: float32 validate_result:  Unmatched  max_abs_error: 12.25\n"
    )
    hit = first_divergence(log, helper.make_model(graph).SerializeToString(), {"Mul_1": "p2o.Mul@1"})
    assert hit["node"] == "p2o.Mul@1" and hit["op"] == "Mul" and hit["max_abs_error"] == 12.25


# ------------------------------------------------------------------------------------------------
# one onnx2tf run: PyTorch names, --input-shape, If folded on a constant input
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch_like(tmp_path_factory):
    from converters.onnx_import import load_onnx
    from converters.tflite_convert import convert

    root = tmp_path_factory.mktemp("torch-like")
    path = _if_model(root / "m.onnx", dims=("N", "F"))
    model = load_onnx(path, _options(input_shapes=("input.1=1,8", "0=1,8"), constant_inputs=("sr=16000",)))
    return {"path": path, "model": model, "tflite": convert(model, "float32").tflite}


@pytest.mark.slow
def test_pytorch_input_names_survive_onnx2tf(torch_like):
    import edge_sdk

    model = torch_like["model"]
    assert sorted(s.name for s in model.inputs) == ["0", "ids", "input.1"]
    options = model.onnx2tf_options
    assert options[options.index("-kat") + 1] == "ids"  # token ids: no layout guess
    assert model.prepared == {
        "input_shapes": {"input.1": [1, 8], "0": [1, 8]},
        "constant_inputs": {"sr": 16000.0},
        "ifs_folded": 1,
        "constant_nodes_to_initializers": 1,
    }
    rng = np.random.default_rng(2)
    x = {
        "input.1": rng.normal(size=(1, 8)).astype(np.float32),
        "0": rng.normal(size=(1, 8)).astype(np.float32),
        "ids": rng.integers(0, 256, (1, 16)).astype(np.int32),
    }
    runtime = edge_sdk.load(torch_like["tflite"])
    assert sorted(spec.name for spec in runtime.inputs) == ["0", "ids", "input.1"]
    got = runtime.predict(x)
    want = ort.InferenceSession(str(torch_like["path"]), providers=["CPUExecutionProvider"]).run(
        None, dict(x, sr=np.array([16000], np.int64))
    )[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(model.predict(x), want, atol=1e-6)  # ONNX Runtime is fed sr=16000 itself


# ------------------------------------------------------------------------------------------------
# the public PaddleOCR models, from the wheel cache (skipped without it; never downloaded here)
# ------------------------------------------------------------------------------------------------
def _rapidocr(tmp_path, name):
    from script_modules import load_benchmark_script  # tests/ is on sys.path (tests/conftest.py)

    conformance = load_benchmark_script("conformance.py", "conformance_for_onnx_exports")
    if not list(conformance.wheel_cache().glob("rapidocr_onnxruntime-1.4.4-*.whl")):
        pytest.skip(
            f"no {conformance.RAPIDOCR_WHEEL} wheel in {conformance.wheel_cache()} "
            "(set-up: python benchmarks/conformance.py --download)"
        )
    return conformance, conformance.rapidocr_model(name, tmp_path)


def test_paddleocr_classifier_is_refused_without_input_shape_and_prepared_with_it(tmp_path, monkeypatch):
    """The real [N,3,?,?] classifier: refused before onnx2tf naming the flag; with it every check passes and the
    Paddle node names ('Softmax@0') become names TensorFlow takes."""
    from converters.onnx2tf_run import OnnxConversionError, require_side_folder
    from converters.onnx_import import load_onnx, prepare_onnx, read_onnx
    from converters.onnx_rewrites import sanitize_node_names

    _, path = _rapidocr(tmp_path, "ch_ppocr_mobile_v2.0_cls_infer.onnx")
    _no_onnx2tf(monkeypatch)
    with pytest.raises(OnnxConversionError, match=r"input 'x' \[\?,3,\?,\?\] .* --input-shape x=1,3,D2,D3"):
        load_onnx(path)
    model = read_onnx(path)
    record = prepare_onnx(model, _options(input_shapes=("x=1,3,48,192",)), require_side_folder(), str(path))
    assert record["input_shapes"] == {"x": [1, 3, 48, 192]}
    assert record["constant_nodes_to_initializers"] > 0  # paddle2onnx's scalar weights, which onnx2tf loses
    renamed = sanitize_node_names(model)
    assert renamed.get("Softmax_0") == "Softmax@0"


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("EDGE_SDK_CONFORMANCE"),
    reason="a PaddleOCR conversion takes minutes: set EDGE_SDK_CONFORMANCE=1 (and have the wheel cache)",
)
def test_paddleocr_classifier_converts_matching_onnxruntime(tmp_path):
    conformance, _ = _rapidocr(tmp_path, "ch_ppocr_mobile_v2.0_cls_infer.onnx")
    rows = conformance.run(["ppocr-cls"], ["fp16"], workdir=tmp_path)
    assert rows[0]["status"] == "ok", rows[0]
    assert rows[0]["onnxruntime_max_abs_error"] <= 1e-4


def test_constant_nodes_become_initializers_with_the_same_outputs():
    """paddle2onnx's scalar weights as Constant nodes made onnx2tf fail on PP-OCRv4's detector ('Found: 3.0')."""
    from converters.onnx_rewrites import constants_to_initializers

    nodes = [
        helper.make_node("Constant", [], ["w0"], name="c0", value=numpy_helper.from_array(np.array(1.5, np.float32))),
        helper.make_node(
            "Constant", [], ["three"], name="c1", value=numpy_helper.from_array(np.array(3.0, np.float32))
        ),
        helper.make_node("Mul", ["w0", "x"], ["m"], name="p2o.Mul.0"),
        helper.make_node("Add", ["m", "three"], ["y"], name="p2o.Add.4"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert constants_to_initializers(model) == 2
    assert [n.op_type for n in model.graph.node] == ["Mul", "Add"]
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)


def test_input_shape_fixes_a_dynamic_savedmodel_input(tmp_path):
    """--input-shape on a SavedModel with a dynamic time axis: the .tflite takes the fixed shape, recorded."""
    from converters import pipeline
    from converters._tf import tf, tf_keras

    inputs = tf_keras.Input((None, 4), name="x")
    outputs = tf_keras.layers.Softmax()(tf_keras.layers.GlobalAveragePooling1D()(tf_keras.layers.Dense(3)(inputs)))
    tf.saved_model.save(tf_keras.Model(inputs, outputs), str(tmp_path / "sm"))
    x = np.random.default_rng(1).normal(size=(16, 6, 4)).astype(np.float32)
    np.savez(tmp_path / "cal.npz", x=x)
    result = pipeline.run(
        "fp16",
        str(tmp_path / "sm"),
        tmp_path / "out",
        calibration=str(tmp_path / "cal.npz"),
        overrides={"import.input_shapes": ["x=1,6,4"], "export.latency_runs": 0},
    )
    manifest = json.loads((tmp_path / "out" / "float32.json").read_text())
    assert manifest["inputs"][0]["shape"] == [1, 6, 4]
    assert manifest["recipe"]["import"]["input_shapes"] == ["x=1,6,4"]
    assert [a.name for a in result.artifacts] == ["float32", "float16"]
