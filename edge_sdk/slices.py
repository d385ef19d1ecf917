"""Sliced evaluation: how each segment of the examples fares, float vs quantized (issue 25, item 6).

Quantization can hurt one slice while the total looks fine. ``edge-sdk parity --slice-by SPEC``
splits the evaluation examples into slices and reports, for each, the count and the metric of
the float and the quantized model; the worst slice's drop is gated with ``--max-slice-drop``.

``SPEC`` syntax (repeat ``--slice-by`` for several slicings):

* ``class``: by label (by the float model's prediction when the data has no labels);
* ``COLUMN``: a tabular input column, by value. ``COLUMN`` is a model input name
  (``native_country``) or the raw column name the manifest's preprocessing records
  (``native-country``). Categorical inputs are decoded to their vocabulary words
  (the out-of-vocabulary index reads ``(other)``); a numeric column must have at most
  :data:`MAX_VALUE_SLICES` distinct values, else it is refused with a hint to bucket it;
* ``COLUMN:WIDTH``: numeric buckets of that width, aligned on multiples of it
  (``age:10`` -> ``[20, 30)``, ``[30, 40)``, ...); ``COLUMN:decades`` is ``COLUMN:10``;
* ``COLUMN:E1,E2,...``: buckets cut at these increasing edges
  (``age:30,50`` -> ``< 30``, ``[30, 50)``, ``>= 50``).

Numeric values are taken in the data's own units: a standardised model input
(``(transform(raw) - mean) / std``, the manifest's preprocessing) is mapped back to the raw
value first, so ``age:decades`` means decades of years, not of standard deviations.

The metric is accuracy with labels (the drop is float minus quantized, in points) and top-1
agreement without them. A slice with fewer than ``min_count`` examples is reported but
flagged ``tiny`` and left out of the worst-slice figure and the gate: its accuracy moves by
whole points with one example.

Numpy only, so it lives in the light runtime: it needs no TensorFlow, and a device-side check
(``parity --reference``) can slice its stored examples with the same code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge_sdk.errors import EdgeSdkError

#: Slices with fewer examples are reported, flagged ``tiny``, and not gated.
MIN_SLICE_COUNT = 30
#: A column sliced by value may have at most this many distinct values (else: bucket it).
MAX_VALUE_SLICES = 50
OOV_NAME = "(other)"
CLASS = "class"


class SliceError(EdgeSdkError):
    """A ``--slice-by`` spec that does not fit the model or the data, or a bad ``--max-slice-drop``."""


def parse_slice_spec(spec: str) -> tuple[str, str | None, Any]:
    """``spec`` -> ``(column, mode, arg)``: mode None (by value), ``"width"`` (arg a float) or
    ``"edges"`` (arg a sorted tuple of floats). ``class`` is ``("class", None, None)``."""
    text = str(spec).strip()
    column, sep, bucket = text.partition(":")
    column, bucket = column.strip(), bucket.strip()
    if not column:
        raise SliceError(
            f"--slice-by: expected COLUMN, COLUMN:WIDTH, COLUMN:decades, COLUMN:E1,E2,... or class, got {spec!r}"
        )
    if not sep:
        return column, None, None
    if column == CLASS:
        raise SliceError(f"--slice-by class takes no bucketing, got {spec!r}")
    if bucket.lower() == "decades":
        return column, "width", 10.0
    parts = [p.strip() for p in bucket.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise SliceError(
            f"--slice-by {spec!r}: expected a bucket width (age:10), 'decades' or increasing edges "
            f"(age:30,50) after ':', got {bucket!r}"
        ) from None
    if not all(math.isfinite(v) for v in numbers):
        raise SliceError(f"--slice-by {spec!r}: expected finite numbers after ':', got {bucket!r}")
    if len(numbers) == 1 and "," not in bucket:
        if numbers[0] <= 0:
            raise SliceError(f"--slice-by {spec!r}: expected a bucket width above 0, got {numbers[0]:g}")
        return column, "width", numbers[0]
    if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
        raise SliceError(f"--slice-by {spec!r}: expected strictly increasing edges, got {bucket!r}")
    return column, "edges", tuple(numbers)


def check_max_slice_drop(value: float | None) -> None:
    """Refuse a ``--max-slice-drop`` outside [0, 100] points."""
    if value is not None and (not math.isfinite(value) or not 0 <= value <= 100):
        raise SliceError(f"--max-slice-drop is in accuracy points: expected a number in [0, 100], got {value}")


def _feature_info(preprocessing: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    features = (preprocessing or {}).get("features") if isinstance(preprocessing, Mapping) else None
    return [f for f in features or [] if isinstance(f, Mapping)]


def _find_column(
    column: str, inputs: Mapping[str, np.ndarray], preprocessing: Mapping[str, Any] | None
) -> tuple[str, Mapping[str, Any] | None]:
    """The input name holding ``column`` and its preprocessing entry (None when not recorded)."""
    features = _feature_info(preprocessing)
    for f in features:
        if column in (f.get("name"), f.get("column")) and f.get("name") in inputs:
            return f["name"], f
    if column in inputs:
        return column, None
    names = sorted(inputs)
    raw = sorted(str(f.get("column")) for f in features if f.get("column") and f.get("column") not in inputs)
    raise SliceError(
        f"--slice-by {column!r}: expected an input column of the model or 'class', got a name that "
        f"is neither; inputs: {', '.join(names)}" + (f" (raw columns: {', '.join(raw)})" if raw else "")
    )


def column_values(
    column: str, inputs: Mapping[str, np.ndarray], preprocessing: Mapping[str, Any] | None = None
) -> tuple[np.ndarray, str, str]:
    """``(values, kind, input name)`` of ``column`` per example, in the data's own units.

    ``kind`` is ``"categorical"`` (values are words or integers) or ``"numeric"`` (float64).
    """
    name, info = _find_column(column, inputs, preprocessing)
    arr = np.asarray(inputs[name])
    n = arr.shape[0] if arr.ndim else 1
    if arr.size != n:
        raise SliceError(
            f"--slice-by {column!r}: expected one value per example (a tabular column), got input "
            f"{name!r} of shape {tuple(arr.shape)}"
        )
    flat = arr.reshape(n)
    if info is not None and info.get("type") == "categorical" and isinstance(info.get("vocabulary"), list):
        vocab = [str(v) for v in info["vocabulary"]]
        idx = flat.astype(np.int64)
        words = np.array(vocab + [OOV_NAME], dtype=object)
        return words[np.clip(idx, 0, len(vocab))], "categorical", name
    if flat.dtype.kind in "SUOb" or (flat.dtype.kind in "iu" and info is None):
        return flat, "categorical", name
    values = flat.astype(np.float64)
    if info is not None and info.get("type") == "numeric" and info.get("std") is not None:
        values = values * float(info["std"] or 1.0) + float(info.get("mean") or 0.0)
        if info.get("transform") == "log1p":
            values = np.expm1(values)
        values = np.round(values, 6)  # float32 inputs: 37.00001 years is 37
    return values, "numeric", name


def _fmt(v: float) -> str:
    return f"{v:g}"


def bucket(values: np.ndarray, kind: str, mode: str | None, arg: Any, spec: str) -> tuple[np.ndarray, list[str]]:
    """``(slice index per example, slice names in order)``."""
    if mode is None:
        if kind == "numeric":
            distinct = np.unique(values[np.isfinite(values)])
            if distinct.size > MAX_VALUE_SLICES:
                raise SliceError(
                    f"--slice-by {spec!r}: a numeric column is sliced by value only with at most "
                    f"{MAX_VALUE_SLICES} distinct values, got {distinct.size}; bucket it, e.g. "
                    f"--slice-by {spec}:10 (width 10), {spec}:decades or {spec}:30,50 (edges)"
                )
            keys = [_fmt(float(v)) for v in values]
        else:
            keys = [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
        names = sorted(set(keys), key=lambda k: (k == OOV_NAME, k))
        if kind == "numeric":
            names = sorted(set(keys), key=float)
        index = {k: i for i, k in enumerate(names)}
        return np.array([index[k] for k in keys], np.int64), names
    if kind != "numeric":
        raise SliceError(
            f"--slice-by {spec!r}: buckets need a numeric column, got a categorical one; "
            f"slice it by value: --slice-by {spec.partition(':')[0]}"
        )
    if not np.all(np.isfinite(values)):
        raise SliceError(f"--slice-by {spec!r}: expected finite values, got NaN or infinity")
    if mode == "width":
        width = float(arg)
        lows = np.floor(values / width) * width
        starts = sorted(set(lows.tolist()))
        names = [f"[{_fmt(lo)}, {_fmt(lo + width)})" for lo in starts]
        index = {lo: i for i, lo in enumerate(starts)}
        return np.array([index[lo] for lo in lows.tolist()], np.int64), names
    edges = list(arg)
    names = (
        [f"< {_fmt(edges[0])}"]
        + [f"[{_fmt(a)}, {_fmt(b)})" for a, b in zip(edges, edges[1:], strict=False)]
        + [f">= {_fmt(edges[-1])}"]
    )
    return np.searchsorted(np.asarray(edges), values, side="right").astype(np.int64), names


def slice_rows(
    slice_index: np.ndarray,
    names: Sequence[str],
    f_cls: np.ndarray,
    q_cls: np.ndarray,
    labels: np.ndarray | None,
    min_count: int,
) -> list[dict[str, Any]]:
    """One row per non-empty slice: count, metric of each model, drop in points, tiny flag."""
    rows = []
    for i, name in enumerate(names):
        mask = slice_index == i
        count = int(mask.sum())
        if not count:
            continue
        row: dict[str, Any] = {
            "slice": name,
            "count": count,
            "agreement": float(np.mean(f_cls[mask] == q_cls[mask])),
            "tiny": count < min_count,
        }
        if labels is not None:
            row["float_accuracy"] = float(np.mean(f_cls[mask] == labels[mask]))
            row["quantized_accuracy"] = float(np.mean(q_cls[mask] == labels[mask]))
            row["drop_points"] = (row["float_accuracy"] - row["quantized_accuracy"]) * 100.0
        else:
            row["drop_points"] = None
        rows.append(row)
    return rows


def sliced_evaluation(
    specs: Sequence[str],
    inputs: Mapping[str, np.ndarray],
    f_cls: np.ndarray | None,
    q_cls: np.ndarray | None,
    labels: np.ndarray | None = None,
    *,
    preprocessing: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
    min_count: int = MIN_SLICE_COUNT,
) -> dict[str, Any]:
    """Every slicing of ``specs`` over the examples; JSON-ready.

    ``inputs``: the examples' model inputs (``{input name: array}``, as the float model takes
    them); ``f_cls``/``q_cls``: top-1 class of each model per example; ``labels``: class ids or
    None; ``preprocessing``: the manifest block that decodes tabular inputs; ``class_names``:
    names for ``class`` slices; ``min_count``: below it a slice is ``tiny``.
    Returns ``{"metric", "min_count", "slicings": [{"spec", "column", "rows", "worst"}],
    "worst": the worst non-tiny slice over all slicings (None when there is none)}``.
    """
    if f_cls is None or q_cls is None:
        raise SliceError(
            "--slice-by reports per-slice accuracy of a classifier: expected class scores as the "
            "primary output, got an output that is not one class score row per example"
        )
    if min_count < 1:
        raise SliceError(f"--min-slice-count: expected at least 1, got {min_count}")
    slicings: list[dict[str, Any]] = []
    for spec in specs:
        column, mode, arg = parse_slice_spec(spec)
        if column == CLASS:
            basis = labels if labels is not None else f_cls
            ids = sorted(set(int(c) for c in basis.tolist()))
            names = [
                str(class_names[c]) if class_names is not None and 0 <= c < len(class_names) else str(c) for c in ids
            ]
            index = {c: i for i, c in enumerate(ids)}
            slice_index = np.array([index[int(c)] for c in basis.tolist()], np.int64)
            source = "label" if labels is not None else "float model's prediction"
        else:
            values, kind, source = column_values(column, inputs, preprocessing)
            slice_index, names = bucket(values, kind, mode, arg, spec)
        rows = slice_rows(slice_index, names, f_cls, q_cls, labels, min_count)
        gated = [r for r in rows if not r["tiny"] and r["drop_points"] is not None]
        worst = max(gated, key=lambda r: r["drop_points"], default=None)
        slicings.append(
            {
                "spec": spec,
                "column": column,
                "source": source,
                "rows": rows,
                "worst": dict(worst, spec=spec) if worst else None,
                "tiny": sum(1 for r in rows if r["tiny"]),
            }
        )
    candidates = [s["worst"] for s in slicings if s["worst"] is not None]
    return {
        "metric": "accuracy" if labels is not None else "agreement",
        "min_count": int(min_count),
        "slicings": slicings,
        "worst": max(candidates, key=lambda r: r["drop_points"], default=None),
    }


def slice_gate(report: Mapping[str, Any] | None, max_slice_drop: float | None) -> dict[str, Any]:
    """The ``--max-slice-drop`` verdict: ``{"status": pass|fail|error|none, "exit_code", "verdict"}``."""
    if max_slice_drop is None:
        return {"status": "none", "exit_code": 0, "verdict": "no slice gate"}
    if report is None:
        return {"status": "error", "exit_code": 2, "verdict": "ERROR: --max-slice-drop needs --slice-by"}
    if report["metric"] != "accuracy":
        return {
            "status": "error",
            "exit_code": 2,
            "verdict": "ERROR: --max-slice-drop measures accuracy per slice: expected labels, got none",
        }
    worst = report["worst"]
    tiny = sum(s["tiny"] for s in report["slicings"])
    note = f" ({tiny} slice(s) under {report['min_count']} examples reported, not gated)" if tiny else ""
    if worst is None:
        return {
            "status": "pass",
            "exit_code": 0,
            "verdict": f"PASS slices: no slice has {report['min_count']} examples or more to gate{note}",
        }
    what = (
        f"worst slice {worst['spec']}={worst['slice']} ({worst['count']} examples) drops "
        f"{worst['drop_points']:.2f} points ({100 * worst['float_accuracy']:.2f}% -> "
        f"{100 * worst['quantized_accuracy']:.2f}%)"
    )
    if worst["drop_points"] > max_slice_drop:
        return {"status": "fail", "exit_code": 1, "verdict": f"FAIL slices: {what} > {max_slice_drop:g}{note}"}
    return {"status": "pass", "exit_code": 0, "verdict": f"PASS slices: {what} <= {max_slice_drop:g}{note}"}


def _pct(value: float | None) -> str:
    return f"{100 * value:.2f}%" if value is not None else "-"


SLICE_HEADERS = ["slice", "count", "float acc", "quant acc", "drop (points)", "agreement", "note"]


def table_rows(slicing: Mapping[str, Any]) -> list[list[Any]]:
    """Rows of one slicing's table (:data:`SLICE_HEADERS`)."""
    out = []
    for r in slicing["rows"]:
        worst = slicing.get("worst") or {}
        note = "tiny: not gated" if r["tiny"] else ("worst" if worst.get("slice") == r["slice"] else "")
        out.append(
            [
                r["slice"],
                r["count"],
                _pct(r.get("float_accuracy")),
                _pct(r.get("quantized_accuracy")),
                f"{r['drop_points']:.2f}" if r.get("drop_points") is not None else "-",
                f"{100 * r['agreement']:.2f}%",
                note,
            ]
        )
    return out
