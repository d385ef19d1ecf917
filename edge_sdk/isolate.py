"""Load and run a model in a child process first, so a file that crashes the interpreter costs an exception.

tflite-runtime and tf.lite die with SIGSEGV or SIGBUS on some truncated or
corrupt files; a signal cannot be caught in Python, so the only safe test is
to try the file in a throw-away process. ``edge_sdk.load(..., isolate=True)``
(the default for those two backends) calls :func:`check_in_child`: a child
``python -c`` reads the model bytes from stdin, loads them with the same
backend, runs one ``predict`` on valid random inputs and reports back as JSON.

* the child crashed      -> :class:`CorruptModelError` naming the signal;
* the child hung         -> :class:`CorruptModelError` after ``timeout`` seconds;
* the child raised an edge-sdk error -> the same error class, re-raised here.

The cost is one Python start plus numpy and the interpreter import, about
0.3 s with LiteRT (a few seconds for the tf backend, which imports TensorFlow).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk import errors
from edge_sdk.errors import CorruptModelError, EdgeSdkError

if TYPE_CHECKING:
    from edge_sdk.tensors import TensorSpec

#: Seconds a child may take to load and run a model before it counts as hung.
DEFAULT_TIMEOUT = 120.0
# The child's side lives in edge_sdk.isolate_child: it loads models, and edge_sdk.loader imports this
# module, so keeping it here would tie the two into an import cycle.
_CHILD_CODE = "import sys; from edge_sdk.isolate_child import main; sys.exit(main(sys.argv[1:]))"
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def signal_name(returncode: int) -> str:
    """``-11`` -> ``SIGSEGV``; a positive code -> ``exit status N``."""
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def sample_inputs(specs: Iterable[TensorSpec], seed: int = 0) -> dict[str, np.ndarray]:
    """Valid random inputs for ``specs`` (a model's inputs): dynamic dims become 1.

    Float and quantized inputs get float32 in [0, 1) (the runtime quantizes);
    other integer and bool inputs get zeros, which every index-like input accepts.
    """
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = tuple(1 if d is None else int(d) for d in spec.shape)
        if spec.dtype.kind == "f" or spec.quantization is not None:
            feeds[spec.name] = rng.random(shape, dtype=np.float32)
        else:
            feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return feeds


def child_environment() -> dict[str, str]:
    """The parent's environment with this package's root first on PYTHONPATH (works from a checkout)."""
    env = dict(os.environ)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if _PACKAGE_ROOT not in parts:
        parts.insert(0, _PACKAGE_ROOT)
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def check_in_child(
    model_bytes: bytes,
    backend_name: str | None = None,
    num_threads: int | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Load and run ``model_bytes`` once in a child process; raise if that crashes, hangs or fails.

    Returns the child's report (``{"ok": True, "outputs": {name: shape}}``).
    Raises :class:`CorruptModelError` naming the signal when the child dies,
    and re-raises the child's own :class:`EdgeSdkError` subclass otherwise.
    """
    command = [sys.executable, "-c", _CHILD_CODE, backend_name or "auto", str(num_threads or 0)]
    backend_label = backend_name or "default"
    try:
        done = subprocess.run(
            command, input=bytes(model_bytes), capture_output=True, timeout=timeout, env=child_environment()
        )
    except subprocess.TimeoutExpired:
        raise CorruptModelError(
            f"the model did not finish loading and running one batch in a child process within {timeout:g} s "
            f"({backend_label}); refusing it as hung or absurdly slow"
        ) from None
    except OSError as exc:
        raise CorruptModelError(f"could not start the isolation child process: {exc}") from None
    lines = done.stdout.decode("utf-8", errors="replace").strip().splitlines()
    report = None
    if lines:
        try:
            report = json.loads(lines[-1])
        except json.JSONDecodeError:
            report = None
    if done.returncode != 0 or not isinstance(report, dict):
        tail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        hint = f"; last stderr line: {tail[-1][:200]}" if tail else ""
        raise CorruptModelError(
            f"the model crashed the {backend_label} interpreter in a child process "
            f"({signal_name(done.returncode)}); a file that crashes the interpreter is corrupt or "
            f"hostile, and was refused before it could crash this process{hint}"
        )
    if report.get("ok"):
        return report
    error_class = getattr(errors, str(report.get("error")), None)
    if isinstance(error_class, type) and issubclass(error_class, EdgeSdkError):
        raise error_class(report.get("message", ""))
    raise CorruptModelError(
        f"loading the model in a child process raised {report.get('type')}: {report.get('message')}"
    )
