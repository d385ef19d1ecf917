"""`edge-sdk inspect` names what the LiteRT quantizer writes: weight-only int8/int4 (once "kind float"),
int16 activations, and mixed models where some ops stayed float (issue 13)."""

import numpy as np
import pytest

from edge_sdk.inspect_model import inspect_model

litert_quant = pytest.importorskip("converters.litert_quant")
pytestmark = pytest.mark.skipif(not litert_quant.available(), reason="the 'quantize' extra is not installed")


@pytest.fixture(scope="module")
def float_bytes(runtime_models):
    return runtime_models["float32"].read_bytes()


@pytest.mark.parametrize(
    "scheme, kind",
    [
        ("weight-only-int8", "weight-only-int8"),
        ("weight-only-int4", "weight-only-int4"),
        ("fp16", "float16-weight"),
        ("dynamic", "dynamic-range"),
    ],
)
def test_weight_schemes_are_named(float_bytes, scheme, kind):
    info = inspect_model(litert_quant.quantize_tflite(float_bytes, scheme))
    assert info["kind"] == kind
    assert info["io"] == "float"


def test_int16_activations_and_mixed(float_bytes, digits_x):
    cal = {"image": np.asarray(digits_x[:32], np.float32)}
    i16 = inspect_model(litert_quant.quantize_tflite(float_bytes, "int16x8", cal))
    assert i16["kind"] == "full-integer" and i16["integer_activations"] == ["int16"]
    mixed = inspect_model(litert_quant.quantize_tflite(float_bytes, "int8", cal, keep_float=["probs"]))
    assert mixed["kind"] == "mixed" and mixed["float_ops"] and mixed["integer_ops"]


def test_cli_prints_the_kind(float_bytes, tmp_path, capsys):
    from edge_sdk.cli import main

    path = tmp_path / "w4.tflite"
    path.write_bytes(litert_quant.quantize_tflite(float_bytes, "weight-only-int4"))
    assert main(["inspect", str(path)]) == 0
    assert "kind       weight-only-int4 (float I/O)" in capsys.readouterr().out
