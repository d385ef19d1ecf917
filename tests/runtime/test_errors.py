"""Every bad input gets the package's own error, naming what was expected and what came."""

import json

import numpy as np
import pytest

import edge_sdk
from edge_sdk import errors
from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest


def test_missing_file(tmp_path):
    with pytest.raises(errors.ModelNotFoundError, match=r"model file not found: .*nope\.tflite"):
        edge_sdk.load(tmp_path / "nope.tflite")


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(errors.NotTFLiteError, match="is a directory; expected a .tflite file"):
        edge_sdk.load(tmp_path)


@pytest.mark.parametrize(
    "content,what",
    [
        (b"", "an empty file"),
        (b"PK\x03\x04" + b"\0" * 40, "zip archive"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 40, "HDF5"),
        (b'{"format": "x"}' + b" " * 20, "JSON"),
    ],
)
def test_not_tflite(tmp_path, content, what):
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(errors.NotTFLiteError, match=f"expected the file identifier 'TFL3'.*{what}"):
        edge_sdk.load(path)


def test_truncated_file_is_corrupt(runtime_models, tmp_path):
    data = runtime_models["int8"].read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(errors.CorruptModelError, match="could not be loaded by litert"):
        edge_sdk.load(path)


def test_size_limit(runtime_models):
    with pytest.raises(errors.ModelTooLargeError, match="limit \\(max_model_bytes\\) is 100 bytes"):
        edge_sdk.load(runtime_models["int8"], max_model_bytes=100)
    with pytest.raises(errors.ModelTooLargeError, match="max_tensor_bytes"):
        edge_sdk.load(runtime_models["int8"], max_tensor_bytes=64)


@pytest.fixture(scope="module")
def int8_model(runtime_models):
    return edge_sdk.load(runtime_models["int8"])


@pytest.fixture(scope="module")
def two_input_model(runtime_models):
    return edge_sdk.load(runtime_models["two_inputs"])


def test_unknown_input_name(two_input_model):
    with pytest.raises(errors.InputNameError, match="unknown input name 'age'; expected one of: .*numeric"):
        two_input_model.predict({"age": np.zeros((1, 3), np.float32), "category": np.zeros((1, 1), np.int32)})


@pytest.mark.parametrize(
    "inputs,match",
    [
        ([np.zeros((1, 3), np.float32)], "expected 2 input\\(s\\) .*got a sequence of 1"),
        (np.zeros((1, 3), np.float32), "has 2 inputs .*pass a dict by name"),
        ({"numeric": np.zeros((1, 3), np.float32)}, "missing: category"),
    ],
)
def test_wrong_number_of_inputs(two_input_model, inputs, match):
    with pytest.raises(errors.InputCountError, match=match):
        two_input_model.predict(inputs)


@pytest.mark.parametrize(
    "shape,match",
    [
        ((8, 8, 1), r"expects rank 4 .*got shape \(8, 8, 1\) of rank 3 \(add a batch dimension"),
        ((1, 64), r"expects rank 4 .*got shape \(1, 64\) of rank 2"),
        ((2, 8, 7, 1), r"dimension 2 is 7, expected 8"),
        ((0, 8, 8, 1), r"empty batch"),
    ],
)
def test_wrong_rank_or_shape(int8_model, shape, match):
    with pytest.raises(errors.InputShapeError, match=match):
        int8_model.predict(np.zeros(shape, np.float32))


def test_fixed_batch_other_than_one_is_refused(runtime_models):
    model = edge_sdk.load(runtime_models["two_inputs"])
    with pytest.raises(errors.InputShapeError, match="same batch size"):
        model.predict({"numeric": np.zeros((2, 3), np.float32), "category": np.zeros((3, 1), np.int32)})


@pytest.mark.parametrize(
    "data,match",
    [
        (np.zeros((1, 8, 8, 1), np.complex64), "expected float data .*got complex64"),
        (np.array([[["a"] * 1] * 8] * 8).reshape(1, 8, 8, 1), "expected float data .*got <U1"),
    ],
)
def test_dtype_that_cannot_be_cast(int8_model, data, match):
    with pytest.raises(errors.InputDtypeError, match=match):
        int8_model.predict(data)


def test_integer_input_refuses_unsafe_casts(two_input_model):
    numeric = np.zeros((1, 3), np.float32)
    with pytest.raises(errors.InputDtypeError, match="expects int32; got float32, which cannot be cast safely"):
        two_input_model.predict({"numeric": numeric, "category": np.zeros((1, 1), np.float32)})
    with pytest.raises(errors.InputDtypeError, match="outside int32's range"):
        two_input_model.predict({"numeric": numeric, "category": np.array([[2**40]], np.int64)})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_to_quantized_input(int8_model, bad):
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, 3, 3, 0] = bad
    with pytest.raises(errors.NonFiniteInputError, match="input 'image' is quantized \\(int8\\).*1 NaN/inf"):
        int8_model.predict(x)


def test_ragged_list(int8_model):
    with pytest.raises(errors.InputError):
        int8_model.predict([[1.0, 2.0], [3.0]])


def test_errors_are_not_bare_runtime_errors():
    for cls in (errors.InputShapeError, errors.CorruptModelError, errors.NotTFLiteError):
        assert issubclass(cls, errors.EdgeSdkError)


def test_manifest_mismatch_is_refused_unless_verify_false(runtime_models, tmp_path):
    data = runtime_models["int8"].read_bytes()
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    write_manifest(build_manifest(data, "model.tflite", kind="int8", stage="quantize"), manifest_path_for(path))
    assert edge_sdk.load(path).manifest["sha256"] == edge_sdk.load(path).sha256
    tampered = bytearray(data)
    tampered[_largest_weight_offset(data)] ^= 0x7F  # loads and runs fine, but is not the shipped model
    path.write_bytes(bytes(tampered))
    edge_sdk.load(bytes(tampered)).predict(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(errors.IntegrityError, match="does not match its manifest: expected sha256"):
        edge_sdk.load(path)
    assert edge_sdk.load(path, verify=False).manifest is None


def _largest_weight_offset(data: bytes) -> int:
    from ai_edge_litert import schema_py_generated as schema

    root = schema.ModelT.InitFromPackedBuf(data, 0)
    weights = max((b.data for b in root.buffers if b.data is not None), key=len)
    offset = data.find(bytes(bytearray(weights)))
    assert offset > 0
    return offset + len(weights) // 2


def test_unreadable_manifest(runtime_models, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(runtime_models["int8"].read_bytes())
    manifest_path_for(path).write_text("{not json")
    with pytest.raises(errors.ManifestError, match="not valid JSON"):
        edge_sdk.load(path)
    manifest_path_for(path).write_text(json.dumps({"format": "edge-sdk-manifest/1"}))
    with pytest.raises(errors.ManifestError, match="lacks required field"):
        edge_sdk.load(path)


def test_bad_thread_count(runtime_models):
    with pytest.raises(errors.InputError, match="num_threads must be a positive integer, got 0"):
        edge_sdk.load(runtime_models["int8"], num_threads=0)


def test_clip_warning_is_exported_at_the_top_level():
    # apps filter it by name (warnings.simplefilter("error", edge_sdk.QuantizationClipWarning))
    import edge_sdk
    from edge_sdk.quant import QuantizationClipWarning

    assert edge_sdk.QuantizationClipWarning is QuantizationClipWarning
    assert "QuantizationClipWarning" in edge_sdk.__all__
