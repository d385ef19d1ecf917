"""Fixtures for the Android demo tests: a model converted by the real `edge-sdk convert` CLI,
golden files written from it with edge_sdk, and the Debian tools the Java/native checks need.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from android_golden import ANDROID, GOLDEN_SAMPLES  # noqa: E402 - importable only after the sys.path insert above


@pytest.fixture(scope="session")
def android_tools():
    """mvn, javac and a C compiler; fails with the fix when the Debian packages are missing."""
    missing = [tool for tool in ("mvn", "javac", "gcc", "make") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the Android demo checks need {', '.join(missing)}: install the Debian packages in "
            f"android_demo/apt-packages.txt (`make android-deps`, as .ci/run does)"
        )


@pytest.fixture(scope="session")
def converted_mnist_int8(tmp_path_factory) -> Path:
    """The mnist CNN trained for one epoch and quantized to full int8 by `edge-sdk convert`."""
    from edge_sdk.cli import main

    out = tmp_path_factory.mktemp("android_convert") / "out"
    # the CLI's own entry point, in this process: the same command without paying a second TensorFlow import
    code = main(
        [
            "convert",
            "cnn",
            "--dataset",
            "mnist",
            "--recipe",
            "int8",
            "--epochs",
            "1",
            "--formats",
            "tflite",
            "--no-baseline",
            "--latency-runs",
            "5",
            "--quiet",
            "-o",
            str(out),
        ]
    )
    assert code == 0, f"edge-sdk convert failed ({code}); its error is in the captured stderr"
    model = out / "int8.tflite"
    assert model.is_file() and (out / "int8.json").is_file(), sorted(p.name for p in out.iterdir())
    return model


@pytest.fixture(scope="session")
def fresh_golden(converted_mnist_int8, tmp_path_factory) -> Path:
    """Golden files for the freshly converted model on held-out MNIST images, written with edge_sdk."""
    from android_golden import golden_samples, write_golden

    pixels, labels = golden_samples(GOLDEN_SAMPLES)
    out = tmp_path_factory.mktemp("android_golden") / "golden"
    write_golden(converted_mnist_int8, out, pixels, labels)
    return out


@pytest.fixture(scope="session")
def native_check(android_tools, tmp_path_factory) -> Path:
    """The native check built by android_demo/Makefile against this venv's ai-edge-litert wheel."""
    build = tmp_path_factory.mktemp("android_build")
    run = subprocess.run(
        ["make", "-C", str(ANDROID), "native", f"BUILD={build}", f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"building native_check failed:\n{run.stdout}\n{run.stderr}"
    return build / "native_check"
