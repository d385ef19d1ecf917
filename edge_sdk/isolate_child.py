"""The child-process side of :mod:`edge_sdk.isolate`: load the model bytes from stdin, run it once, report.

Separate from :mod:`edge_sdk.isolate` because it loads models: ``edge_sdk.loader``
imports ``isolate`` to start the child, and this module imports ``edge_sdk.loader``,
so one module holding both would make an import cycle.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_sdk.errors import EdgeSdkError
from edge_sdk.isolate import sample_inputs
from edge_sdk.loader import load


def probe(
    model_bytes: bytes, backend: str | None = None, num_threads: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Load ``model_bytes`` in this process (no integrity check, no isolation) and run one predict."""
    model = load(model_bytes, backend=backend, num_threads=num_threads, verify=False, isolate=False)
    return model.predict_all(sample_inputs(model.inputs, seed))


def main(argv: Sequence[str]) -> int:
    """Entry point of the child: model bytes on stdin, one JSON line on stdout."""
    backend = argv[0] if argv and argv[0] != "auto" else None
    num_threads = int(argv[1]) if len(argv) > 1 and int(argv[1]) > 0 else None
    data = sys.stdin.buffer.read()
    try:
        outputs = probe(data, backend, num_threads)
        report: dict[str, Any] = {"ok": True, "outputs": {k: list(v.shape) for k, v in outputs.items()}}
    except EdgeSdkError as exc:
        report = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises an EdgeSdkError
        report = {"ok": False, "error": None, "type": type(exc).__name__, "message": str(exc)}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0
