"""Sliced evaluation (issue 25, item 6): the --slice-by syntax, bucketing in raw units, tiny slices, the gate.

Numpy only (edge_sdk.slices): the figures are checked against counts worked out by hand. The end-to-end
run on Wide & Deep (adult, sliced by gender, race and age in decades) is in
tests/converters/test_pipeline_wide_deep.py, on that file's trained model.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.slices import SliceError, parse_slice_spec, slice_gate, sliced_evaluation

PREPROCESSING = {
    "features": [
        {"name": "age", "column": "age", "type": "numeric", "transform": "none", "mean": 40.0, "std": 10.0},
        {
            "name": "native_country",
            "column": "native-country",
            "type": "categorical",
            "vocabulary": ["United-States", "Mexico"],
            "oov_index": 2,
        },
        {
            "name": "capital_gain",
            "column": "capital-gain",
            "type": "numeric",
            "transform": "log1p",
            "mean": 1.0,
            "std": 2.0,
        },
    ]
}


def test_spec_syntax():
    assert parse_slice_spec("class") == ("class", None, None)
    assert parse_slice_spec("gender") == ("gender", None, None)
    assert parse_slice_spec("age:decades") == ("age", "width", 10.0)
    assert parse_slice_spec("age:5") == ("age", "width", 5.0)
    assert parse_slice_spec("age:30,50") == ("age", "edges", (30.0, 50.0))
    for bad, match in (
        ("age:0", "width above 0"),
        ("age:50,30", "increasing"),
        ("age:ten", "bucket width"),
        (":10", "expected COLUMN"),
        ("class:10", "no bucketing"),
    ):
        with pytest.raises(SliceError, match=match):
            parse_slice_spec(bad)


def _data():
    # 6 people: standardised ages (model input) of 23, 27, 35, 38, 41, 67 years
    years = np.array([23, 27, 35, 38, 41, 67], np.float64)
    inputs = {
        "age": ((years - 40.0) / 10.0).astype(np.float32).reshape(-1, 1),
        "native_country": np.array([[0], [1], [0], [2], [0], [1]], np.int32),
        "capital_gain": ((np.log1p([0, 0, 99, 0, 0, 0]) - 1.0) / 2.0).astype(np.float32).reshape(-1, 1),
    }
    labels = np.array([1, 0, 1, 1, 0, 1])
    f_cls = np.array([1, 0, 1, 1, 0, 1])  # float: all right
    q_cls = np.array([1, 0, 0, 1, 0, 0])  # quantized: wrong on the 35- and the 67-year-old
    return inputs, labels, f_cls, q_cls


def test_buckets_are_in_raw_units_and_categories_are_words():
    inputs, labels, f_cls, q_cls = _data()
    report = sliced_evaluation(
        ["age:decades", "native-country", "age:30,40", "class", "capital-gain:50"],
        inputs,
        f_cls,
        q_cls,
        labels,
        preprocessing=PREPROCESSING,
        class_names=["<=50K", ">50K"],
        min_count=2,
    )
    by_spec = {s["spec"]: {r["slice"]: r for r in s["rows"]} for s in report["slicings"]}
    ages = by_spec["age:decades"]
    assert {k: v["count"] for k, v in ages.items()} == {"[20, 30)": 2, "[30, 40)": 2, "[40, 50)": 1, "[60, 70)": 1}
    assert ages["[30, 40)"]["float_accuracy"] == 1.0 and ages["[30, 40)"]["quantized_accuracy"] == 0.5
    assert ages["[30, 40)"]["drop_points"] == pytest.approx(50.0)
    assert ages["[60, 70)"]["tiny"] and ages["[60, 70)"]["drop_points"] == pytest.approx(100.0)
    # the tiny slice drops most, but is not the worst: it is not gated
    assert report["slicings"][0]["worst"]["slice"] == "[30, 40)"
    assert {k: v["count"] for k, v in by_spec["native-country"].items()} == {
        "United-States": 3,
        "Mexico": 2,
        "(other)": 1,
    }
    assert list(by_spec["age:30,40"]) == ["< 30", "[30, 40)", ">= 40"]
    assert {k: v["count"] for k, v in by_spec["class"].items()} == {"<=50K": 2, ">50K": 4}
    assert {k: v["count"] for k, v in by_spec["capital-gain:50"].items()} == {"[0, 50)": 5, "[50, 100)": 1}
    assert report["worst"]["drop_points"] == pytest.approx(50.0)


def test_gate_fails_above_the_budget_and_skips_tiny_slices():
    inputs, labels, f_cls, q_cls = _data()
    report = sliced_evaluation(["age:decades"], inputs, f_cls, q_cls, labels, preprocessing=PREPROCESSING, min_count=2)
    failed = slice_gate(report, 10.0)
    assert failed["status"] == "fail" and failed["exit_code"] == 1
    assert "age:decades=[30, 40)" in failed["verdict"] and "50.00 points" in failed["verdict"]
    assert "2 slice(s) under 2 examples reported, not gated" in failed["verdict"]
    assert slice_gate(report, 50.0)["status"] == "pass"
    unlabelled = sliced_evaluation(["age:decades"], inputs, f_cls, q_cls, None, preprocessing=PREPROCESSING)
    assert unlabelled["metric"] == "agreement" and slice_gate(unlabelled, 1.0)["exit_code"] == 2


def test_wrong_columns_say_what_was_expected():
    inputs, labels, f_cls, q_cls = _data()
    with pytest.raises(SliceError, match="inputs: age, capital_gain, native_country"):
        sliced_evaluation(["sex"], inputs, f_cls, q_cls, labels, preprocessing=PREPROCESSING)
    many = {"x": np.linspace(0, 1, 200, dtype=np.float32)}
    with pytest.raises(SliceError, match=r"at most 50 distinct values, got 200; bucket it, e\.g\. --slice-by x:10"):
        sliced_evaluation(["x"], many, np.zeros(200, int), np.zeros(200, int))
    with pytest.raises(SliceError, match="buckets need a numeric column"):
        sliced_evaluation(["native-country:10"], inputs, f_cls, q_cls, labels, preprocessing=PREPROCESSING)
    with pytest.raises(SliceError, match="expected class scores"):
        sliced_evaluation(["age:10"], inputs, None, None)
