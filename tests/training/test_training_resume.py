"""A training process killed mid-epoch resumes from its last finished epoch, not from 0."""

import csv
import json
import signal
import subprocess
import sys

from training_helpers import HERE, subprocess_env

WORKER = str(HERE / "train_worker.py")


def test_killed_run_resumes_from_the_saved_epoch(tmp_path):
    out = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, WORKER, "cnn-student", "digits", "4", str(out), "--kill-epoch", "2", "--kill-batch", "5"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "metrics.json").exists()  # killed before export: nothing half-written claims success
    assert any((out / "backup").rglob("*")), "BackupAndRestore left no state"
    epochs_before = [int(r["epoch"]) for r in csv.DictReader(open(out / "training_log.csv"))]
    assert epochs_before == [0, 1]

    # the resumed run is the worker's own train.fit call, in this process: the killed run had to be a process of
    # its own, the resume only needs the files it left (and skips a second TensorFlow import)
    from training import train

    resumed = train.fit(
        "cnn-student", "digits", epochs=4, out_dir=out, progress=False, early_stopping=False, histograms=False
    )
    assert resumed.resumed_from_epoch == 2
    assert resumed.epochs_run == 4
    epochs_after = [int(r["epoch"]) for r in csv.DictReader(open(out / "training_log.csv"))]
    assert epochs_after == [0, 1, 2, 3]  # epochs 0-1 were not trained again
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["resumed_from_epoch"] == 2 and summary["test"]["accuracy"] > 0.5
    assert not any((out / "backup").rglob("*.index")), "a finished run should drop its backup"
