"""Fixtures: small real models converted with TensorFlow, built once per session."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def runtime_models(tmp_path_factory):
    """name -> path of real .tflite models: float32, int8, uint8, fixed_batch, two_inputs, stateful."""
    from runtime_model_factory import build_models

    out = tmp_path_factory.mktemp("runtime_models")
    paths = build_models(out)
    paths["x"] = out / "x.npy"
    paths["y"] = out / "y.npy"
    return paths


@pytest.fixture(scope="session")
def digits_x(runtime_models):
    """32 digits images, NHWC float32 in [0, 1]."""
    return np.load(runtime_models["x"])
