"""Real .tflite files from elsewhere into `edge-sdk convert` (issue 23 items 1, 3, 4).

MLPerf Tiny's CIFAR ResNet-8 float (``tests/data/public_models``) was written by an old converter
with no SignatureDef: edge-sdk adds one (recorded in the manifest) so the LiteRT quantizer can
calibrate, and ``edge_sdk.load(...).signatures`` says the file has none instead of inventing one.
Data: 32x32 crops of scikit-learn's two sample photographs, raw 0-255 floats (the model takes raw
pixels); labels are the float model's own top-1, so accuracy is agreement with float.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters import litert_quant, schemes

pytestmark = pytest.mark.skipif(not litert_quant.available(), reason="the 'quantize' extra is not installed")

MODELS = Path(__file__).resolve().parents[1] / "data" / "public_models"
RESNET8 = MODELS / "mlperf_tiny_ic_resnet8_float.tflite"


def photo_crops(n: int, seed: int) -> np.ndarray:
    """``n`` random 32x32x3 crops (strided to 32x32 from 32-160 pixel squares) of the two sample photos."""
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images
    rng = np.random.RandomState(seed)
    out = []
    for k in range(n):
        image = images[k % len(images)]
        side = rng.randint(32, 161)
        step = side // 32
        y = rng.randint(0, image.shape[0] - side + 1)
        x = rng.randint(0, image.shape[1] - side + 1)
        out.append(image[y : y + 32 * step : step, x : x + 32 * step : step])
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def resnet8(tmp_path_factory):
    """The signature-less ResNet-8 bytes, calibration crops and held-out eval crops labelled by the float model."""
    import edge_sdk

    root = tmp_path_factory.mktemp("resnet8")
    data = RESNET8.read_bytes()
    cal = photo_crops(100, seed=1)
    ev = photo_crops(150, seed=2)
    y = np.argmax(edge_sdk.load(data, num_threads=1).predict(ev), axis=-1)
    np.savez(root / "cal.npz", input_1=cal)
    np.savez(root / "eval.npz", input_1=ev, y=y)
    return {"bytes": data, "cal": cal, "eval": ev, "y": y, "root": root}


def test_signature_less_file_reports_no_signature_and_still_predicts(resnet8):
    import edge_sdk
    from edge_sdk.errors import InputNameError

    model = edge_sdk.load(resnet8["bytes"], num_threads=1)
    assert model.signatures == {}  # was {"main": ...}: a key no other tool could find
    assert model.default_signature is None
    assert [s.name for s in model.inputs] == ["input_1"] and [s.name for s in model.outputs] == ["Identity"]
    assert model.predict(resnet8["eval"][:4]).shape == (4, 10)
    with pytest.raises(InputNameError, match="no SignatureDef"):
        model.predict(resnet8["eval"][:1], signature="main")


def test_run_names_the_missing_signature_def(resnet8, tmp_path, capsys):
    from edge_sdk.cli import main

    np.save(tmp_path / "x.npy", resnet8["eval"][:1])
    assert main(["run", str(RESNET8), "--input", str(tmp_path / "x.npy"), "--signature", "main"]) == 2
    assert "the model has no SignatureDef" in capsys.readouterr().err


def test_added_signature_is_named_after_the_tensors_and_changes_no_output(resnet8):
    import edge_sdk
    from converters.tflite_signature import ensure_signature

    signed, record = ensure_signature(resnet8["bytes"])
    assert record["key"] == "serving_default"
    assert record["inputs"] == {"input_1": 0} and list(record["outputs"]) == ["Identity"]
    before = edge_sdk.load(resnet8["bytes"], num_threads=1)
    after = edge_sdk.load(signed, num_threads=1)
    assert list(after.signatures) == ["serving_default"] and after.default_signature == "serving_default"
    assert [s.name for s in after.inputs] == [s.name for s in before.inputs]
    x = resnet8["eval"][:8]
    assert np.array_equal(after.predict(x), before.predict(x))
    assert ensure_signature(signed) == (signed, None)  # a file with a signature is left as it is


def test_signature_less_resnet8_converts_with_int8_and_litert_loads_it(resnet8, tmp_path):
    import edge_sdk
    from edge_sdk.cli import main

    out = tmp_path / "o"
    code = main(
        [
            "convert",
            str(RESNET8),
            "--recipe",
            "int8",
            "--calibration",
            str(resnet8["root"] / "cal.npz"),
            "--eval",
            str(resnet8["root"] / "eval.npz"),
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    manifest = json.loads((out / "float32.json").read_text())
    assert manifest["signature_added"]["key"] == "serving_default"
    assert manifest["signature_added"]["inputs"] == {"input_1": 0}
    parent = edge_sdk.load(str(out / "float32.tflite"), num_threads=1)
    assert list(parent.signatures) == ["serving_default"]
    int8 = edge_sdk.load(str(out / "int8.tflite"), num_threads=1)
    assert list(int8.signatures) == ["serving_default"]
    assert int8.inputs[0].name == parent.inputs[0].name == "input_1"
    assert int8.predict(resnet8["eval"][:4]).shape == (4, 10)


@pytest.mark.parametrize("scheme", ["dynamic", "weight-only-int8", "weight-only-int4", "int16x8", "fp16"])
def test_signature_less_float_tflite_quantizes_with_every_scheme(resnet8, scheme):
    import edge_sdk

    calibration = {"input_1": resnet8["cal"][:16]} if schemes.needs_calibration(scheme) else None
    quantized = litert_quant.quantize_tflite(resnet8["bytes"], scheme, calibration, io="float32")
    model = edge_sdk.load(quantized, num_threads=1)
    assert list(model.signatures) == ["serving_default"]
    assert model.predict(resnet8["eval"][:2]).shape == (2, 10)


# -- item 3: int8 that LiteRT can prepare, or a fallback said in one line -------------------------------------
def _reshaped_parameter(data: bytes, op_type: str, which: int) -> bytes:
    """``data`` with input ``which`` (1 weights, 2 bias) of its first ``op_type`` fed through a RESHAPE to its
    own shape: the same function, but that parameter is computed at run time, as older converters and
    graph rewriters leave it."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fu

    model = fu.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    position = next(i for i, op in enumerate(graph.operators) if fu.opcode_to_name(model, op.opcodeIndex) == op_type)
    op = graph.operators[position]
    source = graph.tensors[op.inputs[which]]

    def tensor(name, shape, dtype, values=None):
        buffer = schema.BufferT()
        if values is not None:
            buffer.data = np.asarray(values).view(np.uint8).ravel()
        model.buffers.append(buffer)
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), dtype, len(model.buffers) - 1
        graph.tensors.append(t)
        return len(graph.tensors) - 1

    reshaped = tensor(source.name.decode() + "/reshaped", source.shape, source.type)
    shape = tensor("reshape_to", [len(source.shape)], schema.TensorType.INT32, np.array(source.shape, np.int32))
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RESHAPE
    code.version = 1
    model.operatorCodes.append(code)
    reshape = schema.OperatorT()
    reshape.opcodeIndex, reshape.inputs, reshape.outputs = (
        len(model.operatorCodes) - 1,
        [op.inputs[which], shape],
        [reshaped],
    )
    op.inputs[which] = reshaped
    graph.operators.insert(position, reshape)
    return bytes(fu.convert_object_to_bytearray(model))


def _with_unused_tensor(data: bytes) -> bytes:
    """``data`` plus one float tensor nothing uses and no buffer holds (what graph rewriters leave behind)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fu

    model = fu.read_model_from_bytearray(bytearray(data))
    orphan = schema.TensorT()
    orphan.name, orphan.shape, orphan.type, orphan.buffer = "left_behind", [3, 3], schema.TensorType.FLOAT16, 0
    model.subgraphs[0].tensors.append(orphan)
    return bytes(fu.convert_object_to_bytearray(model))


@pytest.mark.parametrize(
    "op_type, which, expect",
    [
        ("CONV_2D", 1, "non-zero zero point"),  # was: conv.cc affine_quantization->zero_point->data[i] != 0 at load
        ("FULLY_CONNECTED", 2, "bias is computed at run time"),  # was: the quantizer failed (AttributeError)
    ],
)
def test_ops_litert_cannot_take_in_int8_stay_float_and_say_so_in_one_line(resnet8, op_type, which, expect, tmp_path):
    import edge_sdk
    from edge_sdk.cli import main

    source = tmp_path / "rewritten.tflite"
    source.write_bytes(_reshaped_parameter(resnet8["bytes"], op_type, which))
    out = tmp_path / "o"
    code = main(
        [
            "convert",
            str(source),
            "--recipe",
            "int8",
            "--calibration",
            str(resnet8["root"] / "cal.npz"),
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    lines = [w for w in summary["warnings"] if "kept float" in w]
    assert len(lines) == 1 and expect in lines[0] and op_type in lines[0] and "\n" not in lines[0]
    assert not any(".cc" in w for w in summary["warnings"])
    manifest = json.loads((out / "int8.json").read_text())
    assert [e["op"] for e in manifest["quantization_report"]["kept_float_for_litert"]] == [op_type]
    int8 = edge_sdk.load(str(out / "int8.tflite"), num_threads=1)
    assert int8.predict(resnet8["eval"][:2]).shape == (2, 10)


def test_unused_tensors_do_not_stop_calibration(resnet8):
    import edge_sdk

    data = _with_unused_tensor(resnet8["bytes"])
    quantized, report = litert_quant.quantize_tflite_report(data, "int8", {"input_1": resnet8["cal"][:8]})
    assert report["unused_tensors_dropped"] == 1 and report["fallback"] is None
    assert edge_sdk.load(quantized, num_threads=1).predict(resnet8["eval"][:2]).shape == (2, 10)


@pytest.mark.parametrize("file_name", ["mlperf_tiny_kws_dscnn_dynamic.tflite"])
def test_public_dynamic_range_file_gives_int8_litert_prepares(file_name, tmp_path):
    """The other public models reach the quantizer through their float32 parent (issue 23 item 2); until that
    lands they are refused as already quantized, and this test has nothing to check. (MediaPipe's selfie
    segmentation takes ~10 s: i23-parents-lstm's public-set test converts it.)"""
    import edge_sdk
    from edge_sdk.cli import main

    source = MODELS / file_name
    spec = edge_sdk.load(str(source), num_threads=1).inputs[0]
    shape = tuple(d or 1 for d in spec.shape)[1:]
    rng = np.random.RandomState(0)
    if len(shape) == 3 and shape[-1] == 3:  # an image in [0, 1]: photo crops
        from sklearn.datasets import load_sample_images

        photo = load_sample_images().images[0]
        x = np.stack(
            [photo[y : y + shape[0], x : x + shape[1]] for y, x in ((0, 0), (100, 200), (150, 300), (171, 384))]
        )
        x = x.astype(np.float32) / 255.0
    else:  # MFCC-like features: any values in the range the network saw
        x = rng.normal(0.0, 20.0, (6, *shape)).astype(np.float32)
    np.savez(tmp_path / "cal.npz", **{spec.name: x})
    out = tmp_path / "o"
    code = main(
        [
            "convert",
            str(source),
            "--recipe",
            "int8",
            "--calibration",
            str(tmp_path / "cal.npz"),
            "--out",
            str(out),
            "-q",
        ]
    )
    if code == 2 and not (out / "int8.tflite").exists():
        pytest.skip("float16-weight / dynamic-range inputs are refused on this branch (issue 23 item 2)")
    assert code == 0
    int8 = edge_sdk.load(str(out / "int8.tflite"), num_threads=1)
    assert int8.predict(x[:1]).shape[0] == 1


# -- item 4: the LiteRT path's int8 as accurate as TFLiteConverter's on the same network and data -----------
def test_litert_int8_agrees_with_float_within_a_point_of_tfliteconverter_int8_on_the_same_data():
    """MLPerf ResNet-8, 200 calibration crops (left halves of the photos), 3,000 held-out eval crops (right halves):
    the LiteRT quantizer's int8 against TFLiteConverter's int8 of the same network rebuilt in tf_keras from the
    file's weights, calibrated on the same crops, measured side by side (was 68.4% vs 80.0%)."""
    pytest.importorskip("tensorflow")
    from script_modules import load_benchmark_script  # tests/ is on sys.path (tests/conftest.py)

    bench = load_benchmark_script("litert_vs_keras_int8.py", "litert_vs_keras_int8")
    cal, ev = bench.data(200, 3000, seed=0)
    float_bytes = RESNET8.read_bytes()
    keras_model = bench.keras_from_tflite(float_bytes)
    float_out = bench.outputs(float_bytes, ev)
    assert np.max(np.abs(keras_model.predict(ev[:100], verbose=0) - float_out[:100])) < 1e-4  # a faithful rebuild
    litert = bench.compare(float_out, bench.outputs(bench.litert_int8(float_bytes, cal), ev))
    keras_path = bench.compare(float_out, bench.outputs(bench.tfliteconverter_int8(keras_model, cal), ev))
    assert litert["agreement"] >= keras_path["agreement"] - 0.01, (litert, keras_path)
    assert litert["max_error"] <= 1.5 * keras_path["max_error"], (litert, keras_path)


def test_a_keep_float_pattern_that_matches_no_op_is_named_in_a_warning(tmp_path, capsys):
    """`--keep-float conv2d_99` (a typo) kept nothing float and said nothing."""
    from edge_sdk.cli import main

    model = Path(__file__).parents[1] / "data" / "public_models" / "mlperf_tiny_ic_resnet8_float.tflite"
    code = main(
        [
            "convert",
            str(model),
            "--recipe",
            "int8",
            "--scheme",
            "weight-only-int8",
            "--keep-float",
            "no_such_op_xyz,Identity",
            "--out",
            str(tmp_path / "out"),
            "--formats",
            "tflite",
            "--latency-runs",
            "0",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if "matched no op" in line]
    assert len(lines) == 1 and "'no_such_op_xyz'" in lines[0] and "'Identity'" not in lines[0], err


def test_a_weight_only_wipe_out_names_a_weight_remedy(tmp_path, capsys):
    """int4 weights wiped out 3 of ResNet-8's classes; the remedy named int16 activations and splitting the output,
    which a weight-only file (float activations) cannot use."""
    from edge_sdk.cli import main

    model = Path(__file__).parents[1] / "data" / "public_models" / "mlperf_tiny_ic_resnet8_float.tflite"
    np.save(tmp_path / "cal.npy", (np.random.default_rng(0).random((40, 32, 32, 3)) * 255).astype("float32"))
    code = main(
        [
            "convert",
            str(model),
            "--recipe",
            "int8",
            "--scheme",
            "weight-only-int4",
            "--calibration",
            str(tmp_path / "cal.npy"),
            "--out",
            str(tmp_path / "out"),
            "--formats",
            "tflite",
            "--latency-runs",
            "0",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "wiped out" in out and not (tmp_path / "out").exists(), out
    assert "--scheme weight-only-int8" in out and "int16 activations" not in out, out
