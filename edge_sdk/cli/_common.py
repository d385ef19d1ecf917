"""Argument helpers private to the CLI (shared console helpers live in :mod:`edge_sdk.console`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from edge_sdk.console import first_line, require_extra
from edge_sdk.errors import EdgeSdkError, MissingExtraError, ModelNotFoundError, NotTFLiteError

#: What help texts and checks use when the training package is not installed (a device with the runtime only).
_NO_TRAINING = SimpleNamespace(
    DATASETS=(), DATASETS_TEXT="a built-in dataset", ZOO_MODELS=(), ZOO_MODELS_TEXT="a zoo name"
)


def training_names() -> Any:
    """``training.names`` (the one list of datasets and zoo models, stdlib only) for help texts and checks.

    On a runtime-only install without the training package, empty lists: every subcommand's parser is built
    for every command, and ``parity --reference`` or ``bench`` on a device must not need training. Anything
    else missing is a broken install and surfaces.
    """
    try:
        from training import names
    except ModuleNotFoundError as exc:
        if exc.name not in ("training", "training.names"):
            raise
        return _NO_TRAINING
    return names


class AmbiguousNameError(EdgeSdkError, ValueError):
    """A built-in name (zoo model, dataset) that is also a path in the current directory."""


def json_file(value: str) -> str:
    """argparse type of ``--json [FILE]``: ``-`` (stdout) or a path ending in ``.json``.

    Refusing other names keeps ``--json`` from silently taking the next argument (a model path)
    as its file and writing the report over it.
    """
    if value == "-" or value.lower().endswith(".json"):
        return value
    raise argparse.ArgumentTypeError(
        f"expected a file name ending in .json, or '-' for stdout; got {value!r} (a model or data path? "
        "put --json after the models, or write --json=FILE.json)"
    )


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """The ``--json [FILE.json]`` option shared by bench and parity: bare prints JSON to stdout."""
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        type=json_file,
        metavar="FILE.json",
        help=f"print {what} as JSON to stdout (bare --json or --json -), or write it to "
        "FILE.json (the name must end in .json)",
    )


def refuse_ambiguous(value: str | None, names: Iterable[str], flag: str, kind: str) -> None:
    """Raise :class:`AmbiguousNameError` when ``value`` is a built-in ``kind`` name and also a local path."""
    if value is None or value not in tuple(names) or not Path(value).exists():
        return
    what = "folder" if Path(value).is_dir() else "file"
    raise AmbiguousNameError(
        f"{flag} {value!r} is ambiguous: the built-in {kind} {value!r} or the local {what} ./{value}; "
        f"write ./{value} for the {what}, or run from another directory for the built-in {kind}"
    )


def require_model_file(path: str, expected: str = "a .tflite file") -> None:
    """Refuse a model path that is missing, a directory or a device (``/dev/zero`` would be read forever)."""
    from edge_sdk.fileio import not_a_regular_file

    problem = not_a_regular_file(path)
    if problem == "does not exist":
        raise ModelNotFoundError(f"model file not found: {path} (expected {expected})")
    if problem == "is a directory":
        raise NotTFLiteError(
            f"model {path} is a directory; expected {expected} (a SavedModel? convert it "
            "first: edge-sdk convert DIR --recipe int8 --out OUT)"
        )
    if problem:
        raise NotTFLiteError(f"model {path} {problem}; expected {expected}")


def require_convert_stack(command: str) -> None:
    """Check the 'convert' extra is installed *and imports*; a broken TensorFlow install gives one line.

    Imports ``converters._tf`` (TensorFlow in the one working order) so later lazy imports are cached.
    """
    require_extra("convert", command)
    try:
        import converters._tf  # noqa: F401 - imported to prove the convert stack loads, not used
    except EdgeSdkError:  # converters._tf names the broken package itself (BrokenExtraError)
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a half-installed TensorFlow raises, one line
        raise MissingExtraError(
            f"`edge-sdk {command}` could not import TensorFlow, which is installed but fails to load "
            f"({type(exc).__name__}: {first_line(exc, 300)}); reinstall the extra: "
            "pip install --force-reinstall 'edge-sdk[convert]'"
        ) from None


__all__ = [
    "AmbiguousNameError",
    "add_json_option",
    "json_file",
    "refuse_ambiguous",
    "require_convert_stack",
    "require_model_file",
]
