"""`edge-sdk convert` end to end: artifacts, manifests, JSON, bad input, atomicity under SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sdk.cli import main
from edge_sdk.fileio import sha256_file
from edge_sdk.manifest import manifest_path_for, read_manifest

REPO = Path(__file__).resolve().parents[2]


def _convert(*args: str) -> int:
    return main(["convert", *map(str, args), "--quiet", "--latency-runs", "3"])


def test_int8_recipe_writes_chained_manifests_and_json(digits_models, tmp_path, capsys):
    out = tmp_path / "out"
    code = _convert(
        digits_models.teacher_keras,
        "--recipe",
        "int8",
        "--calibration",
        digits_models.calib,
        "--eval",
        digits_models.eval,
        "--out",
        out,
        "--json",
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    names = [row["artifact"] for row in summary["artifacts"]]
    assert names == ["float32", "int8", "model-onnx"]
    manifests = {}
    for row in summary["artifacts"]:
        path = out / row["file"]
        manifest = read_manifest(manifest_path_for(path))
        assert manifest["sha256"] == sha256_file(path) == row["sha256"]
        assert manifest["size_bytes"] == path.stat().st_size
        assert 0 < manifest["gzip_size_bytes"] <= manifest["size_bytes"]
        assert manifest["recipe"]["name"] == "int8"
        assert {"tensorflow", "tf_keras", "numpy"} <= set(manifest["tool_versions"])
        assert 0.8 < manifest["metrics"]["accuracy"] <= 1.0
        manifests[row["artifact"]] = manifest
    assert manifests["float32"]["parent_sha256"] == sha256_file(digits_models.teacher_keras)
    assert manifests["int8"]["parent_sha256"] == manifests["float32"]["sha256"]
    int8 = manifests["int8"]
    assert int8["kind"] == "int8" and int8["inputs"][0]["dtype"] == "int8"
    assert int8["inputs"][0]["quantization"]["scale"] > 0
    assert int8["calibration"]["image"]["samples"] == 200 and int8["calibration"]["image"]["nan_count"] == 0
    assert int8["quantization_report"]["float_ops"] == {}
    assert summary["comparisons"]["quantize"]["input_size_ratio"] < 0.3
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_table_output_and_recipe_list(digits_models, tmp_path, capsys):
    assert main(["convert", "--list-recipes"]) == 0
    listing = capsys.readouterr().out
    for name in ("fp16", "dynamic", "int8", "prune-int8", "distill-prune-int8"):
        assert name in listing
    code = _convert(
        digits_models.teacher_keras, "--recipe", "fp16", "--eval", digits_models.eval, "--out", tmp_path / "fp16"
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "float16" in text and "accuracy" in text and "gzip bytes" in text


def test_each_warning_prints_once(digits_models, tmp_path, capsys):
    """Warnings print as they happen; the end of the run counts them instead of repeating them."""
    code = _convert(digits_models.teacher_keras, "--recipe", "fp16", "--out", tmp_path / "fp16")
    assert code == 0
    err = capsys.readouterr().err
    assert err.count("no eval data (--eval or --dataset)") == 1
    assert "1 warning(s), printed above (also in summary.json)" in err
    summary = json.loads((tmp_path / "fp16" / "summary.json").read_text())
    assert summary["warnings"] == ["no eval data (--eval or --dataset): accuracy is not reported"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--recipe", "int8"], "needs calibration data"),
        (
            ["--recipe", "int8", "--calibration", "{bad_shape}"],
            "expected shape (N, 8, 8, 1) dtype float32, got shape (10, 8, 4, 1)",
        ),
        (
            ["--recipe", "int8", "--calibration", "{bad_dtype}"],
            "expected dtype float32 shape (N, 8, 8, 1), got dtype uint8",
        ),
        (["--recipe", "int8", "--set", "quantize.bits=4"], "valid keys: mode, io, calibration_samples"),
        (["--recipe", "prune-int8", "--sparsity", "1.5", "--train", "{train}"], "strictly between 0 and 1"),
        (["--recipe", "prune-int8", "--calibration", "{calib}"], "needs training data"),
        (["--recipe", "distill-prune-int8", "--mixup", "-0.5", "--train", "{train}"], "distill.mixup"),
        # issue 12: an infinite learning rate used to ship an all-NaN model with exit 0
        (
            ["--recipe", "prune-int8", "--train", "{train}", "--set", "prune.learning_rate=inf"],
            "recipe option prune.learning_rate: must be a finite number > 0, got inf",
        ),
        (
            ["--recipe", "int8", "--calibration", "{calib}", "--set", "export.onnx_atol=nan"],
            "recipe option export.onnx_atol: must be a finite number > 0, got nan",
        ),
        (
            ["--recipe", "prune-int8", "--train", "{train}", "--set", "prune.min_share=1.0"],
            "recipe option prune.min_share: must be in [0, 1), got 1.0",
        ),
        (
            [
                "--recipe",
                "distill-prune-int8",
                "--train",
                "{train}",
                "--student",
                "{student}",
                "--set",
                "distill.transfer={bad_shape}",
            ],
            "distill.transfer data",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(digits_models, tmp_path, capsys, args, message):
    import numpy as np

    np.save(tmp_path / "bad_shape.npy", np.zeros((10, 8, 4, 1), np.float32))
    np.save(tmp_path / "bad_dtype.npy", np.zeros((10, 8, 8, 1), np.uint8))
    subs = {
        "{bad_shape}": tmp_path / "bad_shape.npy",
        "{bad_dtype}": tmp_path / "bad_dtype.npy",
        "{train}": digits_models.train,
        "{calib}": digits_models.calib,
        "{student}": digits_models.student_keras,
    }
    args = [str(subs.get(a, a)) for a in args]
    args = [a.replace("{bad_shape}", str(tmp_path / "bad_shape.npy")) for a in args]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous run")
    # --force: the folder is not edge-sdk's, and the check must still leave it untouched on failure
    assert _convert(digits_models.teacher_keras, *args, "--out", out, "--force") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # destination untouched
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_unloadable_model_and_keras3_prune_are_plain_errors(digits_models, tmp_path, capsys):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    assert _convert(junk, "--recipe", "dynamic", "--out", tmp_path / "o1") == 2
    assert "expected a .keras archive" in capsys.readouterr().err
    assert (
        _convert(
            digits_models.keras3, "--recipe", "prune-int8", "--train", digits_models.train, "--out", tmp_path / "o2"
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "Keras 3" in err and "What applies to it: quantize" in err
    # what does apply works: post-training int8 of the Keras 3 file
    assert (
        _convert(
            digits_models.keras3,
            "--recipe",
            "int8",
            "--calibration",
            digits_models.calib,
            "--eval",
            digits_models.eval,
            "--out",
            tmp_path / "o3",
            "--formats",
            "tflite",
        )
        == 0
    )


def test_sigkill_mid_run_leaves_destination_untouched_and_rerun_succeeds(digits_models, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous run")
    cmd = [
        sys.executable,
        "-m",
        "edge_sdk",
        "convert",
        str(digits_models.teacher_keras),
        "--recipe",
        "prune-int8",
        "--train",
        str(digits_models.train),
        "--eval",
        str(digits_models.eval),
        "--out",
        str(out),
        "--force",
        "--prune-epochs",
        "4",
        "--latency-runs",
        "3",
    ]  # --force: keep.txt is not edge-sdk's
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.time() + 240
    try:
        for line in proc.stderr:
            seen.append(line)
            if "pruning" in line:  # float32.tflite is already written into staging; now fine-tuning
                break
            assert time.time() < deadline, "".join(seen)
        staging = list(tmp_path.glob(".out.tmp-*"))
        assert staging and (staging[0] / "float32.tflite").exists(), "".join(seen)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # nothing half-written at the destination
    # the rerun is the same command through the CLI's main() in this process (the killed run had to be a
    # process of its own; the rerun only has to find its debris and promote over it), saving a TF import
    assert _convert(*cmd[4:-4], "--prune-epochs", "1") == 0
    names = sorted(p.name for p in out.iterdir())
    assert "keep.txt" not in names
    assert {"float32.tflite", "pruned-float32.tflite", "pruned-int8.tflite", "int8.tflite", "summary.json"} <= set(
        names
    )
    assert not list(tmp_path.glob(".out.tmp-*"))  # the killed run's staging was cleaned up


def test_qat_and_structured_pruning_through_the_cli(digits_models, tmp_path, capsys):
    out = tmp_path / "qat"
    code = _convert(
        digits_models.teacher_keras,
        "--recipe",
        "prune-int8",
        "--train",
        digits_models.train,
        "--eval",
        digits_models.eval,
        "--structured",
        "2:4",
        "--sparsity",
        "0.5",
        "--prune-epochs",
        "1",
        "--qat",
        "--out",
        out,
        "--json",
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    pruned_int8 = read_manifest(out / "pruned-int8.json")
    assert pruned_int8["metrics"]["qat"] is True and pruned_int8["metrics"]["qat_scheme"] == "prune-preserve"
    assert pruned_int8["quantization_report"]["float_ops"] == {}
    assert max(pruned_int8["weight_sparsity"].values()) >= 0.49  # 2:4 zeros kept through QAT and int8
    assert summary["comparisons"]["prune"]["structured"] == "2:4"
    assert pruned_int8["metrics"]["accuracy"] > 0.8


def test_distillation_transfer_set_through_the_cli(digits_models, digits, tmp_path, capsys):
    """A user's unlabelled .npy is labelled by the teacher and recorded in the summary."""
    import numpy as np

    source = tmp_path / "unlabelled.npy"
    np.save(source, np.clip(digits.x_val[:150] + 0.05, 0, 1).astype(np.float32))
    out = tmp_path / "out"
    code = _convert(
        digits_models.teacher_keras,
        "--recipe",
        "distill-prune-int8",
        "--train",
        digits_models.train,
        "--eval",
        digits_models.eval,
        "--student",
        digits_models.student_keras,
        "--distill-epochs",
        "2",
        "--prune-epochs",
        "1",
        "--formats",
        "tflite",
        "--transfer",
        source,
        "--out",
        out,
        "--json",
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    from converters.distill import epochs_with_transfer

    labelled = len(np.load(digits_models.train)["y"])
    passes = epochs_with_transfer(2, labelled, 150, 64)  # the baseline's steps over labelled + unlabelled
    assert summary["comparisons"]["distill"]["transfer"] == {"source": str(source), "inputs": 150, "passes": passes}
    assert summary["comparisons"]["distill"]["baseline_accuracy"] is not None


def test_transfer_names_reach_the_pipeline_not_the_file_check(digits_models, tmp_path, capsys, monkeypatch):
    """``--transfer auto`` and ``--transfer fashion-mnist:N`` are names, not missing files."""
    common = (
        digits_models.teacher_keras,
        "--recipe",
        "distill-prune-int8",
        "--train",
        digits_models.train,
        "--eval",
        digits_models.eval,
        "--student",
        digits_models.student_keras,
        "--distill-epochs",
        "1",
        "--prune-epochs",
        "1",
        "--formats",
        "tflite",
        "--no-baseline",
    )
    assert _convert(*common, "--transfer", "auto", "--out", tmp_path / "a", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["comparisons"]["distill"]["transfer"] is None  # the user's own files leave no unlabelled images
    # a dataset name gets the pipeline's check: 28x28 images for an 8x8 model, before any training
    assert _convert(*common, "--transfer", "fashion-mnist:600", "--out", tmp_path / "f") == 2
    err = capsys.readouterr().err
    assert "not found" not in err and ("expected images shaped (8, 8, 1)" in err or "dataset-fashion-mnist" in err)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "auto").write_bytes(b"")  # a local file with the keyword's name: say which is meant
    assert _convert(*common, "--transfer", "auto", "--out", tmp_path / "b") == 2
    assert "is ambiguous" in capsys.readouterr().err


def test_digits_int8_shared_fixture(digits_int8):
    assert digits_int8.int8.exists() and digits_int8.float32.exists() and digits_int8.onnx.exists()
    manifest = digits_int8.manifest(digits_int8.int8)
    assert manifest["kind"] == "int8" and manifest["parent_sha256"] == digits_int8.manifests["float32"]["sha256"]
    # 91-94% with 1-pixel training shifts (79-84% when digits got mnist's 2-pixel shifts)
    assert manifest["metrics"]["accuracy"] > 0.85
    assert digits_int8.x_test.shape[1:] == (8, 8, 1)


def test_a_model_with_non_finite_outputs_fails_the_run(digits_models, tmp_path, capsys):
    """Issue 12: a stage whose model outputs NaN/inf on the run's data stops the run (exit 2), nothing written."""
    import numpy as np

    from converters._tf import tf_keras

    model = tf_keras.models.clone_model(digits_models.teacher)
    weights = model.get_weights()
    weights[-2] = np.full_like(weights[-2], np.nan)  # the classifier's kernel
    model.set_weights(weights)
    broken = tmp_path / "broken.keras"
    model.save(broken)
    out = tmp_path / "out"
    assert _convert(broken, "--recipe", "dynamic", "--calibration", digits_models.calib, "--out", out) == 2
    err = capsys.readouterr().err
    assert "\nerror: stage 'input': the float model behind float32 gives non-finite outputs" in err
    assert "on the calibration data" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))
    assert _convert(broken, "--recipe", "dynamic", "--eval", digits_models.eval, "--out", out) == 2
    err = capsys.readouterr().err
    assert "non-finite outputs (NaN or infinity in" in err and "on the eval data (" in err
    assert not out.exists()


def test_check_finite_names_the_model_and_the_data():
    import numpy as np

    from converters.errors import NonFiniteOutputError
    from converters.evaluation import check_finite

    check_finite({"p": np.ones((3, 2), np.float32), "q": np.zeros(4, np.int8)}, "m", "d")
    with pytest.raises(
        NonFiniteOutputError,
        match=r"stage 'prune': x gives non-finite outputs \(NaN or infinity "
        r"in 2 of 6 values\) on the eval data",
    ):
        check_finite({"p": np.array([[1.0, np.nan, np.inf], [0, 0, 0]])}, "stage 'prune': x", "the eval data")
