"""Real .tflite files from elsewhere into `edge-sdk convert` (issue 23 items 1, 3, 4).

MLPerf Tiny's CIFAR ResNet-8 float (``tests/data/public_models``) was written by an old converter
with no SignatureDef: edge-sdk adds one (recorded in the manifest) so the LiteRT quantizer can
calibrate, and ``edge_sdk.load(...).signatures`` says the file has none instead of inventing one.
Data: 32x32 crops of scikit-learn's two sample photographs, raw 0-255 floats (the model takes raw
pixels); labels are the float model's own top-1, so accuracy is agreement with float.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters import litert_quant

pytestmark = pytest.mark.skipif(not litert_quant.available(), reason="the 'quantize' extra is not installed")

MODELS = Path(__file__).resolve().parents[1] / "data" / "public_models"
RESNET8 = MODELS / "mlperf_tiny_ic_resnet8_float.tflite"


def photo_crops(n: int, seed: int) -> np.ndarray:
    """``n`` random 32x32x3 crops (strided to 32x32 from 32-160 pixel squares) of the two sample photos."""
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images
    rng = np.random.RandomState(seed)
    out = []
    for k in range(n):
        image = images[k % len(images)]
        side = rng.randint(32, 161)
        step = side // 32
        y = rng.randint(0, image.shape[0] - side + 1)
        x = rng.randint(0, image.shape[1] - side + 1)
        out.append(image[y : y + 32 * step : step, x : x + 32 * step : step])
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def resnet8(tmp_path_factory):
    """The signature-less ResNet-8 bytes, calibration crops and held-out eval crops labelled by the float model."""
    import edge_sdk

    root = tmp_path_factory.mktemp("resnet8")
    data = RESNET8.read_bytes()
    cal = photo_crops(100, seed=1)
    ev = photo_crops(150, seed=2)
    y = np.argmax(edge_sdk.load(data, num_threads=1).predict(ev), axis=-1)
    np.savez(root / "cal.npz", input_1=cal)
    np.savez(root / "eval.npz", input_1=ev, y=y)
    return {"bytes": data, "cal": cal, "eval": ev, "y": y, "root": root}


def test_signature_less_file_reports_no_signature_and_still_predicts(resnet8):
    import edge_sdk
    from edge_sdk.errors import InputNameError

    model = edge_sdk.load(resnet8["bytes"], num_threads=1)
    assert model.signatures == {}  # was {"main": ...}: a key no other tool could find
    assert model.default_signature is None
    assert [s.name for s in model.inputs] == ["input_1"] and [s.name for s in model.outputs] == ["Identity"]
    assert model.predict(resnet8["eval"][:4]).shape == (4, 10)
    with pytest.raises(InputNameError, match="no SignatureDef"):
        model.predict(resnet8["eval"][:1], signature="main")


def test_added_signature_is_named_after_the_tensors_and_changes_no_output(resnet8):
    import edge_sdk
    from converters.tflite_signature import ensure_signature

    signed, record = ensure_signature(resnet8["bytes"])
    assert record["key"] == "serving_default"
    assert record["inputs"] == {"input_1": 0} and list(record["outputs"]) == ["Identity"]
    before = edge_sdk.load(resnet8["bytes"], num_threads=1)
    after = edge_sdk.load(signed, num_threads=1)
    assert list(after.signatures) == ["serving_default"] and after.default_signature == "serving_default"
    assert [s.name for s in after.inputs] == [s.name for s in before.inputs]
    x = resnet8["eval"][:8]
    assert np.array_equal(after.predict(x), before.predict(x))
    assert ensure_signature(signed) == (signed, None)  # a file with a signature is left as it is


def test_signature_less_resnet8_converts_with_int8_and_litert_loads_it(resnet8, tmp_path):
    import edge_sdk
    from edge_sdk.cli import main

    out = tmp_path / "o"
    code = main(["convert", str(RESNET8), "--recipe", "int8", "--calibration", str(resnet8["root"] / "cal.npz"),
                 "--eval", str(resnet8["root"] / "eval.npz"), "--out", str(out), "-q"])
    assert code == 0
    manifest = json.loads((out / "float32.json").read_text())
    assert manifest["signature_added"]["key"] == "serving_default"
    assert manifest["signature_added"]["inputs"] == {"input_1": 0}
    parent = edge_sdk.load(str(out / "float32.tflite"), num_threads=1)
    assert list(parent.signatures) == ["serving_default"]
    int8 = edge_sdk.load(str(out / "int8.tflite"), num_threads=1)
    assert list(int8.signatures) == ["serving_default"]
    assert int8.inputs[0].name == parent.inputs[0].name == "input_1"
    assert int8.predict(resnet8["eval"][:4]).shape == (4, 10)


@pytest.mark.parametrize("scheme", ["dynamic", "weight-only-int8", "weight-only-int4", "int16x8", "fp16"])
def test_signature_less_float_tflite_quantizes_with_every_scheme(resnet8, scheme):
    import edge_sdk

    calibration = {"input_1": resnet8["cal"][:16]} if scheme in litert_quant.NEEDS_CALIBRATION else None
    quantized = litert_quant.quantize_tflite(resnet8["bytes"], scheme, calibration, io="float32")
    model = edge_sdk.load(quantized, num_threads=1)
    assert list(model.signatures) == ["serving_default"]
    assert model.predict(resnet8["eval"][:2]).shape == (2, 10)
