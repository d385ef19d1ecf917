"""Helpers for the training tests (a uniquely named module: every test folder has its own conftest)."""

import os
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent.parent


def subprocess_env(**extra):
    """Environment for child Python processes: quiet TF, repo importable, CPU only."""
    env = dict(os.environ)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="-1",
        TF_USE_LEGACY_KERAS="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.update(extra)
    return env
