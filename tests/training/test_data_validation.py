"""Issue 28 end to end: the training data's statistics travel with the model and data is checked before any work.

Reuses the session's trained models (``digits_run``: the cnn on digits, ``adult_run``: Wide & Deep on
adult); every refusal is asserted to happen before any conversion or training starts.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.fileio import sha256_file


class _NoWork(AssertionError):
    pass


@pytest.fixture
def no_conversion(monkeypatch):
    """Conversion or training starting at all fails the test."""
    import converters.context
    import converters.finetune
    import converters.quantize

    def refuse(*args, **kwargs):
        raise _NoWork("conversion or training started before the data check refused")

    monkeypatch.setattr(converters.quantize, "convert", refuse)
    monkeypatch.setattr(converters.context.RunContext, "float32_artifact", refuse)
    monkeypatch.setattr(converters.finetune, "compile_and_fit", refuse)


def _digits_files(tmp_path, digits, scale=1.0):
    calib = tmp_path / f"calib-x{scale:g}.npz"
    np.savez(calib, x=digits.x_train[:200] * scale)
    test = tmp_path / "test.npz"
    np.savez(test, x=digits.x_test, y=digits.y_test)
    return calib, test


def test_train_writes_statistics_beside_the_model_and_its_manifests_point_to_them(digits_run, adult_run):
    for run, feature, kind in ((digits_run, "image", "image"), (adult_run, "gender", "categorical")):
        stats_path = Path(run.paths["train_stats"])
        stats = json.loads(stats_path.read_text())
        assert stats["format"] == "edge-sdk-datastats/1" and stats["features"][feature]["kind"] == kind
        for artifact in (run.paths["keras"], run.paths["savedmodel"]):
            manifest = json.loads(
                Path(
                    str(Path(artifact).with_suffix(".json")) if artifact.endswith(".keras") else artifact + ".json"
                ).read_text()
            )
            assert manifest["data_stats"]["file"] == "train_stats.json"
            assert manifest["data_stats"]["sha256"] == sha256_file(stats_path)
    gender = json.loads(Path(adult_run.paths["train_stats"]).read_text())["features"]["gender"]
    assert {v["name"] for v in gender["vocabulary"]} >= {"Male", "Female"}


@pytest.mark.parametrize("recipe", ["int8", "auto"])
def test_convert_refuses_x16_calibration_before_any_conversion(
    digits_run, digits, tmp_path, capsys, no_conversion, recipe
):
    calib, test = _digits_files(tmp_path, digits, 16)
    out = tmp_path / "out"
    code = main(
        [
            "convert",
            digits_run.paths["keras"],
            "--recipe",
            recipe,
            "--calibration",
            str(calib),
            "--eval",
            str(test),
            "--out",
            str(out),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "input 'image'" in err and "scale x16" in err and "trained on 0-1" in err


def test_convert_of_a_zoo_model_refuses_before_training(digits, tmp_path, capsys, no_conversion):
    calib, _ = _digits_files(tmp_path, digits, 255)
    code = main(
        [
            "convert",
            "cnn",
            "--dataset",
            "digits",
            "--recipe",
            "int8",
            "--calibration",
            str(calib),
            "--out",
            str(tmp_path / "out"),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "input 'image'" in err and "looks like 0-255 pixels; the model was trained on 0-1" in err


def test_convert_at_the_right_scale_passes_and_every_manifest_carries_the_statistics(
    digits_run, digits, tmp_path, capsys
):
    calib, test = _digits_files(tmp_path, digits, 1)
    out = tmp_path / "out"
    code = main(
        [
            "convert",
            digits_run.paths["keras"],
            "--recipe",
            "int8",
            "--formats",
            "tflite",
            "--calibration",
            str(calib),
            "--eval",
            str(test),
            "--out",
            str(out),
            "-q",
            "--latency-runs",
            "0",
        ]
    )
    assert code == 0, capsys.readouterr().err
    stats = out / "train_stats.json"
    assert json.loads(stats.read_text())["source"] == "digits train split"
    manifests = [p.with_suffix(".json") for p in out.glob("*.tflite")]
    assert {p.stem for p in manifests} >= {"float32", "int8"}
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["data_stats"]["sha256"] == sha256_file(stats) and "data_check" not in manifest
    # lineage: parity on the converted pair finds the statistics beside float32.tflite and refuses x16 data
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=digits.x_test * 16, y=digits.y_test)
    code = main(
        ["parity", str(out / "float32.tflite"), str(out / "int8.tflite"), "--data", str(bad), "-q", "--no-layers"]
    )
    assert code == 2 and "parity data" in capsys.readouterr().err
    code = main(
        [
            "parity",
            str(out / "float32.tflite"),
            str(out / "int8.tflite"),
            "--data",
            str(bad),
            "-q",
            "--no-layers",
            "--allow-drift",
            "--json",
            "-",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["data_drift"]["drifted"] and report["data_drift"]["findings"][0]["feature"] == "image"


def test_allow_drift_continues_and_records_the_finding_in_the_manifest(digits_run, digits, tmp_path, capsys):
    calib, test = _digits_files(tmp_path, digits, 16)
    out = tmp_path / "out"
    code = main(
        [
            "convert",
            digits_run.paths["keras"],
            "--recipe",
            "dynamic",
            "--formats",
            "tflite",
            "--calibration",
            str(calib),
            "--out",
            str(out),
            "-q",
            "--latency-runs",
            "0",
            "--allow-drift",
        ]
    )
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "dynamic.json").read_text())
    finding = manifest["data_check"]["findings"][0]
    assert finding["feature"] == "image" and "x16" in finding["got"] and manifest["data_check"]["allowed"]


def _adult_eval(adult, tmp_path, name, change):
    x = {k: v.copy() for k, v in adult.x_test.items()}
    change(x)
    path = tmp_path / f"{name}.npz"
    np.savez(path, y=adult.y_test, **x)
    return path


def test_adult_eval_with_unseen_gender_is_refused_before_conversion(adult_run, adult, tmp_path, capsys, no_conversion):
    oov = next(f for f in adult.preprocessing["features"] if f["name"] == "gender")["oov_index"]
    bad = _adult_eval(adult, tmp_path, "gender", lambda x: x["gender"].fill(oov))
    code = main(
        [
            "convert",
            adult_run.paths["keras"],
            "--recipe",
            "int8",
            "--eval",
            str(bad),
            "--out",
            str(tmp_path / "out"),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "input 'gender'" in err and "never had" in err


def test_adult_age_in_months_is_flagged_as_drift_on_age(adult_run, adult, tmp_path, capsys):
    age = next(f for f in adult.preprocessing["features"] if f["name"] == "age")

    def months(x):
        x["age"] = ((x["age"] * age["std"] + age["mean"]) * 12 - age["mean"]) / age["std"]

    bad = _adult_eval(adult, tmp_path, "months", months)
    assert main(["data", "drift", str(bad), "--model", adult_run.paths["keras"], "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["drifted"] == ["age"] and report["training"] == "adult train split"
    assert main(["data", "check", str(bad), "--model", adult_run.paths["keras"]]) == 1
    assert "input 'age'" in capsys.readouterr().out
    good = _adult_eval(adult, tmp_path, "good", lambda x: None)
    assert main(["data", "check", str(good), "--model", adult_run.paths["keras"]]) == 0


@pytest.mark.parametrize(
    "arrays, expected",
    [
        ({"x": np.zeros((0, 4), np.float32)}, "at least one example"),
        ({"x": np.full((10, 4), np.nan, np.float32)}, "no finite values"),
        ({"x": np.array(["a", "b", "c"]), "z": np.arange(3)}, "numeric"),
        ({"x": np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])}, "numeric"),
        ({"x": np.ones((3, 2), complex)}, "numeric"),
        ({"a": np.zeros((3, 2), np.float32), "b": np.zeros((5, 2), np.float32)}, "same number of examples"),
        ({"x": np.float32(3)}, "one row per example"),
    ],
)
def test_data_stats_refuses_data_it_cannot_describe(tmp_path, capsys, arrays, expected):
    """Statistics of 0 rows, all-NaN, strings, records, complex or ragged inputs: one line, no file, no traceback."""
    data, out = tmp_path / "weird.npz", tmp_path / "stats.json"
    np.savez(data, **arrays)
    assert main(["data", "stats", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "edge-sdk bug" not in err and err.count("\n") == 1, err
    assert not out.exists()


def test_data_check_and_drift_never_write_their_report_over_the_statistics_they_read(tmp_path, capsys):
    """`data drift DATA --train-stats S --json S` replaced the training statistics with the drift report."""
    x = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    np.savez(tmp_path / "train.npz", x=x)
    stats = tmp_path / "stats.json"
    assert main(["data", "stats", str(tmp_path / "train.npz"), "--out", str(stats)]) == 0
    before = stats.read_bytes()
    for action in ("drift", "check"):
        assert (
            main(["data", action, str(tmp_path / "train.npz"), "--train-stats", str(stats), "--json", str(stats)]) == 2
        )
        err = capsys.readouterr().err
        assert "--train-stats" in err and "refusing to write over an input" in err, err
    assert stats.read_bytes() == before


def test_data_drift_refuses_data_of_another_schema_instead_of_a_table(tmp_path, capsys):
    """Drift of [49, 10, 1] inputs against [8, 8, 1] training statistics printed a PSI table (exit 0)."""
    np.savez(tmp_path / "train.npz", x=np.random.default_rng(0).random((40, 8, 8, 1), dtype=np.float32))
    np.savez(tmp_path / "other.npz", x=np.random.default_rng(1).random((40, 49, 10, 1), dtype=np.float32))
    stats = tmp_path / "stats.json"
    assert main(["data", "stats", str(tmp_path / "train.npz"), "--out", str(stats)]) == 0
    capsys.readouterr()
    assert main(["data", "drift", str(tmp_path / "other.npz"), "--train-stats", str(stats)]) == 2
    err = capsys.readouterr().err
    assert "[8, 8, 1]" in err and "[49, 10, 1]" in err and err.count("\n") == 1, err
