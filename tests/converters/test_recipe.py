"""Recipes: built-ins load, unknown keys list the valid ones, values are range-checked."""

from __future__ import annotations

import pytest

from converters import recipe as recipes
from converters.errors import RecipeError
from converters.recipe_options import parse_override
from edge_sdk.errors import EdgeSdkError


def test_builtins_load_with_their_stage_chains():
    assert set(recipes.builtin_names()) >= {"fp16", "dynamic", "int8", "prune-int8", "distill-prune-int8"}
    assert recipes.load("fp16").section("quantize")["mode"] == "float16"
    assert recipes.load("dynamic").section("quantize")["mode"] == "dynamic"
    assert recipes.load("int8").stages == ["quantize"]
    assert recipes.load("prune-int8").stages == ["prune", "quantize"]
    full = recipes.load("distill-prune-int8")
    assert full.stages == ["distill", "prune", "quantize"]
    assert full.section("prune")["target_sparsity"] >= 0.75
    assert full.to_dict()["distill"]["student"] == "cnn-student"


def test_unknown_top_level_key_lists_valid_keys(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('name = "x"\nstages = ["quantize"]\nquantise = {mode = "int8"}\n')
    with pytest.raises(RecipeError) as err:
        recipes.load(str(path))
    message = str(err.value)
    assert "'quantise'" in message and "valid keys" in message
    for valid in ("stages", "quantize", "prune", "distill", "export"):
        assert valid in message
    assert isinstance(err.value, EdgeSdkError)


def test_unknown_section_key_lists_valid_keys(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('stages = ["prune"]\n[prune]\nsparsity = 0.5\n')
    with pytest.raises(RecipeError, match=r"unknown key\(s\) 'sparsity' in \[prune\]; valid keys: target_sparsity"):
        recipes.load(str(path))


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, 0.0, 1.0])
def test_sparsity_outside_open_unit_interval_is_rejected(value):
    with pytest.raises(RecipeError, match="strictly between 0 and 1"):
        recipes.with_overrides(recipes.load("prune-int8"), {"prune.target_sparsity": value})


def test_overrides_are_coerced_and_checked():
    r = recipes.with_overrides(
        recipes.load("int8"), {"quantize.calibration_samples": 50.0, "export.formats": "tflite,onnx"}
    )
    assert r.section("quantize")["calibration_samples"] == 50
    assert r.section("export")["formats"] == ["tflite", "onnx"]
    with pytest.raises(RecipeError, match="expected str"):
        recipes.with_overrides(r, {"quantize.mode": 8})
    with pytest.raises(RecipeError, match="must be one of 'dynamic', 'float16', 'int8'"):
        recipes.with_overrides(r, {"quantize.mode": "int4"})
    with pytest.raises(RecipeError, match="unknown section 'quant'"):
        recipes.with_overrides(r, {"quant.mode": "int8"})
    with pytest.raises(RecipeError, match="opset between 17"):
        recipes.with_overrides(r, {"export.onnx_opset": 13})


def test_stage_order_and_names_are_checked():
    with pytest.raises(RecipeError, match="valid stages: distill, prune, quantize"):
        recipes.from_dict({"stages": ["quantise"]})
    with pytest.raises(RecipeError, match="order"):
        recipes.from_dict({"stages": ["quantize", "prune"]})


def test_parse_override_and_unknown_recipe_name():
    assert parse_override("prune.target_sparsity=0.9") == ("prune", "target_sparsity", 0.9)
    assert parse_override("quantize.mode=dynamic") == ("quantize", "mode", "dynamic")
    with pytest.raises(RecipeError, match="SECTION.KEY=VALUE"):
        parse_override("sparsity")
    with pytest.raises(RecipeError, match="built-in name"):
        recipes.load("int9")


def test_invalid_toml_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("stages = [quantize\n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        recipes.load(str(path))


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("train.learning_rate", float("inf"), "train.learning_rate: must be a finite number > 0, got inf"),
        ("train.learning_rate", float("nan"), "train.learning_rate: must be a finite number > 0, got nan"),
        ("train.learning_rate", 0, "train.learning_rate: must be > 0, got 0.0"),
        ("distill.temperature", -1.0, "distill.temperature: must be > 0, got -1.0"),
        ("distill.alpha", float("-inf"), "distill.alpha: must be a finite number between 0 and 1, got -inf"),
        ("distill.mixup", float("inf"), "distill.mixup: must be a finite number >= 0"),
        ("prune.min_share", 1.0, "prune.min_share: must be in [0, 1), got 1.0"),
        ("prune.batch_size", 0, "prune.batch_size: must be >= 1, got 0"),
        ("quantize.calibration_samples", -5, "quantize.calibration_samples: must be >= 1, got -5"),
        ("export.latency_runs", -1, "export.latency_runs: must be >= 0, got -1"),
        ("export.onnx_atol", float("nan"), "export.onnx_atol: must be a finite number > 0, got nan"),
    ],
)
def test_every_numeric_value_is_range_checked(dotted, value, message):
    """Issue 12: inf, NaN, negative and zero values are refused where they mean nothing."""
    with pytest.raises(RecipeError) as err:
        recipes.with_overrides(recipes.load("distill-prune-int8"), {dotted: value})
    assert message in str(err.value)


def test_non_finite_value_in_a_toml_file_is_refused(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('stages = ["distill"]\n[distill]\ntemperature = inf\n')
    with pytest.raises(RecipeError, match=r"distill\.temperature: must be a finite number > 0, got inf"):
        recipes.load(str(path))


def test_initial_sparsity_must_stay_below_target():
    with pytest.raises(RecipeError, match=r"initial_sparsity < target_sparsity \(0\.5\), got 0\.6"):
        recipes.with_overrides(
            recipes.load("prune-int8"), {"prune.target_sparsity": 0.5, "prune.initial_sparsity": 0.6}
        )


def test_sections_are_frozen_typed_dataclasses():
    import dataclasses

    r = recipes.load("prune-int8")
    assert isinstance(r.prune, recipes.PruneOptions) and r.prune.target_sparsity == 0.8
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.prune.target_sparsity = 0.1  # type: ignore[misc]  # the test: a frozen section refuses assignment
    changed = recipes.with_overrides(r, {"prune.target_sparsity": 0.5})
    assert changed.prune.target_sparsity == 0.5 and r.prune.target_sparsity == 0.8  # the original is untouched


def test_schema_flags_and_describe_derive_from_the_dataclasses():
    """One declaration: every key shows in --describe with its default and range; every flag maps to a key."""
    import argparse

    from edge_sdk.cli import convert as convert_cli

    specs = recipes.option_specs()
    declared = {s.dotted for s in specs}
    assert declared == {f"{section}.{key}" for section, keys in recipes.SCHEMA.items() for key in keys}
    rows = {row[0]: row for row in recipes.describe_rows()}
    assert set(rows) == declared
    assert rows["prune.min_share"][2:4] == ["0.02", "in [0, 1)"]
    assert rows["train.learning_rate"][3] == "> 0"
    assert rows["export.formats"][2] == "tflite"

    parser = argparse.ArgumentParser()
    convert_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "convert",
            "--sparsity",
            "0.6",
            "--no-baseline",
            "--qat",
            "--formats",
            "tflite,onnx",
            "--set",
            "prune.frequency=5",
        ]
    )
    assert convert_cli._overrides(args) == {
        "prune.target_sparsity": 0.6,
        "distill.baseline": False,
        "quantize.qat": True,
        "export.formats": "tflite,onnx",
        "prune.frequency": 5,
    }
    flags = {s.flag: s.dotted for s in recipes.cli_flags()}
    assert flags["--sparsity"] == "prune.target_sparsity" and flags["--opset"] == "export.onnx_opset"


def test_describe_prints_every_option(capsys):
    from edge_sdk.cli import main

    assert main(["convert", "--describe"]) == 0
    out = capsys.readouterr().out
    for spec in recipes.option_specs():
        assert spec.dotted in out
    assert "strictly between 0 and 1" in out and "--sparsity" in out
