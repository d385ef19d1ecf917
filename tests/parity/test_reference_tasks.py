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
