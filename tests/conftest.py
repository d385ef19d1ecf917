"""Shared test configuration.

Area fixtures live in each folder's conftest.py; the expensive end-to-end
pipeline fixture (a real mnist distill-prune-int8 run) is built once per
session in pipeline_fixtures.py. Fixtures two areas share (the parity digits
models, used by tests/parity and by the gate/auto-tune tests in tests/converters)
live here, built once per session; their builders are modules under tests/.
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
sys.path.insert(0, str(Path(__file__).parent))

try:
    from pipeline_fixtures import *  # noqa: F401,F403
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
