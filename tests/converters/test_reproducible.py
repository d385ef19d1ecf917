"""Two `edge-sdk convert` runs with the same model, recipe, data and --seed write byte-identical .tflite files.

Issue #12 section 6. The model is a zoo model trained on the fly (random init,
shuffles, random-shift augmentation in a parallel tf.data map), then pruned with
tfmot and quantized to int8 with a representative dataset: every source of
randomness the converter has. Each run is its own process, as a user's would be.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start_convert(out: Path, seed: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("EDGE_SDK_DETERMINISTIC", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_sdk",
            "convert",
            "--model",
            "cnn-student",
            "--dataset",
            "digits",
            "--recipe",
            "prune-int8",
            "--epochs",
            "2",
            "--prune-epochs",
            "1",
            "--formats",
            "tflite",
            "--latency-runs",
            "1",
            "--seed",
            str(seed),
            "--out",
            str(out),
            "-q",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(run: subprocess.Popen) -> None:
    _, stderr = run.communicate(timeout=900)
    assert run.returncode == 0, stderr[-3000:]


def _digests(out: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.tflite"))}


@pytest.mark.slow
def test_same_seed_gives_byte_identical_tflite_files(tmp_path):
    # two processes at once, as two users' builds would be: half the wall time, and the same bytes
    # even when they compete for the cores
    runs = [_start_convert(tmp_path / "a", seed=7), _start_convert(tmp_path / "b", seed=7)]
    for run in runs:
        _wait(run)
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    # the zoo float model, the pruned float model and the pruned int8 model
    assert len(first) >= 3 and any("int8" in name for name in first), sorted(first)
    assert first == second
    for name, digest in first.items():
        manifest = json.loads((tmp_path / "a" / name).with_suffix(".json").read_text())
        assert manifest["sha256"] == digest
        assert manifest["build"] == {"seed": 7, "op_determinism": True, "byte_identical": True}


def test_build_record_says_which_artifacts_do_not_reproduce_and_why():
    from converters.context import build_record

    assert build_record(3, "int8") == {"seed": 3, "op_determinism": True, "byte_identical": True}
    keras = build_record(3, "keras")
    assert keras["byte_identical"] is False and "date_saved" in keras["why_not"]
    saved = build_record(3, "savedmodel")
    assert saved["byte_identical"] is False and "fingerprint.pb" in saved["why_not"]


def test_op_determinism_is_on_by_default_and_can_be_turned_off():
    code = (
        "import converters._tf as t; from tensorflow.python.framework import config; "
        "print(t.DETERMINISTIC, config.is_op_determinism_enabled())"
    )
    # a fresh process per setting (the switch is read at import), both started at once: each pays the
    # TensorFlow import, side by side instead of one after the other
    runs = []
    for value in (None, "0"):
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
        env.pop("EDGE_SDK_DETERMINISTIC", None)
        if value is not None:
            env["EDGE_SDK_DETERMINISTIC"] = value
        runs.append(
            subprocess.Popen(
                [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = []
    try:
        for run in runs:
            stdout, stderr = run.communicate(timeout=300)
            assert run.returncode == 0, stderr[-2000:]
            outputs.append(stdout.split())
    finally:  # a hung child must not outlive the test
        for run in runs:
            if run.poll() is None:
                run.kill()
    assert outputs == [["True", "True"], ["False", "False"]]
