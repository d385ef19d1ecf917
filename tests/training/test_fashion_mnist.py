"""The built-in fashion-mnist dataset: Debian's IDX files read with numpy, split like mnist, clear errors.

Most tests write small IDX files into a temporary directory and point
``EDGE_SDK_FASHION_MNIST_DIR`` at it, so they never touch /usr/share; the last ones
read the installed package (``sudo apt-get install dataset-fashion-mnist``).
"""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from training import datasets
from training.errors import DatasetError, UnknownNameError

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = all(
    (datasets.FASHION_MNIST_DIR / f).is_file() for pair in datasets.FASHION_MNIST_FILES.values() for f in pair
)


def _idx(images_or_labels: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: 0, 0, type 0x08, ndim, big-endian sizes, then the data."""
    a = np.ascontiguousarray(images_or_labels, dtype=np.uint8)
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def _write_set(folder: Path, n_train: int = 120, n_test: int = 30, seed: int = 0) -> dict:
    """Fake Fashion-MNIST files: each image's first pixel holds its global index (mod 256), its label cycles 0-9."""
    rng = np.random.default_rng(seed)
    out = {}
    start = 0
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(start, start + n) % 10).astype(np.uint8)
        image_file, label_file = datasets.FASHION_MNIST_FILES[part]
        (folder / image_file).write_bytes(gzip.compress(_idx(images)))
        (folder / label_file).write_bytes(gzip.compress(_idx(labels)))
        out[part] = (images, labels)
        start += n
    return out


@pytest.fixture
def fake_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(tmp_path))
    return tmp_path


def test_loads_pooled_scaled_and_split_like_mnist(fake_dir):
    raw = _write_set(fake_dir)
    d = datasets.load("fashion-mnist", seed=0)
    assert d.name == "fashion-mnist" and d.task == "image"
    assert d.labels == [
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
    assert d.num_classes == 10
    assert d.x_train.shape[1:] == (28, 28, 1) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert (d.size("train"), d.size("val"), d.size("test")) == (105, 15, 30)  # 70/10/20 of the 150 pooled images
    assert d.preprocessing == datasets.image_preprocessing(255.0, 28, 28, 1)
    # every split image is a real file image scaled by 1/255, with its own label
    pool = np.concatenate([raw["train"][0], raw["t10k"][0]])
    pool_labels = np.concatenate([raw["train"][1], raw["t10k"][1]])
    by_bytes = {img.tobytes(): int(label) for img, label in zip(pool, pool_labels, strict=False)}
    seen = set()
    for split in ("train", "val", "test"):
        x, y = d.split(split)
        for image, label in zip(x, y, strict=False):
            key = np.rint(image[..., 0] * 255).astype(np.uint8).tobytes()
            assert by_bytes[key] == label
            seen.add(key)
    assert len(seen) == 150  # disjoint and complete
    assert np.bincount(d.y_test).tolist() == [3] * 10  # stratified


def test_split_is_deterministic_per_seed(fake_dir):
    _write_set(fake_dir)
    a, b = datasets.load("fashion-mnist", seed=3), datasets.load("fashion-mnist", seed=3)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    other = datasets.load("fashion-mnist", seed=4)
    assert not np.array_equal(a.x_test, other.x_test)


def test_training_subset_keeps_val_and_test_whole(fake_dir):
    _write_set(fake_dir)
    full = datasets.load("fashion-mnist", seed=1)
    small = datasets.load("fashion-mnist:50", seed=1)
    assert small.name == "fashion-mnist:50" and small.size("train") == 50
    assert np.bincount(small.y_train).tolist() == [5] * 10
    np.testing.assert_array_equal(small.x_test, full.x_test)
    np.testing.assert_array_equal(small.x_val, full.x_val)
    full_train = {x.tobytes() for x in full.x_train}
    assert all(x.tobytes() in full_train for x in small.x_train)
    np.testing.assert_array_equal(small.x_train, datasets.load("fashion-mnist:50", seed=1).x_train)
    with pytest.raises(DatasetError, match="expected a training size from 10 to 105, got 5000"):
        datasets.load("fashion-mnist:5000", seed=1)
    with pytest.raises(UnknownNameError, match="fashion-mnist:N"):
        datasets.load("fashion-mnist:many")


def test_missing_files_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(datasets.MissingDataError) as info:
        datasets.load("fashion-mnist")
    message = str(info.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message and "\n" not in message
    assert "train-images-idx3-ubyte.gz" in message


@pytest.mark.parametrize("damage", ["truncated", "not gzip", "wrong magic", "short data"])
def test_corrupt_files_give_one_clear_line(fake_dir, damage):
    _write_set(fake_dir)
    path = fake_dir / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "not gzip":
        path.write_bytes(b"<html>not found</html>")
    elif damage == "wrong magic":
        path.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + gzip.decompress(data)[4:]))
    else:
        path.write_bytes(gzip.compress(gzip.decompress(data)[:-100]))
    expected = {
        "truncated": "cannot read it",
        "not gzip": "cannot read it",
        "wrong magic": "magic 00000803), got 00000d03",
        "short data": "the header promises",
    }[damage]
    with pytest.raises(DatasetError) as info:
        datasets.load("fashion-mnist")
    assert expected in str(info.value)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_labels_out_of_range_are_refused(fake_dir):
    _write_set(fake_dir)
    labels = np.full(30, 12, dtype=np.uint8)
    (fake_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels)))
    with pytest.raises(DatasetError, match="expected labels 0-9, got 12"):
        datasets.load("fashion-mnist")


def test_cli_exits_2_with_the_install_line_when_missing(tmp_path, monkeypatch, capsys):
    from edge_sdk.cli import main

    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    code = main(
        [
            "train",
            "--model",
            "cnn",
            "--dataset",
            "fashion-mnist",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "sudo apt-get install dataset-fashion-mnist" in last
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "model.keras").exists()


@pytest.mark.skipif(not INSTALLED, reason="needs Debian's dataset-fashion-mnist (make android-deps installs it)")
def test_the_installed_package_is_the_real_70000_images():
    d = datasets.load("fashion-mnist:1000", seed=0)
    assert d.size("val") == 7000 and d.size("test") == 14000 and d.size("train") == 1000
    assert np.bincount(d.y_test).tolist() == [1400] * 10
    assert d.x_test.min() == 0.0 and d.x_test.max() == 1.0
    # real clothing photographs: a dark background around a lit object, not noise
    background = (d.x_test[:, 0, 0, 0] == 0).mean()
    assert background > 0.9 and 0.2 < d.x_test.mean() < 0.45
