"""Calibration and evaluation data: load, validate against the model, summarise.

Per-input statistics (min, max, mean, NaN count, samples) go into the
manifest. When the eval data's range falls well outside the calibration range,
:func:`range_warnings` names the input: that mismatch is a common cause of int8
accuracy collapse, because values outside the calibrated range are clipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from converters.errors import CalibrationError, DataError

# eval values this far outside the calibrated span (as a fraction of it) are "well outside"
RANGE_TOLERANCE = 0.25
# ... and this share of eval values must fall outside before we warn
OUTSIDE_SHARE = 0.001


def _dtype_kind_ok(data: np.ndarray, expected: str) -> bool:
    want = np.dtype(expected)
    if want.kind == "f":
        return data.dtype.kind == "f"
    if want.kind in "iu":
        return data.dtype.kind in "iu"
    return data.dtype == want


def expected_shape_text(shape: Sequence[int | None]) -> str:
    """An input's shape as the data must have it: ``(N, 28, 28, 1)`` (``?`` for a free dimension)."""
    return "(N, " + ", ".join("?" if d is None else str(d) for d in tuple(shape)[1:]) + ")"


def dtype_mismatch(data: np.ndarray, dtype: str, shape: Sequence[int | None]) -> str | None:
    """Why ``data`` cannot feed an input of ``dtype`` and ``shape`` (None when its dtype kind fits).

    Integers for a float input (raw pixels, ids) and floats for an integer input are refused, never cast:
    the one wording of ``convert`` (calibration, eval data) and ``parity`` (its data).
    """
    if _dtype_kind_ok(data, dtype):
        return None
    return (
        f"expected dtype {dtype} shape {expected_shape_text(shape)}, got dtype {data.dtype} shape {tuple(data.shape)}"
        + (" (raw pixels? apply the model's preprocessing first)" if data.dtype.kind in "ui" else "")
    )


def as_input_dict(
    x: Any, specs: Sequence[Any], purpose: str = "calibration", error: type = CalibrationError
) -> dict[str, np.ndarray]:
    """Turn an array (single-input models) or a dict of arrays into ``{input name: array}``.

    Checks shape (every dimension but the batch) and dtype kind against the
    model's inputs and raises ``error`` naming both when they do not fit.
    """
    names = [s.name for s in specs]
    if isinstance(x, Mapping):
        missing = [n for n in names if n not in x]
        if missing:
            raise error(
                f"{purpose} data: expected arrays for input(s) {names}, got keys {sorted(x)} (missing {missing})"
            )
        data = {n: np.asarray(x[n]) for n in names}
    else:
        if len(names) != 1:
            raise error(
                f"{purpose} data: the model has {len(names)} inputs {names}; expected a dict/.npz with one "
                f"array per input, got a single array"
            )
        data = {names[0]: np.asarray(x)}
    lengths = set()
    for spec in specs:
        arr = data[spec.name]
        want_shape = tuple(spec.shape)
        expected = expected_shape_text(want_shape)
        if arr.ndim != len(want_shape) or any(
            w is not None and w != g for w, g in zip(want_shape[1:], arr.shape[1:], strict=False)
        ):
            raise error(
                f"{purpose} data for input '{spec.name}': expected shape {expected} dtype {spec.dtype}, "
                f"got shape {tuple(arr.shape)} dtype {arr.dtype}"
            )
        problem = dtype_mismatch(arr, spec.dtype, want_shape)
        if problem:
            raise error(f"{purpose} data for input '{spec.name}': {problem}")
        if purpose != "calibration" and arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr.reshape(len(arr), -1))).any(axis=1).sum())
            raise error(
                f"{purpose} data for input '{spec.name}': expected finite values, got NaN or infinity in "
                f"{bad} of {len(arr)} examples (fill or drop missing values first)"
            )
        data[spec.name] = arr.astype(spec.dtype, copy=False)
        lengths.add(len(arr))
    if len(lengths) > 1:
        raise error(f"{purpose} data: inputs have different numbers of samples {sorted(lengths)}")
    if lengths == {0}:
        raise error(f"{purpose} data: expected at least one sample, got 0")
    return data


def load_data_file(
    path: Any, specs: Sequence[Any], purpose: str = "calibration", want_labels: bool = False
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Load a user's .npy/.npz as ``({input name: array}, labels or None)``.

    A .npz holds one array per input name (or ``x`` for a single-input model)
    and, for eval data, labels under ``y``.
    """
    error = CalibrationError if purpose == "calibration" else DataError
    path = Path(path)
    if not path.is_file():
        raise error(f"{purpose} data {path}: no such file (expected a .npy or .npz)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for bad files
        raise error(f"{purpose} data {path}: expected a .npy or .npz file, could not read it ({exc})") from None
    labels = None
    if isinstance(loaded, np.ndarray):
        if want_labels:
            raise error(f"{purpose} data {path}: expected a .npz with inputs and labels 'y', got a bare .npy array")
        return as_input_dict(loaded, specs, purpose, error), None
    with loaded:
        arrays = {k: loaded[k] for k in loaded.files}
    if "y" in arrays:
        labels = arrays.pop("y")
    elif want_labels:
        raise error(f"{purpose} data {path}: expected labels under key 'y', got keys {sorted(arrays)}")
    names = [s.name for s in specs]
    if len(names) == 1 and names[0] not in arrays:
        for alias in ("x", "arr_0"):
            if alias in arrays:
                arrays = {names[0]: arrays[alias]}
                break
    return as_input_dict(arrays, specs, purpose, error), labels


def input_stats(inputs: Mapping[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per-input ``{min, max, mean, nan_count, samples}`` (NaNs excluded from min/max/mean)."""
    stats = {}
    for name, arr in inputs.items():
        values = np.asarray(arr, dtype=np.float64)
        nan_count = int(np.isnan(values).sum())
        finite = values[np.isfinite(values)]
        stats[name] = {
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "mean": float(finite.mean()) if finite.size else None,
            "nan_count": nan_count,
            "samples": int(len(arr)),
        }
    return stats


def drop_nan_samples(inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Remove samples holding a NaN in any input (they would poison calibration ranges)."""
    n = len(next(iter(inputs.values())))
    keep = np.ones(n, dtype=bool)
    for arr in inputs.values():
        if arr.dtype.kind == "f":
            keep &= ~np.isnan(arr.reshape(n, -1)).any(axis=1)
    dropped = int((~keep).sum())
    if dropped == n:
        raise CalibrationError("calibration data: every sample holds a NaN; expected finite values")
    return ({k: v[keep] for k, v in inputs.items()} if dropped else inputs), dropped


def range_warnings(calibration: Mapping[str, Mapping[str, Any]], eval_inputs: Mapping[str, np.ndarray]) -> list[str]:
    """Messages naming each input whose eval range falls well outside the calibration range."""
    warnings = []
    for name, cal in calibration.items():
        if name not in eval_inputs or cal.get("min") is None:
            continue
        values = np.asarray(eval_inputs[name], dtype=np.float64)
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        lo, hi = cal["min"], cal["max"]
        span = max(hi - lo, 1e-12)
        outside = float(((values < lo) | (values > hi)).mean())
        e_lo, e_hi = float(values.min()), float(values.max())
        if (e_lo < lo - RANGE_TOLERANCE * span or e_hi > hi + RANGE_TOLERANCE * span) and outside > OUTSIDE_SHARE:
            warnings.append(
                f"input '{name}': eval data range [{e_lo:.4g}, {e_hi:.4g}] falls well outside the calibration "
                f"range [{lo:.4g}, {hi:.4g}] ({outside:.1%} of eval values outside); int8 will clip them - "
                f"calibrate on data that matches what the model will see"
            )
    return warnings


def subset(inputs: dict[str, np.ndarray], n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A reproducible random subset of ``n`` samples (all of them if fewer)."""
    total = len(next(iter(inputs.values())))
    if n >= total:
        return inputs
    idx = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    return {k: v[idx] for k, v in inputs.items()}
