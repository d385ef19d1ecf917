"""TensorFlow installed but failing to import gives one clear line and exit 2, never a traceback (issue #12 s.5).

A fake ``tensorflow`` package first on PYTHONPATH raises the way a broken install does
(a missing shared library); ``find_spec`` still finds it, so the require-extra check
passes and the failure comes from the import in ``converters._tf``.
"""

import subprocess
import sys

import pytest
from training_helpers import REPO, subprocess_env

BROKEN = 'raise ImportError("libtensorflow_framework.so.2: cannot open shared object file: No such file")\n'


@pytest.fixture
def broken_tf_env(tmp_path):
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(BROKEN)
    return subprocess_env(PYTHONPATH=f"{fake.parent}:{REPO}")


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--model", "cnn", "--dataset", "digits", "--epochs", "1", "--out", "OUT"],
        ["convert", "--model", "cnn", "--dataset", "digits", "--recipe", "int8", "--out", "OUT"],
        ["parity", "MODEL.keras", "MODEL.tflite", "--data", "digits"],
    ],
)
def test_broken_tensorflow_is_one_line_naming_it(broken_tf_env, tmp_path, argv):
    (tmp_path / "MODEL.keras").write_bytes(b"PK")  # exists, so parity gets as far as loading it
    argv = [str(tmp_path / a) if a in ("OUT", "MODEL.keras", "MODEL.tflite") else a for a in argv]
    done = subprocess.run(
        [sys.executable, "-m", "edge_sdk", *argv],
        env=broken_tf_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: tensorflow is installed but failed to import"), lines
    assert "libtensorflow_framework.so.2" in lines[0] and "pip install" in lines[0]
    assert not (tmp_path / "OUT").exists()


def test_the_culprit_is_the_package_whose_code_raised():
    from converters._tf import _culprit

    try:
        exec(compile("raise RuntimeError('x')", "/site-packages/tf_keras/src/__init__.py", "exec"))
    except RuntimeError as exc:
        assert _culprit(exc, "tensorflow") == "tf_keras"
    try:
        raise RuntimeError("outside every package")
    except RuntimeError as exc:
        assert _culprit(exc, "tensorflow_model_optimization") == "tensorflow_model_optimization"
