"""The ``auto`` stage: build the candidate quantizations, measure them side by side, ship the best.

    edge-sdk convert model.keras --recipe auto --dataset mnist --out out/ \\
        [--max-drop POINTS] [--objective latency|size|balanced] [--target local|ssh://USER@HOST]

Which quantization to ship depends on the model and on the hardware: full int8 is
much faster than float32 for a CNN on one machine and several times slower for a
small transformer on the same machine. This stage answers by measurement:

1. **Build** every candidate of ``[auto] candidates`` that applies to the input
   (:data:`converters.recipe.AUTO_CANDIDATES`): float16, dynamic-range int8, full
   int8 with int8 and with float I/O, full int8 with the layers the quantization
   debugger ranks most harmful kept in float (:mod:`converters.debugger`), the
   LiteRT quantizer's weight-only int8/int4 and int16-activation schemes
   (:mod:`converters.litert_quant`, when installed) and, when there is training
   data, a pruned int8 model. A candidate that cannot be built is listed with its
   reason; the run stops (exit 2, every reason listed) only when none was built.
2. **Measure** each the same way: accuracy on the eval data against its labels
   (without labels: top-1 agreement with float32), error statistics against the
   float32 model's outputs, file and gzip size, and median and p90 latency from
   one interleaved benchmark of all candidates (:func:`edge_sdk.bench.run_benchmark`,
   or on a device over SSH with :func:`edge_sdk.remote.run_remote_benchmark`).
3. **Choose** (:func:`select`) among the candidates within the accuracy budget the
   best on the objective; with ``latency`` never one whose median is slower than
   float32's (float32 itself is always a valid answer); latencies within
   ``latency_tie`` of the best count as a tie, and ties go to the smaller file.
4. **Write** every candidate with its manifest, the chosen one again as
   ``model.tflite`` + ``model.json`` (the stable name an app loads), the trade-off
   table into summary.json (``chosen``, ``comparisons.auto``) and the chosen
   manifest, a Pareto plot ``auto-pareto.png`` and ``auto.html``.

Per-operator latency is not measurable through LiteRT's Python interpreter (it has
no profiler hook), so "keep float" follows the debugger's error ranking only; the
candidate's notes say so.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeGuard

import numpy as np

from converters import schemes
from converters.context import Comparison, RunContext
from converters.errors import ConversionError, DataError, NonFiniteOutputError, first_line
from converters.model_files import KIND_TFLITE
from converters.recipe import AUTO_OBJECTIVES, AutoOptions, Recipe
from edge_sdk.errors import EdgeSdkError

STAGE = "auto"
REFERENCE = "float32"
CHOSEN_FILE = "model.tflite"
PARETO_FILE = "auto-pareto.png"
HTML_FILE = "auto.html"
CALIBRATION_ROWS = 200  # rows the debugger and the LiteRT quantizer calibrate on
BENCH_ROWS = 64  # real eval rows the benchmark cycles through
PER_OP_LATENCY_NOTE = (
    "per-operator latency is not measurable through LiteRT's Python interpreter (no profiler "
    "hook): layers kept in float follow the debugger's error ranking only"
)


# ------------------------------------------------------------------------------------------------
# a candidate and its measurements
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Candidate:
    """One candidate model: how it was built (or why not) and what was measured."""

    name: str
    status: str = "ok"  # ok | failed | skipped
    reason: str = ""  # why it failed or was skipped
    kind: str = ""
    tflite: bytes = dataclasses.field(default=b"", repr=False)
    notes: list[str] = dataclasses.field(default_factory=list)
    artifact: Any = None
    measured: dict[str, Any] = dataclasses.field(default_factory=dict)

    def fail(self, reason: str, status: str = "failed") -> Candidate:
        """Mark the candidate failed (or skipped) with ``reason``; returns it."""
        self.status, self.reason, self.tflite = status, reason, b""
        return self


def planned_steps(recipe: Recipe) -> int:
    """Progress lines: a build and a write line per candidate, then measure, benchmark and choose."""
    built = [c for c in recipe.auto.candidates if c != REFERENCE]
    return 2 * len(built) + 3


def check(ctx: RunContext, options: AutoOptions) -> None:
    """Before any work: there is data to measure accuracy on, and the model can be quantized.

    ``ctx``: the run context (model and data known, nothing written yet); ``options``: the ``[auto]`` section.
    """
    ctx.model.require("quantize", STAGE)
    if ctx.data.sample() is None:
        raise DataError(
            "stage 'auto' measures every candidate's accuracy: expected --dataset NAME, --eval FILE.npz "
            "or --calibration FILE, got none"
        )
    if options.target != "local":
        probe_target(options)


def probe_target(options: AutoOptions, timeout: float = 60.0) -> None:
    """Raise :class:`edge_sdk.remote.RemoteError` unless ``options.target`` answers over SSH and has the
    edge-sdk command, so an unreachable device fails before minutes of building, not after."""
    import subprocess

    from edge_sdk.remote import INSTALL_HINT, RemoteError, parse_target, split_remote_command, ssh_command

    target = parse_target(options.target)
    command = split_remote_command(options.remote_command)
    # `env VAR=... python -m edge_sdk`: the program to look for is the first word that is not env or VAR=...
    program = next((w for w in command if w != "env" and "=" not in w), command[0])
    argv = ssh_command(
        target, f"command -v {shlex.quote(program)} >/dev/null 2>&1 || exit 127", ssh_config=options.ssh_config or None
    )
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise RemoteError(
            "the ssh program was not found: install OpenSSH's client (apt-get install openssh-client)"
        ) from None
    except subprocess.TimeoutExpired:
        raise RemoteError(f"ssh to {target.url} did not answer within {timeout:.0f} s") from None
    last = (done.stderr.decode("utf-8", errors="replace").strip().splitlines() or [""])[-1]
    if done.returncode == 255:
        raise RemoteError(
            f"ssh to {target.url} failed: {last or 'no message'} (edge-sdk runs ssh with "
            "BatchMode=yes: use key authentication or an agent; ~/.ssh/config applies)"
        )
    if done.returncode == 127:
        raise RemoteError(
            f"{program} is not installed on {target.url} (or not on the PATH of a "
            f"non-interactive ssh session): {INSTALL_HINT}"
        )


# ------------------------------------------------------------------------------------------------
# choosing: plain numbers in, a decision out (no TensorFlow, no files)
# ------------------------------------------------------------------------------------------------
def _score(row: Mapping[str, Any], objective: str, ref: Mapping[str, Any]) -> float:
    if objective == "latency":
        return float(row["median_us"])
    if objective == "size":
        return float(row["size_bytes"])
    return math.sqrt(row["median_us"] / ref["median_us"] * row["size_bytes"] / ref["size_bytes"])


def select(
    rows: Sequence[Mapping[str, Any]],
    *,
    objective: str,
    max_drop: float,
    latency_tie: float = 0.03,
    slower_margin: float = 0.0,
) -> dict[str, Any]:
    """Choose the candidate to ship from measured ``rows``; returns ``{"chosen", "reason", "rows"}``.

    Each row: ``name``, ``status`` (``ok`` or why not), ``size_bytes``, ``median_us``
    and ``drop_points`` (accuracy points lost against float32; None when it could not
    be measured). The row named ``float32`` is the reference and must be measured.
    ``objective``: ``latency`` (lowest median; never slower than float32), ``size``
    (smallest file; equal sizes go to the faster) or ``balanced`` (lowest geometric mean
    of the latency and size ratios to float32). Scores within ``latency_tie``
    (relative) of the best are ties for ``latency`` and ``balanced``; ties go to the
    smaller file. ``max_drop``: the budget in points; ``slower_margin``: with ``latency``, a
    candidate is "slower than float32" when its median exceeds float32's by more than this
    share (0: by any amount). The returned rows carry
    ``within_budget``, ``eligible``, ``chosen`` and ``why`` (the reason a row was not chosen).
    """
    if objective not in AUTO_OBJECTIVES:
        raise ConversionError(f"auto objective: expected one of {', '.join(AUTO_OBJECTIVES)}, got {objective!r}")
    if not (isinstance(max_drop, (int, float)) and math.isfinite(max_drop) and 0 <= max_drop <= 100):
        raise ConversionError(f"auto max_drop: expected accuracy points in [0, 100], got {max_drop!r}")
    out = [dict(r) for r in rows]
    ref = next((r for r in out if r["name"] == REFERENCE), None)
    if ref is None or ref.get("status") != "ok" or not ref.get("median_us"):
        why = (ref or {}).get("reason") or "it is missing from the measurements"
        raise ConversionError(f"auto: the float32 reference could not be measured ({why}); nothing to compare with")
    ref["drop_points"] = 0.0 if ref.get("drop_points") is None else ref["drop_points"]
    for row in out:
        row["eligible"] = False
        row["chosen"] = False
        if row.get("status") != "ok":
            row["within_budget"] = None
            row["why"] = f"{row.get('status')}: {row.get('reason')}" if row.get("reason") else row.get("status")
            continue
        if row.get("median_us") is None:
            row["within_budget"] = None
            row["why"] = row.get("reason") or "latency not measured"
            continue
        drop = row.get("drop_points")
        if row.get("budget_ok") is not None:  # a task judged by its own budget (edge_sdk.tasks), or a wipe-out
            row["within_budget"] = row is ref or bool(row["budget_ok"])
        else:
            row["within_budget"] = row is ref or (drop is not None and drop <= max_drop + 1e-9)
        if not row["within_budget"]:
            if row.get("budget_ok") is not None:
                row["why"] = row.get("budget_why") or "over the task's budget"
            else:
                row["why"] = (
                    "accuracy not measured"
                    if drop is None
                    else f"loses {drop:.2f} points, over the {max_drop:g}-point budget"
                )
        elif objective == "latency" and row is not ref and row["median_us"] > ref["median_us"] * (1 + slower_margin):
            row["why"] = f"slower than float32 ({row['median_us'] / ref['median_us']:.2f}x median)"
        else:
            row["eligible"] = True
            row["why"] = ""
    eligible = [r for r in out if r["eligible"]]  # float32 always is
    order = {r["name"]: i for i, r in enumerate(out)}
    best = min(_score(r, objective, ref) for r in eligible)
    if objective == "size":
        contenders = [r for r in eligible if _score(r, objective, ref) == best]
        chosen = min(contenders, key=lambda r: (r["median_us"], order[r["name"]]))
    else:
        contenders = [r for r in eligible if _score(r, objective, ref) <= best * (1 + latency_tie)]
        chosen = min(contenders, key=lambda r: (r["size_bytes"], _score(r, objective, ref), order[r["name"]]))
    chosen["chosen"] = True
    for row in eligible:
        if row is not chosen:
            row["why"] = _beaten(row, chosen, objective, ref, latency_tie)
    return {
        "chosen": chosen["name"],
        "reason": _reason(chosen, contenders, objective, ref, max_drop, latency_tie),
        "rows": out,
    }


def _what(objective: str) -> str:
    return {
        "latency": "median latency",
        "size": "file size",
        "balanced": "geometric mean of the latency and size ratios",
    }[objective]


def _beaten(
    row: Mapping[str, Any], chosen: Mapping[str, Any], objective: str, ref: Mapping[str, Any], tie: float
) -> str:
    mine, theirs = _score(row, objective, ref), _score(chosen, objective, ref)
    if objective != "size" and mine <= theirs * (1 + tie) and theirs <= mine * (1 + tie):
        return f"ties with {chosen['name']} on {_what(objective)}; {chosen['name']} is the smaller file"
    if objective == "size" and mine == theirs:
        return f"same size as {chosen['name']}, which is faster"
    ratio = mine / theirs if theirs else float("inf")
    return f"within budget; {ratio:.2f}x {chosen['name']}'s {_what(objective)}"


def _reason(
    chosen: Mapping[str, Any],
    contenders: Sequence[Mapping[str, Any]],
    objective: str,
    ref: Mapping[str, Any],
    max_drop: float,
    tie: float,
) -> str:
    lat = chosen["median_us"] / ref["median_us"]
    size = chosen["size_bytes"] / ref["size_bytes"]
    drop = chosen.get("drop_points") or 0.0
    best = {"latency": "fastest", "size": "smallest", "balanced": "best latency x size"}[objective]
    if chosen.get("budget_text"):  # a task with its own budget: name it and the measured figure
        figures = f"{lat:.2f}x float32 median latency, {size:.2f}x its size, {chosen.get('budget_why') or ''}".rstrip(
            ", "
        )
        text = f"{chosen['name']}: the {best} candidate within the budget {chosen['budget_text']} ({figures})"
    else:
        figures = f"{lat:.2f}x float32 median latency, {size:.2f}x its size, {drop:.2f} points lost"
        text = f"{chosen['name']}: the {best} candidate within the {max_drop:g}-point budget ({figures})"
    if objective == "latency":
        text += "; candidates slower than float32 are never chosen"
    others = [c["name"] for c in contenders if c is not chosen]
    if others:
        text += f"; tied (within {tie:.0%}) with {' and '.join(others)}, and it is the smallest file of them"
    return text


# ------------------------------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class EvalSet:
    """The rows every candidate runs on, their labels (or None) and the float32 reference's outputs."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str
    reference: np.ndarray | None = None
    reference_accuracy: float | None = None
    task: Any = None  # edge_sdk.tasks.Task of the model (None: judged as before, by argmax or relative error)
    budgets: dict[str, float] = dataclasses.field(default_factory=dict)  # [task] budgets
    reference_all: dict[str, np.ndarray] | None = None  # every output of float32
    head: str = "auto"
    score_threshold: float = 0.25

    @property
    def judged_by_task(self) -> bool:
        """True when the task has its own budget (not classification: accuracy points stay for that)."""
        from edge_sdk.tasks import BUDGETS

        return self.task is not None and self.task in BUDGETS


def _eval_set(ctx: RunContext, options: AutoOptions) -> EvalSet:
    n = options.eval_samples
    data = ctx.data
    if data.eval_x is not None:
        labels = None if data.eval_y is None else np.asarray(data.eval_y)[:n]
        return EvalSet({k: v[:n] for k, v in data.eval_x.items()}, labels, data.eval_source or "the eval data")
    x, source = (
        (data.calibration_x, data.calibration_source or "the calibration data")
        if data.calibration_x is not None
        else (data.train_x, "the training data")
    )
    if x is None:
        raise DataError("auto: expected eval, calibration or training data to compare the candidates on, got none")
    return EvalSet({k: v[:n] for k, v in x.items()}, None, f"{source} (no labels: agreement with float32)")


def quality(
    output: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray | None,
    reference_accuracy: float | None,
    classifier: bool = True,
) -> dict[str, Any]:
    """Accuracy, top-1 agreement and error statistics of ``output`` against the float32 ``reference``.

    ``drop_points`` (what the budget is checked on) is the accuracy lost in points when
    there are labels, else the top-1 disagreement with float32 in points, else (an output
    that is not class scores) the relative L2 error in percent; ``budget_metric`` says which.
    ``classifier=False`` (a task that is not classification): no argmax, no agreement.
    """
    from edge_sdk.metrics import accuracy
    from edge_sdk.reference import class_predictions, error_metrics

    out: dict[str, Any] = {}
    errors = error_metrics(np.asarray(reference, dtype=np.float64), np.asarray(output, dtype=np.float64))
    out["max_abs_error"] = float(errors["max_abs_error"])
    out["mean_abs_error"] = float(errors["mean_abs_error"])
    out["relative_error"] = float(errors["relative_error"])
    ours, theirs = (class_predictions(output), class_predictions(reference)) if classifier else (None, None)
    out["agreement"] = None if ours is None or theirs is None else float(np.mean(ours == theirs))
    out["accuracy"] = accuracy(output, labels, "eval labels") if labels is not None else None
    if out["accuracy"] is not None and reference_accuracy is not None:
        out["drop_points"] = 100.0 * (reference_accuracy - out["accuracy"])
        out["budget_metric"] = "accuracy points lost against float32"
    elif out["agreement"] is not None:
        out["drop_points"] = 100.0 * (1.0 - out["agreement"])
        out["budget_metric"] = "top-1 disagreement with float32, in points"
    else:
        out["drop_points"] = 100.0 * out["relative_error"]
        out["budget_metric"] = "relative L2 error against float32, in percent"
    return out


def task_quality(outputs: Mapping[str, np.ndarray], evalset: EvalSet) -> dict[str, Any]:
    """The task's figures and budget verdict of a candidate's ``outputs`` against float32's (``evalset``).

    Adds ``task_metrics``, ``wipeouts``, ``budget_ok`` (None: judged by ``drop_points`` as before),
    ``budget_why`` and ``budget_text``. A wiped-out output is never within budget, whatever the task.
    """
    from edge_sdk.tasks import BUDGETS, budget_checks, budget_text, find_wipeouts, task_metrics

    ref = evalset.reference_all or {}
    names = list(ref)
    mine = list(outputs)
    pairs = [(f, f if f in outputs else mine[i]) for i, f in enumerate(names) if f in outputs or i < len(mine)]
    out: dict[str, Any] = {"budget_ok": None}
    wiped = find_wipeouts(ref, outputs, pairs) if pairs else []
    if wiped:
        out["wipeouts"] = [w["what"] for w in wiped]
    if evalset.judged_by_task and pairs:
        tm = task_metrics(
            evalset.task,
            ref,
            outputs,
            pairs,
            inputs=evalset.inputs,
            labels=evalset.labels,
            head=evalset.head,
            score_threshold=evalset.score_threshold,
        )
        out["task_metrics"] = tm.to_dict()
        check = budget_checks(tm, evalset.budgets)[0]
        name, metric, _ = BUDGETS[evalset.task]
        out["budget_ok"] = bool(check["passed"])
        out["budget_text"] = budget_text(evalset.task, evalset.budgets)
        op = ">=" if check["passed"] else "<"
        out["budget_why"] = f"{metric} {check['value']:.6g} {op} {check['threshold']:g}"
        out["budget_value"] = check["value"]
    if wiped:
        out["budget_ok"] = False
        out["budget_why"] = "wipes out " + "; ".join(out["wipeouts"])
        out.setdefault("budget_text", "no wiped-out output")
    return out


def _outputs_all(tflite: bytes, inputs: Mapping[str, np.ndarray], name: str, on: str) -> dict[str, np.ndarray]:
    from converters.evaluation import check_finite, tflite_outputs

    outputs = tflite_outputs(tflite, inputs)
    check_finite(outputs, f"candidate {name}", on)
    return outputs


def _outputs(tflite: bytes, inputs: Mapping[str, np.ndarray], name: str, on: str) -> np.ndarray:
    from converters.evaluation import primary

    return np.asarray(primary(_outputs_all(tflite, inputs, name, on)))


def _measure_quality(candidate: Candidate, evalset: EvalSet) -> None:
    from converters.evaluation import primary

    try:
        outputs = _outputs_all(candidate.tflite, evalset.inputs, candidate.name, evalset.source)
        output = np.asarray(primary(outputs))
        labels = evalset.labels if not evalset.judged_by_task else None
        assert evalset.reference is not None  # float32's outputs, set before any candidate runs
        candidate.measured.update(
            quality(
                output, evalset.reference, labels, evalset.reference_accuracy, classifier=not evalset.judged_by_task
            )
        )
        candidate.measured.update(task_quality(outputs, evalset))
        if evalset.judged_by_task:  # its own budget decides; "points" would be a relative error in disguise
            candidate.measured["drop_points"] = None
    except NonFiniteOutputError as exc:
        candidate.fail(f"non-finite outputs: {first_line(exc, 200)}")
    except Exception as exc:  # noqa: BLE001 - one broken candidate must not stop the others
        candidate.fail(f"could not run on {evalset.source}: {first_line(exc, 200)}")


def _is_latency(value: object) -> TypeGuard[int | float]:
    """A positive finite number of microseconds (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def _bench_inputs(float32_tflite: bytes, inputs: Mapping[str, np.ndarray], rows: int, folder: Path) -> Path:
    """Real rows as an .npz named by the model's inputs, for the benchmark to cycle through."""
    import edge_sdk

    names = [s.name for s in edge_sdk.load(float32_tflite, verify=False).inputs]
    arrays = dict(inputs) if set(inputs) == set(names) else dict(zip(names, inputs.values(), strict=False))
    path = folder / "bench-inputs.npz"
    # numpy's stub lets **kwds fill allow_pickle (bool); these keys are input names, never that.
    np.savez(path, **{k: np.asarray(v[:rows]) for k, v in arrays.items()})  # type: ignore[arg-type]
    return path


def measure_latency(
    paths: Sequence[Path], inputs_npz: Path | None, options: AutoOptions, progress: bool
) -> dict[str, Any]:
    """One interleaved benchmark of every path (locally or on ``options.target``); the results document."""
    from edge_sdk.bench import BenchOptions, run_benchmark

    bench_options = BenchOptions(
        duration=options.bench_seconds,
        threads=(options.threads,),
        batch=options.batch,
        input_path=str(inputs_npz) if inputs_npz else None,
        progress=progress,
        keep_samples=False,
    )
    if options.target == "local":
        return run_benchmark([str(p) for p in paths], bench_options)
    from edge_sdk.remote import run_remote_benchmark

    return run_remote_benchmark(
        paths,
        options.target,
        bench_options,
        remote_command=options.remote_command,
        ssh_config=options.ssh_config or None,
    )


# ------------------------------------------------------------------------------------------------
# building
# ------------------------------------------------------------------------------------------------
def _calibration(ctx: RunContext, model: Any, rows: int | None = None) -> dict[str, np.ndarray] | None:
    from converters.calibration import as_input_dict

    if ctx.data.calibration_x is None:
        return None
    cal = as_input_dict(ctx.data.calibration_x, model.inputs)
    return cal if rows is None else {k: v[:rows] for k, v in cal.items()}


def _tflite_convert(ctx: RunContext, model: Any, mode: str, io: str = "int8") -> Candidate:
    from converters.tflite_convert import convert

    calibration = _calibration(ctx, model) if mode == "int8" else None
    if mode == "int8" and calibration is None:
        raise _Skip("needs calibration data (--calibration FILE or --dataset NAME)")
    if model.kind == KIND_TFLITE:
        return _litert_for_tflite_input(model, mode, io, calibration)
    result = convert(
        model,
        mode,
        calibration=calibration,
        io=io,
        calibration_samples=ctx.recipe.quantize.calibration_samples,
        seed=ctx.seed,
    )
    candidate = Candidate("", kind=schemes.manifest_kind(mode), tflite=result.tflite)
    if mode == "int8" and result.float_ops:
        candidate.notes.append("float ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(result.float_ops.items())))
    return candidate


def _litert_for_tflite_input(model: Any, mode: str, io: str, calibration: Any) -> Candidate:
    """A float .tflite input has no graph for TFLiteConverter: the LiteRT quantizer's matching scheme builds it."""
    try:
        from converters import litert_quant
    except ImportError:
        raise _Skip("a .tflite input is quantized with converters.litert_quant, which is not available") from None
    if not litert_quant.available():
        raise _Skip("a .tflite input is quantized with the LiteRT quantizer: pip install 'edge-sdk[quantize]'")
    scheme = schemes.litert_for_mode(mode)
    rows = None if calibration is None else {k: v[:CALIBRATION_ROWS] for k, v in calibration.items()}
    tflite = litert_quant.quantize_tflite(model.tflite_bytes, scheme, rows, io=io)
    return Candidate(
        "",
        kind=schemes.manifest_kind(scheme),
        tflite=tflite,
        notes=[f"a .tflite input: built by the LiteRT quantizer's {scheme!r} scheme"],
    )


class _Skip(Exception):
    """A candidate that does not apply to this input (not an error)."""


def _keep_float(
    ctx: RunContext, model: Any, options: AutoOptions, evalset: EvalSet, built: dict[str, Candidate]
) -> Candidate:
    """Full int8 with the debugger's most harmful weighted layers kept in float, one more at a time."""
    from converters.debugger import LayerDebugger

    if model.kind == KIND_TFLITE:
        raise _Skip("the quantization debugger needs a Keras model or SavedModel; this input is a .tflite")
    int8 = built.get("int8")
    if int8 is not None and int8.status == "ok" and _within(int8, options):
        raise _Skip("full int8 is already within the budget: no layer needs to stay float")
    calibration = _calibration(ctx, model, CALIBRATION_ROWS)
    if calibration is None:
        raise _Skip("needs calibration data (--calibration FILE or --dataset NAME)")
    debugger = LayerDebugger(model, calibration, io="int8")
    ranking = [row for row in debugger.layer_errors("rel_rmse") if row.candidate]
    if not ranking:
        raise _Skip("the debugger found no weighted layer to keep in float")
    last: Candidate | None = None
    for k in range(1, min(options.keep_float_max, len(ranking)) + 1):
        denylist = [row.name for row in ranking[:k]]
        candidate = Candidate("int8-keep-float", kind="int8", tflite=debugger.quantize(denylist))
        _measure_quality(candidate, evalset)
        candidate.notes = [
            f"{k} of {len(ranking)} weighted layers kept in float (debugger rel_rmse ranking): "
            + ", ".join(r.op for r in ranking[:k]),
            PER_OP_LATENCY_NOTE,
        ]
        candidate.measured["float_layers"] = denylist
        last = candidate
        if candidate.status == "ok" and _within(candidate, options):
            break
    if last is None:  # the recipe keeps keep_float_max >= 1 and ranking is not empty: never reached
        raise _Skip("no layer to keep in float (auto.keep_float_max)")
    return last


def _within(candidate: Candidate, options: AutoOptions) -> bool:
    """A measured candidate within budget: the task's own (``budget_ok``), else ``max_drop`` points."""
    m = candidate.measured
    if m.get("budget_ok") is not None:
        return bool(m["budget_ok"])
    return (m.get("drop_points") or 0.0) <= options.max_drop + 1e-9


def _float_head(ctx: RunContext, model: Any, evalset: EvalSet, built: dict[str, Candidate]) -> Candidate:
    """Full int8 with the ops that write the model's outputs kept in float (float I/O).

    Built when full int8 wiped out an output (:func:`edge_sdk.tasks.find_wipeouts`): a YOLO-style
    head concatenates boxes in pixels (0-640) and class scores (0-1) into one tensor, whose one
    int8 scale turns every score into 0. Keeping that final op (the concat) in float gives each of
    its inputs its own scale.
    """
    from converters.debugger import LayerDebugger

    int8 = built.get("int8")
    if int8 is None or int8.status != "ok":
        raise _Skip("needs the int8 candidate to compare with (it was not built)")
    if not int8.measured.get("wipeouts"):
        raise _Skip("full int8 wipes out no output: nothing to keep in float")
    if model.kind == KIND_TFLITE:
        raise _Skip(
            "the quantization debugger needs a Keras model or SavedModel; this input is a .tflite "
            "(quantize with --keep-float REGEX naming the final op's output instead)"
        )
    calibration = _calibration(ctx, model, CALIBRATION_ROWS)
    if calibration is None:
        raise _Skip("needs calibration data (--calibration FILE or --dataset NAME)")
    debugger = LayerDebugger(model, calibration, io="float32")
    from converters.debugger import head_tail_tensors

    heads = head_tail_tensors((ctx.staging / ctx.current_artifact.file).read_bytes())
    layers = [row for row in debugger.layer_errors("rel_rmse") if row.name in heads]
    if not layers:
        raise _Skip("the debugger found no quantized op writing a model output")
    candidate = Candidate("int8-float-head", kind="int8", tflite=debugger.quantize([r.name for r in layers]))
    candidate.notes = [
        "int8 with the op(s) writing the outputs kept in float (float I/O): "
        + ", ".join(f"{r.op} {r.name}" for r in layers)
        + "; full int8 wiped out "
        + "; ".join(int8.measured["wipeouts"])
    ]
    candidate.measured["float_layers"] = [r.name for r in layers]
    return candidate


def _litert(ctx: RunContext, scheme_key: str, float32_tflite: bytes, model: Any) -> Candidate:
    try:
        from converters import litert_quant
    except ImportError:
        raise _Skip("converters.litert_quant not available") from None
    if not litert_quant.available():
        raise _Skip("litert-quantizer is not installed (pip install litert-quantizer)")
    scheme = schemes.AUTO_LITERT_CANDIDATES[scheme_key]
    if scheme not in litert_quant.SCHEMES:
        raise _Skip(f"scheme {scheme!r} is not offered by converters.litert_quant ({', '.join(litert_quant.SCHEMES)})")
    calibration = _calibration(ctx, model, CALIBRATION_ROWS)
    tflite = litert_quant.quantize_tflite(float32_tflite, scheme, calibration)
    return Candidate(
        "",
        kind=schemes.manifest_kind(scheme),
        tflite=tflite,
        notes=[f"LiteRT quantizer scheme {scheme}: {litert_quant.SCHEMES[scheme]}"],
    )


def _pruned(ctx: RunContext, model: Any) -> Candidate:
    from converters.model_files import from_keras
    from converters.prune import prune

    if "prune" in ctx.recipe.stages:
        raise _Skip("the recipe already prunes before 'auto': every candidate is pruned")
    if not model.is_tf_keras:
        raise _Skip(f"pruning needs a tf_keras model (tfmot), this is a {model.kind} model")
    if ctx.data.train_x is None or ctx.data.train_y is None:
        raise _Skip("needs training data to fine-tune while pruning (--train FILE.npz or --dataset NAME)")
    opts = ctx.recipe.prune
    result = prune(
        model.model,
        ctx.data.train_x,
        ctx.data.train_y,
        opts,
        progress=(ctx.progress.epochs("prune", opts.epochs) or [None])[0],
    )
    candidate = _tflite_convert(ctx, from_keras(result.model), "int8")
    candidate.notes.append(
        f"pruned to {result.overall_sparsity:.0%} sparsity ({opts.epochs} fine-tuning epochs, "
        "recipe [prune]); dense kernels on LiteRT: zeros shrink the gzip size, not the latency"
    )
    candidate.measured["sparsity"] = round(result.overall_sparsity, 4)
    return candidate


def _build(
    ctx: RunContext, name: str, options: AutoOptions, evalset: EvalSet, built: dict[str, Candidate]
) -> Candidate:
    model = ctx.current
    float32 = ctx.current_artifact
    try:
        if name == "float16":
            candidate = _tflite_convert(ctx, model, "float16")
        elif name == "dynamic":
            candidate = _tflite_convert(ctx, model, "dynamic")
        elif name == "int8":
            candidate = _tflite_convert(ctx, model, "int8", io="int8")
        elif name == "int8-float-io":
            candidate = _tflite_convert(ctx, model, "int8", io="float32")
        elif name == "int8-float-head":
            candidate = _float_head(ctx, model, evalset, built)
        elif name == "int8-keep-float":
            candidate = _keep_float(ctx, model, options, evalset, built)
        elif name in schemes.AUTO_LITERT_CANDIDATES:
            candidate = _litert(ctx, name, (ctx.staging / float32.file).read_bytes(), model)
        elif name == "pruned-int8":
            candidate = _pruned(ctx, model)
        else:  # the recipe's choices make this unreachable; say so plainly if it ever is not
            raise ConversionError(f"unknown auto candidate {name!r}")
    except _Skip as exc:
        return Candidate(name).fail(str(exc), "skipped")
    except MemoryError:
        return Candidate(name).fail("ran out of memory while building it")
    except Exception as exc:  # noqa: BLE001 - TF and the quantizers raise many types; one line, and go on
        text = first_line(exc, 300)
        if not isinstance(exc, EdgeSdkError):  # a bare KeyError says only "'quantize'": name the type too
            text = f"{type(exc).__name__}: {text}"
        return Candidate(name).fail(text)
    candidate.name = name
    if candidate.status == "ok" and "drop_points" not in candidate.measured:
        _measure_quality(candidate, evalset)
    return candidate


# ------------------------------------------------------------------------------------------------
# the stage
# ------------------------------------------------------------------------------------------------
def run_stage(ctx: RunContext, options: AutoOptions) -> None:
    """Build, measure and choose (see module docs); writes every candidate and ``model.tflite``.

    ``ctx``: the :class:`converters.context.RunContext`; ``options``: the ``[auto]`` section.
    """
    from edge_sdk.manifest import manifest_path_for, write_manifest

    float32 = ctx.current_artifact
    prefix = f"{ctx.prefix}-" if ctx.prefix else ""
    evalset = _eval_set(ctx, options)
    reference = Candidate(REFERENCE, kind="float32", tflite=(ctx.staging / float32.file).read_bytes(), artifact=float32)
    evalset.task = getattr(ctx, "task", None)
    evalset.budgets = ctx.recipe.task.budgets()
    evalset.head, evalset.score_threshold = ctx.recipe.task.detection_head, ctx.recipe.task.score_threshold
    evalset.reference_all = _outputs_all(reference.tflite, evalset.inputs, "float32", evalset.source)
    from converters.evaluation import primary

    evalset.reference = np.asarray(primary(evalset.reference_all))
    if evalset.labels is not None and not evalset.judged_by_task:
        from edge_sdk.metrics import accuracy

        evalset.reference_accuracy = accuracy(evalset.reference, evalset.labels, "eval labels")
    reference.measured.update(
        quality(
            evalset.reference,
            evalset.reference,
            None if evalset.judged_by_task else evalset.labels,
            evalset.reference_accuracy,
            classifier=not evalset.judged_by_task,
        )
    )
    if evalset.judged_by_task:
        reference.measured.update(task_quality(evalset.reference_all, evalset), drop_points=None)
    candidates: list[Candidate] = [reference]
    built: dict[str, Candidate] = {}
    wanted = [c for c in options.candidates if c != REFERENCE]
    for i, name in enumerate(wanted, 1):
        ctx.progress.say(f"auto: building candidate {i}/{len(wanted)}: {name}")
        candidate = _build(ctx, name, options, evalset, built)
        built[name] = candidate
        candidates.append(candidate)
        if candidate.status != "ok":
            ctx.progress.say(f"auto: {name} {candidate.status}: {candidate.reason}")
            continue
        candidate.artifact = ctx.add_tflite(
            f"{prefix}{name}",
            candidate.tflite,
            kind=candidate.kind,
            stage=STAGE,
            parent=float32.sha256,
            extra_metrics={k: v for k, v in candidate.measured.items() if k in ("sparsity",)},
            auto_candidate={"name": name, "notes": candidate.notes},
        )
    if not any(c.status == "ok" for c in candidates if c is not reference):
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in candidates if c is not reference)
        raise ConversionError(f"auto: no candidate could be built ({reasons})")

    ok = [c for c in candidates if c.status == "ok"]
    where = "locally" if options.target == "local" else f"on {options.target}"
    ctx.progress.say(
        f"auto: measuring the latency of {len(ok)} models interleaved {where} "
        f"({options.threads} thread(s), batch {options.batch}, ~{options.bench_seconds:g} s each)"
    )
    with tempfile.TemporaryDirectory(prefix="edge-sdk-auto-") as folder:
        npz = _bench_inputs(reference.tflite, evalset.inputs, max(BENCH_ROWS, 8 * options.batch), Path(folder))
        doc = measure_latency([ctx.staging / c.artifact.file for c in ok], npz, options, ctx.progress.enabled)
    by_path = {Path(r.get("path", "")).name: r for r in doc.get("results", [])}
    for candidate in ok:
        res = by_path.get(candidate.artifact.file) or {}
        latency_doc = res.get("latency_us")
        latency = latency_doc if isinstance(latency_doc, dict) else {}
        # the device's document was checked (edge_sdk.remote); a latency that is not a positive finite
        # number is still never recorded
        median, p90 = latency.get("median"), latency.get("p90")
        if res.get("status") == "ok" and _is_latency(median) and _is_latency(p90):
            candidate.measured["median_us"] = float(median)
            candidate.measured["p90_us"] = float(p90)
            candidate.measured["runs"] = int(res.get("runs") or 0)
        else:
            from edge_sdk.console import clean_text

            error = res.get("error") or ("no positive latency measured" if res.get("status") == "ok" else "no result")
            candidate.reason = f"benchmark failed: {clean_text(error, limit=300)}"

    from edge_sdk.tasks import budget_text

    ctx.progress.say(
        f"auto: choosing on {options.objective} within "
        + (budget_text(evalset.task, evalset.budgets) if evalset.judged_by_task else f"{options.max_drop:g} points")
    )
    rows = [_row(c, reference) for c in candidates]
    decision = select(
        rows,
        objective=options.objective,
        max_drop=options.max_drop,
        latency_tie=options.latency_tie,
        slower_margin=options.slower_margin,
    )
    chosen = next(c for c in candidates if c.name == decision["chosen"])
    record = {
        "chosen": chosen.artifact.file,
        "chosen_candidate": chosen.name,
        "stable_file": CHOSEN_FILE,
        "objective": options.objective,
        "max_drop": options.max_drop,
        "budget_metric": (f"task {evalset.task.value}: " + budget_text(evalset.task, evalset.budgets))
        if evalset.judged_by_task
        else reference.measured["budget_metric"],
        "reason": decision["reason"],
        "task": evalset.task.value if evalset.task is not None else None,
        "eval": {"source": evalset.source, "samples": len(next(iter(evalset.inputs.values())))},
        "latency": {
            "target": options.target,
            "threads": options.threads,
            "batch": options.batch,
            "seconds_per_candidate": options.bench_seconds,
            "device": _device(doc),
            "timed_call": (doc.get("options") or {}).get("timed_call"),
        },
        "table": decision["rows"],
    }
    # every candidate's manifest gets its interleaved figures; the chosen one the whole table
    for candidate, row in zip(candidates, decision["rows"], strict=False):
        if candidate.artifact is None:
            continue
        metrics = candidate.artifact.metrics
        for key in ("median_us", "p90_us"):
            if row.get(key) is not None:
                metrics["latency_us" if key == "median_us" else "latency_p90_us"] = round(row[key], 1)
        for key in ("agreement", "drop_points", "max_abs_error"):
            if row.get(key) is not None:
                metrics[key] = round(row[key], 6)
        candidate.artifact.manifest["metrics"] = metrics
        if candidate is chosen:
            candidate.artifact.manifest["auto"] = record
        write_manifest(candidate.artifact.manifest, manifest_path_for(ctx.staging / candidate.artifact.file))
    stable = ctx.add_tflite(
        Path(CHOSEN_FILE).stem,
        (ctx.staging / chosen.artifact.file).read_bytes(),
        kind=chosen.kind,
        stage=STAGE,
        parent=chosen.artifact.parent,
        extra_metrics=dict(chosen.artifact.metrics),
        auto=record,
        copy_of=chosen.artifact.file,
    )
    record["stable_sha256"] = stable.sha256
    ctx.record(AutoComparison(record))
    _write_reports(ctx, record)


def _row(candidate: Candidate, reference: Candidate) -> dict[str, Any]:
    m = candidate.measured
    row: dict[str, Any] = {
        "name": candidate.name,
        "status": candidate.status,
        "reason": candidate.reason,
        "kind": candidate.kind,
        "notes": list(candidate.notes),
    }
    if candidate.artifact is not None:
        a, ref = candidate.artifact, reference.artifact
        row.update(
            {
                "file": a.file,
                "size_bytes": a.size_bytes,
                "gzip_size_bytes": a.gzip_size_bytes,
                "size_ratio": a.size_bytes / ref.size_bytes,
                "gzip_ratio": a.gzip_size_bytes / ref.gzip_size_bytes,
            }
        )
    for key in (
        "accuracy",
        "agreement",
        "drop_points",
        "max_abs_error",
        "mean_abs_error",
        "relative_error",
        "median_us",
        "p90_us",
        "runs",
        "sparsity",
        "float_layers",
        "budget_ok",
        "budget_why",
        "budget_text",
        "budget_value",
        "wipeouts",
        "task_metrics",
    ):
        if key in m:
            row[key] = m[key]
    ref_m = reference.measured
    if m.get("median_us") is not None and ref_m.get("median_us"):
        row["latency_ratio"] = m["median_us"] / ref_m["median_us"]
        row["p90_ratio"] = m["p90_us"] / ref_m["p90_us"]
    if candidate.status == "ok" and m.get("median_us") is None:
        row["status"] = "failed"
    return row


def _device(doc: Mapping[str, Any]) -> str | None:
    device = doc.get("device")
    if not isinstance(device, Mapping):
        return None
    from edge_sdk.console import clean_text
    from edge_sdk.sysinfo import summary_line

    return clean_text(summary_line(device), limit=300)  # the device describes itself: printed, so no escapes


def _write_reports(ctx: RunContext, record: Mapping[str, Any]) -> None:
    """The Pareto PNG and the HTML page, when matplotlib is there (a warning otherwise, never a failure)."""
    from edge_sdk.errors import MissingExtraError

    try:
        from edge_sdk.plots import pareto_png

        png = pareto_png(
            record["table"],
            ctx.staging / PARETO_FILE,
            title=f"auto: best {record['objective']} within {record['max_drop']:g} points; chosen "
            f"{record['chosen_candidate']}; latency {record['latency']['target']}: "
            f"{record['latency']['device'] or 'device not described'}",
        )
    except MissingExtraError as exc:
        ctx.warn(f"no {PARETO_FILE}: {exc}")
        png = None
    from converters.html_report import write_auto_html

    write_auto_html(ctx.staging / HTML_FILE, record, png)


# ------------------------------------------------------------------------------------------------
# the table people read
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class AutoComparison(Comparison):
    """summary.json's ``comparisons["auto"]``: every candidate's figures, the budget and the choice."""

    key: ClassVar[str] = "auto"
    line_order: ClassVar[int] = 30
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.record

    def lines(self) -> list[str]:
        return tradeoff_lines(self.record)


def tradeoff_lines(record: Mapping[str, Any]) -> list[str]:
    """The trade-off table and the decision, as printed by ``edge-sdk convert --recipe auto``."""
    from converters.html_report import TRADEOFF_HEADERS, tradeoff_rows
    from edge_sdk.report import format_table

    lat = record["latency"]
    lines = [
        f"auto: {len(record['table'])} candidates; latency {lat['target']}"
        + (f" ({lat['device']})" if lat.get("device") else "")
        + f", {lat['threads']} thread(s), batch {lat['batch']}; accuracy on {record['eval']['source']} "
        f"({record['eval']['samples']} rows); budget: {record['max_drop']:g} {record['budget_metric']}",
        format_table(tradeoff_rows(record), TRADEOFF_HEADERS),
        f"chosen: {record['chosen']} -> {record['stable_file']} ({record['reason']})",
    ]
    return lines
