"""Statistics of a model's training data: the schema and distribution that travel with the model.

    stats = compute_stats({"image": x_train}, source="digits train split")
    write_stats(stats, "out/train_stats.json")

numpy only (no TensorFlow), so ``edge-sdk train``, ``edge-sdk convert`` and ``edge-sdk data stats``
share it. Per input (feature) the statistics hold its dtype and per-example shape and:

* ``kind``: ``image`` (per-example rank 3, 1/3/4 channels last), ``tensor`` (any other
  rank >= 1 beyond a single value), ``numeric`` (one float per example), ``categorical``
  (one integer per example: a vocabulary index);
* numbers (image, tensor, numeric): min, max, mean, std, the percentiles in
  :data:`PERCENTILES`, the missing (NaN) share and a histogram on the training deciles
  (PSI is measured on it); an image or tensor with a channel axis also per channel;
* categorical: the vocabulary with counts and shares (value names from the manifest's
  tabular ``preprocessing`` when known) and the share of the out-of-vocabulary bucket.

The checks and the drift report that read these statistics live in :mod:`converters.datacheck`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

STATS_FORMAT = "edge-sdk-datastats/1"
STATS_FILE = "train_stats.json"
PERCENTILES = (0.0, 1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 100.0)
MAX_SAMPLE_VALUES = 2_000_000  # values per channel read for percentiles (a strided sample beyond that)
MAX_CHANNELS = 16  # a trailing axis longer than this is not treated as channels


def _r(value: float) -> float:
    return float(np.round(float(value), 6))


def example_shape(array: np.ndarray) -> list[int]:
    """The per-example shape (the batch axis dropped)."""
    return [int(d) for d in np.shape(array)[1:]]


def feature_kind(array: np.ndarray) -> str:
    """``image`` | ``tensor`` | ``numeric`` | ``categorical`` (see the module docs)."""
    shape = example_shape(array)
    values = int(np.prod(shape)) if shape else 1
    if values == 1:
        return "categorical" if np.issubdtype(array.dtype, np.integer) or array.dtype == bool else "numeric"
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        return "image"
    return "tensor"


def sample_values(values: np.ndarray) -> np.ndarray:
    """At most :data:`MAX_SAMPLE_VALUES` values (a strided sample), as float64: no full-size float64 copy."""
    flat = np.asarray(values).reshape(-1)
    if flat.size > MAX_SAMPLE_VALUES:
        flat = flat[:: int(np.ceil(flat.size / MAX_SAMPLE_VALUES))]
    return flat.astype(np.float64)


def numeric_summary(values: np.ndarray, histogram: bool = True) -> dict[str, Any]:
    """min/max/mean/std/percentiles/missing share (and a decile histogram) of the finite values."""
    flat = sample_values(values)
    finite = flat[np.isfinite(flat)]
    out: dict[str, Any] = {"count": int(flat.size), "missing_share": _r(1.0 - finite.size / max(flat.size, 1))}
    if finite.size == 0:
        out.update(min=None, max=None, mean=None, std=None, percentiles=None)
        return out
    pct = np.percentile(finite, PERCENTILES)
    out.update(
        min=_r(finite.min()),
        max=_r(finite.max()),
        mean=_r(finite.mean()),
        std=_r(finite.std()),
        percentiles={f"p{p:g}": _r(v) for p, v in zip(PERCENTILES, pct, strict=False)},
    )
    if histogram:
        # edges rounded as stored, so the training shares are those a reader of the JSON recomputes
        edges = np.unique([_r(e) for e in np.percentile(finite, np.arange(10, 100, 10))])
        shares = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1) / finite.size
        out["histogram"] = {"edges": [_r(e) for e in edges], "shares": [_r(s) for s in shares]}
    return out


def _vocabulary_names(preprocessing: Mapping[str, Any] | None) -> dict[str | None, Mapping[str, Any]]:
    """Input name -> its tabular preprocessing entry (vocabulary, oov_index, column)."""
    if not isinstance(preprocessing, Mapping) or preprocessing.get("kind") != "tabular":
        return {}
    return {f.get("name"): f for f in preprocessing.get("features") or [] if isinstance(f, Mapping)}


def categorical_summary(values: np.ndarray, entry: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Vocabulary with counts and shares; with a preprocessing ``entry``, value names and the OOV share."""
    flat = np.asarray(values).reshape(-1).astype(np.int64)
    uniques, counts = np.unique(flat, return_counts=True)
    names = list((entry or {}).get("vocabulary") or [])
    oov = (entry or {}).get("oov_index")
    vocab = []
    for value, count in zip(uniques.tolist(), counts.tolist(), strict=False):
        item: dict[str, Any] = {"value": int(value), "count": int(count), "share": _r(count / max(flat.size, 1))}
        if 0 <= value < len(names):
            item["name"] = names[value]
        elif oov is not None and value == oov:
            item["name"] = "<out-of-vocabulary>"
        vocab.append(item)
    vocab.sort(key=lambda v: (-v["count"], v["value"]))
    out: dict[str, Any] = {
        "count": int(flat.size),
        "min": int(flat.min()) if flat.size else None,
        "max": int(flat.max()) if flat.size else None,
        "distinct": int(uniques.size),
        "vocabulary": vocab,
    }
    if oov is not None:
        out["oov_index"] = int(oov)
        out["column"] = (entry or {}).get("column")
        out["oov_share"] = _r(float((flat == oov).sum()) / max(flat.size, 1))
        # a missing value is encoded as the OOV index too: the share of "missing or unseen"
        out["missing_share"] = out["oov_share"]
    else:
        out["missing_share"] = 0.0
    return out


def feature_stats(array: np.ndarray, preprocessing_entry: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The statistics of one input (see the module docs)."""
    array = np.asarray(array)
    kind = feature_kind(array)
    out: dict[str, Any] = {"kind": kind, "dtype": str(array.dtype), "shape": example_shape(array)}
    if kind == "categorical":
        out.update(categorical_summary(array, preprocessing_entry))
        return out
    out.update(numeric_summary(array, histogram=True))
    shape = out["shape"]
    if kind in ("image", "tensor") and len(shape) >= 2 and 1 < shape[-1] <= MAX_CHANNELS:
        channels = np.moveaxis(array, -1, 0)
        out["channels"] = [numeric_summary(c, histogram=False) for c in channels]
    elif kind == "image":  # one channel: the whole image is that channel
        out["channels"] = [{k: out[k] for k in ("count", "missing_share", "min", "max", "mean", "std", "percentiles")}]
    return out


def compute_stats(
    inputs: np.ndarray | Mapping[str, np.ndarray],
    *,
    source: str = "",
    preprocessing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Statistics of ``inputs`` (``{input name: array}``, or one array, named ``x``).

    ``source`` says where the data came from; ``preprocessing``: the manifest's preprocessing
    (a tabular one names categorical values).
    """
    if not isinstance(inputs, Mapping):
        inputs = {"x": np.asarray(inputs)}
    entries = _vocabulary_names(preprocessing)
    features = {}
    samples = None
    for name, array in inputs.items():
        array = np.asarray(array)
        samples = int(array.shape[0]) if array.ndim else 1
        features[name] = feature_stats(array, entries.get(name))
    return {"format": STATS_FORMAT, "source": source, "samples": samples, "features": features}


def write_stats(stats: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``stats`` as JSON to ``path`` atomically."""
    from edge_sdk.fileio import atomic_write_text

    return atomic_write_text(path, json.dumps(stats, indent=1) + "\n")


def stats_pointer(path: str | os.PathLike[str], file: str | None = None) -> dict[str, Any]:
    """The manifest's ``data_stats`` field for the statistics file at ``path``.

    ``file``: the name the manifest records (relative to the manifest's folder; default the file's name).
    """
    from edge_sdk.fileio import sha256_bytes

    path = Path(path)
    raw = path.read_bytes()
    stats = json.loads(raw)
    return {
        "file": file or path.name,
        "sha256": sha256_bytes(raw),
        "format": stats.get("format"),
        "source": stats.get("source"),
        "samples": stats.get("samples"),
        "features": sorted(stats.get("features") or {}),
    }
