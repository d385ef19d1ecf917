"""Interpreter backends: LiteRT first, then tflite-runtime, then tf.lite; and LiteRT's CompiledModel runner.

All three expose the same ``Interpreter`` class. LiteRT (ai-edge-litert) is the
default and the only one that survives corrupt files without crashing the
process; the others are compatibility fallbacks for devices that only have
them (``edge_sdk.load`` isolates them in a child process by default).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.errors import BackendUnavailableError

if TYPE_CHECKING:
    from edge_sdk.tensors import TensorSpec

#: Backends that have crashed the process on truncated or corrupt files.
CRASH_PRONE = frozenset({"tflite-runtime", "tf"})


@dataclass(frozen=True)
class Backend:
    """An importable interpreter implementation."""

    name: str
    interpreter_class: Callable[..., Any]
    version: str

    @property
    def crash_prone(self) -> bool:
        """True for backends known to crash (not raise) on corrupt files."""
        return self.name in CRASH_PRONE


def _dist_version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - unreadable package metadata is reported as unknown, never fatal
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


_LOADERS: dict[str, Callable[[], Backend]] = {
    "litert": _load_litert,
    "tflite-runtime": _load_tflite_runtime,
    "tf": _load_tf,
}
_ALIASES = {
    "ai-edge-litert": "litert",
    "ai_edge_litert": "litert",
    "tflite_runtime": "tflite-runtime",
    "tflite": "tflite-runtime",
    "tensorflow": "tf",
    "tf.lite": "tf",
}
AUTO_ORDER = ("litert", "tflite-runtime", "tf")
_cache: dict[str, Backend] = {}


def backend_names() -> list[str]:
    """The names ``backend=`` accepts, in automatic-selection order."""
    return list(AUTO_ORDER)


def get_backend(name: str | None = None) -> Backend:
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
        raise BackendUnavailableError(f"unknown backend {name!r}; expected one of {', '.join(AUTO_ORDER)} (or 'auto')")
    if key not in _cache:
        try:
            _cache[key] = _LOADERS[key]()
        except ImportError as exc:
            raise BackendUnavailableError(f"backend {key!r} is not installed ({exc})") from None
    return _cache[key]


# -- LiteRT's CompiledModel API (accelerators) -----------------------------------------------------

#: ``accelerator=`` names and the LiteRT HardwareAccelerator flags they stand for.
ACCELERATORS = ("cpu", "gpu", "npu")
#: dtypes a LiteRT TensorBuffer can carry (ai-edge-litert 2.3.0 ``TensorBuffer._DTYPE_STRINGS``).
_BUFFER_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float16, np.int32, np.int8, np.uint8, np.bool_))


def parse_accelerator(name: str) -> tuple[str, ...]:
    """``"gpu+cpu"`` -> ``("gpu", "cpu")``; raise :class:`BackendUnavailableError` for anything else."""
    parts = tuple(p.strip().lower() for p in str(name).split("+"))
    bad = [p for p in parts if p not in ACCELERATORS]
    if not parts or bad:
        raise BackendUnavailableError(
            f"unknown accelerator {name!r}; expected one of {', '.join(ACCELERATORS)}, or a fallback chain "
            "such as gpu+cpu (GPU, with the CPU for the ops the GPU cannot run)"
        )
    return parts


@contextlib.contextmanager
def _captured_native_stderr(lines: list[str]) -> Iterator[None]:
    """Capture what LiteRT's C++ code writes to fd 2 while compiling (one line per vendor plugin it
    cannot find, on every load) into ``lines``, instead of the user's terminal.

    A failed compilation's reason is often only there (``No adapters found`` for a missing GPU);
    a Python-level redirect cannot catch writes from C++, so the file descriptor is swapped.
    """
    import tempfile

    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (embedded interpreters): nothing to capture
        yield
        return
    with tempfile.TemporaryFile() as capture:
        try:
            os.dup2(capture.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", errors="replace").splitlines())


def _failure_reason(exc: BaseException, captured: list[str]) -> str:
    """The most telling line of a failed compilation: LiteRT's message, or the native log's 'Failed to ...'."""
    lines = [line.strip(" └") for line in str(exc).splitlines() if line.strip(" └")]
    reason = lines[-1] if lines else type(exc).__name__
    if reason.startswith("ERROR: ["):  # only a source location: the reason went to the native log
        for line in captured:
            if "Failed to" in line and "plugin" not in line:
                return line.split("] ", 1)[-1].strip()
    return reason


class CompiledRunner:
    """Runs a model through LiteRT's ``CompiledModel`` API on the chosen accelerator(s).

    Inputs arrive already checked and converted to each input's storage dtype by
    :class:`edge_sdk.model.Model`; this class only moves them through LiteRT
    ``TensorBuffer`` objects, resizing dynamic inputs when the batch changes.
    """

    def __init__(
        self,
        data: bytes,
        accelerator: str,
        num_threads: int | None,
        input_specs: Sequence[TensorSpec],
        signature_key: str,
    ):
        parts = parse_accelerator(accelerator)
        captured: list[str] = []
        try:
            with _captured_native_stderr(captured):  # its import logs the vendor plugins it lacks
                from ai_edge_litert import compiled_model as cm
        except ImportError as exc:
            raise BackendUnavailableError(
                f"accelerator {accelerator!r} needs LiteRT's CompiledModel API (ai-edge-litert >= 2.0): {exc}"
            ) from None
        unsupported = [f"{s.name} ({s.dtype.name})" for s in input_specs if np.dtype(s.dtype) not in _BUFFER_DTYPES]
        if unsupported:
            raise BackendUnavailableError(
                f"accelerator {accelerator!r}: LiteRT's TensorBuffer cannot carry input(s) {', '.join(unsupported)}; "
                "run this model without accelerator= (the interpreter path)"
            )
        flags = 0
        for part in parts:
            flags |= int(getattr(cm.HardwareAccelerator, part.upper()))
        options = cm.Options(
            hardware_accelerators=cm.HardwareAccelerator(flags), cpu_options=cm.CpuOptions(num_threads=num_threads or 1)
        )
        try:
            with _captured_native_stderr(captured):
                self._model = cm.CompiledModel.from_buffer(bytes(data), options=options)
        except (RuntimeError, ValueError) as exc:
            reason = _failure_reason(exc, captured)
            hint = (
                ""
                if "cpu" in parts or "not accelerated" not in reason
                else f"; accelerator='{'+'.join(parts)}+cpu' runs those ops on the CPU"
            )
            raise BackendUnavailableError(
                f"accelerator {accelerator!r} is not available for this model on this machine: LiteRT could not "
                f"compile it ({reason}){hint}"
            ) from None
        self.accelerator = "+".join(parts)
        signatures = self._model.get_signature_list()
        self._key = signature_key if signature_key in signatures else next(iter(signatures))
        self._index = self._model.get_signature_index(self._key)
        self.input_names = list(signatures[self._key]["inputs"])
        self.output_names = list(signatures[self._key]["outputs"])
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._new_buffers()

    @property
    def fully_accelerated(self) -> bool:
        """True when every op runs on the chosen accelerator(s)."""
        accelerated: bool = self._model.is_fully_accelerated()
        return accelerated

    def _new_buffers(self) -> None:
        model = self._model
        self._inputs = model.create_input_buffers(self._index)
        self._outputs = model.create_output_buffers(self._index)
        ins = model.get_input_tensor_details(self._key)
        outs = model.get_output_tensor_details(self._key)
        self._shapes = {name: tuple(ins[name]["shape"]) for name in self.input_names}
        self._out_specs = [(tuple(outs[name]["shape"]), np.dtype(outs[name]["dtype"])) for name in self.output_names]

    def run(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on ``arrays`` (input name -> array in its storage dtype); return output name -> array."""
        resized = False
        for position, name in enumerate(self.input_names):
            shape = arrays[name].shape
            if shape != self._shapes[name]:
                self._model.resize_input_tensor(position, shape, self._index, strict=False)
                resized = True
        if resized:
            self._new_buffers()
        for name, buffer in zip(self.input_names, self._inputs, strict=False):
            buffer.write(arrays[name])
        self._model.run_by_index(self._index, self._inputs, self._outputs)
        out = {}
        for name, buffer, (shape, dtype) in zip(self.output_names, self._outputs, self._out_specs, strict=False):
            size = 1
            for d in shape:
                size *= d
            out[name] = buffer.read(size, dtype).reshape(shape)
        return out
