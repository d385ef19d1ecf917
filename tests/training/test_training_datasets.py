"""Built-in datasets: shapes, ranges, fixed stratified splits, tf.data pipelines."""

import numpy as np
import pytest

from training import datasets
from training.errors import UnknownNameError


def test_digits_images_are_nhwc_float_in_unit_range(digits):
    assert digits.task == "image"
    assert digits.x_train.shape[1:] == (8, 8, 1)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() <= 1.0
    assert digits.x_train.max() == 1.0  # raw 16 -> 1.0: the documented scale really is 1/16
    assert digits.preprocessing["scale"] == pytest.approx(1 / 16)
    assert digits.preprocessing["image"] == {"height": 8, "width": 8, "channels": 1}
    total = digits.size("train") + digits.size("val") + digits.size("test")
    assert total == 1797
    assert digits.size("test") == pytest.approx(0.2 * total, abs=1)


def test_mnist_is_the_real_5000_images(mnist):
    d = mnist
    assert d.x_train.shape[1:] == (28, 28, 1)
    assert d.size("train") + d.size("val") + d.size("test") == 5000
    assert d.preprocessing["scale"] == pytest.approx(1 / 255)
    # real handwriting: mostly background with some ink, not noise
    ink = (d.x_test > 0.5).mean()
    assert 0.05 < ink < 0.3


def test_splits_are_fixed_disjoint_and_stratified(digits):
    again = datasets.load("digits")
    np.testing.assert_array_equal(digits.x_test, again.x_test)
    np.testing.assert_array_equal(digits.y_train, again.y_train)
    other = datasets.load("digits", seed=1)
    assert not np.array_equal(digits.y_test, other.y_test)
    # disjoint: no image appears in two splits
    keys = {s: {x.tobytes() for x in digits.split(s)[0]} for s in ("train", "val", "test")}
    from sklearn.datasets import load_digits

    raw = load_digits().images
    unique_images = len({(r / 16.0).astype(np.float32).reshape(8, 8, 1).tobytes() for r in raw})
    assert len(keys["train"] | keys["val"] | keys["test"]) == unique_images
    # stratified: every class's share in test within 1.5 points of train
    train_share = np.bincount(digits.y_train) / digits.size("train")
    test_share = np.bincount(digits.y_test) / digits.size("test")
    assert np.abs(train_share - test_share).max() < 0.015


def test_adult_encoding_and_manifest_preprocessing(adult):
    assert adult.task == "tabular" and adult.num_classes == 2 and adult.labels == ["<=50K", ">50K"]
    assert adult.size("train") + adult.size("val") + adult.size("test") == 48842
    spec = adult.feature_spec
    for f in spec.features:
        col = adult.x_train[f.input_name]
        assert col.shape == (adult.size("train"), 1)
        if f.kind == "categorical":
            assert col.dtype == np.int32 and col.min() >= 0 and col.max() <= f.oov_index
        else:
            assert col.dtype == np.float32
            # standardised on the training split
            assert abs(float(col.mean())) < 1e-3 and float(col.std()) == pytest.approx(1.0, abs=1e-3)
    pre = adult.preprocessing
    assert pre["kind"] == "tabular"
    by_name = {f["name"]: f for f in pre["features"]}
    assert by_name["native_country"]["column"] == "native-country"
    assert "United-States" in by_name["native_country"]["vocabulary"]
    assert by_name["capital_gain"]["transform"] == "log1p"
    # the manifest constants reproduce the encoding from a raw value
    age = by_name["age"]
    assert 40 * age["scale"] + age["offset"] == pytest.approx((40 - age["mean"]) / age["std"])
    share = adult.y_test.mean()
    assert 0.22 < share < 0.26  # the known ~24% positive rate


def test_as_tf_dataset_batches_shuffles_train_only(digits):
    ds = digits.as_tf_dataset("train", batch_size=100)
    x, y = next(iter(ds))
    assert tuple(x.shape) == (100, 8, 8, 1) and y.dtype.name == "int64"
    first_epoch = np.concatenate([b.numpy() for _, b in ds])
    second_epoch = np.concatenate([b.numpy() for _, b in ds])
    assert sorted(first_epoch.tolist()) == sorted(digits.y_train.tolist())
    assert not np.array_equal(first_epoch, second_epoch)  # reshuffled each epoch
    test_labels = np.concatenate([b.numpy() for _, b in digits.as_tf_dataset("test", batch_size=64)])
    np.testing.assert_array_equal(test_labels, digits.y_test)


def test_tabular_tf_dataset_yields_named_inputs(adult):
    x, y = next(iter(adult.as_tf_dataset("val", batch_size=16)))
    assert set(x) == set(adult.feature_spec.input_names)
    assert x["education"].dtype.name == "int32" and tuple(x["age"].shape) == (16, 1)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError) as err:
        datasets.load("cifar10")
    for name in ("digits", "mnist", "adult"):
        assert name in str(err.value)


def test_subset_train_keeps_the_same_rows_of_every_table_column():
    from training.dataset_type import Dataset

    n = 40
    y = np.arange(n) % 2
    table = {"age": np.arange(n, dtype=np.float32).reshape(-1, 1), "job": np.arange(n, dtype=np.int32).reshape(-1, 1)}
    data = Dataset("t", "tabular", table, y, table, y, table, y, 2, ["a", "b"], {})
    small = datasets.subset_train(data, 10, seed=0)
    assert set(small.x_train) == {"age", "job"} and len(small.y_train) == 10
    rows = small.x_train["age"][:, 0].astype(int)
    np.testing.assert_array_equal(small.x_train["job"][:, 0], rows)  # the same rows in each column
    np.testing.assert_array_equal(small.y_train, y[rows])
