"""The clip warning judges against the calibration data's own range (issue 25, item 7).

It used to warn whenever more than 1% of values clipped by more than half a step, blaming the input's
scaling: data in [0, 1] calibrated up to 1.0 tripped it (the int8 range stopped one step short), and so
did correct data under the LiteRT quantizer's range (0.9 of the calibration maximum). Now it counts only
values the calibration data itself would not produce, says whether the data or the quantizer's clipping is
the cause, and the CLI prints it as one ``warning: ...`` line.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import edge_sdk
from edge_sdk.clipcheck import DATA, QUANTIZER_CUT, UNKNOWN, clip_bounds
from edge_sdk.manifest import build_manifest
from edge_sdk.quant import QuantizationClipWarning


def _representable(model):
    q = model.inputs[0].quantization
    return (-128 - q.zero_point) * q.scale, (127 - q.zero_point) * q.scale, q.scale


def _with_calibration(path, low, high):
    """The model loaded with a manifest recording a calibration range [low, high] for its input."""
    data = path.read_bytes()
    bare = edge_sdk.load(path, verify=False)
    manifest = build_manifest(
        data,
        path.name,
        kind="int8",
        stage="quantize",
        inputs=bare.inputs,
        outputs=bare.outputs,
        calibration={
            bare.inputs[0].name: {"min": low, "max": high, "mean": (low + high) / 2, "nan_count": 0, "samples": 200}
        },
    )
    return edge_sdk.load(path, manifest=manifest)


def _clip_messages(model, x):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        model.predict(x)
    return [str(w.message) for w in got if w.category is QuantizationClipWarning]


def test_data_calibrated_up_to_the_step_the_range_misses_does_not_warn(runtime_models, digits_x):
    # the quantizer's range stops one step short of the calibration maximum; white pixels sit there
    lo, hi, scale = _representable(edge_sdk.load(runtime_models["int8"], verify=False))
    model = _with_calibration(runtime_models["int8"], lo, hi + scale)
    x = digits_x.copy()
    x[x > 0.5] = hi + scale  # ~30% of the values, each one step beyond the int8 range
    assert np.mean(x / scale > hi / scale + 0.5) > 0.05  # the old rule (half a step) counted them all
    assert _clip_messages(model, x) == []


@pytest.mark.parametrize("manifest", [True, False], ids=["calibration-recorded", "no-manifest"])
def test_litert_quantizer_range_of_nine_tenths_does_not_trip_on_correct_data(runtime_models, digits_x, manifest):
    lo, hi, scale = _representable(edge_sdk.load(runtime_models["int8"], verify=False))
    top = hi / 0.9  # the calibration maximum; the quantizer kept 0.9 of it
    model = (
        _with_calibration(runtime_models["int8"], 0.0, top)
        if manifest
        else edge_sdk.load(runtime_models["int8"], verify=False)
    )
    x = np.clip(digits_x * top, 0.0, top).astype(np.float32)  # correct data, up to the calibration maximum
    assert np.mean(x > hi + scale) > 0.05
    assert _clip_messages(model, x) == []


def test_raw_pixels_blame_the_data_and_name_both_ranges(runtime_models, digits_x):
    lo, hi, _ = _representable(edge_sdk.load(runtime_models["int8"], verify=False))
    model = _with_calibration(runtime_models["int8"], 0.0, 1.0)
    messages = _clip_messages(model, digits_x * 255.0)
    assert len(messages) == 1
    assert "the range of the data it was calibrated on" in messages[0] and "[0, 1]" in messages[0]
    assert "the data is the cause, not the quantizer" in messages[0]
    assert "check the input's scaling" in messages[0] and "\n" not in messages[0]


def test_a_quantizer_range_that_cuts_the_calibration_data_blames_the_quantizer(runtime_models, digits_x):
    lo, hi, _ = _representable(edge_sdk.load(runtime_models["int8"], verify=False))
    model = _with_calibration(runtime_models["int8"], 0.0, 10 * hi)  # the quantizer kept a tenth of the range
    messages = _clip_messages(model, digits_x * 5 * hi)  # inside the calibration range, far beyond the int8 one
    assert len(messages) == 1 and "the quantizer's clipping is the cause, not the data" in messages[0]
    assert "keeps 10% of the calibration range" in messages[0]
    assert "check the input's scaling" not in messages[0]


def test_bounds_modes():
    assert clip_bounds(0, 255, 1 / 255, None).mode == UNKNOWN
    assert clip_bounds(0, 255, 1 / 255, (0.0, 1.0)).mode == DATA
    assert clip_bounds(0, 255, 0.9 / 255, (0.0, 1.0)).mode == DATA  # keeps 90%
    assert clip_bounds(0, 255, 0.5 / 255, (0.0, 1.0)).mode == QUANTIZER_CUT


def test_cli_prints_the_clip_warning_as_one_line(runtime_models, digits_x, tmp_path, capsys):
    from edge_sdk.cli import main

    raw = tmp_path / "raw.npy"
    np.save(raw, digits_x[:4] * 255.0)
    assert main(["run", str(runtime_models["int8"]), "--input", str(raw), "--json"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "clip" in line or "input 'image'" in line]
    assert len(err) == 1 and err[0].startswith("warning: input 'image': ")
    assert "QuantizationClipWarning" not in err[0] and ".py:" not in err[0]


def test_set_calibration_gives_a_model_without_manifest_the_range(runtime_models, digits_x):
    """convert's evaluation loads bytes (no manifest) and hands the calibration statistics over."""
    lo, hi, _ = _representable(edge_sdk.load(runtime_models["int8"], verify=False))
    model = edge_sdk.load(runtime_models["int8"], verify=False)
    model.set_calibration({"image": {"min": 0.0, "max": 10 * hi}, "other": {"min": 0.0, "max": 1.0}})
    messages = _clip_messages(model, digits_x * 5 * hi)
    assert len(messages) == 1 and "the quantizer's clipping is the cause" in messages[0]
    model = edge_sdk.load(runtime_models["int8"], verify=False)
    model.set_calibration({"image": {"min": 0.0, "max": 10 * hi}})
    model.set_calibration(None)  # forgotten: judged with no calibration range again
    assert "no calibration range is recorded" in _clip_messages(model, digits_x * 255.0)[0]
