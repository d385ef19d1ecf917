"""converters._tf: TensorFlow's start-up chatter stays off stderr unless asked for; real errors still show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _stderr_of(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environ.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300, check=True
    ).stderr


def test_import_is_quiet_and_other_stderr_passes_through():
    err = _stderr_of(
        "import sys, os; os.write(2, b'before\\n'); import converters._tf as t; "
        "t.tf.constant(1.0) + 1; sys.stderr.write('after\\n')"
    )
    assert "absl::InitializeLog" not in err and "I0000" not in err and "cuInit" not in err, err
    assert err.splitlines() == ["before", "after"], err


def test_level_zero_shows_tensorflow_logs():
    err = _stderr_of("import converters._tf", TF_CPP_MIN_LOG_LEVEL="0")
    assert "I0000" in err or "I tensorflow" in err or "oneDNN" in err, err


def test_chatter_rules_follow_the_level():
    from converters._tf import _is_chatter

    info = "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on.\n"
    warning = "W0000 00:00:1.0 1 something.cc:1] a warning\n"
    error = "E0000 00:00:1.0 1 kernel.cc:1] a real error\n"
    assert _is_chatter(info, "1") and not _is_chatter(info, "0")
    assert _is_chatter(warning, "2") and not _is_chatter(warning, "1")
    assert not _is_chatter(error, "2") and not _is_chatter(error, "3")
    assert _is_chatter("E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n", "2")
