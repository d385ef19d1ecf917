"""Latency honesty in ``edge-sdk convert``: a quantized artifact measured slower than the float32 it came from
is re-timed in alternated rounds, and when the slowdown holds, said so (a run warning, the summary's
``comparisons["latency_warnings"]``, the artifact's manifest), naming the ops XNNPACK did not take.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from converters.context import Comparison, RunContext

SLOWER_RATIO = 1.10  # medians of interleaved runs: below this, timing noise on a shared 2-core machine
CONFIRM_RUNS = 60  # timed runs per model and per round when the quick column says "slower"
CONFIRM_ROUNDS = 5  # rounds alternate float32 / quantized (ABBA order) so drift hits both alike


def xnnpack_fallback_ops(tflite: bytes) -> dict[str, int] | None:
    """``{op type: count}`` of the main subgraph's ops that XNNPACK did not take, read from LiteRT's graph.

    LiteRT applies XNNPACK by default; each partition XNNPACK takes becomes one ``DELEGATE``
    node whose outputs are the partition's outputs and whose inputs its external inputs. The
    original nodes stay in the node list, so a node belongs to a partition when it is reached
    walking back from the partition's outputs without crossing its inputs. Every other node runs
    on LiteRT's built-in kernels. Returns None when the interpreter does not expose its nodes
    (another backend), so callers say nothing rather than guess.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=bytes(tflite), num_threads=1)
        interpreter.allocate_tensors()
        native = interpreter._interpreter  # noqa: SLF001 - node I/O is only exposed on the wrapper
        count = native.NumNodes()
        names = [native.NodeName(i) for i in range(count)]
        node_inputs = [set(int(t) for t in native.NodeInputs(i)) for i in range(count)]
        node_outputs = [set(int(t) for t in native.NodeOutputs(i)) for i in range(count)]
    except Exception:  # noqa: BLE001 - no LiteRT, or a build without these hooks: no claim at all
        return None
    original = [i for i in range(count) if names[i] != "DELEGATE"]
    producer = {t: i for i in original for t in node_outputs[i]}
    delegated = set()
    for node in (i for i in range(count) if names[i] == "DELEGATE"):
        stop = node_inputs[node]
        pending = [t for t in node_outputs[node]]
        while pending:
            tensor = pending.pop()
            source = producer.get(tensor)
            if source is None or source in delegated or tensor in stop:
                continue
            delegated.add(source)
            pending.extend(t for t in node_inputs[source] if t not in stop)
    left = Counter(names[i] for i in original if i not in delegated)
    return dict(sorted(left.items(), key=lambda kv: (-kv[1], kv[0])))


def alternated_timings(
    float_tflite: bytes,
    quant_tflite: bytes,
    sample: Mapping[str, Any],
    runs: int = CONFIRM_RUNS,
    rounds: int = CONFIRM_ROUNDS,
) -> tuple[list[float], list[float]]:
    """Per-round median microseconds (1 thread, first row of ``sample``) of both models.

    Rounds alternate the two models in ABBA order (float first, then quantized first, ...), so a
    machine that speeds up or slows down during the measurement does not favour either one.
    """
    from converters.evaluation import measure_latency_us

    example = {k: v[:1] for k, v in sample.items()}
    float_times: list[float] = []
    quant_times: list[float] = []
    for i in range(rounds):
        order = ((float_tflite, float_times), (quant_tflite, quant_times))
        for model, times in order if i % 2 == 0 else order[::-1]:
            times.append(measure_latency_us(model, example, runs=runs, warmup=5))
    return float_times, quant_times


def judge_slowdown(
    float_rounds: Sequence[float], quant_rounds: Sequence[float], min_ratio: float = SLOWER_RATIO
) -> dict[str, Any]:
    """Is the quantized model slower than float32, beyond run-to-run noise? Pure: timings in, decision out.

    ``float_rounds``/``quant_rounds``: per-round medians of alternated rounds (:func:`alternated_timings`).
    The run-to-run noise is the larger relative spread ((max - min) / median) of either model's own
    rounds, leaving out each model's fastest and slowest round when there are 4 or more (one stray
    round, a neighbour's burst on a shared machine, says nothing about either model); the margin is
    the larger of that noise and ``min_ratio - 1``. The slowdown is confirmed only when the
    quantized/float ratio exceeds ``1 + margin`` in every round, or in all but one of 4 or more:
    a gap seen in some rounds only, or smaller than the wander of the timings, confirms nothing.
    Returns ``{"confirmed", "ratio" (of the medians), "slower_rounds", "rounds", "noise", "margin",
    "float_us", "quant_us"}``.
    """
    import statistics

    if not float_rounds or len(float_rounds) != len(quant_rounds):
        raise ValueError(
            f"expected as many float as quantized rounds (at least 1), got {len(float_rounds)} and {len(quant_rounds)}"
        )
    f_med, q_med = statistics.median(float_rounds), statistics.median(quant_rounds)

    def spread(values: Sequence[float]) -> float:
        mid = statistics.median(values)
        kept = sorted(values)[1:-1] if len(values) >= 4 else list(values)
        return (max(kept) - min(kept)) / mid if mid > 0 else math.inf

    noise = max(spread(float_rounds), spread(quant_rounds))
    margin = max(min_ratio - 1.0, noise)
    ratios = [q / f if f > 0 else math.inf for f, q in zip(float_rounds, quant_rounds, strict=False)]
    slower = sum(1 for r in ratios if r > 1.0 + margin)
    needed = len(ratios) - 1 if len(ratios) >= 4 else len(ratios)
    return {
        "confirmed": bool(f_med > 0 and q_med > (1.0 + margin) * f_med and slower >= needed),
        "ratio": q_med / f_med if f_med > 0 else None,
        "slower_rounds": slower,
        "rounds": len(ratios),
        "noise": noise,
        "margin": margin,
        "float_us": f_med,
        "quant_us": q_med,
    }


def confirm_latency_us(
    float_tflite: bytes,
    quant_tflite: bytes,
    sample: Mapping[str, Any],
    runs: int = CONFIRM_RUNS,
    rounds: int = CONFIRM_ROUNDS,
) -> tuple[float, float]:
    """Median microseconds (1 thread, first row of ``sample``) of both models, measured in alternating rounds."""
    import statistics

    float_times, quant_times = alternated_timings(float_tflite, quant_tflite, sample, runs, rounds)
    return statistics.median(float_times), statistics.median(quant_times)


def slower_note(
    file: str,
    float_file: str,
    float_us: float,
    quant_us: float,
    fallback: Mapping[str, int] | None,
    float_fallback: Mapping[str, int] | None = None,
) -> str | None:
    """One plain line when ``quant_us`` is more than :data:`SLOWER_RATIO` times ``float_us``, else None.

    ``fallback`` / ``float_fallback``: :func:`xnnpack_fallback_ops` of the quantized and the float
    model (None: unknown). The line says what was measured (both medians) and what is read from
    LiteRT's delegated graphs: the ops XNNPACK takes in the float model but leaves to LiteRT's
    built-in kernels in the quantized one. That those ops cost the time is an inference, said as one.
    """
    if not (float_us > 0 and quant_us > SLOWER_RATIO * float_us):
        return None
    ratio = quant_us / float_us
    line = (
        f"{file} is {ratio:.1f}x slower than {float_file} here ({quant_us:.0f} vs {float_us:.0f} us, "
        f"median of interleaved runs, 1 thread, batch 1)"
    )
    if fallback is None:
        return line + "; which ops are to blame was not determined (no LiteRT graph to read)"
    extra = Counter(fallback) - Counter(float_fallback or {})
    if not sum(extra.values()):
        return line + (
            "; XNNPACK took the same ops in both, so the difference is in its quantized kernels on "
            "this CPU (measure on the target device before choosing)"
        )
    ops = ", ".join(f"{name} x{n}" for name, n in sorted(extra.items(), key=lambda kv: (-kv[1], kv[0])))
    return (
        line + f"; {sum(extra.values())} op(s) that XNNPACK runs in {float_file} are not taken by XNNPACK in "
        f"{file} and run on LiteRT's built-in kernels: {ops} (read from LiteRT's delegated graphs; "
        "their share of the time is not measured)"
    )


@dataclasses.dataclass
class LatencyWarnings(Comparison):
    """summary.json's ``comparisons["latency_warnings"]``: the confirmed "slower than its float32" notes."""

    key: ClassVar[str] = "latency_warnings"
    line_order: ClassVar[int] = 70
    notes: list[str]

    def to_json(self) -> list[str]:
        return self.notes

    def lines(self) -> list[str]:
        return [f"warning: {line}" for line in self.notes]


def check_latency(ctx: RunContext) -> list[str]:
    """After a convert run: flag each quantized .tflite measured slower than the float32 it came from.

    ``ctx``: the run's :class:`converters.context.RunContext`. The quick latency column picks the
    suspects; each is re-timed against its float32 parent in alternated rounds
    (:func:`alternated_timings`) and flagged only when :func:`judge_slowdown` confirms it: slower in
    every round by more than the run-to-run noise, so one noisy measurement cannot raise the flag. A confirmed one gets
    the :func:`slower_note` line as a run warning, in ``comparisons["latency_warnings"]``
    (``summary.json``) and in its manifest (``latency_note``, metrics ``latency_vs_float32``).
    Returns the lines.
    """
    from edge_sdk.manifest import manifest_path_for, write_manifest

    sample = ctx.data.sample()
    if sample is None or ctx.latency_runs <= 0:
        return []
    by_sha = {a.sha256: a for a in ctx.artifacts}
    lines = []
    for artifact in list(ctx.artifacts):
        parent = by_sha.get(artifact.parent) if artifact.parent else None
        if (
            not artifact.file.endswith(".tflite")
            or artifact.kind == "float32"
            or parent is None
            or parent.kind != "float32"
            or not parent.file.endswith(".tflite")
        ):
            continue
        quick_q, quick_f = artifact.metrics.get("latency_us"), parent.metrics.get("latency_us")
        if not quick_q or not quick_f or quick_q <= SLOWER_RATIO * quick_f:
            continue
        float_bytes = (ctx.staging / parent.file).read_bytes()
        quant_bytes = (ctx.staging / artifact.file).read_bytes()
        judged = judge_slowdown(*alternated_timings(float_bytes, quant_bytes, sample))
        if not judged["confirmed"]:
            continue  # the quick column was noise: not slower in every alternated round beyond the noise
        float_us, quant_us = judged["float_us"], judged["quant_us"]
        note = slower_note(
            artifact.file,
            parent.file,
            float_us,
            quant_us,
            xnnpack_fallback_ops(quant_bytes),
            xnnpack_fallback_ops(float_bytes),
        )
        if note is None:
            continue
        note = note.replace(
            "median of interleaved runs",
            f"median of {judged['rounds']} alternated rounds, "
            f"{judged['slower_rounds']} of them slower by more than the {100 * judged['margin']:.0f}% "
            f"margin (run-to-run noise {100 * judged['noise']:.0f}%)",
            1,
        )
        ctx.warn(note)
        lines.append(note)
        artifact.metrics["latency_vs_float32"] = round(quant_us / float_us, 3)
        artifact.manifest["metrics"] = dict(
            artifact.manifest.get("metrics") or {}, latency_vs_float32=artifact.metrics["latency_vs_float32"]
        )
        artifact.manifest["latency_note"] = note
        write_manifest(artifact.manifest, manifest_path_for(ctx.staging / artifact.file))
    if lines:
        ctx.record(LatencyWarnings(lines))
    return lines
