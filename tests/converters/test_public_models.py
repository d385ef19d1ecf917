"""The public real-model set through `edge-sdk convert` (issue 23 item 7), small form: one recipe each.

The full table (every model x int8, dynamic, fp16, more rows and timing rounds) is
``benchmarks/public_models.py``; docs/converters.md shows it. Here: each file converts, and
edge-sdk's int8 is set beside MLPerf's own int8 reference, measured in the same process.
"""

from __future__ import annotations

import pytest
from script_modules import load_benchmark_script  # tests/ is on sys.path (tests/conftest.py)

from converters import litert_quant

pytestmark = pytest.mark.skipif(not litert_quant.available(), reason="the 'quantize' extra is not installed")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    bench = load_benchmark_script("public_models.py", "public_models_under_test")
    lines = []
    rows = bench.run(
        ["resnet8", "kws", "selfie"], ["int8"], small=True, workdir=tmp_path_factory.mktemp("public"), say=lines.append
    )
    assert lines and lines[0].startswith("[public models] resnet8 int8"), lines
    assert "| resnet8 |" in bench.markdown_table(rows)
    return {row["model"]: row for row in rows}


def test_signature_less_resnet8_int8_beside_mlperfs_reference(rows):
    row = rows["resnet8"]
    assert row["status"] == "ok" and row["kind"] == "int8", row
    vs = row["vs_reference"]
    assert vs["size_matches"] and vs["size"] <= 1.03, row  # within 3% of MLPerf's int8 file, or smaller
    # matches MLPerf's int8 (TFLiteConverter, CIFAR calibration) within a point on 600 held-out crops
    # (deterministic: the LiteRT quantizer and XNNPACK's int8 give the same bytes and outputs every run)
    assert vs["agreement_points"] >= -1.0 and row["agreement"] >= 0.85, row
    assert vs["latency"] < 1.5, row  # interleaved in one loop: a ratio, not a time


def test_dynamic_range_kws_int8_matches_or_beats_mlperfs_reference(rows):
    """Through its dequantized float32 proxy; keywords spoken by espeak-ng, MFCCs as MLPerf computes them."""
    row = rows["kws"]
    assert row["status"] == "ok" and row["kind"] == "int8" and row["float_parent"] == "dynamic-range", row
    vs = row["vs_reference"]
    assert vs["size_matches"], row
    assert vs["agreement_points"] >= 0, row  # edge-sdk's int8 agrees with float at least as often
    assert row["accuracy"] >= row["reference_accuracy"] - 0.01, row  # keyword accuracy on the spoken labels
    assert row["float32_accuracy"] >= 0.6, row  # the features are real MFCCs: the model recognises the words
    assert vs["latency"] < 1.5, row


def test_float16_selfie_segmenter_int8_keeps_the_mask(rows):
    row = rows["selfie"]
    assert row["status"] == "ok" and row["kind"] == "int8" and row["float_parent"] == "float16-weight", row
    assert row["metric"] == "mask-iou" and row["agreement"] >= 0.9, row
    assert row["size_ratio"] < 0.6, row
