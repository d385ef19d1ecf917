"""Fixtures for the target lanes: exported models and golden references.

In a lane (aarch64 chroot, tflite-runtime venv) ``EDGE_SDK_TEST_MODELS`` names the directory
``export_models.py`` filled on the build machine, so the references were written on x86 and are
checked here. On the build machine the export runs once per session (it needs TensorFlow).
"""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def target_models(exported_models_dir):
    """name -> path of the exported models, plus ``golden_*`` -> golden reference paths."""
    out = exported_models_dir
    paths = {name: out / file for name, file in json.loads((out / "models.json").read_text()).items()}
    for golden in out.glob("golden_*.npz"):
        paths[golden.stem] = golden
    return paths
