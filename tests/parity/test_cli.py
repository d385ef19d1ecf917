"""`edge-sdk parity` and the gate inside `edge-sdk convert`, run in-process through the CLI entry point."""

import json
import re

import numpy as np
import pytest

from edge_sdk.cli import main


def _last_line(text):
    return text.strip().splitlines()[-1]


def test_parity_passes_with_reports(digits, tmp_path, capsys):
    art = digits["normal"]
    report, page = tmp_path / "report.json", tmp_path / "report.html"
    code = main(
        [
            "parity",
            str(art["savedmodel"]),
            str(art["int8"]),
            "--data",
            str(art["test"]),
            "--calibration",
            str(art["train"]),
            "--max-drop",
            "3",
            "--min-agreement",
            "0.95",
            "--json",
            str(report),
            "--html",
            str(page),
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert _last_line(out).startswith("PASS: model_int8.tflite: accuracy drop")
    assert "per class (by label)" in out and "per-layer error" in out
    data = json.loads(report.read_text())
    assert data["gate"]["status"] == "pass" and data["parity"]["summary"]["samples"] == 497
    assert data["parity"]["layers"] and data["parity"]["float_model"]["kind"] == "savedmodel"
    html = page.read_text()
    assert len(re.findall(r"src='data:image/png;base64,", html)) >= 3
    assert "http://" not in html and "https://" not in html  # self-contained
    for heading in ("Errors per output", "Per class (by label)", "Per-layer quantization error", "Worst examples"):
        assert heading in html


def test_parity_gate_fails_on_the_degraded_model(digits, capsys):
    art = digits["outlier"]
    code = main(
        [
            "parity",
            str(art["keras"]),
            str(art["int8"]),
            "--data",
            str(art["test"]),
            "--max-drop",
            "1",
            "--no-layers",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert re.match(r"FAIL: model_int8.tflite: accuracy drop \d+\.\d\d points > 1.00", _last_line(out))


def test_parity_json_to_stdout_and_autotune_out(digits, tmp_path, capsys):
    art = digits["outlier"]
    tuned = tmp_path / "tuned.tflite"
    code = main(
        [
            "parity",
            str(art["keras"]),
            str(art["int8"]),
            "--data",
            str(art["test"]),
            "--calibration",
            str(art["train"]),
            "--no-layers",
            "--accuracy-budget",
            "1",
            "--autotune-out",
            str(tuned),
            "--json",
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0  # no --max-drop/--min-agreement, and the budget was met
    report = json.loads(captured.out)
    assert report["autotune"]["met"] and report["autotune"]["chosen"].startswith("int8 + ")
    assert "auto-tune: within the 1-point budget" in _last_line(captured.err)
    manifest = json.loads(tuned.with_suffix(".json").read_text())
    assert manifest["stage"] == "autotune" and manifest["metrics"]["accuracy_drop_points"] <= 1.0
    assert manifest["size_bytes"] == tuned.stat().st_size


@pytest.mark.parametrize(
    "argv, text",
    [
        (["parity", "only-one.keras", "--data", "x.npz"], "two models"),
        (["parity", "a", "b"], "needs --data"),
        (["parity", "a", "b", "--data", "d.npz", "--min-agreement", "95"], "0.99, not 99"),
        (["parity", "--reference", "g.npz", "--write-reference", "h.npz", "m.tflite"], "exclusive"),
        (["parity", "--reference", "missing.npz", "m.tflite"], "reference file not found"),
    ],
)
def test_cli_usage_errors_exit_2(argv, text, capsys, tmp_path, monkeypatch):
    # the data files exist, so the refusal is the usage error itself (output/input checks come first since #12)
    monkeypatch.chdir(tmp_path)
    for name in ("x.npz", "d.npz"):
        np.savez(tmp_path / name, x=np.zeros((1, 8, 8, 1), np.float32))
    assert main(argv) == 2
    assert text in capsys.readouterr().err


def test_bad_data_is_a_clear_error(digits, tmp_path, capsys):
    art = digits["normal"]
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 64), np.float32))
    assert main(["parity", str(art["keras"]), str(art["int8"]), "--data", str(bad), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data") and "(3, 64)" in err and "Traceback" not in err


def test_convert_gate_blocks_promotion_and_autotune_rescues(digits, tmp_path, capsys):
    art = digits["outlier"]
    out = tmp_path / "out"
    base = [
        "convert",
        str(art["keras"]),
        "--recipe",
        "int8",
        "--eval",
        str(art["test"]),
        "--calibration",
        str(art["train"]),
        "--formats",
        "tflite",
        "--out",
        str(out),
        "-q",
    ]
    assert main(base + ["--max-drop", "1"]) == 1
    assert "FAIL: int8.tflite: accuracy drop" in capsys.readouterr().out
    assert not out.exists()  # nothing promoted
    assert main(base + ["--max-drop", "1", "--min-agreement", "0.98", "--accuracy-budget", "1"]) == 0
    assert _last_line(capsys.readouterr().out).startswith("PASS: int8-autotuned.tflite")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["comparisons"]["gate"]["status"] == "pass"
    assert summary["comparisons"]["autotune"]["met"] and "autotune_report" not in summary["comparisons"]
    assert "int8-autotuned" in [a["artifact"] for a in summary["artifacts"]]
    assert "Accuracy-budget auto-tuning" in (out / "parity.html").read_text()
    tuned = json.loads((out / "int8-autotuned.json").read_text())
    assert (
        tuned["stage"] == "autotune"
        and tuned["parent_sha256"] == json.loads((out / "float32.json").read_text())["sha256"]
    )
    gate = json.loads((out / "parity.json").read_text())["gate"]
    assert gate["status"] == "pass" and "int8-autotuned.tflite" in gate["verdict"]
    assert json.loads((out / "autotune.json").read_text())["met"]


def test_builtin_dataset_name_as_data(digits, capsys):
    """--data digits: the test split of training.datasets (360 images), calibration from its train split."""
    art = digits["normal"]
    code = main(
        ["parity", str(art["keras"]), str(art["int8"]), "--data", "digits", "--json", "-q", "--min-agreement", "0.9"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    parity = report["parity"]
    assert parity["data"]["source"] == "digits (test split)" and parity["data"]["samples"] == 360
    assert parity["per_class"][3]["name"] == "3"
    assert parity["summary"]["float_accuracy"] > 0.85 and parity["layers"]


@pytest.mark.parametrize("data", ["x.npy", "x.npz"])
@pytest.mark.parametrize("flag", [["--slice-by", "class", "--max-slice-drop", "5"], ["--max-drop", "1"]])
def test_an_accuracy_gate_without_labels_is_refused_before_any_model_loads(data, flag, tmp_path, capsys, monkeypatch):
    """--max-slice-drop and --max-drop with unlabelled data failed only after both models ran on all of it."""
    monkeypatch.chdir(tmp_path)
    x = np.zeros((4, 8, 8, 1), np.float32)
    np.save("x.npy", x)
    np.savez("x.npz", x=x)  # no 'y'
    np.save("y.npy", np.zeros(4, np.int64))
    for name in ("f.keras", "q.tflite"):  # not models at all: loading either would be a different error
        (tmp_path / name).write_bytes(b"not a model")
    argv = ["parity", "f.keras", "q.tflite", "--data", data, *flag, "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag[-2]}") and "expected labels" in err and f"--data {data}" in err, err
    assert err.count("\n") == 1
    assert main([*argv, "--labels", "y.npy"]) == 2  # with labels the check passes and the (bad) model is read
    assert flag[-2] not in capsys.readouterr().err


def test_integer_data_for_a_float_model_is_refused_as_convert_refuses_it(digits, tmp_path, capsys):
    """parity cast uint8 pixels to float32 silently (0..255 into a model trained on 0..1) where convert refuses."""
    art = digits["normal"]
    pixels = tmp_path / "pixels.npz"
    x = np.load(art["test"])["x"][:20]
    np.savez(pixels, x=(x * 255).astype(np.uint8), y=np.zeros(20, np.int64))
    for argv in (
        ["parity", str(art["keras"]), str(art["int8"]), "--data", str(pixels), "--no-layers", "-q"],
        ["parity", "--write-reference", str(tmp_path / "g.npz"), str(art["keras"]), "--data", str(pixels), "-q"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert "for input 'image': expected dtype float32 shape (N, 8, 8, 1), got dtype uint8" in err, err
        assert "apply the model's preprocessing first" in err
    assert not (tmp_path / "g.npz").exists()
