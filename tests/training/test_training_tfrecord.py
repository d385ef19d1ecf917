"""TFRecord round trip: write sharded files, read them back through interleave, train from disk."""

import json

import numpy as np
import pytest

from training import datasets, tfrecord
from training.errors import DatasetError


def test_image_round_trip_through_shards(digits, tmp_path):
    out = tfrecord.write_dataset(digits, tmp_path / "digits_tfr", shards=3)
    assert [p.name for p in tfrecord.shard_paths(out, "train")] == [
        f"train-0000{i}-of-00003.tfrecord" for i in range(3)
    ]
    back = datasets.load(out)
    assert back.task == "image" and back.labels == digits.labels and back.preprocessing == digits.preprocessing
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(back.split(split)[0], digits.split(split)[0])
        np.testing.assert_array_equal(back.split(split)[1], digits.split(split)[1])
    # the tf.data pipeline streams from the shards (interleave), in order when not shuffled
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in back.as_tf_dataset("test", batch_size=50)], strict=False)
    np.testing.assert_array_equal(np.concatenate(xs), digits.x_test)
    shuffled = np.concatenate([y.numpy() for _, y in back.as_tf_dataset("train", batch_size=256)])
    assert sorted(shuffled.tolist()) == sorted(digits.y_train.tolist())
    assert not np.array_equal(shuffled, digits.y_train)


def test_tabular_round_trip_keeps_dtypes_and_spec(adult, tmp_path):
    small = datasets.Dataset(
        name="adult-small",
        task="tabular",
        x_train=adult.take("train", 300),
        y_train=adult.y_train[:300],
        x_val=adult.take("val", 50),
        y_val=adult.y_val[:50],
        x_test=adult.take("test", 70),
        y_test=adult.y_test[:70],
        num_classes=2,
        labels=adult.labels,
        preprocessing=adult.preprocessing,
        feature_spec=adult.feature_spec,
    )
    out = tfrecord.write_dataset(small, tmp_path / "adult_tfr", shards=4)
    back = datasets.load(out)
    assert back.feature_spec.fitted and back.feature_spec.input_names == adult.feature_spec.input_names
    for name, col in small.x_test.items():
        assert back.x_test[name].dtype == col.dtype and back.x_test[name].shape == col.shape
        np.testing.assert_array_equal(back.x_test[name], col)
    x, y = next(iter(back.as_tf_dataset("train", batch_size=32)))
    assert x["education"].dtype.name == "int32" and x["age"].dtype.name == "float32"


def test_training_reads_from_the_tfrecord_directory(digits, tmp_path):
    from training import train

    out = tfrecord.write_dataset(digits, tmp_path / "d", shards=2)
    result = train.fit("cnn-student", str(out), epochs=2, progress=False)
    assert result.metrics["accuracy"] > 0.3 and result.dataset.tf_source is not None


def test_bad_directories_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="dataset.json"):
        datasets.load(tmp_path)
    (tmp_path / "dataset.json").write_text(
        json.dumps(
            {
                "task": "image",
                "num_classes": 2,
                "labels": ["a", "b"],
                "features": {"image": {"shape": [2], "dtype": "float32"}},
            }
        )
    )
    with pytest.raises(DatasetError, match=r"no shards for split 'train'"):
        datasets.load(tmp_path)
