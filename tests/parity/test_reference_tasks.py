"""`parity --reference` on a real per-pixel model (MediaPipe selfie segmentation): where the task came from,
a task the output cannot have, and masks with no foreground. numpy + LiteRT only (no TensorFlow needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest
from edge_sdk.reference import write_reference

SELFIE = Path(__file__).resolve().parents[1] / "data" / "public_models" / "mediapipe_selfie_segmentation.tflite"


@pytest.fixture(scope="module")
def selfie(tmp_path_factory):
    """A copy of the selfie model with a manifest declaring ``segmentation``, and golden references of its own
    outputs: ``empty`` (noise images: no person anywhere, every mask empty)."""
    root = tmp_path_factory.mktemp("selfie")
    model = root / "selfie.tflite"
    shutil.copy(SELFIE, model)
    write_manifest(
        build_manifest(model.read_bytes(), model.name, kind="float32", stage="export", task="segmentation"),
        manifest_path_for(model),
    )
    m = edge_sdk.load(model)
    name = m.inputs[0].name
    x = np.random.default_rng(0).random((2, *m.inputs[0].shape[1:]), dtype=np.float32)
    outputs = m.predict_all({name: x})
    empty = write_reference(root / "empty.npz", {name: x}, outputs, float_model="selfie", float_sha256s=[m.sha256])
    return {"model": model, "bare": SELFIE, "empty": empty}


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_report_says_where_the_task_came_from(selfie, capsys):
    """It said 'declared (--task)' for a task read from the model's manifest."""
    ref = str(selfie["empty"])
    _, out, _ = _run(["parity", "--reference", ref, str(selfie["model"])], capsys)
    assert "task:      segmentation (declared by the model's manifest)" in out, out
    _, out, _ = _run(["parity", "--reference", ref, str(selfie["model"]), "--task", "generic"], capsys)
    assert "task:      generic (declared by --task)" in out, out
    _, out, _ = _run(["parity", "--reference", ref, str(selfie["bare"])], capsys)  # no manifest beside it
    assert "task:      segmentation (inferred: a per-pixel map [256, 256, 1]" in out, out


def test_empty_masks_are_counted_not_scored_as_perfect_iou():
    """Two empty masks counted as IoU 1, so photos with no person passed vacuously."""
    from edge_sdk.tasks import budget_checks, segmentation_metrics

    f = np.zeros((3, 4, 4, 1), np.float32)
    q = f.copy()
    f[0, :2, :, 0] = 1.0  # image 0: float's mask is the top half, the quantized one the top quarter
    q[0, :1, :, 0] = 1.0
    m = segmentation_metrics(f, q, None)  # images 1 and 2: no foreground in either mask
    assert m.metrics["mask_iou"] == pytest.approx(0.5)  # was (0.5 + 1 + 1) / 3
    assert m.metrics["measured_images"] == 1 and m.metrics["empty_images"] == 2 and not m.warnings
    assert budget_checks(m, {"min_iou": 0.9})[0]["passed"] is False
    empty = segmentation_metrics(np.zeros_like(f), np.zeros_like(q), None)
    assert empty.metrics["mask_iou"] is None and empty.metrics["empty_images"] == 3
    assert "not measurable: all 3 images have empty masks" in empty.warnings[0]
    check = budget_checks(empty, {"min_iou": 0.9})[0]
    assert check["passed"] is None and "not measurable" in check["reason"]


def test_a_reference_whose_masks_are_all_empty_is_not_a_silent_pass(selfie, capsys):
    """Noise images: the selfie model finds no person in any; mask IoU is 'not measurable', never a pass."""
    ref, model = str(selfie["empty"]), str(selfie["model"])
    code, out, _ = _run(["parity", "--reference", ref, model], capsys)
    assert code == 0 and "warning:   mask IoU not measurable: all 2 images have empty masks" in out, out
    assert "(warning: mask IoU not measurable" in out.strip().splitlines()[-1]  # the verdict says it too
    code, out, _ = _run(["parity", "--reference", ref, model, "--min-iou", "0.9"], capsys)
    verdict = out.strip().splitlines()[-1]
    assert code == 2 and verdict.startswith("ERROR:") and "min_iou segmentation could not run" in verdict, out


def test_classification_on_a_per_pixel_output_is_refused_and_one_position_is_class_scores(selfie, tmp_path, capsys):
    """--task classification on [N, 256, 256, 1] masks gave a generic 'expected class scores' line after the run;
    a classifier ending in [N, 1, 1, classes] (one position) was refused as if it were a map."""
    from edge_sdk.tasks import TaskError, check_task_outputs, classification_metrics, parse_task

    cls = parse_task("classification")
    check_task_outputs(cls, [("probs", (1, 1, 1, 10))])  # one position: class scores
    with pytest.raises(TaskError, match=r"shape \[1, 64, 64, 3\]: a per-pixel map \(--task segmentation"):
        check_task_outputs(cls, [("mask", (1, 64, 64, 3))])
    scores = np.eye(5, dtype=np.float32)[:4].reshape(4, 1, 1, 5)
    assert classification_metrics(scores, scores, np.arange(4)).labels["float_accuracy"] == 1.0
    model = str(selfie["model"])
    code, _, err = _run(["parity", "--reference", str(selfie["empty"]), model, "--task", "classification"], capsys)
    assert code == 2 and "task classification (declared by --task)" in err and "a per-pixel map" in err, err
    np.savez(tmp_path / "d.npz", x=read_inputs(selfie["empty"]))
    code, _, err = _run(["parity", model, model, "--data", str(tmp_path / "d.npz"), "--task", "classification"], capsys)
    assert code == 2 and "shape [1, 256, 256, 1]: a per-pixel map" in err and err.count("\n") == 1, err


def read_inputs(path):
    from edge_sdk.reference import read_reference

    return next(iter(read_reference(path).inputs.values()))
