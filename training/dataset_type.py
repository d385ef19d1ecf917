"""The :class:`Dataset` type every data source returns, and the split names.

Its own module so the sources (built-in arrays and tables in
:mod:`training.datasets`, sharded TFRecords in :mod:`training.tfrecord`) can
build one without importing each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import DatasetError
from training.features import FeatureSpec

SPLITS = ("train", "val", "test")

ArrayOrDict = np.ndarray | dict[str, np.ndarray]


@dataclasses.dataclass
class Dataset:
    """A dataset split three ways, with what the device needs to preprocess raw inputs."""

    name: str
    task: str  # "image" | "tabular"
    x_train: ArrayOrDict
    y_train: np.ndarray
    x_val: ArrayOrDict
    y_val: np.ndarray
    x_test: ArrayOrDict
    y_test: np.ndarray
    num_classes: int
    labels: list[str]
    preprocessing: dict[str, Any]
    feature_spec: FeatureSpec | None = None
    seed: int = 0
    # set for TFRecord-backed datasets: (split, batch_size, shuffle, seed) -> tf.data.Dataset of (x, y)
    tf_source: Callable[..., Any] | None = dataclasses.field(default=None, repr=False)
    # the file or TFRecord directory the data was read from (None for built-in data): outputs never land on it
    source_path: Path | None = None

    def split(self, split: str):
        """``(x, y)`` of ``train``, ``val`` or ``test``."""
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def size(self, split: str) -> int:
        """Number of examples in ``split``."""
        return int(len(self.split(split)[1]))

    @property
    def input_shape(self):
        """Per-example image shape (H, W, C); for tables, ``{name: (1,)}``."""
        if self.task == "image":
            return tuple(self.x_train.shape[1:])
        return {k: tuple(v.shape[1:]) for k, v in self.x_train.items()}

    def take(self, split: str, n: int) -> ArrayOrDict:
        """The first ``n`` inputs of ``split`` (e.g. calibration samples: ``take("train", 200)``)."""
        x, _ = self.split(split)
        if isinstance(x, dict):
            return {k: v[:n] for k, v in x.items()}
        return x[:n]

    def as_tf_dataset(
        self,
        split: str,
        batch_size: int = 64,
        shuffle: bool | None = None,
        cache: bool = True,
        seed: int | None = None,
        repeat: bool = False,
        drop_remainder: bool = False,
    ):
        """A ``tf.data`` pipeline of ``(x, y)`` batches: cache, shuffle (train by default), batch, prefetch.

        The cache sits before the shuffle, so each epoch is read from memory and
        reshuffled; prefetch uses AUTOTUNE so input preparation overlaps training.
        """
        import tensorflow as tf

        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise DatasetError(f"batch_size must be a positive integer, got {batch_size!r}")
        shuffle = (split == "train") if shuffle is None else shuffle
        seed = self.seed if seed is None else seed
        if self.tf_source is not None:
            ds = self.tf_source(split, shuffle=shuffle, seed=seed)
        else:
            x, y = self.split(split)
            ds = tf.data.Dataset.from_tensor_slices((x, y))
        if cache:
            ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(max(1, self.size(split)), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        return ds.prefetch(tf.data.AUTOTUNE)

    def summary(self) -> dict[str, Any]:
        """Sizes and shapes, for logs and ``--json``."""
        return {
            "name": self.name,
            "task": self.task,
            "num_classes": self.num_classes,
            "train": self.size("train"),
            "val": self.size("val"),
            "test": self.size("test"),
            "input_shape": self.input_shape,
        }
