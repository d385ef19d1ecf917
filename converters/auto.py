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
from typing import Any, ClassVar

import numpy as np

from converters.auto_candidates import _build
from converters.auto_measure import (
    BENCH_ROWS,
    Candidate,
    _bench_inputs,
    _eval_set,
    _is_latency,
    _outputs_all,
    measure_latency,
    quality,
    task_quality,
)
from converters.context import Comparison, RunContext
from converters.errors import ConversionError, DataError
from converters.recipe import AUTO_OBJECTIVES, AutoOptions, Recipe

STAGE = "auto"
REFERENCE = "float32"
CHOSEN_FILE = "model.tflite"
PARETO_FILE = "auto-pareto.png"
HTML_FILE = "auto.html"


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
