"""edge-sdk: a light runtime for LiteRT (TFLite) models on devices.

    import edge_sdk
    model = edge_sdk.load("model.tflite")
    probabilities = model.predict(x)

This package imports numpy and the LiteRT interpreter only; TensorFlow lives in
the ``converters`` and ``training`` packages (the ``convert`` extra).
"""

from __future__ import annotations

from typing import Any as _Any  # private: not a name of the package

__version__ = "0.1.0"

from edge_sdk.errors import (  # noqa: E402 - after __version__, which the errors module's messages read
    ArgumentError,
    BackendUnavailableError,
    CorruptModelError,
    EdgeSdkError,
    InputCountError,
    InputDtypeError,
    InputError,
    InputNameError,
    InputShapeError,
    IntegrityError,
    ManifestError,
    MissingExtraError,
    ModelNotFoundError,
    ModelTooLargeError,
    NonFiniteInputError,
    NotTFLiteError,
    OutputError,
    SignatureError,
)

__all__ = [
    "__version__",
    "load",
    "Model",
    "ModelPool",
    "TensorSpec",
    "QuantizationClipWarning",
    "EdgeSdkError",
    "ArgumentError",
    "BackendUnavailableError",
    "CorruptModelError",
    "InputCountError",
    "InputDtypeError",
    "InputError",
    "InputNameError",
    "InputShapeError",
    "IntegrityError",
    "ManifestError",
    "MissingExtraError",
    "ModelNotFoundError",
    "ModelTooLargeError",
    "NonFiniteInputError",
    "NotTFLiteError",
    "OutputError",
    "SignatureError",
]


def __getattr__(name: str) -> _Any:  # PEP 562: keep `import edge_sdk` fast; load the interpreter on first use
    if name == "load":
        from edge_sdk.loader import load

        return load
    if name == "Model":
        from edge_sdk.model import Model

        return Model
    if name == "ModelPool":
        from edge_sdk.pool import ModelPool

        return ModelPool
    if name == "TensorSpec":
        from edge_sdk.tensors import TensorSpec

        return TensorSpec
    if name == "QuantizationClipWarning":  # lives beside the quantization maths, which imports numpy
        from edge_sdk import quant as _quant

        return _quant.QuantizationClipWarning
    raise AttributeError(f"module 'edge_sdk' has no attribute {name!r}")
