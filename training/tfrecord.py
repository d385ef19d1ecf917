"""Sharded TFRecord datasets on disk: write a :class:`Dataset`, read it back with interleave.

Layout of a dataset directory::

    dataset.json                              name, task, labels, preprocessing, feature spec,
                                              and per-input shape/dtype ("features")
    train-00000-of-00004.tfrecord ...         tf.train.Example records, one per example
    val-00000-of-00001.tfrecord ...
    test-00000-of-00002.tfrecord ...

Each Example holds every model input flattened (``float_list`` for float32,
``int64_list`` for integer inputs) under its input name, and ``label``
(int64). Example ``i`` of a split goes to shard ``i % shards``, so an
interleave with one record per shard in turn reads the split back in its
original order. To train on your own data, write records in this form plus a
``dataset.json`` (see docs/training.md) and pass the directory as the dataset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.fileio import atomic_output_dir
from training.dataset_type import SPLITS, Dataset
from training.errors import DatasetError

META_FILE = "dataset.json"
FORMAT = "edge-sdk-tfrecord-dataset/1"
LABEL_KEY = "label"


def _features_of(x: Any) -> dict[str, np.ndarray]:
    return dict(x) if isinstance(x, dict) else {"image": x}


def write_dataset(
    dataset: Any, out_dir: str | Path, shards: int = 4, progress: bool = False, *, force: bool = False
) -> Path:
    """Write ``dataset``'s three splits as sharded TFRecords plus ``dataset.json``; atomic; returns the dir.

    ``out_dir`` must be new, empty, or a dataset directory edge-sdk wrote (the marker
    :data:`edge_sdk.outputs.MARKER_FILE` inside, written before the directory is promoted);
    any other non-empty folder raises :class:`~edge_sdk.errors.OutputError` before any work
    unless ``force=True``. The file or directory ``dataset`` was read from
    (``dataset.source_path``) is never replaced, even with ``force``.
    """
    import tensorflow as tf

    from edge_sdk.outputs import check_dir_output, mark_output_dir, path_inputs

    if not isinstance(shards, int) or shards < 1:
        raise DatasetError(f"shards must be a positive integer, got {shards!r}")
    out_dir = Path(out_dir)
    protected = path_inputs(getattr(dataset, "source_path", None), "dataset's source")
    check_dir_output(out_dir, "out_dir", protected, force=force, replace=True, force_hint="force=True")
    first = _features_of(dataset.x_train)
    features = {name: {"shape": list(arr.shape[1:]), "dtype": str(arr.dtype)} for name, arr in first.items()}
    counts = {}
    with atomic_output_dir(out_dir) as tmp:
        for split in SPLITS:
            x, y = dataset.split(split)
            cols = _features_of(x)
            n = len(y)
            split_shards = max(1, min(shards, n))
            paths = [tmp / f"{split}-{i:05d}-of-{split_shards:05d}.tfrecord" for i in range(split_shards)]
            writers = [tf.io.TFRecordWriter(str(p)) for p in paths]
            try:
                indices: Iterable[int] = range(n)
                if progress:
                    from edge_sdk.console import progress as bar

                    indices = bar(indices, desc=f"write {split}", total=n)
                for i in indices:
                    feats = {}
                    for name, arr in cols.items():
                        value = arr[i].reshape(-1)
                        if value.dtype.kind == "f":
                            feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=value))
                        else:
                            feats[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=value.astype(np.int64)))
                    feats[LABEL_KEY] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y[i])]))
                    example = tf.train.Example(features=tf.train.Features(feature=feats))
                    writers[i % split_shards].write(example.SerializeToString())
            finally:
                for w in writers:
                    w.close()
            counts[split] = {"examples": int(n), "shards": split_shards}
        meta = {
            "format": FORMAT,
            "name": dataset.name,
            "task": dataset.task,
            "num_classes": int(dataset.num_classes),
            "labels": list(dataset.labels),
            "preprocessing": dataset.preprocessing,
            "feature_spec": dataset.feature_spec.to_dict() if dataset.feature_spec is not None else None,
            "features": features,
            "splits": counts,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        mark_output_dir(tmp, "training.tfrecord.write_dataset", record_entries=True)  # promoted with the shards
    return out_dir


def read_meta(directory: str | Path) -> dict[str, Any]:
    """Read and check ``dataset.json`` of a TFRecord dataset directory."""
    directory = Path(directory)
    path = directory / META_FILE
    if not path.is_file():
        raise DatasetError(
            f"{directory} is not a TFRecord dataset directory: expected {META_FILE} in it "
            "(write one with training.tfrecord.write_dataset; format in docs/training.md)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from None
    missing = [k for k in ("task", "num_classes", "labels", "features") if k not in meta]
    if missing:
        raise DatasetError(f"{path}: missing field(s) {missing}")
    if meta["task"] not in ("image", "tabular"):
        raise DatasetError(f"{path}: expected task 'image' or 'tabular', got {meta['task']!r}")
    for split in SPLITS:
        if not shard_paths(directory, split):
            raise DatasetError(f"{directory}: no shards for split {split!r}: expected files named {split}-*.tfrecord")
    return meta


def shard_paths(directory: str | Path, split: str) -> list[Path]:
    """Sorted shard files of ``split``."""
    return sorted(Path(directory).glob(f"{split}-*.tfrecord"))


def read_split(
    directory: str | Path, split: str, meta: dict[str, Any] | None = None, shuffle: bool = False, seed: int = 0
):
    """A tf.data pipeline of ``(x, label)`` read from the split's shards with ``interleave``.

    Without shuffle, shards are taken in name order, one record from each in
    turn (the order :func:`write_dataset` wrote). With shuffle the shard order
    is shuffled by ``seed`` and records are read in parallel.
    """
    import tensorflow as tf

    directory = Path(directory)
    meta = meta or read_meta(directory)
    files = [str(p) for p in shard_paths(directory, split)]
    if not files:
        raise DatasetError(f"{directory}: no shards for split {split!r}")
    spec = {}
    for name, info in meta["features"].items():
        shape = [int(d) for d in info["shape"]]
        dtype = tf.float32 if np.dtype(info["dtype"]).kind == "f" else tf.int64
        spec[name] = tf.io.FixedLenFeature([int(np.prod(shape)) if shape else 1], dtype)
    spec[LABEL_KEY] = tf.io.FixedLenFeature([1], tf.int64)
    shapes = {name: [int(d) for d in info["shape"]] for name, info in meta["features"].items()}
    dtypes = {name: info["dtype"] for name, info in meta["features"].items()}
    image = meta["task"] == "image"

    def parse(record):
        parsed = tf.io.parse_single_example(record, spec)
        x = {}
        for name in shapes:
            value = tf.reshape(parsed[name], shapes[name])
            if np.dtype(dtypes[name]).kind != "f":
                value = tf.cast(value, dtypes[name])
            x[name] = value
        label = tf.reshape(parsed[LABEL_KEY], [])
        return (x["image"] if image and list(x) == ["image"] else x), label

    file_ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        file_ds = file_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = file_ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=len(files),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not shuffle,
    )
    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)


def load_dataset_dir(directory: str | Path, seed: int = 0):
    """A :class:`training.dataset_type.Dataset` over a TFRecord directory.

    The numpy fields (``x_train`` ...) are read once into memory; ``as_tf_dataset``
    streams from the shards with interleave instead.
    """
    import tensorflow as tf

    from training.features import FeatureSpec

    directory = Path(directory)
    meta = read_meta(directory)
    arrays = {}
    for split in SPLITS:
        xs: dict[str, list[np.ndarray]] = {}
        ys: list[int] = []
        try:
            for x, y in read_split(directory, split, meta).batch(4096).as_numpy_iterator():
                cols = x if isinstance(x, dict) else {"image": x}
                for name, arr in cols.items():
                    xs.setdefault(name, []).append(arr)
                ys.extend(y.tolist())
        except tf.errors.OpError as exc:
            raise DatasetError(f"{directory}: cannot read split {split!r}: {exc.message}") from None
        cols = {name: np.concatenate(parts) for name, parts in xs.items()}
        x_out = cols["image"] if meta["task"] == "image" and list(cols) == ["image"] else cols
        arrays[split] = (x_out, np.asarray(ys, dtype=np.int64))

    def source(split, shuffle=False, seed=seed):
        return read_split(directory, split, meta, shuffle=shuffle, seed=seed)

    spec = FeatureSpec.from_dict(meta["feature_spec"], str(directory / META_FILE)) if meta.get("feature_spec") else None
    return Dataset(
        name=meta.get("name") or directory.name,
        task=meta["task"],
        x_train=arrays["train"][0],
        y_train=arrays["train"][1],
        x_val=arrays["val"][0],
        y_val=arrays["val"][1],
        x_test=arrays["test"][0],
        y_test=arrays["test"][1],
        num_classes=int(meta["num_classes"]),
        labels=list(meta["labels"]),
        preprocessing=meta.get("preprocessing") or {},
        feature_spec=spec,
        seed=seed,
        tf_source=source,
        source_path=directory,
    )
