"""Parity on the real mnist distill-prune-int8 pipeline (the shared session fixture ``mnist_run``)."""

import numpy as np
import pytest

from converters.parity import run_parity
from edge_sdk.cli import main
from edge_sdk.reference import check_reference, read_reference


@pytest.mark.slow
def test_pruned_student_int8_against_the_teacher_and_its_golden_reference(mnist_run, tmp_path, capsys):
    data = tmp_path / "mnist_test.npz"
    np.savez(data, x=mnist_run.x_test, y=mnist_run.y_test)

    # the deployable artifact (distilled, pruned, int8) against the float teacher it came from
    result = run_parity(mnist_run.teacher_savedmodel, mnist_run.pruned_int8, str(data), progress=False)
    s = result["summary"]
    assert s["samples"] == len(mnist_run.y_test)
    assert s["float_accuracy"] > 0.9 and s["quantized_accuracy"] > 0.85
    manifest_accuracy = mnist_run.manifests["student-pruned-int8"]["metrics"]["accuracy"]
    assert s["quantized_accuracy"] == pytest.approx(manifest_accuracy, abs=1e-6)  # same model, same data
    assert s["top1_agreement"] > 0.85

    # a golden reference from the teacher; the int8 student's manifest chain reaches the teacher's parent
    golden = tmp_path / "golden.npz"
    assert (
        main(
            [
                "parity",
                "--write-reference",
                str(golden),
                str(mnist_run.teacher_savedmodel),
                "--data",
                str(data),
                "--samples",
                "100",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    ref = read_reference(golden)
    assert ref.meta["float_sha256"] == mnist_run.manifests["teacher-savedmodel"]["sha256"]
    check = check_reference(golden, mnist_run.pruned_int8, min_agreement=0.8)
    assert check["lineage"].startswith("verified (the manifest chain")
    assert check["status"] == "pass" and check["outputs"][0]["top1_agreement"] >= 0.8
