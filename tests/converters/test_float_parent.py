"""float16-weight and dynamic-range .tflite inputs get a float32 parent (issue 23 item 2), and a
recipe that quantizes nothing is recorded as what the file is (item 5).

Real files from elsewhere (tests/data/public_models, SOURCES.md): MediaPipe's selfie segmenter
(float16 weights behind DEQUANTIZE) and MLPerf Tiny's KWS DS-CNN (dynamic-range int8 weights,
written by an older converter that sets only ``deprecated_builtin_code``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters import litert_quant

pytestmark = pytest.mark.skipif(not litert_quant.available(), reason="the 'quantize' extra is not installed")

MODELS = Path(__file__).resolve().parents[1] / "data" / "public_models"
SELFIE = MODELS / "mediapipe_selfie_segmentation.tflite"
KWS = MODELS / "mlperf_tiny_kws_dscnn_dynamic.tflite"
KWS_INT8 = MODELS / "mlperf_tiny_kws_dscnn_int8_reference.tflite"


def kws_features(n: int, seed: int = 0) -> np.ndarray:
    """MFCC-scaled rows for KWS (its int8 reference's input scale spans about -250..+250)."""
    return (np.random.default_rng(seed).standard_normal((n, 49, 10, 1)) * 20).astype(np.float32)


def test_float16_weights_become_float32_constants_with_bit_identical_outputs():
    from converters.tflite_float_parent import agreement, float_parent
    from edge_sdk.inspect_model import inspect_model

    data = SELFIE.read_bytes()
    assert inspect_model(data)["kind"] == "float16-weight"
    parent = float_parent(data)
    info = inspect_model(parent.tflite)
    assert info["kind"] == "float" and "DEQUANTIZE" not in {op["name"] for op in info["operators"]}
    assert parent.exact and not parent.proxy and parent.removed_ops == parent.rewritten > 100
    assert "float16" not in info["weight_bytes"]  # the float16 copies are gone, not kept beside
    x = np.random.default_rng(0).random((2, 256, 256, 3), dtype=np.float32)
    measured = agreement(data, parent.tflite, {"input_1": x})
    assert measured["bit_identical"] and measured["max_abs_diff"] == 0.0


def test_dynamic_range_weights_are_dequantized_into_a_proxy_the_quantizer_can_read():
    from converters.tflite_float_parent import agreement, float_parent
    from edge_sdk.inspect_model import inspect_model

    data = KWS.read_bytes()
    parent = float_parent(data)
    assert parent.proxy and parent.source_kind == "dynamic-range" and parent.rewritten == 5
    assert inspect_model(parent.tflite)["kind"] == "float"
    measured = agreement(data, parent.tflite, {"input_1": kws_features(64)})
    assert measured["top1_agreement"] >= 0.95 and not measured["bit_identical"]
    # the opcodes now carry builtin_code (the file had only deprecated_builtin_code): the LiteRT
    # quantizer, which reads builtin_code alone, quantizes every conv/dense instead of seeing ADDs
    quantized = litert_quant.quantize_tflite(parent.tflite, "dynamic")
    assert inspect_model(quantized)["kind"] == "dynamic-range"
    assert len(quantized) < 0.5 * len(parent.tflite)


def test_full_integer_input_is_still_refused_naming_what_it_is(tmp_path, capsys):
    from edge_sdk.cli import main

    code = main(["convert", str(KWS_INT8), "--recipe", "dynamic", "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "got one that is already full-integer" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_convert_dynamic_range_tflite_records_the_proxy_and_parity_takes_it_as_float(tmp_path, capsys):
    from edge_sdk.cli import main

    np.savez(tmp_path / "mfcc.npz", x=kws_features(48))
    out = tmp_path / "kws"
    code = main(
        [
            "convert",
            str(KWS),
            "--recipe",
            "dynamic",
            "--calibration",
            str(tmp_path / "mfcc.npz"),
            "--out",
            str(out),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    base = json.loads((out / "float32.json").read_text())
    record = base["float_parent"]
    assert base["kind"] == "float32" and record["proxy"] is True and record["from_kind"] == "dynamic-range"
    assert record["agreement"]["top1_agreement"] >= 0.95 and record["agreement"]["samples"] == 48
    assert base["parent_sha256"] == __import__("hashlib").sha256(KWS.read_bytes()).hexdigest()
    summary = json.loads((out / "summary.json").read_text())
    assert any("float32.tflite is a float proxy" in w for w in summary["warnings"])
    assert json.loads((out / "dynamic.json").read_text())["kind"] == "dynamic-range"
    # parity: the dynamic-range file is FLOAT (through its proxy parent)
    code = main(
        [
            "parity",
            str(KWS),
            str(out / "dynamic.tflite"),
            "--data",
            str(tmp_path / "mfcc.npz"),
            "--json",
            "-q",
            "--no-layers",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)["parity"]
    assert report["float_model"]["float_parent"]["proxy"] is True
    assert report["summary"]["top1_agreement"] >= 0.9 and report["summary"]["samples"] == 48
