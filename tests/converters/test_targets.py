"""The issue's targets, measured on the real mnist distill-prune-int8 run (shared fixture).

Each assertion is the issue's target plus a small margin, because the fixture
trains for fewer epochs and CPU training is not bit-repeatable across runs: a
drop of 0.5 points is 5 of the 1,000 test images. README figures come from the
full pipeline run from the command line, against the exact targets
(docs/converters.md).
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import edge_sdk
from edge_sdk.fileio import sha256_file
from edge_sdk.metrics import accuracy

pytestmark = pytest.mark.slow


def _acc(path, run) -> float:
    return accuracy(edge_sdk.load(path).predict(run.x_test), run.y_test)


def _gz(path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def test_int8_is_at_most_0_27x_float32_and_drops_at_most_half_a_point(mnist_run):
    ratio = mnist_run.int8.stat().st_size / mnist_run.float32.stat().st_size
    assert ratio <= 0.27
    float_model_acc = mnist_run.manifests["float32"]["metrics"]["float_model_accuracy"]
    int8_acc = _acc(mnist_run.int8, mnist_run)
    assert int8_acc == pytest.approx(mnist_run.manifests["int8"]["metrics"]["accuracy"])
    assert float_model_acc > 0.95
    assert 100 * (float_model_acc - int8_acc) <= 0.7  # target 0.5


def test_pruned_int8_gzip_at_most_0_12x_dense_float32_gzip_with_75pc_sparsity(mnist_run):
    prune = mnist_run.comparisons()["prune"]
    assert prune["overall_sparsity"] >= 0.75  # over every prunable kernel, the small dense ones included
    pruned_layers = [layer for layer in prune["layers"] if layer["zeros"]]
    assert len(pruned_layers) >= 2
    for layer in pruned_layers:
        assert layer["sparsity"] >= 0.79, layer
    # same architecture, dense float32 (the distilled student before pruning)
    ratio = _gz(mnist_run.pruned_int8) / _gz(mnist_run.student)
    assert ratio <= 0.125  # target 0.12
    assert prune["gzip_ratio_vs_dense_float32"] == pytest.approx(ratio, abs=1e-3)
    manifest = mnist_run.manifests["student-pruned-int8"]
    survived = sorted(manifest["weight_sparsity"].values())
    assert survived[-1] >= 0.79 and sum(v >= 0.79 for v in survived) >= 2  # zeros survived int8 conversion


def test_pruned_student_keeps_its_accuracy(mnist_run):
    student = mnist_run.manifests["student-float32"]["metrics"]["accuracy"]
    pruned_int8 = mnist_run.manifests["student-pruned-int8"]["metrics"]["accuracy"]
    assert pruned_int8 >= student - 0.015


def test_student_is_small_and_close_to_the_teacher(mnist_run):
    d = mnist_run.comparisons()["distill"]
    assert d["student_params"] <= d["teacher_params"] / 4
    assert d["student_accuracy"] >= d["teacher_accuracy"] - 0.02  # target 1.5 points
    assert _acc(mnist_run.student, mnist_run) == pytest.approx(d["student_accuracy"], abs=0.002)


# "Distilled student better than the same student trained alone" is tested on fashion-mnist, where
# it holds (tests/converters/test_prune_distill.py::test_distilled_student_beats_the_same_student_alone_on_fashion_mnist);
# on mnist's 3,500 labelled digits it ties (docs/converters.md).


def test_every_artifact_has_a_consistent_manifest(mnist_run):
    rows = mnist_run.summary["artifacts"]
    by_sha = {row["sha256"]: row for row in rows}
    for row in rows:
        path = mnist_run.out / row["file"]
        manifest = mnist_run.manifest(path)
        if path.is_file():
            assert manifest["sha256"] == sha256_file(path)
        assert manifest["labels"] == [str(i) for i in range(10)]
        assert manifest["preprocessing"]["layout"] == "NHWC"
        assert manifest["recipe"]["name"] == "distill-prune-int8"
        if row["artifact"] != "float32":
            assert manifest["parent_sha256"] in by_sha, row["artifact"]
    chain = mnist_run.manifests
    assert chain["student-pruned-int8"]["parent_sha256"] == chain["student-pruned-float32"]["sha256"]
    assert chain["student-pruned-float32"]["parent_sha256"] == chain["student-float32"]["sha256"]
    assert chain["student-float32"]["parent_sha256"] == chain["float32"]["sha256"]
    assert chain["int8"]["calibration"]["image"]["nan_count"] == 0


def test_onnx_and_savedmodel_agree_with_the_float_model(mnist_run):
    import onnxruntime as ort

    from converters.model_files import load

    teacher = load(mnist_run.teacher_savedmodel)
    want = teacher.predict({"image": mnist_run.x_test[:64]})
    session = ort.InferenceSession(mnist_run.onnx.read_bytes(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: mnist_run.x_test[:64]})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert mnist_run.manifests["teacher-onnx"]["onnx_opset"] >= 17
