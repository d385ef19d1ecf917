"""The clip warning's judgement: which clipped input values to count, and what to blame (issue 25, item 7).

``predict`` quantizes float data for an int8/uint8/int16 input; values beyond what the
quantization can hold are clipped to its ends. Clipping by itself is not a user error:

* a quantizer may choose a range a step short of the calibration data's maximum (data in
  [0, 1] calibrated up to 1.0, where 1.0 lands one step beyond int8's end), or on purpose
  a narrower one (the LiteRT quantizer keeps 0.9 of the calibration maximum): correct data
  then clips a little, every time, and the calibration data itself would clip the same way;
* data scaled differently from the calibration data (raw pixels in [0, 255] for a model
  calibrated on [0, 1]) clips a lot: that is the case worth a warning.

So values are counted against bounds the calibration data itself never trips:

* with the calibration range known (the manifest's ``calibration`` ``{min, max}`` of the input):
  the union of the representable range and the calibration range, widened by
  :data:`DATA_MARGIN` of its width. Counted values lie beyond the data the model was calibrated
  on: *the data* is the cause;
* when the quantizer's range keeps less than :data:`QUANTIZER_KEEPS` of the calibration range
  (it clips the calibration data itself, deeply), every value beyond the representable range is
  counted, and the warning says which cause dominates: values inside the calibration range
  blame *the quantizer's clipping*, values beyond it *the data*;
* with no calibration range recorded: the representable range widened by
  :data:`UNKNOWN_MARGIN` of its width (more than a 0.9-of-max quantizer range or a one-step
  shortfall ever clips), and the warning says the cause cannot be told.

Bounds are in units of ``value / scale`` (what ``predict`` computes before rounding), so the
hot path compares them with no extra arithmetic. Numpy-free and import-light: the runtime's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

#: With the calibration range known: tolerance beyond the union of both ranges, as a share of its width.
DATA_MARGIN = 0.02
#: With no calibration range: tolerance beyond the representable range, as a share of its width.
UNKNOWN_MARGIN = 0.25
#: A quantizer range keeping less than this share of the calibration range clips the data itself.
QUANTIZER_KEEPS = 0.8

UNKNOWN, DATA, QUANTIZER_CUT = "unknown", "data", "quantizer-cut"


class ClipBounds(NamedTuple):
    """Where values start to count (``lo``/``hi``, in value/scale units) and what the ranges were."""

    lo: float
    hi: float
    mode: str  # UNKNOWN | DATA | QUANTIZER_CUT
    representable: tuple[float, float]  # real values the quantization holds
    calibration: tuple[float, float] | None  # real min/max of the calibration data, when recorded
    data_lo: float  # QUANTIZER_CUT: values beyond these (value/scale units) lie beyond the calibration data
    data_hi: float
    kept: float | None  # share of the calibration range the quantizer's range keeps


def calibration_range(calibration: Any, name: str) -> tuple[float, float] | None:
    """``(min, max)`` of input ``name`` from a manifest's ``calibration`` block, or None when not usable."""
    if not isinstance(calibration, Mapping):
        return None
    entry = calibration.get(name)
    if not isinstance(entry, Mapping):
        return None
    lo, hi = entry.get("min"), entry.get("max")
    if (
        not isinstance(lo, (int, float))
        or not isinstance(hi, (int, float))
        or isinstance(lo, bool)
        or isinstance(hi, bool)
        or not (math.isfinite(lo) and math.isfinite(hi))
    ):
        return None
    return (float(lo), float(hi)) if lo <= hi else None


def clip_bounds(q_lo: float, q_hi: float, scale: float, calibration: tuple[float, float] | None) -> ClipBounds:
    """The counting bounds of one input: ``q_lo``/``q_hi`` its integer range minus the zero point
    (value/scale units), ``scale`` its quantization scale, ``calibration`` the data's real (min, max)."""
    rep = (q_lo * scale, q_hi * scale)
    width = max(q_hi - q_lo, 1.0)
    if calibration is None:
        pad = max(0.5, UNKNOWN_MARGIN * width)
        return ClipBounds(q_lo - pad, q_hi + pad, UNKNOWN, rep, None, -math.inf, math.inf, None)
    c_lo, c_hi = calibration[0] / scale, calibration[1] / scale
    c_width = c_hi - c_lo
    kept = 1.0 if c_width <= 0 else max(0.0, min(q_hi, c_hi) - max(q_lo, c_lo)) / c_width
    data_pad = max(0.5, DATA_MARGIN * max(c_width, width))
    data_lo, data_hi = min(q_lo, c_lo) - data_pad, max(q_hi, c_hi) + data_pad
    if kept < QUANTIZER_KEEPS:
        return ClipBounds(q_lo - 0.5, q_hi + 0.5, QUANTIZER_CUT, rep, calibration, data_lo, data_hi, kept)
    return ClipBounds(data_lo, data_hi, DATA, rep, calibration, data_lo, data_hi, kept)


def _range(bounds: tuple[float, float] | None) -> str:
    if bounds is None:  # no range recorded (the UNKNOWN mode names none)
        return "[unknown]"
    return f"[{bounds[0]:.4g}, {bounds[1]:.4g}]"


def clip_message(name: str, dtype: str, bounds: ClipBounds, clipped: int, checked: int, beyond_data: int) -> str:
    """The warning, one line: how many values, against which ranges, and what is the cause.

    ``beyond_data``: of the ``clipped`` values, how many also lie beyond the calibration data
    (counted only in :data:`QUANTIZER_CUT` mode; in :data:`DATA` mode all of them do).
    """
    share = clipped / checked if checked else 0.0
    head = f"input {name!r}: {share:.1%} of its values ({clipped:,} of {checked:,} checked)"
    rep = f"{_range(bounds.representable)}, the range its {dtype} quantization holds"
    tail = "Results are computed as usual; this warning is shown once per input"
    scaling = "check the input's scaling (e.g. pixels in [0, 1], not [0, 255])"
    if bounds.mode == UNKNOWN:
        return (
            f"{head} lie outside {rep}, by more than a quarter of that range, and were clipped to its ends; "
            f"no calibration range is recorded for this model (no manifest), so whether the data or the "
            f"quantizer's range is the cause cannot be told: {scaling}, against the data it was calibrated "
            f"on. {tail}"
        )
    cal = f"{_range(bounds.calibration)}, the range of the data it was calibrated on"
    if bounds.mode == DATA or beyond_data * 2 > clipped:
        return (
            f"{head} lie outside both {rep}, and {cal}; they were clipped to the quantization's ends, so "
            f"the data is the cause, not the quantizer (it is not scaled like the calibration data): "
            f"{scaling}. {tail}"
        )
    return (
        f"{head} lie outside {rep}, and were clipped to its ends, though {clipped - beyond_data:,} of them lie "
        f"inside {cal}: the quantizer's clipping is the cause, not the data (its range keeps "
        f"{100 * (bounds.kept or 0):.0f}% of the calibration range); quantize again with a range that "
        f"covers the data (min/max calibration, or more representative calibration data). {tail}"
    )
