"""Accuracy-budget auto-tuning: keep the most harmful layers in float until int8 is good enough.

1. Quantize the whole model to int8 and measure its accuracy against the float
   model's. Within ``budget`` points: done, ship full int8.
2. Otherwise rank layers with the QuantizationDebugger (:mod:`converters.debugger`,
   worst first by ``rel_rmse``), and keep the worst-ranked layer in float, then the
   two worst, and so on, re-measuring each mix, until one is within the budget.
3. If no mix within ``max_float_layers`` meets the budget, say so and name the
   best trade-off (the most accurate variant; the smaller one on a tie).

Every variant tried is reported with its size, accuracy, latency and how many
operators run in int8 versus float, next to the float32 TFLite baseline.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from converters.evaluation import measure_latency_us
from converters.gate import GateError, validate_thresholds
from edge_sdk.metrics import accuracy
from edge_sdk.reference import labels_to_classes


@dataclasses.dataclass
class Variant:
    """One model tried: which layers stayed float and how it did."""

    name: str
    float_layers: list[str]
    size_bytes: int
    accuracy: float
    drop_points: float
    latency_us: float
    integer_ops: int
    float_ops: int
    meets_budget: bool
    tflite: bytes = dataclasses.field(repr=False, default=b"")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the model bytes)."""
        out = dataclasses.asdict(self)
        out.pop("tflite")
        return out


@dataclasses.dataclass
class AutotuneResult:
    """All variants, the one chosen (first within budget) or the best trade-off, and a verdict."""

    budget_points: float
    float_accuracy: float
    variants: list[Variant]
    chosen: Variant | None
    best_tradeoff: Variant
    ranking: list[dict[str, Any]]
    message: str
    metric: str | None = None  # a task's metric (edge_sdk.tasks.BUDGETS) in place of accuracy; None: accuracy

    @property
    def met(self) -> bool:
        """True when some variant is within the budget."""
        return self.chosen is not None

    @property
    def model(self) -> bytes:
        """The .tflite to ship: the chosen variant, else the best trade-off."""
        return (self.chosen or self.best_tradeoff).tflite

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "budget_points": self.budget_points,
            "float_accuracy": self.float_accuracy,
            "met": self.met,
            "chosen": self.chosen.name if self.chosen else None,
            "best_tradeoff": self.best_tradeoff.name,
            "message": self.message,
            "metric": self.metric or "accuracy",
            "variants": [v.to_dict() for v in self.variants],
            "ranking": self.ranking,
        }


def _accuracy(tflite: bytes, inputs: Mapping[str, np.ndarray], labels: np.ndarray, input_names: list[str]) -> float:
    import edge_sdk

    model = edge_sdk.load(tflite)
    names = [s.name for s in model.inputs]
    feed = (
        {n: inputs[n] for n in names}
        if set(names) <= set(inputs)
        else dict(zip(names, (inputs[n] for n in input_names), strict=False))
    )
    output = model.predict_all(feed)
    primary = next(iter(output.values())) if len(output) == 1 else output[sorted(output)[0]]
    acc = accuracy(np.asarray(primary), labels)
    if acc is None:
        raise GateError("auto-tuning needs a classifier: the model's output has no classes to compare with labels")
    return acc


def _op_counts(tflite: bytes):
    from edge_sdk.inspect_model import inspect_model

    info = inspect_model(tflite)
    return sum((info.get("integer_ops") or {}).values()), sum((info.get("float_ops") or {}).values())


def autotune(
    float_model: Any,
    calibration: Mapping[str, np.ndarray],
    eval_inputs: Mapping[str, np.ndarray],
    eval_labels: np.ndarray | None,
    *,
    budget_points: float,
    io: str = "int8",
    max_float_layers: int | None = None,
    rank_by: str = "rel_rmse",
    latency_runs: int = 50,
    num_threads: int = 1,
    float_accuracy: float | None = None,
    progress: bool = True,
    task: Any = None,
    budgets: Mapping[str, float] | None = None,
    head: str = "auto",
    score_threshold: float = 0.25,
) -> AutotuneResult:
    """Find the most-int8 model within ``budget_points`` of the float accuracy (see module docs).

    ``float_model`` is a path or a :class:`converters.model_files.LoadedModel`;
    ``calibration`` and ``eval_inputs`` map input names to arrays; ``eval_labels``
    are the class ids of ``eval_inputs`` (ids the model has no class for are refused).
    ``budget_points``: the most accuracy, in points, a variant may lose; ``io``: int8 or
    float32 model edges; ``max_float_layers``: stop after this many float layers (default:
    all candidates); ``rank_by``: the debugger metric layers are ranked by;
    ``latency_runs``/``num_threads``: timing of each variant; ``float_accuracy``: the
    float model's accuracy if already measured; ``progress``: one line per variant on stderr.

    ``task`` (an :class:`edge_sdk.tasks.Task` other than classification): each variant is judged
    by that task's budget in ``budgets`` (``{"min_iou": 0.9, ...}``, defaults
    :data:`edge_sdk.tasks.DEFAULT_BUDGETS`) against the float model's outputs, no labels needed;
    a variant that wipes out an output never meets it. Then ``accuracy`` holds the task metric,
    ``drop_points`` its shortfall below the budget (0 when met) and ``budget_points`` the budget.
    """
    from edge_sdk.tasks import BUDGETS, parse_task

    task = parse_task(task)
    if task is not None and task in BUDGETS:
        return _autotune_task(
            float_model,
            calibration,
            eval_inputs,
            eval_labels,
            task=task,
            budgets=dict(budgets or {}),
            head=head,
            score_threshold=score_threshold,
            io=io,
            max_float_layers=max_float_layers,
            rank_by=rank_by,
            latency_runs=latency_runs,
            num_threads=num_threads,
            progress=progress,
        )
    from converters.debugger import LayerDebugger
    from converters.parity import load_float_model

    if budget_points is None:
        raise GateError("--accuracy-budget is in accuracy points: expected a number in [0, 100], got None")
    validate_thresholds(accuracy_budget=budget_points)
    if eval_labels is None:
        raise GateError("--accuracy-budget needs labels to measure accuracy: give --labels or data with 'y'")
    classes = labels_to_classes(eval_labels)
    n = len(next(iter(eval_inputs.values())))
    if len(classes) != n:
        raise GateError(f"labels: expected {n}, one per example, got {len(classes)}")

    fm = load_float_model(float_model)
    names = fm.input_names
    if float_accuracy is None:
        f_out = fm.predict_all({k: eval_inputs[k] for k in names})
        float_accuracy = accuracy(next(iter(f_out.values())), classes)
        if float_accuracy is None:
            raise GateError("auto-tuning needs a classifier: the model's output has no classes to compare with labels")
    example = {k: np.asarray(eval_inputs[k][:1]) for k in names}
    say = (lambda text: print(text, file=sys.stderr)) if progress else (lambda text: None)

    def make_variant(name: str, tflite: bytes, float_layers: list[str]) -> Variant:
        acc = _accuracy(tflite, eval_inputs, classes, names)
        ints, floats = _op_counts(tflite)
        drop = (float_accuracy - acc) * 100.0
        variant = Variant(
            name,
            list(float_layers),
            len(tflite),
            acc,
            drop,
            measure_latency_us(tflite, example, runs=latency_runs, num_threads=num_threads),
            ints,
            floats,
            drop <= budget_points + 1e-9,
            tflite,
        )
        say(
            f"autotune: {name}: accuracy {acc:.4f} (drop {drop:.2f} points), {len(tflite):,} bytes, "
            f"{variant.latency_us:.1f} us, {ints} int8 / {floats} float ops"
        )
        return variant

    variants: list[Variant] = []
    baseline = _float_tflite(fm)
    float_variant = make_variant("float32", baseline, ["(all)"])
    float_variant.meets_budget = False  # the float32 baseline, not a candidate to ship as "int8"
    variants.append(float_variant)

    debugger = LayerDebugger(fm.loaded, calibration, io=io)
    ranking = [row for row in debugger.layer_errors(rank_by) if row.candidate]
    limit = len(ranking) if max_float_layers is None else min(max_float_layers, len(ranking))
    chosen: Variant | None = None
    denylist: list[str] = []
    for step in range(limit + 1):
        if step:
            denylist.append(ranking[step - 1].name)
        label = "int8" if not step else f"int8 + {step} float"
        variant = make_variant(label, debugger.quantize(denylist), denylist)
        variants.append(variant)
        if variant.meets_budget:
            chosen = variant
            break
    tried = variants[1:]
    best = max(tried, key=lambda v: (round(v.accuracy, 9), -v.size_bytes))
    if chosen is not None and not chosen.float_layers:
        message = f"full int8 is within the {budget_points:g}-point budget: drop {chosen.drop_points:.2f} points"
    elif chosen is not None:
        message = (
            f"within the {budget_points:g}-point budget by keeping {len(chosen.float_layers)} of "
            f"{len(ranking)} weighted layers in float: drop {chosen.drop_points:.2f} points, "
            f"{chosen.integer_ops} int8 ops / {chosen.float_ops} float ops"
        )
    else:
        message = (
            f"no mix meets the {budget_points:g}-point budget (tried {len(tried)} variants, up to "
            f"{len(denylist)} float layers); best trade-off: {best.name}, drop {best.drop_points:.2f} "
            f"points, {best.size_bytes:,} bytes"
        )
    return AutotuneResult(
        budget_points, float_accuracy, variants, chosen, best, [row.to_dict() for row in ranking], message
    )


def _autotune_task(
    float_model: Any,
    calibration: Mapping[str, np.ndarray],
    eval_inputs: Mapping[str, np.ndarray],
    eval_labels: np.ndarray | None,
    *,
    task: Any,
    budgets: dict[str, float],
    head: str,
    score_threshold: float,
    io: str,
    max_float_layers: int | None,
    rank_by: str,
    latency_runs: int,
    num_threads: int,
    progress: bool,
) -> AutotuneResult:
    """:func:`autotune` for a task with its own budget (see there)."""
    import edge_sdk
    from converters.debugger import LayerDebugger
    from converters.parity import load_float_model
    from edge_sdk.tasks import BUDGETS, DEFAULT_BUDGETS, TaskError, budget_checks, find_wipeouts, task_metrics

    name, metric, meaning = BUDGETS[task]
    given = budgets.get(name)
    threshold = float(given if given is not None else DEFAULT_BUDGETS[name])
    fm = load_float_model(float_model)
    names = fm.input_names
    inputs = {k: np.asarray(eval_inputs[k]) for k in names}
    f_out = fm.predict_all(inputs)
    example = {k: v[:1] for k, v in inputs.items()}
    say = (lambda text: print(text, file=sys.stderr)) if progress else (lambda text: None)
    budget = {name: threshold}
    wiped_by: dict[int, bool] = {}

    def _wiped_out(variant: Variant) -> bool:
        return wiped_by.get(id(variant.tflite), False)

    def make_variant(label: str, tflite: bytes, float_layers: list[str]) -> Variant:
        model = edge_sdk.load(tflite)
        specs = [s.name for s in model.inputs]
        feed = (
            {n: inputs[n] for n in specs}
            if set(specs) <= set(inputs)
            else dict(zip(specs, inputs.values(), strict=False))
        )
        q_out = model.predict_all(feed)
        q_names = list(q_out)
        pairs = [(f, f if f in q_out else q_names[i]) for i, (f, _) in enumerate(fm.outputs)]
        tm = task_metrics(
            task, f_out, q_out, pairs, inputs=inputs, labels=eval_labels, head=head, score_threshold=score_threshold
        )
        check = budget_checks(tm, budget)[0]
        if check["value"] is None:  # e.g. every mask empty: no variant can be judged by it
            raise TaskError(f"auto-tuning by {name}: {check['reason']}")
        value = float(check["value"])
        wiped = find_wipeouts(f_out, q_out, pairs)
        ok = value >= threshold - 1e-12 and not wiped
        ints, floats = _op_counts(tflite)
        variant = Variant(
            label,
            list(float_layers),
            len(tflite),
            value,
            max(0.0, threshold - value),
            measure_latency_us(tflite, example, runs=latency_runs, num_threads=num_threads),
            ints,
            floats,
            ok,
            tflite,
        )
        wiped_by[id(tflite)] = bool(wiped)
        say(
            f"autotune: {label}: {metric} {value:.6g} (budget {name} {threshold:g})"
            + (", wipes out " + "; ".join(w["what"] for w in wiped) if wiped else "")
            + f", {len(tflite):,} bytes, {variant.latency_us:.1f} us"
        )
        return variant

    float_variant = make_variant("float32", _float_tflite(fm), ["(all)"])
    float_variant.meets_budget = False
    variants = [float_variant]
    debugger = LayerDebugger(fm.loaded, calibration, io=io)
    ranking = [row for row in debugger.layer_errors(rank_by) if row.candidate]
    limit = len(ranking) if max_float_layers is None else min(max_float_layers, len(ranking))
    chosen: Variant | None = None
    denylist: list[str] = []
    for step in range(limit + 1):
        if step:
            denylist.append(ranking[step - 1].name)
        variant = make_variant("int8" if not step else f"int8 + {step} float", debugger.quantize(denylist), denylist)
        variants.append(variant)
        if variant.meets_budget:
            chosen = variant
            break
        if not step and variant.float_layers == [] and _wiped_out(variant):
            # one scale for boxes in pixels and scores in [0, 1]: keep the op tail writing the outputs in float
            from converters.debugger import head_tail_tensors

            head_debugger = LayerDebugger(fm.loaded, calibration, io="float32")
            tail = sorted(head_tail_tensors(_float_tflite(fm)))
            # not named `head`: make_variant reads the detection head (a str) from this scope
            head_variant = make_variant("int8 + float head", head_debugger.quantize(tail), tail)
            variants.append(head_variant)
            if head_variant.meets_budget:
                chosen = head_variant
                break
    tried = variants[1:]
    best = max(tried, key=lambda v: (round(v.accuracy, 9), -v.size_bytes))
    what = f"the {task.value} budget {name} {threshold:g} ({meaning})"
    if chosen is not None and not chosen.float_layers:
        message = f"full int8 is within {what}: {metric} {chosen.accuracy:.6g}"
    elif chosen is not None and chosen.name == "int8 + float head":
        message = (
            f"within {what} by keeping the ops that write the outputs in float (full int8 wiped an output "
            f"out): {metric} {chosen.accuracy:.6g}"
        )
    elif chosen is not None:
        message = (
            f"within {what} by keeping {len(chosen.float_layers)} of {len(ranking)} weighted layers in float: "
            f"{metric} {chosen.accuracy:.6g}"
        )
    else:
        message = (
            f"no mix meets {what} (tried {len(tried)} variants); best trade-off: {best.name}, "
            f"{metric} {best.accuracy:.6g}"
        )
    return AutotuneResult(
        threshold,
        float_variant.accuracy,
        variants,
        chosen,
        best,
        [row.to_dict() for row in ranking],
        message,
        metric=metric,
    )


def _float_tflite(fm: Any) -> bytes:
    from converters.tflite_convert import convert

    return convert(fm.loaded, "float32").tflite


VARIANT_HEADERS = [
    "variant",
    "float layers",
    "size (bytes)",
    "accuracy",
    "drop (points)",
    "latency (us)",
    "int8 ops",
    "float ops",
    "within budget",
]


def variant_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    """Rows of the variants table from :meth:`AutotuneResult.to_dict`."""
    rows = []
    for v in result["variants"]:
        layers = "all" if v["float_layers"] == ["(all)"] else str(len(v["float_layers"]))
        rows.append(
            [
                v["name"],
                layers,
                v["size_bytes"],
                v["accuracy"],
                round(v["drop_points"], 2),
                round(v["latency_us"], 1),
                v["integer_ops"],
                v["float_ops"],
                "-" if v["name"] == "float32" else ("yes" if v["meets_budget"] else "no"),
            ]
        )
    return rows
