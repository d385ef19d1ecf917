"""Issue 27 item 5: every training library call that writes a folder follows edge_sdk.outputs' rules itself.

save_savedmodel, tfrecord.write_dataset and train.fit refuse a non-empty folder edge-sdk did not write
(left byte for byte as it was) unless force=True, never write onto their inputs even with force, and
leave the marker inside what they write, so a second call replaces (or writes into) their own output
without force. The marker is harmless to every reader of the folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.errors import OutputError
from edge_sdk.outputs import MARKER_FILE, Protected, read_marker
from training import saving, tfrecord
from training.dataset_type import Dataset


def _digest(path: Path) -> str:
    """sha256 over every entry under ``path``: names, bytes, and empty directories."""
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        digest.update(str(p.relative_to(path)).encode() + (p.read_bytes() if p.is_file() else b"/"))
    return digest.hexdigest()


def _foreign(folder: Path) -> Path:
    """A folder of someone else's: a photo and a nested notes file."""
    (folder / "album").mkdir(parents=True)
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not edge-sdk's")
    (folder / "album" / "notes.txt").write_text("keep me\n")
    return folder


@pytest.fixture(scope="module")
def dense():
    """A one-Dense-layer tf_keras model with a named input and output (nothing trained)."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    x = tf_keras.Input((4,), name="features")
    return tf_keras.Model(x, tf_keras.layers.Dense(3, name="scores")(x))


@pytest.fixture(scope="module")
def tiny_dataset():
    """12/6/6 random 4x4x1 'images' of 2 classes: enough for shards, nothing to train."""
    rng = np.random.default_rng(0)

    def part(n):
        return rng.random((n, 4, 4, 1), dtype=np.float32), np.arange(n, dtype=np.int64) % 2

    (xt, yt), (xv, yv), (xs, ys) = part(12), part(6), part(6)
    return Dataset("tiny", "image", xt, yt, xv, yv, xs, ys, 2, ["a", "b"], {"scale": 1.0})


# -- save_savedmodel ---------------------------------------------------------------------------------


def test_save_savedmodel_refuses_a_foreign_folder_and_leaves_it_untouched(dense, tmp_path):
    folder = _foreign(tmp_path / "photos")
    before = _digest(folder)
    with pytest.raises(OutputError) as err:
        saving.save_savedmodel(dense, folder)
    message = str(err.value)
    assert "\n" not in message and str(folder) in message and "force=True" in message and "photo.jpg" in message
    assert _digest(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no staging directory left beside it


def test_save_savedmodel_force_replaces_and_the_marked_model_loads_and_serves(dense, tmp_path):
    import tensorflow as tf
    import tf_keras

    from converters.model_files import load

    folder = _foreign(tmp_path / "sm")
    saving.save_savedmodel(dense, folder, force=True)
    assert not (folder / "photo.jpg").exists() and (folder / "saved_model.pb").is_file()
    assert read_marker(folder)["command"] == "training.saving.save_savedmodel"
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    want = dense(x).numpy()
    served = tf.saved_model.load(str(folder)).signatures["serving_default"](features=tf.constant(x))
    np.testing.assert_allclose(served["scores"].numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(tf_keras.models.load_model(folder).predict(x, verbose=0), want, rtol=1e-6)
    np.testing.assert_allclose(load(folder).predict({"features": x}), want, rtol=1e-6)


def test_save_savedmodel_replaces_its_own_output_without_force(dense, tmp_path):
    first = saving.save_savedmodel(dense, tmp_path / "sm")
    written = read_marker(first)
    assert written is not None and "saved_model.pb" in written["entries"]
    saving.save_savedmodel(dense, first)  # a second save: edge-sdk's folder, no force needed
    (first / "mine.txt").write_text("added since")
    with pytest.raises(OutputError, match="mine.txt"):  # but not over a file a person put in it since
        saving.save_savedmodel(dense, first)
    assert (first / "mine.txt").read_text() == "added since"


def test_save_savedmodel_onto_or_around_an_input_is_refused_even_with_force(dense, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.npy").write_bytes(b"input")
    inputs = [Protected(data / "x.npy", "input data")]
    for out in (data / "x.npy", data, tmp_path):  # is, contains, contains
        with pytest.raises(OutputError, match="refusing to write over an input"):
            saving.save_savedmodel(dense, out, force=True, protected=inputs)
    assert (data / "x.npy").read_bytes() == b"input"


def test_save_keras_replaces_a_keras_file_but_never_another_kind(dense, tmp_path):
    path = tmp_path / "m.keras"
    saving.save_keras(dense, path)
    saving.save_keras(dense, path)  # its own kind: replaced
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(OutputError, match="not a .keras"):
        saving.save_keras(dense, text)
    assert text.read_text() == "not a model"


# -- tfrecord.write_dataset -------------------------------------------------------------------------


def test_write_dataset_refuses_a_foreign_folder_and_force_replaces_it(tiny_dataset, tmp_path):
    folder = _foreign(tmp_path / "shards")
    before = _digest(folder)
    with pytest.raises(OutputError, match="force=True") as err:
        tfrecord.write_dataset(tiny_dataset, folder, shards=2)
    assert "\n" not in str(err.value) and _digest(folder) == before
    tfrecord.write_dataset(tiny_dataset, folder, shards=2, force=True)
    assert not (folder / "photo.jpg").exists() and (folder / MARKER_FILE).is_file()


def test_written_dataset_with_its_marker_reads_back_and_is_replaced_without_force(tiny_dataset, tmp_path):
    from training import datasets

    out = tfrecord.write_dataset(tiny_dataset, tmp_path / "tfr", shards=2)
    assert read_marker(out)["command"] == "training.tfrecord.write_dataset"
    assert MARKER_FILE not in [p.name for split in ("train", "val", "test") for p in tfrecord.shard_paths(out, split)]
    assert tfrecord.read_meta(out)["splits"]["train"] == {"examples": 12, "shards": 2}
    back = datasets.load(out)
    np.testing.assert_array_equal(back.x_val, tiny_dataset.x_val)
    assert back.source_path == out
    tfrecord.write_dataset(tiny_dataset, out, shards=3)  # its own folder: replaced, no force
    assert len(tfrecord.shard_paths(out, "train")) == 3
    # the directory a dataset streams from is never its own output, even with force
    before = _digest(out)
    with pytest.raises(OutputError, match="dataset's source"):
        tfrecord.write_dataset(back, out, force=True)
    with pytest.raises(OutputError, match="dataset's source"):
        tfrecord.write_dataset(back, out / "inside", force=True)
    assert _digest(out) == before


# -- train.fit ---------------------------------------------------------------------------------------


def test_fit_refuses_a_foreign_out_dir_before_any_work(tmp_path, monkeypatch):
    from training import datasets, train

    monkeypatch.setattr(datasets, "load", lambda *a, **k: pytest.fail("loaded data before checking out_dir"))
    folder = _foreign(tmp_path / "home")
    before = _digest(folder)
    with pytest.raises(OutputError) as err:
        train.fit("cnn-student", "digits", epochs=1, out_dir=folder, progress=False)
    assert "\n" not in str(err.value) and "out_dir" in str(err.value) and "force=True" in str(err.value)
    assert _digest(folder) == before


def test_fit_out_dir_onto_or_inside_its_dataset_is_refused_even_with_force(tiny_dataset, tmp_path):
    from training import train

    data_dir = tfrecord.write_dataset(tiny_dataset, tmp_path / "tfr", shards=1)
    table = tmp_path / "t.csv"
    table.write_text("a,label\n1,0\n")
    before = _digest(tmp_path)
    for dataset, out in ((str(data_dir), data_dir), (str(data_dir), data_dir / "run"), (str(table), tmp_path)):
        with pytest.raises(OutputError, match="refusing to write over an input"):
            train.fit("cnn-student", dataset, epochs=1, out_dir=out, force=True, progress=False)
    from training import datasets

    loaded = datasets.load(data_dir)  # a Dataset object remembers where it was read from
    with pytest.raises(OutputError, match="dataset's source"):
        train.fit("cnn-student", loaded, epochs=1, out_dir=data_dir / "run", force=True, progress=False)
    assert _digest(tmp_path) == before


def test_fit_force_writes_into_a_foreign_folder_and_marks_it(digits, tmp_path):
    from training import train

    folder = _foreign(tmp_path / "shared")
    result = train.fit(
        "cnn-student",
        digits,
        epochs=1,
        out_dir=folder,
        force=True,
        progress=False,
        histograms=False,
        early_stopping=False,
        steps_per_epoch=2,
    )
    assert (folder / "photo.jpg").read_bytes().startswith(b"\xff\xd8") and (folder / "album" / "notes.txt").exists()
    assert read_marker(folder)["command"] == "train" and Path(result.paths["savedmodel"]).is_dir()
    assert read_marker(result.paths["savedmodel"]) is not None  # the SavedModel carries its own marker
    assert json.loads((folder / "metrics.json").read_text())["epochs_run"] == 1


# -- embeddings.write_projector ----------------------------------------------------------------------


def test_write_projector_refuses_a_foreign_folder_unless_force_and_writes_into_its_own(tmp_path):
    import tensorflow as tf
    import tf_keras

    from training.embeddings import write_projector

    colour = tf_keras.Input((1,), name="colour", dtype="int32")
    model = tf_keras.Model(colour, tf_keras.layers.Embedding(5, 2, name="embed_colour")(colour))
    foreign = _foreign(tmp_path / "logs" / "projector")
    before = _digest(foreign)
    with pytest.raises(OutputError, match="force=True") as err:
        write_projector(model, tmp_path / "logs")
    assert "\n" not in str(err.value) and _digest(foreign) == before
    out = write_projector(model, tmp_path / "logs", force=True)  # writes into it, keeps what was there
    assert out == foreign and (foreign / "photo.jpg").is_file() and (foreign / "colour.tsv").is_file()
    assert read_marker(out)["command"] == "training.embeddings.write_projector"
    assert write_projector(model, tmp_path / "logs") == out  # edge-sdk's folder now: no force needed
    assert tf.train.latest_checkpoint(str(out))  # the marker beside the checkpoint bothers nothing


# -- tiny_models.build_digits_models ---------------------------------------------------------------


def test_build_digits_models_checks_its_folder_before_training(tmp_path, monkeypatch):
    from training import tiny_models

    class Trained(Exception):
        pass

    def reached_training(*args, **kwargs):
        raise Trained

    monkeypatch.setattr(tiny_models, "train_tiny_digits_cnn", reached_training)
    folder = _foreign(tmp_path / "models")
    before = _digest(folder)
    with pytest.raises(OutputError, match="force=True"):
        tiny_models.build_digits_models(folder)
    assert _digest(folder) == before
    with pytest.raises(Trained):  # force: on to training, having marked the folder as edge-sdk's
        tiny_models.build_digits_models(folder, force=True)
    with pytest.raises(Trained):  # and then it is edge-sdk's: no force needed
        tiny_models.build_digits_models(folder)
    assert read_marker(folder)["command"] == "training.tiny_models.build_digits_models"
