"""Exceptions raised by edge-sdk.

Every error a caller can cause is an :class:`EdgeSdkError`; each message names
what was expected and what came, so nobody has to read an interpreter traceback.
"""

from __future__ import annotations

from typing import Any


class EdgeSdkError(Exception):
    """Base class of every error edge-sdk raises on purpose."""


class ModelNotFoundError(EdgeSdkError, FileNotFoundError):
    """The model file does not exist."""


class NotTFLiteError(EdgeSdkError):
    """The bytes are not a TFLite flatbuffer (wrong file identifier)."""


class CorruptModelError(EdgeSdkError):
    """A TFLite file that fails verification, allocation or execution."""


class ModelTooLargeError(EdgeSdkError):
    """A model file or a tensor it declares exceeds a configured limit."""


class BackendUnavailableError(EdgeSdkError):
    """The requested interpreter backend is not installed."""


class InputError(EdgeSdkError, ValueError):
    """Base class of errors about the data passed to ``predict``."""


class InputNameError(InputError, KeyError):
    """An input name that the model does not have."""

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0]) if self.args else ""


class InputCountError(InputError):
    """The wrong number of inputs."""


class InputShapeError(InputError):
    """An input of the wrong rank or shape."""


class InputDtypeError(InputError, TypeError):
    """An input dtype that cannot be cast safely to the model's dtype."""


class NonFiniteInputError(InputError):
    """NaN or infinity sent to a quantized input, where it has no integer value."""


class ArgumentError(EdgeSdkError, TypeError):
    """An argument of the wrong type or value passed to a public edge-sdk function (``ModelPool(p, size="3")``,
    ``load(p, manifest=[1, 2])``); the message names the argument. Also a ``TypeError``."""


class IntegrityError(EdgeSdkError):
    """A model whose bytes do not match its manifest's sha256."""


class SignatureError(EdgeSdkError):
    """A model that is unsigned, or whose signature does not verify."""


class MissingExtraError(EdgeSdkError, ImportError):
    """A command needs an optional extra that is not installed."""


class ManifestError(EdgeSdkError):
    """A manifest that is missing, unreadable or lacks a required field."""


class BenchOptionError(EdgeSdkError, ValueError):
    """Benchmark options that cannot work (0 runs, negative threads, a batch a model cannot take)."""


class BenchFormatError(EdgeSdkError, ValueError):
    """A results file that is not a readable edge-sdk bench results file."""


class OutputError(EdgeSdkError, OSError):
    """An output path that must not be written (it is an input, a directory, a device, a folder edge-sdk did
    not write) or cannot be (read-only, missing, disk full). Also an ``OSError``, so callers that catch
    write failures keep working."""


def kind_of(value: Any) -> str:
    """``int 3``, ``str '3'``, ``list``: what a wrong argument was, for the message."""
    name = type(value).__name__
    if isinstance(value, (bool, int, float, str)) and len(repr(value)) <= 40:
        return f"{name} {value!r}"
    return name


def check_argument(function: str, name: str, value: Any, expected: str, ok: bool) -> None:
    """Raise :class:`ArgumentError` ``FUNCTION: NAME must be EXPECTED, got TYPE VALUE`` unless ``ok``."""
    if not ok:
        raise ArgumentError(f"{function}: {name} must be {expected}, got {kind_of(value)}")
