"""convert's catch-all names the library whose code raised, and leaves edge-sdk's own bugs as bugs."""

from __future__ import annotations

import pytest

from edge_sdk.cli import convert as convert_cli


def _raise_from(filename: str, exc: Exception) -> BaseException:
    code = compile("def boom(exc):\n    raise exc\n", filename, "exec")
    namespace: dict = {}
    exec(code, namespace)
    try:
        namespace["boom"](exc)
    except Exception as raised:  # noqa: BLE001 - the exception is the value under test
        return raised
    raise AssertionError("did not raise")


@pytest.mark.parametrize(
    ("where", "engine"),
    [
        ("/venv/lib/python3.11/site-packages/tensorflow/lite/python/convert.py", "TensorFlow"),
        ("/venv/lib/python3.11/site-packages/litert_quantizer/calibrator.py", "the LiteRT quantizer"),
        ("/venv/lib/python3.11/site-packages/onnxruntime/capi/session.py", "ONNX Runtime"),
    ],
)
def test_a_library_error_names_the_library(where, engine):
    assert convert_cli._failing_engine(_raise_from(where, ValueError("x"))) == engine


def test_an_error_in_edge_sdks_own_code_is_not_blamed_on_a_library():
    # a KeyError in converters/ (the statistics reader once read as "failed in the LiteRT quantizer")
    ours = f"{convert_cli._PROJECT_ROOT}/converters/datacheck.py"
    assert convert_cli._failing_engine(_raise_from(ours, KeyError("mean"))) is None
    # numpy or the standard library raising under our code decide nothing: the caller's frame does
    import numpy as np

    def ours_calling_numpy():
        return np.zeros(3).reshape(5)

    code = compile("def call(f):\n    return f()\n", ours, "exec")
    namespace: dict = {}
    exec(code, namespace)
    with pytest.raises(ValueError) as info:
        namespace["call"](ours_calling_numpy)
    assert convert_cli._failing_engine(info.value) is None
