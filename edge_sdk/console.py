"""Console helpers shared by the CLI and the library: extras, JSON output, progress, error lines.

Light on purpose (stdlib; numpy and tqdm only when used), so runtime, converter
and training code can import it without reaching into ``edge_sdk.cli``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from edge_sdk.errors import MissingExtraError

T = TypeVar("T")

_EXTRA_PROBES = {
    "convert": ("tensorflow", "tf_keras", "tensorflow_model_optimization"),
    "sign": ("cryptography",),
    "plot": ("matplotlib",),
    "quantize": ("litert_quantizer",),  # quantizing a float .tflite without TensorFlow (converters.litert_quant)
}


def require_extra(extra: str, command: str = "") -> None:
    """Raise :class:`MissingExtraError` naming the pip ``extra`` if its packages are absent.

    ``command`` (e.g. ``"convert"``) names the subcommand in the message.
    """
    # find_spec, not import: importing TensorFlow here would bypass converters._tf (import order, log filter)
    missing = [module for module in _EXTRA_PROBES[extra] if not _installed(module)]
    if missing:
        what = f"`edge-sdk {command}`" if command else "this feature"
        raise MissingExtraError(
            f"{what} needs the '{extra}' extra ({', '.join(missing)} not installed); "
            f"install it with: pip install 'edge-sdk[{extra}]'"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a broken half-install
        return False


def first_line(exc: BaseException | str, limit: int | None = None) -> str:
    """The first non-empty line of ``str(exc)`` (at most ``limit`` characters), else the exception's type name.

    ``exc`` may also be a message already taken from an exception.

    TensorFlow and LiteRT put whole stack dumps into their messages; a user needs the first line.
    """
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    if not line:
        return type(exc).__name__
    return line[:limit] if limit else line


#: Terminal escape sequences: CSI (``ESC [ ... final``, also the 8-bit ``\x9b``), OSC/DCS/APC/PM/SOS strings
#: (``ESC ] ... BEL`` or ``... ESC \\``, also their 8-bit introducers) and any other two-byte ``ESC x``.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_NO_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(value: Any, limit: int | None = None, newlines: bool = False) -> str:
    """``str(value)`` safe to print: escape sequences (CSI, OSC titles, ...) removed, every other C0/C1
    control character (carriage return, backspace, bell, ...) shown as ``?``, a tab as a space.

    For text that came from a device or a file (labels, errors, paths) before it reaches a terminal.
    ``newlines=True`` keeps ``\\n`` (multi-line messages); ``limit`` cuts to that many characters (``...``).
    """
    text = value if isinstance(value, str) else str(value)
    text = _ESCAPE_SEQUENCE.sub("", text).replace("\t", " ")
    text = (_CONTROL if newlines else _CONTROL_NO_NEWLINE).sub("?", text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."
    return text


def strict_json_value(value: Any) -> Any:
    """``value`` with every NaN or infinite float (also numpy's) replaced by ``None``, so that
    ``json.dumps(..., allow_nan=False)`` writes strict JSON that every parser reads."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json_value(v) for v in value]
    try:
        import numpy as np

        if isinstance(value, (np.generic, np.ndarray)):
            return strict_json_value(json_default(value))
    except ImportError:  # pragma: no cover
        pass
    return value


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays; anything else becomes its ``str``."""
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def print_json(obj: Any, path: str | None = None) -> None:
    """Write ``obj`` as indented JSON to stdout, or atomically to ``path`` (``None`` or ``-``: stdout)."""
    try:  # strict JSON: NaN and Infinity are not JSON, and strict parsers (jq, JavaScript, Go) reject them
        text = json.dumps(obj, indent=2, sort_keys=False, default=json_default, allow_nan=False) + "\n"
    except ValueError:  # a non-finite value (a NaN metric): written as null rather than as invalid JSON
        text = (
            json.dumps(strict_json_value(obj), indent=2, sort_keys=False, default=json_default, allow_nan=False) + "\n"
        )
    if path and path != "-":
        from edge_sdk.fileio import atomic_write_text

        atomic_write_text(path, text)
    else:
        sys.stdout.write(text)


def emit_report(doc: Any, json_target: str | None, print_human: Callable[[], None]) -> None:
    """The ``--json [FILE]`` convention: ``-`` prints JSON only; FILE writes it (and says so) beside
    the human output; ``None`` prints the human output only."""
    if json_target == "-":
        print_json(doc)
        return
    print_human()  # first: if the file cannot be written after all, the results were still shown
    if json_target is not None:
        print_json(doc, json_target)
        print(f"wrote {json_target}", file=sys.stderr)


def progress(iterable: Iterable[T], desc: str, total: int | None = None, enabled: bool = True) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when tqdm is installed and stderr is a terminal.

    ``desc`` labels the bar, ``total`` sizes it when ``iterable`` has no ``len``; ``enabled=False``
    returns ``iterable`` unchanged.
    """
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    bar: Iterable[T] = tqdm(iterable, desc=desc, total=total, file=sys.stderr, leave=False, disable=None)
    return bar


def progress_bar(total: int | None, desc: str, unit: str = "it", leave: bool = False) -> Any:
    """A tqdm bar on stderr, or None when tqdm is not installed or stderr is not a terminal.

    ``total`` sizes the bar, ``desc`` labels it, ``unit`` names what it counts, ``leave`` keeps it
    on screen when closed. Callers update and close it; None means "print nothing".
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    # disable=None: no bar when stderr is not a terminal (a log file gets no carriage-return frames)
    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave, disable=None)
    if bar.disable:
        bar.close()
        return None
    return bar


__all__ = [
    "clean_text",
    "emit_report",
    "first_line",
    "json_default",
    "print_json",
    "progress",
    "progress_bar",
    "require_extra",
    "strict_json_value",
]
