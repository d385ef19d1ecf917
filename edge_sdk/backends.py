"""Interpreter backends: LiteRT first, then tflite-runtime, then tf.lite.

All three expose the same ``Interpreter`` class. LiteRT (ai-edge-litert) is the
default and the only one that survives corrupt files without crashing the
process; the others are compatibility fallbacks for devices that only have
them (``edge_sdk.load`` isolates them in a child process by default).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from edge_sdk.errors import BackendUnavailableError

#: Backends that have crashed the process on truncated or corrupt files.
CRASH_PRONE = frozenset({"tflite-runtime", "tf"})


@dataclass(frozen=True)
class Backend:
    """An importable interpreter implementation."""

    name: str
    interpreter_class: Callable
    version: str

    @property
    def crash_prone(self) -> bool:
        """True for backends known to crash (not raise) on corrupt files."""
        return self.name in CRASH_PRONE


def _dist_version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return "unknown"


def _load_litert() -> Backend:
    module = importlib.import_module("ai_edge_litert.interpreter")
    return Backend("litert", module.Interpreter, _dist_version("ai-edge-litert"))


def _load_tflite_runtime() -> Backend:
    module = importlib.import_module("tflite_runtime.interpreter")
    return Backend("tflite-runtime", module.Interpreter, _dist_version("tflite-runtime"))


def _load_tf() -> Backend:
    # Deliberately lazy: TensorFlow is never imported unless this backend is chosen.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = importlib.import_module("tensorflow")
    return Backend("tf", tf.lite.Interpreter, tf.__version__)


_LOADERS: Dict[str, Callable[[], Backend]] = {
    "litert": _load_litert,
    "tflite-runtime": _load_tflite_runtime,
    "tf": _load_tf,
}
_ALIASES = {"ai-edge-litert": "litert", "ai_edge_litert": "litert", "tflite_runtime": "tflite-runtime",
            "tflite": "tflite-runtime", "tensorflow": "tf", "tf.lite": "tf"}
AUTO_ORDER = ("litert", "tflite-runtime", "tf")
_cache: Dict[str, Backend] = {}


def backend_names() -> List[str]:
    """The names ``backend=`` accepts, in automatic-selection order."""
    return list(AUTO_ORDER)


def get_backend(name: Optional[str] = None) -> Backend:
    """Return the named backend, or the first importable one in ``AUTO_ORDER``."""
    if name is None or name == "auto":
        errors = []
        for candidate in AUTO_ORDER:
            try:
                return get_backend(candidate)
            except BackendUnavailableError as exc:
                errors.append(str(exc))
        raise BackendUnavailableError(
            "no TFLite interpreter is installed; expected one of ai-edge-litert (pip install ai-edge-litert), "
            "tflite-runtime or tensorflow. Tried: " + "; ".join(errors)
        )
    key = _ALIASES.get(name, name)
    if key not in _LOADERS:
        raise BackendUnavailableError(
            f"unknown backend {name!r}; expected one of {', '.join(AUTO_ORDER)} (or 'auto')"
        )
    if key not in _cache:
        try:
            _cache[key] = _LOADERS[key]()
        except ImportError as exc:
            raise BackendUnavailableError(f"backend {key!r} is not installed ({exc})") from None
    return _cache[key]
