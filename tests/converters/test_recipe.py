"""Recipes: built-ins load, unknown keys list the valid ones, values are range-checked."""
from __future__ import annotations

import pytest

from converters import recipe as recipes
from converters.errors import RecipeError
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
    r = recipes.with_overrides(recipes.load("int8"), {"quantize.calibration_samples": 50.0,
                                                      "export.formats": "tflite,onnx"})
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
    assert recipes.parse_override("prune.target_sparsity=0.9") == ("prune", "target_sparsity", 0.9)
    assert recipes.parse_override("quantize.mode=dynamic") == ("quantize", "mode", "dynamic")
    with pytest.raises(RecipeError, match="SECTION.KEY=VALUE"):
        recipes.parse_override("sparsity")
    with pytest.raises(RecipeError, match="built-in name"):
        recipes.load("int9")


def test_invalid_toml_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("stages = [quantize\n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        recipes.load(str(path))
