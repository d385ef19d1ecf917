"""`edge-sdk train`: a real run with --json; unknown names list the valid ones and exit 2."""

import json
import subprocess
import sys
from pathlib import Path

from training_helpers import subprocess_env

from edge_sdk.cli import main

EDGE_SDK = [sys.executable, "-m", "edge_sdk"]


def test_unknown_model_lists_valid_ones(capsys):
    try:
        code = main(["train", "--model", "resnet", "--dataset", "digits", "--epochs", "1", "--out", "x"])
    except SystemExit as exc:  # argparse choices
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "resnet" in err and "cnn-student" in err and "wide-deep" in err


def test_unknown_dataset_lists_valid_ones(capsys, tmp_path):
    code = main(["train", "--model", "cnn", "--dataset", "cifar10", "--epochs", "1", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset 'cifar10'") and "digits, mnist, adult" in err
    assert not any(tmp_path.iterdir())


def test_cli_trains_and_reports_json(tmp_path, capsys):
    # in-process: the same entry point as the console script, without a second TensorFlow start-up
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model",
            "cnn-student",
            "--dataset",
            "digits",
            "--epochs",
            "3",
            "--out",
            str(out),
            "--json",
            "--no-histograms",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    report = json.loads(captured.out)
    assert report["model"] == "cnn-student" and report["epochs_run"] == 3
    assert report["test"]["accuracy"] > 0.5
    assert Path(report["paths"]["savedmodel"], "saved_model.pb").is_file()
    assert "epoch" in captured.err  # progress went to stderr, JSON alone on stdout


def test_console_script_help_lists_options():
    proc = subprocess.run(
        EDGE_SDK + ["train", "--help"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "--strategy" in proc.stdout
