"""Input detection: tf_keras .keras/.h5, Keras 3 .keras, SavedModel; clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from converters import model_files
from converters.errors import ModelLoadError, StageNotApplicableError


def test_tf_keras_files_and_keras_savedmodel_take_every_stage(digits_models, digits):
    want = digits_models.teacher.predict(digits.x_test[:20], verbose=0)
    for path in (digits_models.teacher_keras, digits_models.teacher_h5, digits_models.teacher_savedmodel):
        model = model_files.load(path)
        assert model.kind == model_files.KIND_TF_KERAS, path
        assert model.input_names == ["image"]
        assert {"prune", "qat", "distill-student", "quantize"} <= set(model.capabilities)
        np.testing.assert_allclose(model.predict({"image": digits.x_test[:20]}), want, atol=1e-5)


def test_keras3_file_is_detected_and_refuses_tfmot_stages_naming_what_applies(digits_models, digits):
    model = model_files.load(digits_models.keras3)
    assert model.kind == model_files.KIND_KERAS3
    assert model.predict({"image": digits.x_test[:4]}).shape == (4, 10)
    with pytest.raises(StageNotApplicableError) as err:
        model.require("prune", "prune")
    message = str(err.value)
    assert "Keras 3" in message and "tf_keras" in message
    assert "quantize" in message and "int8" in message


def test_plain_savedmodel_uses_serving_signature(tmp_path):
    from converters._tf import tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": 2.0 * x}

    module = Doubler()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    model = model_files.load(tmp_path / "sm")
    assert model.kind == model_files.KIND_SAVEDMODEL
    assert model.inputs[0].name == "x" and model.inputs[0].shape == (None, 3)
    np.testing.assert_allclose(model.predict({"x": np.ones((2, 3), np.float32)}), 2.0)
    with pytest.raises(StageNotApplicableError, match="no layers to prune"):
        model.require("prune", "prune")


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("model.keras", b"not a zip at all", "expected a .keras archive"),
        ("model.h5", b"garbage bytes here", "header is not HDF5"),
        ("model.pb", b"\x08\x01", "expected a .keras, .h5 or float .tflite file or a SavedModel directory"),
        ("model.tflite", b"not a flatbuffer at all", "expected a float .tflite model"),
    ],
)
def test_files_that_will_not_load_give_clear_errors(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=match):
        model_files.load(path)


def test_missing_path_and_non_savedmodel_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file or directory"):
        model_files.load(tmp_path / "absent.keras")
    with pytest.raises(ModelLoadError, match="not a SavedModel"):
        model_files.load(tmp_path)


def test_truncated_keras_archive_is_a_load_error(tmp_path, digits_models):
    data = digits_models.teacher_keras.read_bytes()
    broken = tmp_path / "broken.keras"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError):
        model_files.load(broken)
