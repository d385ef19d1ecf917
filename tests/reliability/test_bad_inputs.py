"""Bad inputs to predict, as a matrix: each gets its own error class and a message naming expected and got."""
from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import (
    EdgeSdkError,
    InputCountError,
    InputDtypeError,
    InputNameError,
    InputShapeError,
    NonFiniteInputError,
)


def _image(n=2, dtype=np.float32):
    return np.random.default_rng(0).random((n, 8, 8, 1)).astype(dtype)


# (case id, input builder, error class, substrings the message must contain)
MATRIX = [
    ("shape", lambda: _image()[:, :7], InputShapeError, ["expects shape [?, 8, 8, 1]", "(2, 7, 8, 1)", "dimension 1"]),
    ("channels", lambda: np.zeros((1, 8, 8, 3), np.float32), InputShapeError, ["[?, 8, 8, 1]", "(1, 8, 8, 3)"]),
    ("rank-missing-batch", lambda: _image()[0], InputShapeError, ["rank 4", "rank 3", "x[None]"]),
    ("rank-too-high", lambda: _image()[None], InputShapeError, ["rank 4", "rank 5"]),
    ("dtype-complex", lambda: _image().astype(np.complex64), InputDtypeError, ["complex64"]),
    ("dtype-string", lambda: np.full((1, 8, 8, 1), "a"), InputDtypeError, ["<U1"]),
    ("dtype-object", lambda: np.empty((1, 8, 8, 1), dtype=object), InputDtypeError, ["image"]),
    ("ragged", lambda: [[1.0, 2.0], [3.0]], InputDtypeError, ["image"]),
    ("name", lambda: {"img": _image()}, InputNameError, ["unknown input name 'img'", "expected one of: image"]),
    ("name-missing", lambda: {}, InputCountError, ["expected 1 input(s)", "missing: image"]),
    ("count", lambda: [_image(), _image()], InputCountError, ["expected 1 input(s)", "sequence of 2"]),
    ("empty-batch", lambda: np.zeros((0, 8, 8, 1), np.float32), InputShapeError, ["empty batch", "(0, 8, 8, 1)"]),
]


@pytest.mark.parametrize("model_name", ["float32", "int8"])
@pytest.mark.parametrize("case,build,error,fragments", MATRIX, ids=[m[0] for m in MATRIX])
def test_bad_input_matrix(model_name, case, build, error, fragments, digits_models):
    model = edge_sdk.load(digits_models[model_name])
    with pytest.raises(error) as info:
        model.predict(build())
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    assert isinstance(info.value, EdgeSdkError)
    # The model still works after refusing bad input.
    assert model.predict(_image(1)).shape == (1, 10)


def test_the_error_classes_are_distinct():
    classes = {InputShapeError, InputDtypeError, InputNameError, InputCountError, NonFiniteInputError}
    assert len(classes) == 5
    for a in classes:
        for b in classes - {a}:
            assert not issubclass(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_for_a_quantized_input_are_refused(bad, digits_models):
    model = edge_sdk.load(digits_models["int8"])
    x = _image(3)
    x[1, 4, 4, 0] = bad
    with pytest.raises(NonFiniteInputError, match=r"quantized \(int8\).*1 NaN/inf"):
        model.predict(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_for_a_float_input_are_never_hidden(bad, digits_models):
    """A float model has no integer mapping to refuse, so the runtime passes NaN/inf through; the
    affected row's outputs must then be visibly non-finite and other rows untouched, never a
    plausible-looking wrong answer."""
    model = edge_sdk.load(digits_models["float32"])
    x = _image(3)
    clean = model.predict(x)
    x[1, 4, 4, 0] = bad
    out = model.predict(x)
    assert not np.isfinite(out[1]).any()
    np.testing.assert_array_equal(out[[0, 2]], clean[[0, 2]])


def test_integer_data_for_an_int8_input_is_taken_as_stored(digits_models):
    model = edge_sdk.load(digits_models["int8"])
    x = _image(2)
    scale, zero = model.inputs[0].quantization.scale, model.inputs[0].quantization.zero_point
    stored = np.clip(np.rint(x / scale) + zero, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(model.predict(stored), model.predict(x))
    with pytest.raises(InputDtypeError, match="quantized int8; expected float data .* got complex64"):
        model.predict(stored.astype(np.complex64))


def test_unknown_signature(digits_models):
    model = edge_sdk.load(digits_models["float32"])
    with pytest.raises(InputNameError, match="unknown signature 'nope'.*serving_default"):
        model.predict(_image(), signature="nope")
