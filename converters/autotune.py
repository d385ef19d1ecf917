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
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from converters.evaluation import measure_latency_us
from converters.gate import GateError, validate_thresholds
from edge_sdk.metrics import accuracy
from edge_sdk.reference import labels_to_classes


@dataclasses.dataclass
class Variant:
    """One model tried: which layers stayed float and how it did."""

    name: str
    float_layers: List[str]
    size_bytes: int
    accuracy: float
    drop_points: float
    latency_us: float
    integer_ops: int
    float_ops: int
    meets_budget: bool
    tflite: bytes = dataclasses.field(repr=False, default=b"")

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form (without the model bytes)."""
        out = dataclasses.asdict(self)
        out.pop("tflite")
        return out


@dataclasses.dataclass
class AutotuneResult:
    """All variants, the one chosen (first within budget) or the best trade-off, and a verdict."""

    budget_points: float
    float_accuracy: float
    variants: List[Variant]
    chosen: Optional[Variant]
    best_tradeoff: Variant
    ranking: List[Dict[str, Any]]
    message: str

    @property
    def met(self) -> bool:
        """True when some variant is within the budget."""
        return self.chosen is not None

    @property
    def model(self) -> bytes:
        """The .tflite to ship: the chosen variant, else the best trade-off."""
        return (self.chosen or self.best_tradeoff).tflite

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {
            "budget_points": self.budget_points,
            "float_accuracy": self.float_accuracy,
            "met": self.met,
            "chosen": self.chosen.name if self.chosen else None,
            "best_tradeoff": self.best_tradeoff.name,
            "message": self.message,
            "variants": [v.to_dict() for v in self.variants],
            "ranking": self.ranking,
        }


def _accuracy(tflite: bytes, inputs: Mapping[str, np.ndarray], labels: np.ndarray, input_names: List[str]) -> float:
    import edge_sdk

    model = edge_sdk.load(tflite)
    names = [s.name for s in model.inputs]
    feed = {n: inputs[n] for n in names} if set(names) <= set(inputs) else dict(zip(names, (inputs[n] for n in input_names)))
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
    eval_labels: np.ndarray,
    *,
    budget_points: float,
    io: str = "int8",
    max_float_layers: Optional[int] = None,
    rank_by: str = "rel_rmse",
    latency_runs: int = 50,
    num_threads: int = 1,
    float_accuracy: Optional[float] = None,
    progress: bool = True,
) -> AutotuneResult:
    """Find the most-int8 model within ``budget_points`` of the float accuracy (see module docs).

    ``float_model`` is a path or a :class:`converters.loading.LoadedModel`;
    ``calibration`` and ``eval_inputs`` map input names to arrays; ``eval_labels``
    are the class ids of ``eval_inputs`` (ids the model has no class for are refused).
    ``budget_points``: the most accuracy, in points, a variant may lose; ``io``: int8 or
    float32 model edges; ``max_float_layers``: stop after this many float layers (default:
    all candidates); ``rank_by``: the debugger metric layers are ranked by;
    ``latency_runs``/``num_threads``: timing of each variant; ``float_accuracy``: the
    float model's accuracy if already measured; ``progress``: one line per variant on stderr.
    """
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

    def make_variant(name: str, tflite: bytes, float_layers: List[str]) -> Variant:
        acc = _accuracy(tflite, eval_inputs, classes, names)
        ints, floats = _op_counts(tflite)
        drop = (float_accuracy - acc) * 100.0
        variant = Variant(name, list(float_layers), len(tflite), acc, drop,
                          measure_latency_us(tflite, example, runs=latency_runs, num_threads=num_threads),
                          ints, floats, drop <= budget_points + 1e-9, tflite)
        say(f"autotune: {name}: accuracy {acc:.4f} (drop {drop:.2f} points), {len(tflite):,} bytes, "
            f"{variant.latency_us:.1f} us, {ints} int8 / {floats} float ops")
        return variant

    variants: List[Variant] = []
    baseline = _float_tflite(fm)
    float_variant = make_variant("float32", baseline, ["(all)"])
    float_variant.meets_budget = False  # the float32 baseline, not a candidate to ship as "int8"
    variants.append(float_variant)

    debugger = LayerDebugger(fm.loaded, calibration, io=io)
    ranking = [row for row in debugger.layer_errors(rank_by) if row.candidate]
    limit = len(ranking) if max_float_layers is None else min(max_float_layers, len(ranking))
    chosen: Optional[Variant] = None
    denylist: List[str] = []
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
        message = (f"full int8 is within the {budget_points:g}-point budget: drop {chosen.drop_points:.2f} points")
    elif chosen is not None:
        message = (f"within the {budget_points:g}-point budget by keeping {len(chosen.float_layers)} of "
                   f"{len(ranking)} weighted layers in float: drop {chosen.drop_points:.2f} points, "
                   f"{chosen.integer_ops} int8 ops / {chosen.float_ops} float ops")
    else:
        message = (f"no mix meets the {budget_points:g}-point budget (tried {len(tried)} variants, up to "
                   f"{len(denylist)} float layers); best trade-off: {best.name}, drop {best.drop_points:.2f} "
                   f"points, {best.size_bytes:,} bytes")
    return AutotuneResult(budget_points, float_accuracy, variants, chosen, best,
                          [row.to_dict() for row in ranking], message)


def _float_tflite(fm: Any) -> bytes:
    from converters.quantize import convert

    return convert(fm.loaded, "float32").tflite


VARIANT_HEADERS = ["variant", "float layers", "size (bytes)", "accuracy", "drop (points)", "latency (us)",
                   "int8 ops", "float ops", "within budget"]


def variant_rows(result: Mapping[str, Any]) -> List[List[Any]]:
    """Rows of the variants table from :meth:`AutotuneResult.to_dict`."""
    rows = []
    for v in result["variants"]:
        layers = "all" if v["float_layers"] == ["(all)"] else str(len(v["float_layers"]))
        rows.append([v["name"], layers, v["size_bytes"], v["accuracy"], round(v["drop_points"], 2),
                     round(v["latency_us"], 1), v["integer_ops"], v["float_ops"],
                     "-" if v["name"] == "float32" else ("yes" if v["meets_budget"] else "no")])
    return rows
