"""Building the ``auto`` stage's candidates: TensorFlow's converter modes, the LiteRT quantizer's schemes, full int8
with the debugger's most harmful layers kept in float, and a pruned int8 model.

A candidate that cannot be built comes back failed or skipped with its reason (:meth:`Candidate.fail`);
measuring is :mod:`converters.auto_measure`, choosing and reporting :mod:`converters.auto`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from converters import schemes
from converters.auto_measure import Candidate, EvalSet, _measure_quality
from converters.context import RunContext
from converters.errors import ConversionError, first_line
from converters.model_files import KIND_TFLITE
from converters.recipe import AutoOptions
from edge_sdk.errors import EdgeSdkError

CALIBRATION_ROWS = 200  # rows the debugger and the LiteRT quantizer calibrate on
PER_OP_LATENCY_NOTE = (
    "per-operator latency is not measurable through LiteRT's Python interpreter (no profiler "
    "hook): layers kept in float follow the debugger's error ranking only"
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
    from converters import litert_quant  # ours, always there: only the quantizer it wraps is optional

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
    from converters import litert_quant  # ours, always there: only the quantizer it wraps is optional

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
