"""Parity of real digits models: float (TensorFlow) vs int8 TFLite (edge_sdk runtime)."""

import numpy as np
import pytest

from converters.errors import DataError
from converters.parity import compare_outputs, run_parity
from edge_sdk.reference import SignatureMismatchError


@pytest.fixture(scope="module")
def normal_result(digits):
    art = digits["normal"]
    return run_parity(art["keras"], art["int8"], str(art["test"]), progress=False)


def test_int8_of_a_healthy_model_keeps_its_accuracy(normal_result):
    s = normal_result["summary"]
    assert s["samples"] == 497
    assert s["float_accuracy"] > 0.9
    assert abs(s["accuracy_drop_points"]) < 3.0
    assert s["top1_agreement"] > 0.95
    out = normal_result["outputs"][0]
    assert out["float"] == "probs"
    assert 0 < out["max_abs_error"] < 1 and out["mean_abs_error"] < out["max_abs_error"]
    assert out["cosine_mean"] > 0.97 and 0 <= out["relative_error"] < 0.2


def test_per_class_and_worst_examples_are_consistent(normal_result):
    per_class = normal_result["per_class"]
    assert [r["class"] for r in per_class] == list(range(10))
    assert sum(r["count"] for r in per_class) == 497
    weighted = sum(r["quantized_accuracy"] * r["count"] for r in per_class) / 497
    assert weighted == pytest.approx(normal_result["summary"]["quantized_accuracy"])
    worst = normal_result["worst_examples"]
    errors = [w["max_abs_error"] for w in worst]
    assert len(worst) == 10 and errors == sorted(errors, reverse=True)
    assert errors[0] == pytest.approx(normal_result["outputs"][0]["max_abs_error"])
    hist = normal_result["error_histogram"]
    assert sum(hist["counts"]) == 497 * 10


def test_savedmodel_and_keras_file_agree(digits, normal_result):
    art = digits["normal"]
    from_sm = run_parity(art["savedmodel"], art["int8"], str(art["test"]), progress=False)
    assert from_sm["float_model"]["kind"] == "savedmodel"
    assert from_sm["summary"]["float_accuracy"] == pytest.approx(normal_result["summary"]["float_accuracy"])
    assert from_sm["summary"]["top1_agreement"] == pytest.approx(normal_result["summary"]["top1_agreement"])


def test_outlier_model_shows_the_damage_per_class(digits):
    art = digits["outlier"]
    result = run_parity(
        art["keras"], art["int8"], str(art["test"]), progress=False, layers=True, calibration=str(art["train"])
    )
    s = result["summary"]
    assert s["float_accuracy"] > 0.9
    assert s["accuracy_drop_points"] > 5.0, s
    worst_class = max(result["per_class"], key=lambda r: r["drop_points"])
    assert worst_class["drop_points"] > s["accuracy_drop_points"]
    ranked = [layer for layer in result["layers"] if layer["candidate"]]
    assert {ranked[0]["name"].split("/")[1], ranked[1]["name"].split("/")[1]} == {"hidden_a", "hidden_b"}


def test_compare_outputs_on_known_arrays():
    f = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)
    q = np.array([[0.8, 0.2], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]], np.float32)
    labels = np.array([0, 1, 0, 0])
    result = compare_outputs({"p": f}, {"p": q}, [("p", "p")], labels, worst=2)
    s = result["summary"]
    assert s["top1_agreement"] == 0.75 and s["disagreements"] == 1
    assert s["float_accuracy"] == 0.75 and s["quantized_accuracy"] == 0.5
    assert s["accuracy_drop_points"] == pytest.approx(25.0)
    assert result["outputs"][0]["max_abs_error"] == pytest.approx(0.2)
    assert [w["index"] for w in result["worst_examples"]] == [2, 0]
    assert result["worst_examples"][0]["agree"] is False
    by_class = {r["class"]: r for r in result["per_class"]}
    assert by_class[0]["count"] == 3 and by_class[0]["quantized_accuracy"] == pytest.approx(1 / 3)


def test_data_shape_matching_neither_model(digits, tmp_path):
    art = digits["normal"]
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((5, 7, 7, 1), np.float32), y=np.zeros(5, np.int64))
    with pytest.raises(DataError) as info:
        run_parity(art["keras"], art["int8"], str(bad), progress=False)
    text = str(info.value)
    assert "(5, 7, 7, 1)" in text and "either model" in text
    assert "float model expects image[?,8,8,1]" in text and "quantized model expects" in text


def test_labels_of_the_wrong_length(digits, tmp_path):
    art = digits["normal"]
    labels = tmp_path / "labels.npy"
    np.save(labels, np.zeros(10, np.int64))
    with pytest.raises(DataError) as info:
        run_parity(art["keras"], art["int8"], str(art["test"]), labels=str(labels), progress=False)
    assert "expected 497 labels" in str(info.value) and "got 10" in str(info.value)


def test_models_with_different_signatures(digits, other_signature_tflite):
    art = digits["normal"]
    with pytest.raises(SignatureMismatchError) as info:
        run_parity(art["keras"], other_signature_tflite, str(art["test"]), progress=False)
    text = str(info.value)
    assert "input" in text and "image[?,8,8,1]" in text and "features[" in text


def test_one_unit_sigmoid_outputs():
    """Binary classifiers: classes by a 0.5 threshold, cosine over the whole column (not a sign test)."""
    f = np.array([[0.9], [0.2], [0.6], [0.01]], np.float32)
    q = np.array([[0.88], [0.25], [0.45], [0.0]], np.float32)
    result = compare_outputs({"p": f}, {"p": q}, [("p", "p")], np.array([1, 0, 1, 0]))
    assert result["summary"]["top1_agreement"] == 0.75
    assert result["summary"]["quantized_accuracy"] == 0.75 and result["summary"]["float_accuracy"] == 1.0
    out = result["outputs"][0]
    assert out["cosine_over"] == "batch" and 0.95 < out["cosine_min"] < 1.0


def test_models_with_different_outputs(digits, other_outputs_tflite):
    art = digits["normal"]
    with pytest.raises(SignatureMismatchError) as info:
        run_parity(art["savedmodel"], other_outputs_tflite, str(art["test"]), progress=False)
    text = str(info.value)
    assert "different output signatures" in text and "probs[?,10]" in text and "probs[?,3]" in text


def test_labels_outside_the_models_classes_are_refused(digits, tmp_path, capsys):
    """Issue 12: y=57 on a 10-class model used to pass (counted as misses); it is a data error."""
    from edge_sdk.cli import main
    from edge_sdk.metrics import LabelError

    art = digits["normal"]
    with np.load(art["test"]) as data:
        x, y = data[[k for k in data.files if k != "y"][0]], data["y"].copy()
    y[:3] = 57
    bad = tmp_path / "bad_labels.npz"
    np.savez(bad, x=x, y=y)
    with pytest.raises(LabelError, match=r"expected class ids in \[0, 9\] .*10 classes.*got 57 \(3 of 497"):
        run_parity(art["keras"], art["int8"], str(bad), progress=False)
    code = main(
        ["parity", str(art["keras"]), str(art["int8"]), "--data", str(bad), "--no-layers", "--quiet", "--max-drop", "5"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: labels (") and "got 57" in err and "Traceback" not in err
    np.save(tmp_path / "negative.npy", np.full(len(y), -1))
    with pytest.raises(LabelError, match=r"negative\.npy: expected class ids in \[0, 9\].*got -1"):
        run_parity(art["keras"], art["int8"], str(art["test"]), labels=str(tmp_path / "negative.npy"), progress=False)


def test_labels_within_the_classes_still_pass(digits):
    art = digits["normal"]
    with np.load(art["test"]) as data:
        y = data["y"]
    assert y.max() == 9 and y.min() == 0  # the healthy data uses every class, and is accepted (normal_result)
