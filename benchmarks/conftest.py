"""Fixtures of the model comparison suite (benchmarks/test_bench_models.py).

The thread count is fixed per pytest session by ``EDGE_BENCH_THREADS`` (default
1): TensorFlow's thread pools can only be sized before its runtime starts, so
``benchmarks/run.py`` runs one session per thread count and applies the same
count to TensorFlow, LiteRT and ONNX Runtime.
"""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def suite_dirs():
    """Built-in model name -> directory of its artifacts (built on first use, minutes)."""
    import suite_models

    return suite_models.ensure_built(progress=False)
