"""Fixtures for the bench tests: real MNIST CNNs (float32, int8, dynamic batch), built once per session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def cnn_models(tmp_path_factory):
    """``{"float32", "int8", "dynamic", "x", "two_inputs"}`` -> paths; float32/int8 fix the batch at 128."""
    from bench_models import build_cnn_models, build_two_input_model

    out = tmp_path_factory.mktemp("bench_models")
    paths = build_cnn_models(out)
    paths["two_inputs"] = build_two_input_model(out)
    return paths


@pytest.fixture()
def broken_models(tmp_path, cnn_models):
    """A file that is not a model, and a real model cut in half."""
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"this is not a flatbuffer at all")
    data = cnn_models["int8"].read_bytes()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    return {"garbage": garbage, "truncated": truncated}
