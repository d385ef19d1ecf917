"""Bring your own model: a float .tflite into `edge-sdk convert` (LiteRT quantizer, no TensorFlow),
optional exports that never sink a run, and the slower-than-float32 warning (issue 13).

The float .tflite is the tiny digits CNN of ``training.tiny_models`` (trained for a moment, real weights).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from converters import litert_quant
from converters.errors import CalibrationError, ConversionError

pytestmark = pytest.mark.skipif(not litert_quant.available(), reason="the 'quantize' extra is not installed")

BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnx",
               "onnxruntime") + tuple(EXTRA_BLOCKED)

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: runtime + quantize extra only")
            return None

    sys.meta_path.insert(0, Blocker())
""")


def run_blocked(body: str, extra_blocked=(), timeout: int = 300) -> subprocess.CompletedProcess:
    script = f"EXTRA_BLOCKED = {tuple(extra_blocked)!r}\n" + BLOCKER + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def byom(tmp_path_factory):
    """float32.tflite and int8.tflite (TFLiteConverter) of the digits CNN, calibration and eval .npz files."""
    from training.tiny_models import build_digits_models, digits_data

    root = tmp_path_factory.mktemp("byom")
    paths = build_digits_models(root)
    x, y = digits_data()
    np.savez(root / "cal.npz", x=x[:200])
    np.savez(root / "eval.npz", x=x[500:], y=y[500:])
    paths.update(cal=root / "cal.npz", eval=root / "eval.npz", root=root, eval_x=x[500:])
    return paths


def top1(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import edge_sdk

    return np.argmax(edge_sdk.load(model_bytes, num_threads=1).predict(x), axis=-1)


# ------------------------------------------------------------------------------------------------
# converters.litert_quant: the interface the `auto` recipe codes against
# ------------------------------------------------------------------------------------------------
def test_schemes_interface():
    assert {"int8", "dynamic", "weight-only-int8", "weight-only-int4", "int16x8", "fp16"} <= set(litert_quant.SCHEMES)
    assert all(isinstance(text, str) and text for text in litert_quant.SCHEMES.values())
    assert litert_quant.available() is True


@pytest.mark.parametrize(
    "scheme, kind, io",
    [
        ("int8", "full-integer", "integer"),
        ("dynamic", "dynamic-range", "float"),
        ("weight-only-int8", "weight-only-int8", "float"),
        ("weight-only-int4", "weight-only-int4", "float"),
        ("int16x8", "full-integer", "integer"),
        ("fp16", "float16-weight", "float"),
    ],
)
def test_every_scheme_quantizes_and_inspect_names_it(byom, scheme, kind, io):
    from edge_sdk.inspect_model import inspect_model

    float_bytes = byom["float32"].read_bytes()
    cal = {"image": byom["eval_x"][:50]}
    quantized = litert_quant.quantize_tflite(float_bytes, scheme, cal)
    info = inspect_model(quantized)
    assert (info["kind"], info["io"]) == (kind, io)
    assert len(quantized) < 0.7 * len(float_bytes)
    x = byom["eval_x"]
    agreement = float(np.mean(top1(quantized, x) == top1(float_bytes, x)))
    assert agreement >= 0.9, (scheme, agreement)
    if scheme == "int16x8":
        assert info["integer_activations"] == ["int16"]


def test_keep_float_and_float_io(byom):
    import edge_sdk
    from edge_sdk.inspect_model import inspect_model

    float_bytes = byom["float32"].read_bytes()
    cal = {"image": byom["eval_x"][:50]}
    dense = [t["name"] for t in inspect_model(float_bytes)["tensors"] if "probs" in (t["name"] or "")]
    assert dense, "the digits CNN's last layer is named 'probs'"
    kept = litert_quant.quantize_tflite(float_bytes, "int8", cal, keep_float=["probs"])
    info = inspect_model(kept)
    assert info["kind"] == "mixed"
    assert "FULLY_CONNECTED" in info["float_ops"] or "SOFTMAX" in info["float_ops"]
    edges = edge_sdk.load(litert_quant.quantize_tflite(float_bytes, "int8", cal, io="float32"))
    assert edges.inputs[0].dtype == np.float32 and edges.outputs[0].dtype == np.float32


def test_quantize_tflite_refusals(byom):
    float_bytes = byom["float32"].read_bytes()
    with pytest.raises(ConversionError, match="expected one of int8, dynamic"):
        litert_quant.quantize_tflite(float_bytes, "int3")
    with pytest.raises(CalibrationError, match="needs calibration data"):
        litert_quant.quantize_tflite(float_bytes, "int8")
    with pytest.raises(CalibrationError, match=r"expected rows of shape \(8, 8, 1\), got \(64,\)"):
        litert_quant.quantize_tflite(float_bytes, "int8", {"image": np.zeros((4, 64), np.float32)})
    with pytest.raises(ConversionError, match="already full-integer"):
        litert_quant.quantize_tflite(byom["int8"].read_bytes(), "dynamic")
    with pytest.raises(ConversionError, match="not a valid regular expression"):
        litert_quant.quantize_tflite(float_bytes, "dynamic", keep_float=["(unclosed"])
    with pytest.raises(ConversionError, match="expected TFLite flatbuffer bytes"):
        litert_quant.quantize_tflite(b"0123456789", "dynamic")


# ------------------------------------------------------------------------------------------------
# edge-sdk convert model.tflite
# ------------------------------------------------------------------------------------------------
def test_convert_float_tflite_int8_through_the_pipeline(byom, tmp_path):
    from converters import pipeline

    out = tmp_path / "out"
    result = pipeline.run("int8", str(byom["float32"]), out, calibration=str(byom["cal"]), eval_data=str(byom["eval"]))
    names = [a.name for a in result.artifacts]
    assert names == ["float32", "int8"]  # the built-in recipe's ONNX export was skipped, not attempted
    float_bytes = (out / "float32.tflite").read_bytes()
    assert float_bytes == byom["float32"].read_bytes()  # the user's float file is its own float32 artifact
    int8 = (out / "int8.tflite").read_bytes()
    manifest = json.loads((out / "int8.json").read_text())
    assert manifest["kind"] == "int8" and manifest["parent_sha256"] == result.get("float32").sha256
    assert manifest["quantization_report"]["quantizer"] == "litert-quantizer"
    assert manifest["quantization_report"]["scheme"] == "int8"
    x = byom["eval_x"]
    assert np.mean(top1(int8, x) == top1(float_bytes, x)) >= 0.97
    assert len(int8) / len(float_bytes) < 0.5  # a 14 KB model: the flatbuffer's own overhead weighs in
    summary = json.loads((out / "summary.json").read_text())
    assert "onnx" in summary["comparisons"]["export"]["skipped"]
    assert any(
        w.startswith("onnx export skipped (not asked for with --formats): needs a Keras model")
        for w in summary["warnings"]
    )
    assert summary["comparisons"]["quantize"]["input_size_ratio"] < 0.5


def test_convert_tflite_runs_without_tensorflow(byom, tmp_path):
    out = tmp_path / "light"
    result = run_blocked(f"""
        from edge_sdk.cli import main
        code = main(["convert", {str(byom["float32"])!r}, "--recipe", "int8", "--calibration",
                     {str(byom["cal"])!r}, "--eval", {str(byom["eval"])!r}, "--out", {str(out)!r}, "-q",
                     "--min-agreement", "0.9"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not heavy, heavy
        sys.exit(code)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "int8.tflite").is_file() and (out / "int8.json").is_file()
    manifest = json.loads((out / "int8.json").read_text())
    assert manifest["build"]["byte_identical"] is True and "tensorflow" not in manifest["tool_versions"]
    gate = json.loads((out / "summary.json").read_text())["comparisons"]["gate"]  # the gate ran, TF-free
    assert gate["status"] == "pass" and (out / "parity.json").is_file()


def test_missing_quantize_extra_names_it(byom, tmp_path):
    result = run_blocked(
        f"""
        from edge_sdk.cli import main
        sys.exit(main(["convert", {str(byom["float32"])!r}, "--recipe", "dynamic", "--out", {str(tmp_path / "o")!r}]))
    """,
        extra_blocked=("litert_quantizer",),
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'edge-sdk[quantize]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--recipe", "prune-int8", "--dataset", "digits"],
            "prune needs a Keras model or SavedModel; got a .tflite file",
        ),
        (["--recipe", "int8", "--qat", "--dataset", "digits"], "needs a Keras model or SavedModel; got a .tflite file"),
        (
            ["--recipe", "dynamic", "--formats", "tflite,onnx"],
            "export needs a Keras model or SavedModel; got a .tflite",
        ),
        (["--recipe", "dynamic", "--keep-float", "(bad"], "not a valid regular expression"),
        (["--recipe", "int8"], "needs calibration data"),
    ],
)
def test_stages_a_tflite_cannot_take_are_refused_before_any_work(byom, tmp_path, capsys, extra, message):
    from edge_sdk.cli import main

    out = tmp_path / "o"
    code = main(["convert", str(byom["float32"]), "--out", str(out), "-q", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_scheme_option_on_a_tflite_input(byom, tmp_path):
    from converters import pipeline

    out = tmp_path / "w4"
    result = pipeline.run(
        "dynamic",
        str(byom["float32"]),
        out,
        eval_data=str(byom["eval"]),
        overrides={"quantize.scheme": "weight-only-int4"},
    )
    artifact = result.get("weight-only-int4")
    assert artifact is not None and artifact.kind == "weight-only-int4"
    assert json.loads((out / "weight-only-int4.json").read_text())["kind"] == "weight-only-int4"


def test_a_recipe_that_quantizes_nothing_says_so_and_records_float32(byom, tmp_path):
    """issue 23 item 5: weight-only int4 with every op kept float is a float file: kind float32, one warning."""
    from converters import pipeline

    out = tmp_path / "nothing"
    result = pipeline.run(
        "dynamic",
        str(byom["float32"]),
        out,
        overrides={"quantize.scheme": "weight-only-int4", "quantize.keep_float": [".*"]},
    )
    artifact = result.get("weight-only-int4")
    manifest = json.loads((out / "weight-only-int4.json").read_text())
    assert artifact.kind == manifest["kind"] == "float32"  # what `inspect` reads, not what was asked
    assert manifest["quantization_report"]["inspected_kind"] == "float"
    notes = [w for w in json.loads((out / "summary.json").read_text())["warnings"] if "nothing was quantized" in w]
    assert len(notes) == 1 and "weight-only-int4 was asked for" in notes[0]


def test_a_quantized_tflite_input_is_refused(byom, tmp_path, capsys):
    from edge_sdk.cli import main

    code = main(["convert", str(byom["int8"]), "--recipe", "dynamic", "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "expected a float .tflite model to quantize, got one that is already full-integer" in err


# ------------------------------------------------------------------------------------------------
# latency honesty
# ------------------------------------------------------------------------------------------------
def test_slower_artifact_is_flagged_with_the_ops_xnnpack_left_out(byom, tmp_path):
    """int16 activations run ~30x float32 on x86 (XNNPACK has no int16 kernels): measured side by side."""
    from converters import pipeline

    out = tmp_path / "i16"
    result = pipeline.run(
        "dynamic",
        str(byom["float32"]),
        out,
        calibration=str(byom["cal"]),
        eval_data=str(byom["eval"]),
        overrides={"quantize.scheme": "int16x8"},
    )
    notes = result.comparisons.get("latency_warnings")
    assert notes and notes[0].startswith("int16x8.tflite is ") and "slower than float32.tflite here" in notes[0]
    assert "not taken by XNNPACK" in notes[0] and "CONV_2D" in notes[0]
    manifest = json.loads((out / "int16x8.json").read_text())
    assert manifest["latency_note"] == notes[0] and manifest["metrics"]["latency_vs_float32"] > 1.1
    assert notes[0] in json.loads((out / "summary.json").read_text())["warnings"]


def test_slower_note_threshold_and_wording():
    from converters.latency_check import SLOWER_RATIO, slower_note

    assert slower_note("int8.tflite", "float32.tflite", 100.0, 100.0 * SLOWER_RATIO, {}, {}) is None
    assert slower_note("int8.tflite", "float32.tflite", 100.0, 105.0, {"SOFTMAX": 1}, {}) is None
    line = slower_note(
        "int8.tflite", "float32.tflite", 99.0, 417.0, {"BATCH_MATMUL": 2, "GATHER": 5, "SOFTMAX": 2}, {"GATHER": 5}
    )
    assert line.startswith("int8.tflite is 4.2x slower than float32.tflite here (417 vs 99 us")
    assert "4 op(s)" in line and "BATCH_MATMUL x2, SOFTMAX x2" in line and "GATHER" not in line
    same = slower_note("int8.tflite", "float32.tflite", 100.0, 130.0, {"GATHER": 1}, {"GATHER": 1})
    assert "XNNPACK took the same ops in both" in same


def test_xnnpack_fallback_ops_reads_the_delegated_graph(byom):
    from converters.latency_check import xnnpack_fallback_ops

    float_bytes = byom["float32"].read_bytes()
    assert xnnpack_fallback_ops(float_bytes) == {}  # conv, dense, softmax: all in XNNPACK for float32
    i16 = litert_quant.quantize_tflite(float_bytes, "int16x8", {"image": byom["eval_x"][:20]})
    left = xnnpack_fallback_ops(i16)
    assert left.get("CONV_2D") == 1 and left.get("FULLY_CONNECTED") == 1


# ------------------------------------------------------------------------------------------------
# optional exports never sink a run (a Keras 3 GELU model: tf2onnx has no Erfc)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gelu_keras3(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("gelu")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.Dense(16, activation="gelu")(inputs)  # exact GELU: Erfc in the TF graph
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(hidden)
    model = keras.Model(inputs, outputs)
    path = root / "gelu.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    np.savez(root / "cal.npz", x=x)
    np.savez(root / "eval.npz", x=x, y=rng.integers(0, 3, 64))
    return path, root / "cal.npz", root / "eval.npz"


def test_failing_default_onnx_export_is_a_warning_and_tflite_is_promoted(gelu_keras3, tmp_path, capsys, monkeypatch):
    from converters import quantize
    from edge_sdk.cli import main

    # this small model keeps every op integer; the transformer keeps NEG x2 float: the line as it would print
    stayed = "operators that stayed float in the int8 model: NEG x2"
    monkeypatch.setattr(quantize, "summarize_float_ops", lambda result: [stayed])
    model, cal, ev = gelu_keras3
    out = tmp_path / "o"
    code = main(
        ["convert", str(model), "--recipe", "int8", "--calibration", str(cal), "--eval", str(ev), "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (out / "int8.tflite").is_file() and not list(out.glob("*.onnx"))
    summary = json.loads((out / "summary.json").read_text())
    reason = summary["comparisons"]["export"]["skipped"]["onnx"]
    assert "Erfc" in reason
    assert "warning: onnx export skipped (not asked for with --formats)" in captured.out  # under the table
    assert stayed in summary["warnings"]  # the input model's artifacts have no name prefix: no ": " before it
    assert f"warning: {stayed}" in captured.err and "warning: : operators" not in captured.err


def test_failing_requested_onnx_export_still_stops_the_run(gelu_keras3, tmp_path, capsys):
    from edge_sdk.cli import main

    model, cal, ev = gelu_keras3
    out = tmp_path / "o"
    code = main(
        [
            "convert",
            str(model),
            "--recipe",
            "int8",
            "--calibration",
            str(cal),
            "--eval",
            str(ev),
            "--formats",
            "tflite,onnx",
            "--out",
            str(out),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Erfc" in err and "Traceback" not in err
    assert not out.exists()


def test_the_library_refuses_a_folder_it_did_not_write_unless_force(byom, tmp_path):
    """Issue 27 item 5: pipeline.run itself guards its output folder; the CLI only translates the error."""
    from converters import pipeline
    from edge_sdk.errors import OutputError
    from edge_sdk.outputs import read_marker

    out = tmp_path / "theirs"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"is a non-empty directory edge-sdk did not write .*pass force=True"):
        pipeline.run("dynamic", str(byom["float32"]), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".theirs.tmp-*"))  # refused before any work: no staging either

    pipeline.run("dynamic", str(byom["float32"]), out, force=True)
    assert not (out / "notes.txt").exists()
    marker = read_marker(out)  # written by the library, promoted with the artifacts
    assert marker is not None and marker["command"] == "convert"
    assert "dynamic.tflite" in marker["entries"] and "summary.json" in marker["entries"]

    first = (out / "dynamic.tflite").read_bytes()
    pipeline.run("dynamic", str(byom["float32"]), out)  # a folder edge-sdk wrote is replaced without force
    assert (out / "dynamic.tflite").read_bytes() == first

    inside = out / "float32.tflite"
    inside.write_bytes(byom["float32"].read_bytes())
    with pytest.raises(OutputError, match="contains the input model"):  # force never replaces an input
        pipeline.run("dynamic", str(inside), out, force=True)
    assert inside.exists()
