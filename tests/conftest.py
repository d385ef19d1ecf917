"""Shared test configuration.

Area fixtures live in each folder's conftest.py; the expensive end-to-end
pipeline fixture (a real mnist distill-prune-int8 run) is built once per
session in pipeline_fixtures.py. Fixtures two areas share (the parity digits
models, used by tests/parity and by the gate/auto-tune tests in tests/converters)
live here, built once per session; their builders are modules under tests/.
"""

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
sys.path.insert(0, str(Path(__file__).parent))

try:
    from pipeline_fixtures import *  # noqa: F401,F403 - pytest finds fixtures only as names in conftest
except ModuleNotFoundError as exc:  # the fixture module lands with the converters
    if exc.name != "pipeline_fixtures":
        raise


import pytest  # noqa: E402 - after the environment above is set


@pytest.fixture(scope="session")
def parity_digits(tmp_path_factory):
    """``{"normal": {...}, "outlier": {...}}`` paths; see parity_models.write_digits_artifacts."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from parity_models import write_digits_artifacts

    return write_digits_artifacts(tmp_path_factory.mktemp("parity-digits"))


@pytest.fixture(scope="session")
def exported_models_dir(tmp_path_factory) -> Path:
    """The runtime and target tests' models and golden references (``tests/target/export_models.py``),
    with ``models.json`` mapping fixture names to files: the directory ``EDGE_SDK_TEST_MODELS`` names
    in the device lanes (no TensorFlow there), else built here once per session and shared by
    tests/runtime and tests/target (they used to build the same digits models twice)."""
    exported = os.environ.get("EDGE_SDK_TEST_MODELS")
    if exported:
        return Path(exported)
    export_models = sys.modules.get("export_models")
    if export_models is None:  # tests/target is on sys.path only when that folder is collected
        spec = importlib.util.spec_from_file_location(
            "export_models", Path(__file__).parent / "target" / "export_models.py"
        )
        export_models = importlib.util.module_from_spec(spec)
        sys.modules["export_models"] = export_models
        spec.loader.exec_module(export_models)
    out = tmp_path_factory.mktemp("test_models")
    export_models.export(out)
    return out
