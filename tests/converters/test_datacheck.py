"""Data validation against the training statistics (issue 28): schema, anomalies, drift; numpy only, fast.

The thresholds must never trip on the same dataset's held-out splits (checked here on digits,
mnist and adult, whole and as small calibration-sized slices), and must trip on the usual mistakes.
"""

import json

import numpy as np
import pytest

from converters import datacheck
from converters.datacheck import DataDriftError, DataSchemaError
from training.datastats import compute_stats


@pytest.fixture(scope="module")
def digits():
    from training import datasets

    return datasets.load("digits")


@pytest.fixture(scope="module")
def adult():
    from training import datasets

    return datasets.load("adult")


@pytest.fixture(scope="module")
def adult_stats(adult):
    return compute_stats(adult.x_train, source="adult train split", preprocessing=adult.preprocessing)


def _slices(x, n):
    if isinstance(x, dict):
        return {k: v[:n] for k, v in x.items()}
    return {"x": x[:n]}


@pytest.mark.parametrize("name", ["digits", "mnist", "adult"])
def test_held_out_splits_never_trip_the_checks_or_the_drift_flags(name):
    from training import datasets

    ds = datasets.load(name)
    stats = compute_stats(ds.x_train, source=f"{name} train", preprocessing=ds.preprocessing)
    for split in ("x_val", "x_test"):
        x = getattr(ds, split)
        for n in (50, 200, None):
            inputs = _slices(x, n) if n else (dict(x) if isinstance(x, dict) else {"x": x})
            assert datacheck.check_data(stats, [("eval", split, inputs)]) == []
            drifted = [r for r in datacheck.drift_rows(stats, inputs) if r["drift"]]
            assert drifted == [], (split, n, drifted)


def test_digits_x16_x255_standardised_and_divided_twice_name_the_input_the_scale_and_a_cause(digits):
    stats = compute_stats({"image": digits.x_train}, source="digits train split")
    x = digits.x_test
    cases = {
        "x16": (x * 16, ["scale x16", "0-16", "trained on 0-1"]),
        "x255": (x * 255, ["scale x255", "looks like 0-255 pixels; the model was trained on 0-1"]),
        "standardised": ((x - x.mean()) / x.std(), ["looks standardised"]),
        "/255": (x / 255, ["divided by 255 twice"]),
    }
    for label, (data, words) in cases.items():
        with pytest.raises(DataDriftError) as err:
            datacheck.check_data(stats, [("calibration", "calib.npz", {"image": data})])
        message = str(err.value)
        assert "calibration data calib.npz: input 'image'" in message and "\n" not in message, label
        assert "expected 0..1" in message, label
        for word in words:
            assert word in message, (label, message)
    assert datacheck.check_data(stats, [("calibration", "calib.npz", {"image": x})]) == []


def test_channel_swap_is_named():
    rng = np.random.default_rng(0)
    # sky-and-grass-like RGB: channel means 0.2 / 0.5 / 0.8
    train = np.clip(rng.normal([0.2, 0.5, 0.8], 0.1, (300, 8, 8, 3)), 0, 1).astype(np.float32)
    held = np.clip(rng.normal([0.2, 0.5, 0.8], 0.1, (100, 8, 8, 3)), 0, 1).astype(np.float32)
    stats = compute_stats({"rgb": train})
    assert len(stats["features"]["rgb"]["channels"]) == 3
    assert datacheck.check_data(stats, [("eval", "held", {"rgb": held})]) == []
    with pytest.raises(DataDriftError, match=r"input 'rgb'.*BGR given for a model trained on RGB"):
        datacheck.check_data(stats, [("eval", "bgr", {"rgb": held[..., ::-1]})])
    rows = {r["feature"]: r for r in datacheck.drift_rows(stats, {"rgb": held[..., ::-1]})}
    assert rows["rgb[c0]"]["drift"] and rows["rgb[c2]"]["drift"] and not rows["rgb[c1]"]["drift"]


def _raw_to_months(adult, x):
    entry = next(f for f in adult.preprocessing["features"] if f["name"] == "age")
    years = x["age"] * entry["std"] + entry["mean"]
    return {**x, "age": ((years * 12 - entry["mean"]) / entry["std"]).astype(np.float32)}


def test_adult_gender_with_only_unseen_values_is_refused_naming_the_column(adult, adult_stats):
    entry = next(f for f in adult.preprocessing["features"] if f["name"] == "gender")
    x = dict(adult.x_test)
    x["gender"] = np.full_like(x["gender"], entry["oov_index"])
    with pytest.raises(DataDriftError) as err:
        datacheck.check_data(adult_stats, [("eval", "eval.npz", x)])
    message = str(err.value)
    assert "input 'gender'" in message and "Male" in message and "100.0% values the training data never had" in message
    rows = {r["feature"]: r for r in datacheck.drift_rows(adult_stats, x)}
    assert rows["gender"]["drift"] and rows["gender"]["metric"] == "JS" and rows["gender"]["value"] > 0.9
    assert [r["feature"] for r in rows.values() if r["drift"]] == ["gender"]


def test_adult_age_in_months_is_drift_on_age_and_refused(adult, adult_stats):
    x = _raw_to_months(adult, dict(adult.x_test))
    rows = datacheck.drift_rows(adult_stats, x)
    assert [r["feature"] for r in rows if r["drift"]] == ["age"]
    with pytest.raises(DataDriftError, match=r"input 'age'.*scale x12.*months where the model was trained on years"):
        datacheck.check_data(adult_stats, [("eval", "eval.npz", x)])
    findings = datacheck.check_data(adult_stats, [("eval", "eval.npz", x)], allow_drift=True)
    assert [f.feature for f in findings] == ["age"]


def test_schema_violations_name_the_feature_even_with_allow_drift(adult, adult_stats):
    x = dict(adult.x_test)
    missing = {k: v for k, v in x.items() if k != "race"}
    with pytest.raises(DataSchemaError, match=r"input 'race': expected this training input, got no such input"):
        datacheck.check_data(adult_stats, [("eval", "e.npz", missing)], allow_drift=True)
    with pytest.raises(DataSchemaError, match=r"input 'zip_code'"):
        datacheck.check_data(adult_stats, [("eval", "e.npz", {**x, "zip_code": x["age"]})], allow_drift=True)
    with pytest.raises(DataSchemaError, match=r"input 'gender': expected dtype int32 \(integer\), got dtype float32"):
        datacheck.check_data(adult_stats, [("eval", "e.npz", {**x, "gender": x["gender"].astype(np.float32)})])
    image_stats = compute_stats({"image": np.zeros((10, 8, 8, 1), np.float32)})
    with pytest.raises(
        DataSchemaError, match=r"input 'image': expected per-example shape \[8, 8, 1\], got shape \[28, 28, 1\]"
    ):
        datacheck.check_data(image_stats, [("eval", "e", {"image": np.zeros((3, 28, 28, 1), np.float32)})])


def test_statistics_hold_vocabulary_with_frequencies_quantiles_and_channels(adult_stats, digits):
    gender = adult_stats["features"]["gender"]
    assert gender["kind"] == "categorical" and {v["name"] for v in gender["vocabulary"]} >= {"Male", "Female"}
    assert abs(sum(v["share"] for v in gender["vocabulary"]) - 1) < 1e-3 and gender["missing_share"] == 0.0
    age = adult_stats["features"]["age"]
    assert age["kind"] == "numeric" and set(age["percentiles"]) >= {"p1", "p50", "p99"} and age["missing_share"] == 0
    image = compute_stats(digits.x_train)["features"]["x"]
    assert image["kind"] == "image" and image["shape"] == [8, 8, 1] and image["min"] == 0 and image["max"] == 1
    assert image["channels"][0]["mean"] == image["mean"]
    json.dumps(adult_stats)  # plain JSON


def test_drift_html_chart_is_additive():
    from converters.html_report import build_report, render_html

    stats = compute_stats({"x": np.random.default_rng(0).random((200, 4, 4, 1), dtype=np.float32)})
    report = build_report(None, None, None)
    report["data_drift"] = datacheck.drift_report(stats, {"x": np.ones((20, 4, 4, 1), np.float32) * 3}, "d.npz")
    page = render_html(report)
    assert "Data drift against the training statistics" in page and "data:image/png;base64," in page
    assert "DRIFT" in page


def test_data_cli_stats_check_and_drift(tmp_path, capsys):
    from edge_sdk.cli import main

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.random((300, 6, 6, 3), dtype=np.float32), y=np.zeros(300))
    np.savez(tmp_path / "x255.npz", x=rng.random((50, 6, 6, 3), dtype=np.float32) * 255)
    stats = tmp_path / "stats.json"
    assert main(["data", "stats", str(tmp_path / "train.npz"), "--out", str(stats)]) == 0
    written = json.loads(stats.read_text())
    assert written["samples"] == 300 and "y" not in written["features"]
    assert len(written["features"]["x"]["channels"]) == 3
    capsys.readouterr()
    assert main(["data", "check", str(tmp_path / "x255.npz"), "--train-stats", str(stats)]) == 1
    assert "looks like 0-255 pixels; the model was trained on 0-1" in capsys.readouterr().out
    assert main(["data", "drift", str(tmp_path / "x255.npz"), "--train-stats", str(stats), "--json", "-"]) == 0
    assert set(json.loads(capsys.readouterr().out)["drifted"]) == {"x[c0]", "x[c1]", "x[c2]", "x"}
    # never over an input, and a statistics file that is not one is named
    assert main(["data", "stats", str(tmp_path / "train.npz"), "--out", str(tmp_path / "train.npz")]) == 2
    assert main(["data", "check", str(tmp_path / "x255.npz"), "--train-stats", str(tmp_path / "train.npz")]) == 2
    assert "expected statistics JSON" in capsys.readouterr().err


def _stats_file(tmp_path, edit=None, text=None):
    stats = compute_stats({"x": np.random.default_rng(0).random((20, 4, 4, 3), dtype=np.float32)})
    if edit:
        edit(stats["features"]["x"])
    path = tmp_path / "stats.json"
    path.write_text(text if text is not None else json.dumps(stats))
    return path


@pytest.mark.parametrize(
    "edit, text, expected",
    [
        (lambda f: f.update(mean="NaN"), None, "'mean'"),
        (lambda f: f.update(shape="abc"), None, "'shape'"),
        (lambda f: f.update(channels=[1, 2, 3]), None, "'channels'"),
        (lambda f: f.update(kind="spreadsheet"), None, "'kind'"),
        (lambda f: f.update(min=None, max=None, mean=None, std=None), None, "no finite"),
        (lambda f: f.update(histogram={"edges": [1.0], "shares": "q"}), None, "'histogram'"),
        (
            None,
            '{"format": "edge-sdk-datastats/1", "features": {"x": {"kind": "categorical", "vocabulary": 3}}}',
            "'vocabulary'",
        ),
        (None, '{"format": "edge-sdk-datastats/1", "format": "edge-sdk-datastats/1", "features": {}}', "duplicate"),
    ],
)
def test_a_malformed_statistics_file_is_refused_naming_the_field(tmp_path, edit, text, expected):
    """A foreign or hand-edited statistics JSON fails at load naming the field, not later in the quantizer."""
    with pytest.raises(datacheck.StatsError) as err:
        datacheck.load_stats(_stats_file(tmp_path, edit, text))
    assert expected in str(err.value) and "stats.json" in str(err.value)


def test_train_stats_on_a_device_file_says_what_it_is():
    with pytest.raises(datacheck.StatsError, match="character device"):
        datacheck.load_stats("/dev/zero")


def test_small_values_in_messages_keep_their_exponent_and_sign():
    """'got 3e06..1' was shown for data whose minimum is 3e-06 (the '-0' of the exponent stripped)."""
    assert datacheck._fmt(3e-06) == "3e-06" and datacheck._fmt(-0.0003) == "-0.0003"
    assert datacheck._fmt(-0.0) == "0" and datacheck._fmt(255.0) == "255"
