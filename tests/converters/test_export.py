"""Exports: ONNX (opset >= 17, checked with onnxruntime), SavedModel, .keras."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from converters import export, model_files, savedmodel
from converters.errors import ExportError


def test_onnx_from_tf_keras_matches_onnxruntime(digits_models, digits):
    model = model_files.load(digits_models.teacher_keras)
    result = export.export_onnx(model, {"image": digits.x_test[:32]})
    proto = onnx.load_from_string(result.onnx)
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert result.max_abs_diff < 1e-4 and result.samples_checked == 32
    assert result.input_names == ["image"]


def test_onnx_from_keras3_goes_through_a_function(digits_models, digits):
    model = model_files.load(digits_models.keras3)
    result = export.export_onnx(model, {"image": digits.x_test[:8]}, opset=18)
    assert result.opset == 18 and result.max_abs_diff < 1e-4


def test_onnx_opset_below_17_is_refused(digits_models, digits):
    with pytest.raises(ExportError, match="17 or newer"):
        export.export_onnx(model_files.load(digits_models.teacher_keras), {"image": digits.x_test[:2]}, opset=13)


def test_savedmodel_export_follows_the_output_rules_for_every_model_kind(digits_models, digits, tmp_path):
    from edge_sdk.errors import OutputError
    from edge_sdk.outputs import read_marker

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "photo.jpg").write_bytes(b"someone else's")
    k3 = model_files.load(digits_models.keras3)
    with pytest.raises(OutputError, match="force=True") as err:
        savedmodel.export_savedmodel(k3, foreign)
    assert "\n" not in str(err.value) and [p.name for p in foreign.iterdir()] == ["photo.jpg"]
    savedmodel.export_savedmodel(k3, foreign, force=True)  # Keras 3's own export, staged and marked too
    assert not (foreign / "photo.jpg").exists() and read_marker(foreign) is not None
    savedmodel.export_savedmodel(k3, foreign)  # its own folder now: replaced without force
    np.testing.assert_allclose(
        model_files.load(foreign).predict({"image": digits.x_test[:4]}),
        k3.predict({"image": digits.x_test[:4]}),
        atol=1e-5,
    )
    source = model_files.load(digits_models.teacher_savedmodel)  # never exported onto or into itself
    for out in (digits_models.teacher_savedmodel, digits_models.teacher_savedmodel / "again"):
        with pytest.raises(OutputError, match="refusing to write over an input"):
            savedmodel.export_savedmodel(source, out, force=True)


def test_savedmodel_and_keras_exports_reload_with_same_outputs(digits_models, digits, tmp_path):
    model = model_files.load(digits_models.teacher_keras)
    want = model.predict({"image": digits.x_test[:10]})
    savedmodel.export_savedmodel(model, tmp_path / "sm")
    again = model_files.load(tmp_path / "sm")
    np.testing.assert_allclose(again.predict({"image": digits.x_test[:10]}), want, atol=1e-5)
    from converters._tf import tf

    served = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    assert "image" in served.structured_input_signature[1]
    export.export_keras(model, tmp_path / "m.keras")
    np.testing.assert_allclose(
        model_files.load(tmp_path / "m.keras").predict({"image": digits.x_test[:10]}), want, atol=1e-5
    )
    k3 = model_files.load(digits_models.keras3)
    savedmodel.export_savedmodel(k3, tmp_path / "k3sm")
    np.testing.assert_allclose(
        model_files.load(tmp_path / "k3sm").predict({"image": digits.x_test[:4]}),
        k3.predict({"image": digits.x_test[:4]}),
        atol=1e-5,
    )
