"""benchmarks/distill_trial.py --teacher-dataset: a teacher that knows more labels, never the scored images."""

from __future__ import annotations

import numpy as np
import pytest
from script_modules import load_benchmark_script  # tests/ is on sys.path (tests/conftest.py)

trial = load_benchmark_script("distill_trial.py", "distill_trial")


def _fashion_installed() -> bool:
    from training import datasets

    return all(
        (datasets.FASHION_MNIST_DIR / f).is_file() for pair in datasets.FASHION_MNIST_FILES.values() for f in pair
    )


@pytest.mark.skipif(not _fashion_installed(), reason="needs Debian's dataset-fashion-mnist (make android-deps)")
def test_teacher_dataset_holds_the_students_labels_and_shares_the_scored_splits():
    from converters.errors import DataError
    from training import datasets

    student_data = datasets.load("fashion-mnist:300", seed=0)
    args = trial.parse_args(["--dataset", "fashion-mnist:300", "--teacher-dataset", "fashion-mnist:900"])
    teacher_data = trial.teacher_data(args, student_data)
    assert len(teacher_data.x_train) == 900
    known = {row.tobytes() for row in teacher_data.x_train}
    assert all(row.tobytes() in known for row in student_data.x_train)  # seeded subsets nest
    np.testing.assert_array_equal(teacher_data.x_test, student_data.x_test)
    assert trial.teacher_data(trial.parse_args(["--dataset", "fashion-mnist:300"]), student_data) is student_data
    with pytest.raises(DataError, match="expected the same val split"):
        trial.teacher_data(
            trial.parse_args(["--dataset", "fashion-mnist:300", "--teacher-dataset", "digits"]), student_data
        )
