"""More ONNX exports (issue 24 item 2): a YOLOv8-style detection head, a PyTorch LSTM with its initial state,
a Silero-VAD-like model (If on an int64 ``sr``, state in and out). The models are built with ``onnx.helper``
as PyTorch exports them (``tests/onnx_export_models.py``); each onnx2tf run is one module-scoped fixture.

The YOLO head here is square after its level concat (4 + 16 classes rows x 20 anchors): onnx2tf 1.29.24
then splits boxes from scores on the wrong axis (box rows off by 98% of their scale). The op-by-op
search (``-cotof``) names that Split; edge-sdk's ``split_before_concat`` rewrite (default on) fixes it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import onnx_export_models as em  # noqa: E402  (tests/ is on sys.path: tests/conftest.py)

SQUARE_CLASSES = 16  # 4 + 16 rows == 20 anchors of a 32x32 input (strides 8 and 16)


def _options(**values):
    from converters.recipe import ImportOptions

    return ImportOptions(**values)


def _no_onnx2tf(monkeypatch):
    import converters.onnx_import as oi

    def forbidden(*args, **kwargs):
        raise AssertionError("onnx2tf ran; the refusal should have come first")

    monkeypatch.setattr(oi, "run_onnx2tf", forbidden)


def _images(n=8, size=em.YOLO_SIZE, seed=0):
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(p, np.float32) / 255.0 for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(n):
        photo = photos[i % 2]
        top, left = rng.integers(0, photo.shape[0] - 4 * size), rng.integers(0, photo.shape[1] - 4 * size)
        crops.append(photo[top : top + 4 * size : 4, left : left + 4 * size : 4].transpose(2, 0, 1))
    return np.stack(crops).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# before onnx2tf (no child process)
# ------------------------------------------------------------------------------------------------
def test_split_before_concat_gives_the_same_values(tmp_path):
    from converters.onnx_import import read_onnx
    from converters.onnx_rewrites import split_before_concat

    path = em.yolo_detector(tmp_path / "yolo.onnx", classes=SQUARE_CLASSES)
    model = read_onnx(path)
    assert split_before_concat(model) == 1
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert (
        "/model.22/Concat_2" not in [n.name for n in model.graph.node] and ops.count("Split") == 3
    )  # one per level + the box halves
    x = {"images": _images(1)}
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)[0]
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_array_equal(got, want)


def test_vad_if_on_sr_is_refused_naming_sr_and_the_option(tmp_path, monkeypatch):
    from converters.onnx2tf_run import OnnxConversionError
    from converters.onnx_import import load_onnx

    _no_onnx2tf(monkeypatch)
    with pytest.raises(
        OnnxConversionError,
        match=r"If node '/If' is control flow .* depends on input\(s\) sr: .*"
        r"--set import.constant_inputs=sr=VALUE",
    ):
        load_onnx(em.vad_model(tmp_path / "vad.onnx"))


# ------------------------------------------------------------------------------------------------
# one onnx2tf run each
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vad(tmp_path_factory):
    from converters.onnx_import import load_onnx
    from converters.quantize import convert

    path = em.vad_model(tmp_path_factory.mktemp("vad") / "vad.onnx")
    model = load_onnx(path, _options(constant_inputs=("sr=16000",)))
    return {"path": path, "model": model, "tflite": convert(model, "float32").tflite}


@pytest.mark.slow
def test_vad_with_state_in_and_out_converts_matching_onnxruntime(vad):
    """sr made constant folds the If; the state [2, 1, H] goes in and comes out; each step matches ORT."""
    import edge_sdk
    from converters.onnx_import import compare_with_onnxruntime

    model = vad["model"]
    assert sorted(s.name for s in model.inputs) == ["input", "state"]
    assert model.prepared["ifs_folded"] == 1 and model.prepared["constant_inputs"] == {"sr": 16000.0}
    rng = np.random.default_rng(3)
    session = ort.InferenceSession(str(vad["path"]), providers=["CPUExecutionProvider"])
    runtime = edge_sdk.load(vad["tflite"])
    state_ort = state_lite = np.zeros((2, 1, 16), np.float32)
    for _ in range(3):  # the state carried over three frames
        frame = rng.normal(size=(1, 64)).astype(np.float32)
        prob, state_ort = session.run(None, {"input": frame, "state": state_ort, "sr": np.array(16000, np.int64)})
        got = runtime.predict_all({"input": frame, "state": state_lite})
        outs = [got[k] for k in sorted(got)]
        np.testing.assert_allclose(outs[0], prob, atol=1e-5)
        state_lite = outs[1].reshape(2, 1, 16)  # onnx2tf gives it as [1, 2, 16]: the same values
        np.testing.assert_allclose(state_lite, state_ort, atol=1e-5)
    measured = compare_with_onnxruntime(model, vad["tflite"], {"input": frame, "state": state_ort})
    assert measured["max_abs_error"] < 1e-5 and measured["output_layout"][1] == "unit axes moved"


@pytest.fixture(scope="module")
def lstm(tmp_path_factory):
    from converters.onnx_import import load_onnx
    from converters.quantize import convert

    path = em.lstm_model(tmp_path_factory.mktemp("lstm") / "lstm.onnx")
    model = load_onnx(path)
    return {"path": path, "model": model, "tflite": convert(model, "float32").tflite}


@pytest.mark.slow
def test_pytorch_lstm_with_initial_state_converts_matching_onnxruntime(lstm):
    """torch.nn.LSTM(batch_first=True) with h0/c0 inputs: its 3-D inputs get onnx2tf -kat (no layout guess)."""
    import edge_sdk
    from converters.onnx_import import compare_with_onnxruntime

    model = lstm["model"]
    options = model.onnx2tf_options
    assert set(options[options.index("-kat") + 1 : options.index("-kat") + 4]) == {"input.1", "h0", "c0"}
    rng = np.random.default_rng(4)
    x = {
        "input.1": rng.normal(size=(1, 8, 4)).astype(np.float32),
        "h0": rng.normal(size=(1, 1, 8)).astype(np.float32),
        "c0": rng.normal(size=(1, 1, 8)).astype(np.float32),
    }
    measured = compare_with_onnxruntime(model, lstm["tflite"], x)
    assert measured["max_abs_error"] < 1e-5, measured
    runtime = edge_sdk.load(lstm["tflite"])
    assert sorted(s.name for s in runtime.inputs) == ["c0", "h0", "input.1"]
    want = ort.InferenceSession(str(lstm["path"]), providers=["CPUExecutionProvider"]).run(None, x)
    got = runtime.predict_all(x)
    np.testing.assert_allclose(got[sorted(got)[0]], want[0], atol=1e-5)


@pytest.fixture(scope="module")
def yolo_runs(tmp_path_factory):
    """The square YOLO head converted twice by the fp16 recipe: without the rewrite (the gate fails, -cotof
    names the op) and with it (the default)."""
    from converters import pipeline
    from converters.gate import GateFailedError

    root = tmp_path_factory.mktemp("yolo")
    path = em.yolo_detector(root / "yolo.onnx", classes=SQUARE_CLASSES)
    np.savez(root / "cal.npz", images=_images(16))
    common = {"export.latency_runs": 0}
    failure = None
    try:
        pipeline.run(
            "fp16",
            path,
            root / "off",
            calibration=str(root / "cal.npz"),
            overrides=dict(common, **{"import.split_before_concat": False, "import.find_divergence": 300}),
        )
    except GateFailedError as exc:
        failure = exc
    # a square [1, 20, 20] output cannot say which axis holds the boxes: the task is declared
    result = pipeline.run(
        "fp16",
        path,
        root / "on",
        calibration=str(root / "cal.npz"),
        overrides=dict(common, **{"task.task": "detection", "task.detection_head": "yolov8"}),
    )
    return {"root": root, "failure": failure, "result": result}


@pytest.mark.slow
def test_cotof_names_the_split_onnx2tf_converts_wrong(yolo_runs):
    """End to end: a real wrong conversion fails the gate, and onnx2tf -cotof names the op that diverges."""
    failure = yolo_runs["failure"]
    assert failure is not None, "the square YOLO head converted right without the rewrite: onnx2tf changed"
    text = str(failure)
    assert "output 0 'output0' max abs error" in text
    assert "first op that diverges: Split '/model.22/Split'" in text and "onnx2tf -cotof" in text
    assert not (yolo_runs["root"] / "off").exists()  # nothing promoted


@pytest.mark.slow
def test_yolo_head_converts_matching_onnxruntime_with_the_rewrite(yolo_runs):
    manifest = json.loads((yolo_runs["root"] / "on" / "float32.json").read_text())
    assert manifest["source"]["splits_before_concat"] == 1
    assert manifest["metrics"]["onnxruntime_max_abs_error"] < 1e-4
    fp16 = json.loads((yolo_runs["root"] / "on" / "float16.json").read_text())
    assert fp16["metrics"]["task"]["recall"] >= 0.9  # judged as a detector: recall of float's boxes at IoU 0.5


def test_int8_of_a_recurrent_op_with_state_inputs_is_refused_in_one_line(tmp_path):
    """TensorFlow's int8 calibrator segfaulted the whole process on the LSTM with h0/c0 inputs: refused by name."""
    from converters.onnx_checks import recurrent_state_refusal
    from converters.onnx_import import read_onnx

    text = recurrent_state_refusal(read_onnx(em.lstm_model(tmp_path / "lstm.onnx")), "lstm.onnx")
    assert text.startswith("lstm.onnx: LSTM node '/lstm/LSTM' takes its initial state from input(s) c0, h0")
    assert "--recipe dynamic or fp16" in text
    assert "input(s) state" in recurrent_state_refusal(read_onnx(em.vad_model(tmp_path / "vad.onnx")), "vad.onnx")
    assert recurrent_state_refusal(read_onnx(em.yolo_detector(tmp_path / "y.onnx")), "y.onnx") == ""


@pytest.mark.slow
def test_int8_refusal_reaches_the_quantizer_before_tensorflow(lstm):
    from converters.errors import ConversionError
    from converters.quantize import convert

    calibration = {
        "input.1": np.zeros((2, 8, 4), np.float32),
        "h0": np.zeros((2, 1, 8), np.float32),
        "c0": np.zeros((2, 1, 8), np.float32),
    }
    with pytest.raises(ConversionError, match=r"LSTM node '/lstm/LSTM' .* use --recipe dynamic or fp16"):
        convert(lstm["model"], "int8", calibration=calibration)


def test_onnx_atol_scales_with_an_output_in_pixels():
    """float32 rounding of a 0-571 px box row (1.2e-4) passes onnx_atol 1e-4; a real error does not; 0-1 rows as before."""
    from converters.onnx_import import judge

    assert judge({"per_output": [1.2e-4, 2e-6], "output_scale": [571.0, 0.45]}, atol=1e-4, max_relative=0.01) == []
    reasons = judge(
        {"per_output": [0.1], "output_scale": [571.0], "output_names": ["output0"]}, atol=1e-4, max_relative=0.01
    )
    assert reasons == [
        "output 0 'output0' max abs error 0.1 (0.018% of its largest value 571) > 0.0571 "
        "(0.0001 (export.onnx_atol) x its largest value 571)"
    ]
    assert judge({"per_output": [2e-4], "output_scale": [0.45]}, atol=1e-4, max_relative=0.01)[0].endswith(
        "> 0.0001 (0.0001 (export.onnx_atol))"
    )
