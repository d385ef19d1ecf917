"""API mistakes (issue 26, section 5): every public entry point checks its argument types and raises an
EdgeSdkError subclass naming the argument; predict takes one dtype rule for every numeric input; a
damaged .tflite reaching convert is refused in one line naming the file."""

from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.pool import ModelPool

PUBLIC = Path(__file__).resolve().parents[1] / "data/public_models"
INT8 = PUBLIC / "mlperf_tiny_kws_dscnn_int8_reference.tflite"  # int8 input, quantized
FLOAT = PUBLIC / "mlperf_tiny_ic_resnet8_float.tflite"  # float32 input


def test_argument_error_is_public_and_a_type_error():
    assert "ArgumentError" in edge_sdk.__all__
    assert issubclass(edge_sdk.ArgumentError, edge_sdk.EdgeSdkError)
    assert issubclass(edge_sdk.ArgumentError, TypeError)  # `except TypeError` in callers keeps working


# (id, call, the argument named, what came)
CALLS = [
    ("pool-size-str", lambda: ModelPool(INT8, size="3"), "ModelPool: size must be an integer >= 1", "str '3'"),
    ("pool-size-float", lambda: ModelPool(INT8, size=2.5), "ModelPool: size must be an integer >= 1", "float 2.5"),
    ("pool-size-bool", lambda: ModelPool(INT8, size=True), "ModelPool: size must be an integer >= 1", "bool True"),
    ("pool-size-zero", lambda: ModelPool(INT8, size=0), "ModelPool: size must be an integer >= 1", "int 0"),
    ("pool-unknown", lambda: ModelPool(INT8, threads=2), "ModelPool: unknown argument 'threads'", "num_threads"),
    ("load-manifest-list", lambda: edge_sdk.load(INT8, manifest=[1, 2]), "edge_sdk.load: manifest must be", "list"),
    ("load-model-int", lambda: edge_sdk.load(3), "edge_sdk.load: model must be a path or the model's bytes", "int 3"),
    ("load-model-list", lambda: edge_sdk.load([str(INT8)]), "edge_sdk.load: model must be", "list"),
    (
        "load-verify-str",
        lambda: edge_sdk.load(INT8, verify="no"),
        "edge_sdk.load: verify must be True or False",
        "str 'no'",
    ),
    ("load-isolate-int", lambda: edge_sdk.load(INT8, isolate=1), "edge_sdk.load: isolate must be", "int 1"),
    ("load-backend-int", lambda: edge_sdk.load(INT8, backend=1), "edge_sdk.load: backend must be", "int 1"),
    ("load-accelerator-int", lambda: edge_sdk.load(INT8, accelerator=1), "edge_sdk.load: accelerator must be", "int 1"),
    (
        "load-max-model-str",
        lambda: edge_sdk.load(INT8, max_model_bytes="9"),
        "edge_sdk.load: max_model_bytes must be",
        "str '9'",
    ),
    (
        "load-max-tensor-float",
        lambda: edge_sdk.load(INT8, max_tensor_bytes=1.5),
        "edge_sdk.load: max_tensor_bytes must be",
        "float 1.5",
    ),
    ("load-public-key-int", lambda: edge_sdk.load(INT8, public_key=5), "edge_sdk.load: public_key must be", "int 5"),
    ("load-signature-list", lambda: edge_sdk.load(INT8, signature=[1]), "edge_sdk.load: signature must be", "list"),
]


@pytest.mark.parametrize("case", CALLS, ids=[c[0] for c in CALLS])
def test_a_wrong_argument_raises_an_edge_sdk_error_naming_it(case):
    _, call, named, got = case
    with pytest.raises(edge_sdk.ArgumentError) as caught:
        call()
    assert str(caught.value).startswith(named) and got in str(caught.value), str(caught.value)


@pytest.fixture(scope="module")
def int8_model():
    return edge_sdk.load(INT8)


@pytest.fixture(scope="module")
def float_model():
    return edge_sdk.load(FLOAT)


def _batch(model, dtype):
    return np.zeros((1,) + tuple(model.inputs[0].shape[1:]), dtype)


def test_predict_checks_raw_signature_and_input_spec_names(int8_model):
    x = _batch(int8_model, np.float32)
    for call, named, got in [
        (lambda: int8_model.predict(x, raw="yes"), "Model.predict: raw must be True or False", "str 'yes'"),
        (lambda: int8_model.predict(x, raw=0), "Model.predict: raw must be True or False", "int 0"),
        (lambda: int8_model.predict_all(x, raw=None), "Model.predict: raw must be True or False", "NoneType"),
        (lambda: int8_model.predict(x, signature=["a"]), "Model: signature must be a signature key", "list"),
        (lambda: int8_model.input_spec(3), "Model.input_spec: name must be an input name", "int 3"),
    ]:
        with pytest.raises(edge_sdk.ArgumentError) as caught:
            call()
        assert str(caught.value).startswith(named) and got in str(caught.value), str(caught.value)
    assert int8_model.predict(x, raw=True).dtype == np.int8  # the right types still work
    assert int8_model.predict(x).dtype == np.float32


@pytest.mark.parametrize("dtype", [bool, np.complex64, np.complex128])
@pytest.mark.parametrize("which", ["int8", "float32"])
def test_bool_and_complex_data_are_refused_alike_by_numeric_inputs(which, dtype, int8_model, float_model):
    model = int8_model if which == "int8" else float_model
    with pytest.raises(edge_sdk.InputDtypeError) as caught:
        model.predict(_batch(model, dtype))
    message = str(caught.value)
    dtype_name = model.inputs[0].dtype.name
    assert message.startswith(
        f"input {model.inputs[0].name!r} is quantized {dtype_name}; expected float data"
        if which == "int8"
        else f"input {model.inputs[0].name!r} expects {dtype_name}; "
    )
    assert f"got {np.dtype(dtype).name}: numeric inputs take real numbers, never bool or complex" in message


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint8])
def test_real_numbers_of_any_width_still_reach_a_quantized_input(dtype, int8_model):
    out = int8_model.predict(_batch(int8_model, dtype))
    assert out.shape[0] == 1 and np.isfinite(out).all()


# -- damaged .tflite files reaching convert -------------------------------------------------------------


def _damaged(kind: str, out: Path) -> Path:
    """The float ResNet-8 rebuilt with one defect the LiteRT verifier lets through."""
    flatbuffers = pytest.importorskip("flatbuffers")
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    model = schema.ModelT.InitFromPackedBuf(bytearray(FLOAT.read_bytes()), 0)
    subgraph = model.subgraphs[0]
    if kind == "no-outputs":
        subgraph.outputs = []
    elif kind == "nul-in-name":
        subgraph.tensors[1].name = b"conv\x00weights"
    elif kind == "not-utf8-name":
        subgraph.tensors[1].name = b"conv\xff\xfeweights"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out.write_bytes(bytes(builder.Output()))
    return out


@pytest.mark.parametrize(
    "kind,message",
    [
        (
            "no-outputs",
            "expected a .tflite model with at least one input and one output, got 1 input(s) and 0 output(s)",
        ),
        ("nul-in-name", "the name of tensor 1 of subgraph 0 is not UTF-8 text without NUL bytes"),
        ("not-utf8-name", "the name of tensor 1 of subgraph 0 is not UTF-8 text without NUL bytes"),
    ],
)
def test_a_damaged_tflite_is_refused_before_the_quantizer_naming_the_file(kind, message, tmp_path, capsys):
    pytest.importorskip("litert_quantizer")  # the quantize extra: convert MODEL.tflite needs it
    model = _damaged(kind, tmp_path / f"{kind}.tflite")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32))
    code = main(
        [
            "convert",
            str(model),
            "--recipe",
            "int8",
            "--calibration",
            str(tmp_path / "calib.npy"),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: {model}: ") and message in lines[0], err
    assert "StopIteration" not in err and "quantizer" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_an_undamaged_public_model_passes_the_structure_check():
    from converters.model_files import check_tflite_structure

    for path in sorted(PUBLIC.glob("*.tflite")):
        data = path.read_bytes()
        check_tflite_structure(data, edge_sdk.load(data, verify=False), path)  # no error
