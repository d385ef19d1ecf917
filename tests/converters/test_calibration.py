"""Calibration/eval data: validation messages, statistics, range warnings."""

from __future__ import annotations

import numpy as np
import pytest

from converters import calibration
from converters.errors import CalibrationError, DataError
from converters.model_files import InputSpec

SPECS = [InputSpec("image", (None, 8, 8, 1), "float32")]


def test_wrong_shape_names_expected_and_given():
    with pytest.raises(CalibrationError) as err:
        calibration.as_input_dict(np.zeros((5, 8, 4, 1), np.float32), SPECS)
    message = str(err.value)
    assert "'image'" in message and "(N, 8, 8, 1)" in message and "(5, 8, 4, 1)" in message


def test_wrong_dtype_names_expected_and_given():
    with pytest.raises(CalibrationError) as err:
        calibration.as_input_dict(np.zeros((5, 8, 8, 1), np.uint8), SPECS)
    message = str(err.value)
    assert "float32" in message and "uint8" in message and "preprocessing" in message


def test_multi_input_needs_named_arrays():
    specs = [InputSpec("age", (None, 1), "float32"), InputSpec("job", (None, 1), "int32")]
    with pytest.raises(CalibrationError, match="2 inputs"):
        calibration.as_input_dict(np.zeros((3, 1), np.float32), specs)
    with pytest.raises(CalibrationError, match=r"missing \['job'\]"):
        calibration.as_input_dict({"age": np.zeros((3, 1), np.float32)}, specs)
    data = calibration.as_input_dict({"age": np.zeros((3, 1)), "job": np.ones((3, 1), np.int64)}, specs)
    assert data["age"].dtype == np.float32 and data["job"].dtype == np.int32


def test_files_npy_npz_and_labels(tmp_path):
    x = np.random.default_rng(0).random((10, 8, 8, 1), dtype=np.float32)
    np.save(tmp_path / "c.npy", x)
    np.savez(tmp_path / "e.npz", x=x, y=np.arange(10))
    got, labels = calibration.load_data_file(tmp_path / "c.npy", SPECS)
    assert labels is None and np.array_equal(got["image"], x)
    got, labels = calibration.load_data_file(tmp_path / "e.npz", SPECS, "eval", want_labels=True)
    assert np.array_equal(labels, np.arange(10))
    with pytest.raises(DataError, match="inputs and labels 'y', got a bare .npy"):
        calibration.load_data_file(tmp_path / "c.npy", SPECS, "eval", want_labels=True)
    (tmp_path / "junk.npy").write_bytes(b"nope")
    with pytest.raises(CalibrationError, match="could not read it"):
        calibration.load_data_file(tmp_path / "junk.npy", SPECS)
    with pytest.raises(CalibrationError, match="no such file"):
        calibration.load_data_file(tmp_path / "absent.npz", SPECS)


def test_stats_count_nans_and_nan_samples_are_dropped():
    x = np.linspace(0, 1, 40, dtype=np.float32).reshape(10, 4)
    x[3, 1] = np.nan
    stats = calibration.input_stats({"v": x})["v"]
    assert stats["nan_count"] == 1 and stats["samples"] == 10
    assert stats["min"] == 0.0 and stats["max"] == 1.0
    kept, dropped = calibration.drop_nan_samples({"v": x})
    assert dropped == 1 and len(kept["v"]) == 9 and not np.isnan(kept["v"]).any()
    with pytest.raises(CalibrationError, match="every sample holds a NaN"):
        calibration.drop_nan_samples({"v": np.full((2, 2), np.nan, np.float32)})


def test_range_warning_names_the_input_only_when_well_outside():
    rng = np.random.default_rng(0)
    cal = calibration.input_stats({"image": rng.random((100, 4)), "age": rng.random((100, 1))})
    inside = {"image": rng.random((50, 4)) * 1.05, "age": rng.random((50, 1))}
    assert calibration.range_warnings(cal, inside) == []
    outside = {"image": rng.random((50, 4)) * 255.0, "age": rng.random((50, 1))}
    warnings = calibration.range_warnings(cal, outside)
    assert len(warnings) == 1 and "'image'" in warnings[0] and "well outside" in warnings[0]


RESNET8 = (
    __import__("pathlib").Path(__file__).parents[1] / "data" / "public_models" / "mlperf_tiny_ic_resnet8_float.tflite"
)


def test_nan_in_the_data_is_named_as_the_data_not_a_broken_model(tmp_path, capsys):
    """One NaN pixel in --calibration: that sample is dropped (not 'the model is broken'); NaN in --eval is refused."""
    from edge_sdk.cli import main

    x = np.random.default_rng(0).random((12, 32, 32, 3), dtype=np.float32) * 255
    x[3, 0, 0, 0] = np.nan
    np.save(tmp_path / "cal.npy", x)
    code = main(
        [
            "convert",
            str(RESNET8),
            "--recipe",
            "int8",
            "--calibration",
            str(tmp_path / "cal.npy"),
            "--out",
            str(tmp_path / "out"),
            "--formats",
            "tflite",
            "--latency-runs",
            "0",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and "broken" not in err, err
    np.savez(tmp_path / "eval.npz", x=x)
    code = main(
        [
            "convert",
            str(RESNET8),
            "--recipe",
            "int8",
            "--calibration",
            str(tmp_path / "cal.npy"),
            "--eval",
            str(tmp_path / "eval.npz"),
            "--out",
            str(tmp_path / "out2"),
            "--formats",
            "tflite",
            "--latency-runs",
            "0",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "broken" not in err and "eval data" in err and "NaN" in err, err
    assert not (tmp_path / "out2").exists()
