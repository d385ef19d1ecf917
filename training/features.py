"""Declared feature specs for tables: parse, fit on the training split, encode.

A feature spec says which columns a model takes and how each becomes a model
input. The encoding is the same on the training machine and on the device,
so everything it needs (vocabularies, normalisation constants) goes into
:meth:`FeatureSpec.preprocessing`, which is written into the model manifest.

Rules (documented in docs/training.md):

* categorical: the value is turned into a string and stripped of surrounding
  whitespace; its index in ``vocabulary`` (0..V-1) is the model input (int32).
  A value not in the vocabulary, or a missing value, maps to the
  out-of-vocabulary bucket, index V. A vocabulary not declared in the spec is
  learned from the training split: values in descending order of frequency,
  ties alphabetical, keeping values seen at least ``min_count`` times.
* numeric: ``x -> transform(x)`` (``none`` or ``log1p``; ``log1p`` of a negative
  value is an error), then standardised ``(x - mean) / std`` with mean and std
  of the training split (std 0 counts as 1), as float32. Missing values (null,
  NaN, empty string, ``?``, ``NA``, ``nan``) follow the feature's ``nan`` rule:
  ``mean`` (default) fills the training mean, so the input is exactly 0;
  ``zero`` fills raw 0 before the transform; ``error`` rejects the table.
  A value that is not a number and not one of the missing markers is an error.
* model inputs are named after the columns with characters other than
  ``[A-Za-z0-9_]`` replaced by ``_`` (``native-country`` -> ``native_country``);
  the manifest keeps both names.
* crosses: pairs of categorical features; the model combines their indices as
  ``index_a * size_b + index_b`` (size = vocabulary + OOV bucket), so the
  crossing needs only integer arithmetic and converts to TFLite builtins.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import FeatureSpecError, MissingColumnError

MISSING_MARKERS = frozenset({"", "?", "na", "nan", "null", "none"})
NUMERIC_TRANSFORMS = ("none", "log1p")
NAN_RULES = ("mean", "zero", "error")

Table = Mapping[str, np.ndarray]


@dataclasses.dataclass
class NumericFeature:
    """A numeric column, standardised with training-split statistics."""

    name: str
    transform: str = "none"
    nan: str = "mean"
    mean: float | None = None
    std: float | None = None

    kind = "numeric"

    @property
    def input_name(self) -> str:
        """The model input name: the column name with characters other than [A-Za-z0-9_] as '_'."""
        return input_name_for(self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (fitted constants included when known)."""
        out: dict[str, Any] = {"name": self.name, "type": "numeric", "transform": self.transform, "nan": self.nan}
        if self.mean is not None:
            out.update(mean=self.mean, std=self.std)
        return out

    @property
    def constants(self) -> tuple[float, float]:
        """``(mean, std)`` learned from the training split."""
        if self.mean is None or self.std is None:
            raise FeatureSpecError(f"numeric feature {self.name!r} has no mean/std yet (fit the spec first)")
        return self.mean, self.std


@dataclasses.dataclass
class CategoricalFeature:
    """A categorical column looked up in a vocabulary, with one out-of-vocabulary bucket."""

    name: str
    vocabulary: list[str] | None = None
    min_count: int = 1
    embedding_dim: int | None = None

    kind = "categorical"

    @property
    def input_name(self) -> str:
        """The model input name: the column name with characters other than [A-Za-z0-9_] as '_'."""
        return input_name_for(self.name)

    @property
    def fitted_vocabulary(self) -> list[str]:
        """The vocabulary, declared or learned from the training split."""
        if self.vocabulary is None:
            raise FeatureSpecError(f"categorical feature {self.name!r} has no vocabulary yet (fit the spec first)")
        return self.vocabulary

    @property
    def size(self) -> int:
        """Number of distinct model input values: the vocabulary plus the OOV bucket."""
        return len(self.fitted_vocabulary) + 1

    @property
    def oov_index(self) -> int:
        """The index unknown and missing values map to."""
        return self.size - 1

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {"name": self.name, "type": "categorical"}
        if self.vocabulary is not None:
            out["vocabulary"] = list(self.vocabulary)
        if self.min_count != 1:
            out["min_count"] = self.min_count
        if self.embedding_dim is not None:
            out["embedding_dim"] = self.embedding_dim
        return out


Feature = NumericFeature | CategoricalFeature


@dataclasses.dataclass
class FeatureSpec:
    """Which columns a tabular model takes, how each is encoded, and the label."""

    features: list[Feature]
    label: str
    label_vocabulary: list[str] | None = None
    crosses: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], source: str = "feature spec") -> FeatureSpec:
        """Parse the JSON form; raise :class:`FeatureSpecError` naming what is wrong."""
        if not isinstance(spec, Mapping):
            raise FeatureSpecError(f"{source}: expected a JSON object, got {type(spec).__name__}")
        if not isinstance(spec.get("label"), str):
            raise FeatureSpecError(f"{source}: expected 'label' to be the label column name, got {spec.get('label')!r}")
        raw_features = spec.get("features")
        if not isinstance(raw_features, list) or not raw_features:
            raise FeatureSpecError(f"{source}: expected 'features' to be a non-empty list, got {raw_features!r}")
        features: list[Feature] = []
        seen = set()
        seen_inputs: dict[str, str] = {}
        for i, item in enumerate(raw_features):
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise FeatureSpecError(f"{source}: features[{i}] must be an object with a 'name', got {item!r}")
            name = item["name"]
            if name in seen:
                raise FeatureSpecError(f"{source}: feature {name!r} is declared twice")
            if name == spec["label"]:
                raise FeatureSpecError(f"{source}: feature {name!r} is also the label column")
            seen.add(name)
            if input_name_for(name) in seen_inputs:
                raise FeatureSpecError(
                    f"{source}: features {seen_inputs[input_name_for(name)]!r} and {name!r} both become model input "
                    f"{input_name_for(name)!r}; rename one column"
                )
            seen_inputs[input_name_for(name)] = name
            kind = item.get("type")
            if kind == "numeric":
                transform = item.get("transform", "none")
                nan = item.get("nan", "mean")
                if transform not in NUMERIC_TRANSFORMS:
                    raise FeatureSpecError(
                        f"{source}: feature {name!r}: expected transform one of {list(NUMERIC_TRANSFORMS)}, got {transform!r}"
                    )
                if nan not in NAN_RULES:
                    raise FeatureSpecError(
                        f"{source}: feature {name!r}: expected nan rule one of {list(NAN_RULES)}, got {nan!r}"
                    )
                features.append(NumericFeature(name, transform, nan, item.get("mean"), item.get("std")))
            elif kind == "categorical":
                vocab = item.get("vocabulary")
                if vocab is not None:
                    if not isinstance(vocab, list) or not vocab:
                        raise FeatureSpecError(
                            f"{source}: feature {name!r}: expected 'vocabulary' to be a non-empty list, got {vocab!r}"
                        )
                    vocab = [str(v).strip() for v in vocab]
                    dupes = [v for v, c in Counter(vocab).items() if c > 1]
                    if dupes:
                        raise FeatureSpecError(f"{source}: feature {name!r}: vocabulary repeats {dupes[:5]}")
                min_count = item.get("min_count", 1)
                if not isinstance(min_count, int) or min_count < 1:
                    raise FeatureSpecError(f"{source}: feature {name!r}: expected min_count >= 1, got {min_count!r}")
                features.append(CategoricalFeature(name, vocab, min_count, item.get("embedding_dim")))
            else:
                raise FeatureSpecError(
                    f"{source}: feature {name!r}: expected type 'numeric' or 'categorical', got {kind!r}"
                )
        categorical = {f.name for f in features if isinstance(f, CategoricalFeature)}
        crosses = []
        for pair in spec.get("crosses", []) or []:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise FeatureSpecError(f"{source}: expected each cross to be a pair of feature names, got {pair!r}")
            for name in pair:
                if name not in categorical:
                    raise FeatureSpecError(
                        f"{source}: cross {list(pair)} names {name!r}, which is not a categorical feature "
                        f"(categorical features: {sorted(categorical)})"
                    )
            crosses.append((pair[0], pair[1]))
        label_vocab = spec.get("label_vocabulary")
        if label_vocab is not None:
            label_vocab = [str(v).strip() for v in label_vocab]
        return cls(features, spec["label"], label_vocab, crosses)

    @classmethod
    def from_json(cls, path: str | Path) -> FeatureSpec:
        """Read a spec from a JSON file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FeatureSpecError(f"feature spec not found: expected a JSON file at {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FeatureSpecError(f"feature spec {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """JSON form; after :meth:`fit` it holds every constant the encoding needs."""
        out: dict[str, Any] = {"label": self.label, "features": [f.to_dict() for f in self.features]}
        if self.label_vocabulary is not None:
            out["label_vocabulary"] = list(self.label_vocabulary)
        if self.crosses:
            out["crosses"] = [list(c) for c in self.crosses]
        return out

    # ---------------------------------------------------------------- accessors
    @property
    def names(self) -> list[str]:
        """Feature (column) names in input order."""
        return [f.name for f in self.features]

    @property
    def input_names(self) -> list[str]:
        """Model input names in input order."""
        return [f.input_name for f in self.features]

    def feature(self, name: str) -> Feature:
        """The feature called ``name``."""
        for f in self.features:
            if f.name == name:
                return f
        raise FeatureSpecError(f"no feature named {name!r}; features are {self.names}")

    @property
    def fitted_labels(self) -> list[str]:
        """The label vocabulary, declared or learned from the training split."""
        if self.label_vocabulary is None:
            raise FeatureSpecError(f"label {self.label!r} has no vocabulary yet (fit the spec first)")
        return self.label_vocabulary

    @property
    def fitted(self) -> bool:
        """True when every constant the encoding needs is known."""
        return self.label_vocabulary is not None and all(
            (f.vocabulary is not None) if isinstance(f, CategoricalFeature) else (f.mean is not None)
            for f in self.features
        )

    # ------------------------------------------------------------------ fitting
    def check_columns(self, table: Table, source: str = "table") -> None:
        """Raise :class:`MissingColumnError` naming every spec column the table lacks."""
        wanted = self.names + [self.label]
        missing = [c for c in wanted if c not in table]
        if missing:
            raise MissingColumnError(
                f"{source}: missing column(s) {missing} named in the feature spec; "
                f"the table has columns {list(table.keys())}"
            )

    def fit(self, table: Table, source: str = "training split") -> FeatureSpec:
        """Return a copy with vocabularies and normalisation learned from ``table`` where not declared."""
        self.check_columns(table, source)
        fitted: list[Feature] = []
        for f in self.features:
            if isinstance(f, CategoricalFeature):
                vocab = f.vocabulary
                if vocab is None:
                    counts = Counter(v for v in _strings(table[f.name]) if v is not None)
                    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                    vocab = [v for v, c in ordered if c >= f.min_count]
                    if not vocab:
                        raise FeatureSpecError(
                            f"{source}: categorical feature {f.name!r} has no value seen at least "
                            f"{f.min_count} time(s); cannot learn a vocabulary"
                        )
                fitted.append(dataclasses.replace(f, vocabulary=list(vocab)))
            else:
                if f.mean is not None and f.std is not None:
                    fitted.append(dataclasses.replace(f))
                    continue
                values = _transform(f, _numbers(f.name, table[f.name], source), source)
                finite = values[np.isfinite(values)]
                if finite.size == 0:
                    raise FeatureSpecError(f"{source}: numeric feature {f.name!r} has no finite value to fit on")
                std = float(finite.std())
                fitted.append(dataclasses.replace(f, mean=float(finite.mean()), std=std if std > 0 else 1.0))
        label_vocab = self.label_vocabulary
        if label_vocab is None:
            label_vocab = sorted({v for v in _strings(table[self.label]) if v is not None})
            if len(label_vocab) < 2:
                raise FeatureSpecError(
                    f"{source}: label column {self.label!r} needs at least 2 classes, found {label_vocab}"
                )
        return FeatureSpec(fitted, self.label, list(label_vocab), list(self.crosses))

    # ----------------------------------------------------------------- encoding
    def encode(self, table: Table, source: str = "table") -> dict[str, np.ndarray]:
        """Encode the feature columns: ``{input_name: array [n, 1]}`` (int32 categorical, float32 numeric)."""
        if not self.fitted:
            raise FeatureSpecError("the feature spec must be fitted (FeatureSpec.fit) before encoding")
        missing = [c for c in self.names if c not in table]
        if missing:
            raise MissingColumnError(
                f"{source}: missing column(s) {missing} named in the feature spec; "
                f"the table has columns {list(table.keys())}"
            )
        out: dict[str, np.ndarray] = {}
        for f in self.features:
            if isinstance(f, CategoricalFeature):
                lookup = {v: i for i, v in enumerate(f.fitted_vocabulary)}
                oov = f.oov_index
                idx = np.fromiter(
                    (lookup.get(v, oov) if v is not None else oov for v in _strings(table[f.name])),
                    dtype=np.int32,
                    count=len(table[f.name]),
                )
                out[f.input_name] = idx.reshape(-1, 1)
            else:
                raw = _numbers(f.name, table[f.name], source)
                nan_mask = ~np.isfinite(raw)
                if nan_mask.any():
                    if f.nan == "error":
                        row = int(np.flatnonzero(nan_mask)[0])
                        raise FeatureSpecError(
                            f"{source}: numeric feature {f.name!r} has {int(nan_mask.sum())} missing/NaN value(s) "
                            f"(first at row {row}) and its nan rule is 'error'; expected finite numbers"
                        )
                    if f.nan == "zero":
                        raw = np.where(nan_mask, 0.0, raw)
                values = _transform(f, raw, source)
                mean, std = f.constants
                z = (values - mean) / std
                z = np.where(np.isfinite(z), z, 0.0)  # the 'mean' rule: missing -> training mean -> 0
                out[f.input_name] = z.astype(np.float32).reshape(-1, 1)
        return out

    def encode_labels(self, column: np.ndarray, source: str = "table") -> np.ndarray:
        """Label strings -> int64 class indices; an unknown label is an error, not a silent class."""
        lookup: dict[str | None, int] = {v: i for i, v in enumerate(self.label_vocabulary or [])}
        values = list(_strings(column))
        bad = sorted({str(v) for v in values if v not in lookup})
        if bad:
            raise FeatureSpecError(
                f"{source}: label column {self.label!r} has value(s) {bad[:5]} not in the label vocabulary "
                f"{self.label_vocabulary}"
            )
        return np.asarray([lookup[v] for v in values], dtype=np.int64)

    # ---------------------------------------------------------------- manifest
    def preprocessing(self) -> dict[str, Any]:
        """The manifest ``preprocessing`` block: how to turn raw column values into model inputs."""
        if not self.fitted:
            raise FeatureSpecError("the feature spec must be fitted before its preprocessing can be described")
        features = []
        for f in self.features:
            if isinstance(f, CategoricalFeature):
                features.append(
                    {
                        "name": f.input_name,
                        "column": f.name,
                        "type": "categorical",
                        "dtype": "int32",
                        "vocabulary": list(f.fitted_vocabulary),
                        "oov_index": f.oov_index,
                        "rule": "strip whitespace; index in vocabulary, else (or missing) oov_index",
                    }
                )
            else:
                features.append(
                    {
                        "name": f.input_name,
                        "column": f.name,
                        "type": "numeric",
                        "dtype": "float32",
                        "transform": f.transform,
                        "mean": f.mean,
                        "std": f.std,
                        # model input = transform(raw) * scale + offset, the manifest's usual convention
                        "scale": 1.0 / f.constants[1],
                        "offset": -f.constants[0] / f.constants[1],
                        "nan": f.nan,
                        "rule": "missing/NaN -> "
                        + {"mean": "0 (the training mean)", "zero": "raw 0", "error": "rejected"}[f.nan],
                    }
                )
        return {
            "kind": "tabular",
            "features": features,
            "crosses": [list(c) for c in self.crosses],
            "label": {"column": self.label, "vocabulary": list(self.fitted_labels)},
        }


def input_name_for(column: str) -> str:
    """A model input name for a column: [A-Za-z0-9_] only, not starting with a digit."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", column.strip())
    return name if name and not name[0].isdigit() else f"f_{name}"


def _strings(column: Iterable[Any]) -> Iterator[str | None]:
    """Yield each value as a stripped string, or None when missing."""
    for v in column:
        if v is None:
            yield None
            continue
        if isinstance(v, (float, np.floating)) and math.isnan(v):
            yield None
            continue
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)  # a category column read as floats: 3.0 -> "3"
        yield str(v).strip()


def _numbers(name: str, column: Any, source: str) -> np.ndarray:
    """A column as float64, missing markers as NaN; a non-number is an error naming row and value."""
    arr = np.asarray(column)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    out = np.empty(len(arr), dtype=np.float64)
    for i, v in enumerate(arr):
        if v is None:
            out[i] = np.nan
            continue
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            if str(v).strip().lower() in MISSING_MARKERS:
                out[i] = np.nan
            else:
                raise FeatureSpecError(
                    f"{source}: numeric feature {name!r} row {i}: expected a number or a missing marker "
                    f"({sorted(MISSING_MARKERS)}), got {v!r}"
                ) from None
    return out


def _transform(f: NumericFeature, values: np.ndarray, source: str) -> np.ndarray:
    if f.transform == "log1p":
        negative = values < 0
        if negative.any():
            row = int(np.flatnonzero(negative)[0])
            raise FeatureSpecError(
                f"{source}: numeric feature {f.name!r} uses transform 'log1p', which needs values >= 0; "
                f"got {values[row]!r} at row {row}"
            )
        return np.log1p(values)
    return values
