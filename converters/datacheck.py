"""Data validation before conversion: schema, anomalies and drift against the training data's statistics.

    stats = load_stats("train_stats.json")                  # written by edge-sdk train / data stats
    findings = check_data(stats, [("calibration", "calib.npz", inputs)], allow_drift=False)
    rows = drift_rows(stats, inputs); print(drift_table(rows))

The statistics (:mod:`training.datastats`, numpy only) are what the model was trained on.
Before any work, ``edge-sdk convert`` (calibration and eval data, every recipe including
``auto``) and ``edge-sdk parity`` (its data) compare the data they were handed with them:

* **schema** (always refused, naming the input): an input the statistics do not have, one
  they have that the data lacks, another dtype kind (float vs integer) or per-example shape;
* **anomalies** (refused unless ``--allow-drift``, which records them in every manifest):
  a numeric input, image or channel whose scale or mean lies far outside the training
  distribution (x255, x16, /255 twice, standardised where the model expects raw values,
  months for years), a reversed channel order, a categorical input with a large share of
  values the training data never had. The one-line message names the input, what was
  expected, what came, and a likely cause.

The thresholds (:data:`THRESHOLDS`) were measured so that the same dataset's held-out test
split never trips them (docs/training.md, "Data validation"): the nearest any test split or
200-row calibration slice of digits, mnist and adult came was far below each.

TensorFlow Data Validation would be the maintained library for this, but its newest release
that installs on Python 3.11 (1.16.1) needs tensorflow<2.17, protobuf<6, pyarrow<11 and
pandas<2: it cannot live beside the pinned TF 2.21 / protobuf 6 stack. This module is numpy only.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from converters.context import Comparison, RunContext
from edge_sdk.errors import EdgeSdkError
from training.datastats import STATS_FILE, STATS_FORMAT, compute_stats, feature_stats, sample_values, stats_pointer

# What trips a refusal (anomaly) and what the drift report flags. Measured: see the module docs.
THRESHOLDS = {
    "mean_shift_sd": 3.0,  # |mean(data) - mean(train)| / std(train)
    "scale_ratio": 4.0,  # std(data) / std(train)
    "range_spans": 1.0,  # p99 (p1) beyond training max (min) by this many training ranges
    "negative_share": 0.05,  # share of negative values where training had none
    "missing_extra": 0.10,  # missing (NaN) share above training's
    "unseen_extra": 0.20,  # categorical: share of values training never had, above training's OOV share
    "psi": 0.25,  # drift flag: population stability index (numeric deciles, categorical shares)
    "js": 0.10,  # drift flag: Jensen-Shannon divergence of categorical shares (base 2, 0..1)
    "channel_shift_sd": 0.5,  # drift flag: per-channel mean shift in training standard deviations
}
_EPS = 1e-4


class DataCheckError(EdgeSdkError, ValueError):
    """Data that does not match what the model was trained on."""


class DataSchemaError(DataCheckError):
    """An input missing, extra, or of another dtype or shape than the training data's."""


class DataDriftError(DataCheckError):
    """Data far outside the training distribution (an anomaly); ``--allow-drift`` continues past it."""


class StatsError(DataCheckError):
    """A statistics file that cannot be read."""


@dataclasses.dataclass
class Finding:
    """One schema violation or anomaly in one input of one data set."""

    purpose: str  # calibration | eval | parity | data
    source: str  # where the data came from
    feature: str
    kind: str  # schema | anomaly
    expected: str
    got: str
    cause: str = ""

    def line(self) -> str:
        """The one-line message."""
        text = f"{self.purpose} data {self.source}: input '{self.feature}': expected {self.expected}, got {self.got}"
        return text + (f"; likely cause: {self.cause}" if self.cause else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------------
# statistics files
# ------------------------------------------------------------------------------------------------
def load_stats(path: Any) -> dict[str, Any]:
    """Read a statistics JSON file (``edge-sdk-datastats/1``); :class:`StatsError` naming the problem."""
    from edge_sdk.fileio import not_a_regular_file
    from edge_sdk.jsonio import loads_strict

    path = Path(path)
    problem = not_a_regular_file(path)
    if problem:
        got = "no such file" if problem == "does not exist" else f"a path that {problem}"
        raise StatsError(f"--train-stats {path}: expected a statistics JSON file (edge-sdk data stats), got {got}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StatsError(f"--train-stats {path}: expected statistics JSON, could not read it ({exc})") from None
    stats = loads_strict(text, f"--train-stats {path} (statistics JSON)", StatsError)
    if (
        not isinstance(stats, dict)
        or stats.get("format") != STATS_FORMAT
        or not isinstance(stats.get("features"), dict)
    ):
        got_format = stats.get("format") if isinstance(stats, dict) else type(stats).__name__
        raise StatsError(f"--train-stats {path}: expected format {STATS_FORMAT!r}, got {got_format!r}")
    for name, feature in stats["features"].items():
        problem = _feature_problem(feature)
        if problem:
            raise StatsError(f"--train-stats {path}: feature {name!r}: {problem}")
    stats["_path"] = str(path)
    return stats


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(_number(v) for v in value)


def _summary_problem(s: Any, where: str = "") -> str | None:
    """Why a numeric summary (min/max/mean/std, percentiles, histogram) is not one edge-sdk data stats writes."""
    if not isinstance(s, dict):
        return f"expected {where or 'an object'} to be an object, got {type(s).__name__}"
    for key in ("min", "max", "mean", "std", "missing_share"):
        if not _number(s.get(key)):
            if s.get(key) is None and key != "missing_share":
                return f"expected {where}finite min/max/mean/std, got no finite values (statistics of all-NaN data?)"
            return f"expected {where}{key!r} to be a finite number, got {s.get(key)!r}"
    pct = s.get("percentiles")
    if pct is not None and not (isinstance(pct, dict) and all(_number(v) for v in pct.values())):
        return f"expected {where}'percentiles' to map names to numbers, got {pct!r:.80}"
    hist = s.get("histogram")
    if hist is not None and not (
        isinstance(hist, dict)
        and _numbers(hist.get("edges"))
        and _numbers(hist.get("shares"))
        and len(hist["shares"]) == len(hist["edges"]) + 1
    ):
        return f"expected {where}'histogram' with numeric edges and one more share than edges, got {hist!r:.80}"
    return None


def _feature_problem(f: Any) -> str | None:
    """Why ``f`` is not one feature of an ``edge-sdk-datastats/1`` file (None: it is)."""
    if not isinstance(f, dict):
        return f"expected an object, got {type(f).__name__}"
    if f.get("kind") not in ("image", "tensor", "numeric", "categorical"):
        return f"expected 'kind' image, tensor, numeric or categorical, got {f.get('kind')!r}"
    shape = f.get("shape", [])
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        return f"expected 'shape' to be a list of sizes, got {shape!r:.80}"
    if f["kind"] == "categorical":
        vocab = f.get("vocabulary")
        if not (
            isinstance(vocab, list)
            and all(
                isinstance(v, dict)
                and isinstance(v.get("value"), int)
                and _number(v.get("share", 0))
                and _number(v.get("count", 0))
                for v in vocab
            )
        ):
            return f"expected 'vocabulary' to be a list of {{value, count, share}}, got {vocab!r:.80}"
        return None
    problem = _summary_problem(f)
    if problem:
        return problem
    channels = f.get("channels")
    if channels is not None:
        if not isinstance(channels, list):
            return f"expected 'channels' to be a list of summaries, got {channels!r:.80}"
        for i, c in enumerate(channels):
            problem = _summary_problem(c, f"'channels' {i}: ")
            if problem:
                return problem if isinstance(c, dict) else f"expected 'channels' to be a list of summaries, got {c!r}"
    return None


def stats_beside_model(model_path: Any) -> dict[str, Any] | None:
    """The statistics the model's manifest points to (``data_stats.file``, beside the manifest), if any."""
    from edge_sdk.manifest import find_manifest

    if model_path is None:
        return None
    manifest_path = find_manifest(model_path)
    if manifest_path is None:
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    pointer = manifest.get("data_stats") if isinstance(manifest, dict) else None
    if not isinstance(pointer, dict) or not pointer.get("file"):
        return None
    target = manifest_path.parent / str(pointer["file"])
    if not target.is_file():
        raise StatsError(
            f"{manifest_path}: its data_stats points to {target}, which is missing; pass --train-stats "
            "FILE (edge-sdk data stats TRAINING_DATA --out FILE)"
        )
    return load_stats(target)


def public(stats: Mapping[str, Any]) -> dict[str, Any]:
    """``stats`` without the keys this module added (``_path``)."""
    return {k: v for k, v in stats.items() if not k.startswith("_")}


# ------------------------------------------------------------------------------------------------
# matching data to statistics
# ------------------------------------------------------------------------------------------------
def _align(stats: Mapping[str, Any], inputs: Mapping[str, np.ndarray]) -> dict[str, str]:
    """data input name -> statistics feature name (one input each: matched whatever their names)."""
    features = stats["features"]
    if len(features) == 1 and len(inputs) == 1:
        return {next(iter(inputs)): next(iter(features))}
    return {name: name for name in inputs if name in features}


def schema_findings(
    stats: Mapping[str, Any], inputs: Mapping[str, np.ndarray], purpose: str, source: str
) -> list[Finding]:
    """Missing/extra inputs, another dtype kind or per-example shape."""
    features = stats["features"]
    mapping = _align(stats, inputs)
    out = []
    for name in inputs:
        if name not in mapping:
            out.append(
                Finding(
                    purpose,
                    source,
                    name,
                    "schema",
                    f"only the training inputs ({', '.join(sorted(features))})",
                    "an input the training data did not have",
                )
            )
    for feature in features:
        if feature not in mapping.values():
            out.append(Finding(purpose, source, feature, "schema", "this training input", "no such input in the data"))
    for name, feature in mapping.items():
        t = features[feature]
        array = np.asarray(inputs[name])
        t_int = t.get("kind") == "categorical"
        d_int = np.issubdtype(array.dtype, np.integer) or array.dtype == bool
        if t_int != d_int:
            out.append(
                Finding(
                    purpose,
                    source,
                    name,
                    "schema",
                    f"dtype {t.get('dtype')} ({'integer' if t_int else 'float'})",
                    f"dtype {array.dtype}",
                    "a categorical index given as a float, or a number as an index" if t_int or d_int else "",
                )
            )
            continue
        shape = [int(d) for d in array.shape[1:]]
        t_shape = [int(v) for v in t.get("shape") or []]
        if t_shape != shape and not (int(np.prod(t_shape or [1])) == 1 == int(np.prod(shape or [1]))):
            out.append(
                Finding(purpose, source, name, "schema", f"per-example shape {t.get('shape')}", f"shape {shape}")
            )
    return out


# ------------------------------------------------------------------------------------------------
# anomalies
# ------------------------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:.3g}"
    return "0" if text == "-0" else text


def _describe(s: Mapping[str, Any]) -> str:
    return f"{_fmt(s.get('min'))}..{_fmt(s.get('max'))} (mean {_fmt(s.get('mean'))}, std {_fmt(s.get('std'))})"


def _scale_cause(t: Mapping[str, Any], d: Mapping[str, Any], ratio: float) -> str:
    t_max, t_min = t["max"], t["min"]
    unit = t_max <= 1.0 + 1e-6 and t_min >= 0.0
    if 200 <= ratio <= 320:
        return (
            "looks like 0-255 pixels; the model was trained on 0-1"
            if unit
            else f"values about 255x the training scale (0-255 given where 0-{_fmt(t_max)} was expected?)"
        )
    if 13 <= ratio <= 19:
        return (
            "looks like raw 0-16 values (digits' own scale); the model was trained on 0-1 (divide by 16)"
            if unit
            else "values about 16x the training scale"
        )
    if 10 <= ratio < 13:
        return "values about 12x the training scale: months where the model was trained on years?"
    if 1 / 320 <= ratio <= 1 / 200:
        return f"values about 1/255 of the training scale: divided by 255 twice? (the model was trained on {_fmt(t_min)}-{_fmt(t_max)})"
    if ratio >= 1:
        return f"values about {ratio:.3g}x the training scale (another unit or preprocessing)"
    return f"values about 1/{1 / ratio:.3g} of the training scale (another unit or preprocessing)"


def _standardised(t: Mapping[str, Any], d: Mapping[str, Any]) -> bool:
    """Data with mean ~0 and std ~1 where the training data had neither."""
    if d.get("mean") is None or t.get("mean") is None:
        return False
    data_std = abs(d["mean"]) < 0.15 and 0.8 < d["std"] < 1.2
    train_std = abs(t["mean"]) < 0.15 and 0.8 < t["std"] < 1.2
    return data_std and not train_std


def numeric_anomaly(t: Mapping[str, Any], d: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(expected, got, cause) when ``d`` lies far outside ``t`` (numeric summaries), else None."""
    if t.get("mean") is None:
        return None
    if d.get("mean") is None:
        return (f"finite values {_describe(t)}", "no finite values", "all NaN/inf: missing values not filled")
    th = THRESHOLDS
    if d["missing_share"] > t.get("missing_share", 0.0) + th["missing_extra"]:
        return (
            f"{100 * t.get('missing_share', 0.0):.1f}% missing (NaN) values",
            f"{100 * d['missing_share']:.1f}%",
            "missing values not filled as in training",
        )
    t_range = (t["max"] - t["min"]) or (t["std"] or 1.0)
    spread = t["std"] or t_range
    z = abs(d["mean"] - t["mean"]) / spread
    ratio = d["std"] / spread if spread else 1.0
    p = d.get("percentiles") or {}
    hi = p.get("p99", d["max"]) > t["max"] + th["range_spans"] * t_range
    lo = p.get("p1", d["min"]) < t["min"] - th["range_spans"] * t_range
    negative = t["min"] >= 0 and p.get("p5", d["min"]) < t["min"] - 0.1 * t_range
    shrunk = t["min"] >= 0 and t["max"] > 0 and 0 <= d["max"] < t["max"] / 50
    if not (z > th["mean_shift_sd"] or ratio > th["scale_ratio"] or hi or lo or negative or shrunk):
        return None
    expected, got = _describe(t), _describe(d)
    if _standardised(t, d):
        return (
            expected,
            got,
            "looks standardised (mean 0, std 1) where the model was trained on unstandardised "
            "values: standardised twice, or standardised when the model expects raw values",
        )
    if t["min"] >= 0 and t["max"] > 0 and d["max"] > 0 and d["min"] >= t["min"] - 0.1 * t_range:
        scale = d["max"] / t["max"]
    else:
        scale = ratio if ratio > 0 else 1.0
    if negative and not (hi or z > th["mean_shift_sd"]):
        return (
            expected,
            got,
            f"{100 * _negative_share(d):.0f}% negative values where training had none: "
            "another normalisation (e.g. mean/std or -1..1) than training",
        )
    if 0.8 <= scale <= 1.25:
        return (expected, got, f"mean shifted by {z:.1f} training standard deviations (another offset or unit)")
    return (expected, f"{got}, scale x{scale:.3g}", _scale_cause(t, d, scale))


def _negative_share(d: Mapping[str, Any]) -> float:
    p = d.get("percentiles") or {}
    below = [float(k[1:]) for k, v in p.items() if v is not None and v < 0]
    return max(below) / 100 if below else 0.0


def channel_swap(t: Mapping[str, Any], d: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(expected, got, cause) when a 3-channel image's channel means match training's reversed, else None."""
    tc, dc = t.get("channels") or [], d.get("channels") or []
    if len(tc) != 3 or len(dc) != 3 or any(c.get("mean") is None for c in tc + dc):
        return None
    tm = np.array([c["mean"] for c in tc])
    ts = np.array([c["std"] or 1.0 for c in tc])
    dm = np.array([c["mean"] for c in dc])
    direct = float(np.max(np.abs(dm - tm) / ts))
    swapped = float(np.max(np.abs(dm[::-1] - tm) / ts))
    if direct > THRESHOLDS["channel_shift_sd"] and swapped < direct / 3:

        def fmt(m: Any) -> str:
            return "/".join(f"{v:.3g}" for v in m)

        return (
            f"channel means {fmt(tm)}",
            f"{fmt(dm)} (training's in reverse order)",
            "channel order reversed: BGR given for a model trained on RGB (or the other way)",
        )
    return None


def categorical_unseen(t: Mapping[str, Any], array: np.ndarray) -> tuple[float, float]:
    """(share of values training never had, training's own OOV share) for a categorical input."""
    flat = np.asarray(array).reshape(-1).astype(np.int64)
    if flat.size == 0:
        return 0.0, 0.0
    seen = {v["value"] for v in t.get("vocabulary") or [] if v.get("count")}
    oov = t.get("oov_index")
    seen.discard(oov)
    unseen = ~np.isin(flat, np.array(sorted(seen), dtype=np.int64))
    return float(unseen.mean()), float(t.get("oov_share") or 0.0)


def anomaly_findings(
    stats: Mapping[str, Any], inputs: Mapping[str, np.ndarray], purpose: str, source: str
) -> list[Finding]:
    """Scale, range, mean, channel-order and unseen-category anomalies, one finding per input at most."""
    out = []
    mapping = _align(stats, inputs)
    for name, feature in mapping.items():
        t = stats["features"][feature]
        array = np.asarray(inputs[name])
        if t.get("kind") == "categorical":
            share, t_share = categorical_unseen(t, array)
            if share > t_share + THRESHOLDS["unseen_extra"]:
                names = [
                    v.get("name", str(v["value"]))
                    for v in t.get("vocabulary") or []
                    if v.get("value") != t.get("oov_index")
                ]
                shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
                out.append(
                    Finding(
                        purpose,
                        source,
                        feature,
                        "anomaly",
                        f"values from the training vocabulary ({len(names)}: {shown}; {100 * t_share:.1f}% unseen in training)",
                        f"{100 * share:.1f}% values the training data never had",
                        "encoded with another vocabulary than training (e.g. other spellings of the values), or "
                        "a column of another meaning",
                    )
                )
            continue
        d = feature_stats(array)
        found = numeric_anomaly(t, d)
        if found is None and t.get("kind") == "image":
            found = channel_swap(t, d)
            if found is None:
                for i, (tc, dc) in enumerate(zip(t.get("channels") or [], d.get("channels") or [], strict=False)):
                    in_channel = numeric_anomaly(tc, dc) if len(t.get("channels") or []) > 1 else None
                    if in_channel:
                        exp, got, cause = in_channel
                        found = (f"channel {i}: {exp}", f"channel {i}: {got}", cause)
                        break
        if found:
            out.append(Finding(purpose, source, feature, "anomaly", *found))
    return out


def check_data(
    stats: Mapping[str, Any],
    datasets: Iterable[tuple[str, str, Mapping[str, np.ndarray] | None]],
    *,
    allow_drift: bool = False,
    hint: str = "--allow-drift continues and records it in the manifest",
) -> list[Finding]:
    """Validate each ``(purpose, source, inputs)`` against ``stats``; return the anomalies let through.

    Schema violations always raise :class:`DataSchemaError`; anomalies raise
    :class:`DataDriftError` unless ``allow_drift`` (then they are returned, to be recorded).
    """
    findings: list[Finding] = []
    for purpose, source, inputs in datasets:
        if inputs is None:
            continue
        schema = schema_findings(stats, inputs, purpose, source)
        if schema:
            extra = f" (and {len(schema) - 1} more)" if len(schema) > 1 else ""
            raise DataSchemaError(schema[0].line() + extra + f" [training statistics: {stats.get('source') or '?'}]")
        findings += anomaly_findings(stats, inputs, purpose, source)
    if findings and not allow_drift:
        extra = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        raise DataDriftError(findings[0].line() + extra + (f"; {hint}" if hint else ""))
    return findings


# ------------------------------------------------------------------------------------------------
# drift
# ------------------------------------------------------------------------------------------------
def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two share vectors (zero shares floored at 1e-4)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _EPS)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence (base 2: 0 same, 1 disjoint) of two share vectors."""
    pa = np.asarray(p, dtype=np.float64)
    qa = np.asarray(q, dtype=np.float64)
    pa, qa = pa / max(pa.sum(), 1e-12), qa / max(qa.sum(), 1e-12)
    m = (pa + qa) / 2

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return max(0.0, 0.5 * kl(pa, m) + 0.5 * kl(qa, m))


def _numeric_drift(t: Mapping[str, Any], values: np.ndarray) -> tuple[float, float]:
    """(PSI on training's decile bins, KS statistic at the decile edges) of ``values``."""
    hist = t.get("histogram") or {}
    edges, shares = np.asarray(hist.get("edges") or []), hist.get("shares") or []
    flat = sample_values(values)
    flat = flat[np.isfinite(flat)]
    if not shares or flat.size == 0:
        return float("nan"), float("nan")
    counts = np.bincount(np.searchsorted(edges, flat, side="right"), minlength=len(edges) + 1) / flat.size
    ks = float(np.max(np.abs(np.cumsum(counts)[:-1] - np.cumsum(shares)[:-1]))) if len(edges) else 0.0
    return psi(shares, counts), ks


def drift_rows(stats: Mapping[str, Any], inputs: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One row per feature (per channel for images): metric, value, threshold, drift flag, training vs data."""
    rows: list[dict[str, Any]] = []
    mapping = _align(stats, inputs)
    for data_name, name in mapping.items():  # rows named as the training statistics name the input
        t = stats["features"][name]
        array = np.asarray(inputs[data_name])
        if t.get("kind") == "categorical":
            vocab = [v for v in t.get("vocabulary") or []]
            values = [v["value"] for v in vocab]
            flat = array.reshape(-1).astype(np.int64)
            data_shares = [float((flat == v).mean()) if flat.size else 0.0 for v in values]
            unseen = max(0.0, 1.0 - sum(data_shares))
            train_shares = [v["share"] for v in vocab] + [0.0]
            data_shares = data_shares + [unseen]
            js = js_divergence(train_shares, data_shares)
            top_t = vocab[0].get("name", vocab[0]["value"]) if vocab else "-"
            order = int(np.argmax(data_shares))
            top_d = "<unseen>" if order == len(vocab) else vocab[order].get("name", vocab[order]["value"])
            rows.append(
                _row(
                    name,
                    "categorical",
                    "JS",
                    js,
                    _small_sample(THRESHOLDS["js"], len(vocab), flat.size, 1),
                    f"top {top_t} {100 * (vocab[0]['share'] if vocab else 0):.0f}%",
                    f"top {top_d} {100 * max(data_shares):.0f}%, unseen {100 * unseen:.1f}%",
                    psi_value=psi(train_shares, data_shares),
                )
            )
            continue
        value, ks = _numeric_drift(t, array)
        d = feature_stats(array)
        if t.get("kind") == "image":
            channels = zip(t.get("channels") or [], d.get("channels") or [], strict=False)
            for i, (tc, dc) in enumerate(channels):
                shift = abs(dc["mean"] - tc["mean"]) / (tc["std"] or 1.0)
                rows.append(
                    _row(
                        f"{name}[c{i}]",
                        "image channel",
                        "mean shift (sd)",
                        shift,
                        THRESHOLDS["channel_shift_sd"],
                        f"mean {_fmt(tc['mean'])} std {_fmt(tc['std'])}",
                        f"mean {_fmt(dc['mean'])} std {_fmt(dc['std'])}",
                        std_ratio=round(dc["std"] / (tc["std"] or 1.0), 4),
                    )
                )
        bins = len((t.get("histogram") or {}).get("shares") or [])
        rows.append(
            _row(
                name,
                t.get("kind", "numeric"),
                "PSI",
                value,
                _small_sample(THRESHOLDS["psi"], bins, int(np.isfinite(array).sum()), 0.5),
                f"mean {_fmt(t.get('mean'))} std {_fmt(t.get('std'))}",
                f"mean {_fmt(d.get('mean'))} std {_fmt(d.get('std'))}",
                ks=ks,
            )
        )
    return rows


def _small_sample(base: float, bins: int, n: int, divisor: float) -> float:
    """A drift threshold raised by the bias a sample of ``n`` has even from the training distribution itself:
    2 (bins - 1) / n for PSI, (bins - 1) / n for JS (both grow as the sample shrinks)."""
    return round(base + max(bins - 1, 0) / max(n, 1) / divisor, 3)


def _row(
    feature: str, kind: str, metric: str, value: float, threshold: float, train: str, data: str, **extra: Any
) -> dict[str, Any]:
    finite = value is not None and math.isfinite(value)
    row = {
        "feature": feature,
        "kind": kind,
        "metric": metric,
        "value": round(value, 4) if finite else None,
        "threshold": threshold,
        "drift": bool(finite and value > threshold),
        "training": train,
        "data": data,
    }
    for k, v in extra.items():
        row[k] = round(v, 4) if isinstance(v, float) and math.isfinite(v) else v
    return row


DRIFT_HEADERS = ["feature", "kind", "metric", "value", "threshold", "drift", "training", "data"]


def drift_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The drift rows as a text table."""
    from edge_sdk.report import format_table

    return format_table(
        [
            [
                r["feature"],
                r["kind"],
                r["metric"],
                "-" if r["value"] is None else f"{r['value']:.3f}",
                r["threshold"],
                "DRIFT" if r["drift"] else "ok",
                r["training"],
                r["data"],
            ]
            for r in rows
        ],
        DRIFT_HEADERS,
    )


def drift_report(stats: Mapping[str, Any], inputs: Mapping[str, np.ndarray], source: str) -> dict[str, Any]:
    """The drift report as JSON: training source, data source, rows, drifted feature names."""
    rows = drift_rows(stats, inputs)
    return {
        "training": stats.get("source"),
        "data": source,
        "thresholds": dict(THRESHOLDS),
        "rows": rows,
        "drifted": [r["feature"] for r in rows if r["drift"]],
    }


# ------------------------------------------------------------------------------------------------
# edge-sdk convert: the pre-work check, statistics written beside every artifact
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class DataCheckRecord(Comparison):
    """summary.json's ``comparisons["data_check"]``: which data was checked against which statistics, and
    the findings (each already a run warning, so no lines under the table)."""

    key: ClassVar[str] = "data_check"
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.record


def run_stats(ctx: RunContext, zoo: bool) -> dict[str, Any] | None:
    """The statistics a convert run checks against: ``--train-stats``, else the zoo model's training
    split (trained on the fly here), else those the input model's manifest points to."""
    if getattr(ctx, "train_stats", None):
        return load_stats(ctx.train_stats)
    data = ctx.data
    if zoo and data.dataset is not None and data.train_x is not None:
        return compute_stats(data.train_x, source=f"{data.dataset.name} train split", preprocessing=data.preprocessing)
    model = ctx.model
    path = getattr(model, "path", None) if model is not None else None
    if path is None and isinstance(ctx.source, (str, Path)) and Path(ctx.source).exists():
        path = Path(ctx.source)
    return stats_beside_model(path)


def check_run(ctx: RunContext, zoo: bool = False) -> None:
    """``edge-sdk convert``, before any work: check the calibration and eval data against the training statistics.

    Writes the statistics into the run (``train_stats.json``) so every artifact's manifest points to
    them (``data_stats``); with ``--allow-drift`` the anomalies found go into ``data_check``.
    """
    stats = run_stats(ctx, zoo)
    if stats is None:
        return
    data = ctx.data
    sets = []
    if data.calibration_x is not None and (ctx.calibration or ctx.train_data or not zoo):
        sets.append(("calibration", data.calibration_source or "calibration", data.calibration_x))
    if data.eval_x is not None and (ctx.eval_data or not zoo):
        sets.append(("eval", data.eval_source or "eval", data.eval_x))
    findings = check_data(stats, sets, allow_drift=getattr(ctx, "allow_drift", False))
    from training.datastats import write_stats

    path = write_stats(public(stats), Path(ctx.staging) / STATS_FILE)
    ctx.manifest_extra["data_stats"] = stats_pointer(path)
    record = DataCheckRecord(
        {
            "training": stats.get("source"),
            "checked": [s[1] for s in sets],
            "findings": [f.to_dict() for f in findings],
            "allowed": bool(findings),
        }
    )
    ctx.record(record)
    if findings:
        ctx.manifest_extra["data_check"] = record.to_json()
        for f in findings:
            ctx.warn(f"data drift allowed (--allow-drift): {f.line()}")


# ------------------------------------------------------------------------------------------------
# edge-sdk parity: its data, checked first; the drift table goes into the report
# ------------------------------------------------------------------------------------------------
def check_parity(
    float_path: Any,
    inputs: Mapping[str, np.ndarray],
    source: str,
    *,
    train_stats: str | None = None,
    allow_drift: bool = False,
) -> dict[str, Any] | None:
    """``edge-sdk parity``, before any work: ``inputs`` against ``--train-stats`` or the float model's statistics.

    Returns the report's ``data_drift`` section (findings let through by ``allow_drift`` and the
    drift rows), or None when no statistics are known.
    """
    stats = load_stats(train_stats) if train_stats else stats_beside_model(float_path)
    if stats is None:
        return None
    findings = check_data(
        stats, [("parity", source, inputs)], allow_drift=allow_drift, hint="--allow-drift continues and reports it"
    )
    report = drift_report(stats, inputs, source)
    report["findings"] = [f.to_dict() for f in findings]
    return report
