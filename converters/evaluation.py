"""Measuring an artifact on the run's data: outputs, accuracy, latency, and the non-finite check.

Every model a stage produces is run on the eval data (or, without it, on a slice of the
calibration / training data) before it is written: outputs holding NaN or infinity stop
the run with :class:`converters.errors.NonFiniteOutputError` instead of shipping a broken
model (issue 12: ``--set train.learning_rate=inf`` used to ship an all-NaN model).
Accuracy follows the runtime's rule (:func:`edge_sdk.metrics.accuracy`).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from converters.errors import NonFiniteOutputError
from edge_sdk.metrics import accuracy, non_finite_count

BATCH = 256
CHECK_SAMPLES = 256  # without eval data, this many calibration/training samples are checked for NaN/inf


def tflite_outputs(
    tflite: bytes,
    inputs: Mapping[str, np.ndarray],
    batch_size: int = BATCH,
    calibration: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """``{output name: array}`` of ``tflite`` (``edge_sdk.load``, 1 thread) on ``inputs``, ``batch_size`` rows a call.

    ``calibration``: the input statistics it was calibrated on (manifest form), for the clip warning."""
    import edge_sdk

    model = edge_sdk.load(tflite, verify=False, num_threads=1)
    if calibration:
        model.set_calibration(dict(calibration))
    n = len(next(iter(inputs.values())))
    parts: dict[str, list] = {}
    for start in range(0, n, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
        out = model.predict_all(batch if len(batch) > 1 else next(iter(batch.values())))
        for name, value in out.items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(chunks, axis=0) for name, chunks in parts.items()}


def primary(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The output accuracy is measured on: the first one."""
    return next(iter(outputs.values()))


def tflite_accuracy(tflite: bytes, eval_x: dict[str, np.ndarray], eval_y: np.ndarray) -> float | None:
    """Accuracy of ``tflite`` on ``eval_x`` (``{input name: array}``) against ``eval_y``; None for a non-classifier."""
    return accuracy(primary(tflite_outputs(tflite, eval_x)), eval_y, "eval labels")


def check_finite(outputs: Mapping[str, np.ndarray], what: str, on: str) -> None:
    """Raise :class:`NonFiniteOutputError` when ``outputs`` hold NaN or infinity.

    ``what`` names the model (``stage 'prune': pruned-float32``), ``on`` the data it ran on.
    """
    bad, total = non_finite_count(outputs)
    if bad:
        raise NonFiniteOutputError(
            f"{what} gives non-finite outputs (NaN or infinity in {bad:,} of {total:,} values) on {on}: "
            "the model is broken, so the run stops and nothing is written (a learning rate too large, or "
            "an input model that already outputs NaN?)"
        )


def measure_latency_us(
    tflite: bytes, example: Mapping[str, np.ndarray], runs: int = 50, warmup: int = 5, num_threads: int = 1
) -> float:
    """Median microseconds per single-example ``predict`` of ``tflite`` through edge_sdk (1 thread by default).

    ``example``: ``{input name: array of one example}`` (positional when the names differ);
    ``runs``/``warmup``: timed and untimed calls; ``num_threads``: interpreter threads.
    """
    import edge_sdk
    from edge_sdk.quant import QuantizationClipWarning

    model = edge_sdk.load(tflite, num_threads=num_threads)
    names = [s.name for s in model.inputs]
    feed = example if set(example) == set(names) else dict(zip(names, example.values(), strict=False))
    with warnings.catch_warnings():  # timing only: the evaluation of the same data already said it
        warnings.simplefilter("ignore", QuantizationClipWarning)
        for _ in range(warmup):
            model.predict_all(feed)
        times = []
        for _ in range(runs):
            start = time.perf_counter_ns()
            model.predict_all(feed)
            times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000.0


def tflite_latency_us(tflite: bytes, sample: dict[str, np.ndarray], runs: int) -> float | None:
    """Median microseconds of ``tflite`` on ``sample``'s first row (1 thread, 3 warm-ups); None for 0 ``runs``."""
    if runs <= 0:
        return None
    return measure_latency_us(tflite, {k: v[:1] for k, v in sample.items()}, runs=runs, warmup=3)
