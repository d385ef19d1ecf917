"""Shared test configuration.

Area fixtures live in each folder's conftest.py; the expensive end-to-end
pipeline fixture (a real mnist distill-prune-int8 run) is built once per
session in pipeline_fixtures.py.
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
