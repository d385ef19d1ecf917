"""Post-training quantization to TFLite, and quantization-aware training (tfmot).

Modes:

* ``float32``: plain conversion (the float32 artifact sizes and accuracy are measured against);
* ``dynamic``: int8 weights, float activations, no data needed;
* ``float16``: float16 weights, no data needed;
* ``int8``: full integer with a representative dataset (the training data or a
  user's .npy/.npz); ``io="int8"`` makes inputs and outputs int8 too,
  ``io="float32"`` keeps float at the edges (QUANTIZE/DEQUANTIZE inside).

Pruned weights stay pruned: int8 weights are quantized symmetrically (zero point
0), so an exact zero stays an exact zero; :func:`weight_sparsity` checks it on
the converted file. For QAT of a pruned model, tfmot's prune-preserving scheme
(``Default8BitPrunePreserveQuantizeScheme``) is used so fine-tuning does not
refill the zeros.

After conversion :attr:`QuantizeResult.float_ops` lists the operators that still
compute in float (from ``edge_sdk.inspect_model``).

A float ``.tflite`` input, or a recipe with ``quantize.scheme`` set, is quantized by
the LiteRT quantizer instead (:mod:`converters.litert_quant`: no TensorFlow; weight-only
int8/int4, int16 activations and per-layer ``keep_float`` besides int8/dynamic/fp16),
from the float32 .tflite of the current model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from converters import schemes
from converters.calibration import drop_nan_samples, input_stats, subset
from converters.context import Artifact, Comparison, RunContext
from converters.errors import CalibrationError, ConversionError, RecipeError, first_line
from converters.model_files import KIND_TFLITE, LoadedModel
from converters.recipe import QuantizeOptions, Recipe
from converters.tflite_convert import QuantizeResult, convert


def nothing_quantized_note(name: str, asked: str, kind: str, inspected: str) -> str | None:
    """One line when a recipe asked for ``asked`` (a manifest kind) but the file is float32 (``kind``), else None."""
    if kind != "float32" or asked == "float32":
        return None
    return (
        f"{name}: {asked} was asked for but nothing was quantized (inspect reads it as {inspected}: "
        "every weight and op is float); it is recorded as float32, not " + asked
    )


def weight_sparsity(tflite: bytes, min_elements: int = 256) -> dict[str, float]:
    """Share of exact zeros in each constant weight tensor of a .tflite (biases skipped).

    A quantized 0.0 is stored as the tensor's zero point (0 for symmetric conv/dense weights).
    Tensors with fewer than ``min_elements`` values are skipped.
    """
    from edge_sdk.inspect_model import _schema

    schema = _schema()
    root = schema.ModelT.InitFromPackedBuf(tflite, 0)
    out: dict[str, float] = {}
    type_to_dtype = {0: np.float32, 1: np.float16, 9: np.int8, 3: np.uint8}
    for sg in root.subgraphs or []:
        for tensor in sg.tensors or []:
            buf = root.buffers[tensor.buffer] if 0 < tensor.buffer < len(root.buffers) else None
            data = getattr(buf, "data", None)
            if data is None or int(tensor.type) not in type_to_dtype or len(tensor.shape) < 2:
                continue
            arr = np.frombuffer(bytes(bytearray(data)), dtype=type_to_dtype[int(tensor.type)])
            if arr.size < min_elements:
                continue
            zero = 0
            quant = tensor.quantization
            zero_points = [] if quant is None or quant.zeroPoint is None else list(np.ravel(quant.zeroPoint))
            if len(set(zero_points)) == 1:
                zero = int(zero_points[0])  # asymmetric per-tensor weights (e.g. GATHER tables) store 0.0 as zp
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            out[name] = float((arr == zero).mean())
    return out


def qat(
    model: Any,
    inputs: dict[str, np.ndarray],
    labels: np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    learning_rate: float = 1e-4,
    preserve_sparsity: bool = False,
) -> Any:
    """Quantization-aware fine-tuning of a tf_keras model; returns the QAT model.

    ``inputs``/``labels``: the training data; ``epochs``/``batch_size``/``learning_rate``:
    the fine-tuning. With ``preserve_sparsity`` (a pruned model) tfmot's prune-preserving
    scheme keeps the zeros.
    Convert the result with :func:`convert` in ``int8`` mode.
    """
    from converters._tf import tf_keras, tfmot
    from converters.finetune import compile_and_fit, task_loss

    if not isinstance(model, tf_keras.Model):
        raise ConversionError(
            f"QAT needs a tf_keras model (tfmot), got {type(model).__module__}.{type(model).__name__}"
        )
    try:
        if preserve_sparsity:
            annotated = tfmot.quantization.keras.quantize_annotate_model(model)
            qmodel = tfmot.quantization.keras.quantize_apply(
                annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
            )
        else:
            qmodel = tfmot.quantization.keras.quantize_model(model)
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
        raise ConversionError(f"tfmot could not prepare the model for QAT: {first_line(exc)}") from None
    # the loss follows the original output layer: tfmot's wrappers hide the activation
    compile_and_fit(
        qmodel, inputs, labels, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, loss=task_loss(model)
    )
    return qmodel


def summarize_float_ops(result: QuantizeResult) -> list[str]:
    """Human lines about operators that stayed float (empty when all integer)."""
    if not result.float_ops:
        return []
    ops = ", ".join(f"{name} x{count}" for name, count in sorted(result.float_ops.items()))
    if result.mode == "int8":
        return [f"operators that stayed float in the int8 model: {ops}"]
    return [f"{result.mode}: activations stay float by design ({ops})"]


# ------------------------------------------------------------------------------------------------
# the pipeline stage
# ------------------------------------------------------------------------------------------------
STAGE = "quantize"


def _changes_model(recipe: Any) -> bool:
    return "distill" in recipe.stages or "prune" in recipe.stages


def planned_steps(recipe: Recipe) -> int:
    """Progress lines this stage prints: (QAT,) convert and write, for the final model and maybe the input."""
    per_model = 2 + (1 if recipe.quantize.qat else 0)
    return per_model * (2 if recipe.quantize.include_input and _changes_model(recipe) else 1)


def check(ctx: RunContext, options: QuantizeOptions) -> None:
    """Before any work: QAT can apply, and int8 has calibration data (not after minutes of distillation).

    ``ctx``: the run context (model and data known, nothing written yet); ``options``: this stage's section.
    """
    ctx.model.require("quantize", STAGE)
    if options.qat:
        ctx.model.require("qat", "quantize (qat)")
    scheme = litert_scheme(ctx.model, options)
    if scheme is not None:
        from converters import litert_quant

        litert_quant.require()  # a missing 'quantize' extra is one line before any work
        if options.qat:
            raise RecipeError(
                "quantize.scheme (the LiteRT quantizer) quantizes a float .tflite after training; it "
                "cannot follow quantization-aware training (qat): drop one of them"
            )
        if schemes.needs_calibration(scheme) and ctx.data.calibration_x is None:
            raise CalibrationError(
                f"scheme {scheme!r} needs calibration data: expected --calibration FILE.npy|.npz or --dataset NAME, "
                f"got neither; schemes that need none: dynamic, weight-only-int8, weight-only-int4, fp16"
            )
        return
    if options.keep_float:
        raise RecipeError("quantize.keep_float applies to the LiteRT quantizer: set quantize.scheme (--scheme) too")
    if options.mode == "int8" and ctx.data.calibration_x is None:
        raise CalibrationError(
            "int8 quantization needs calibration data: expected --calibration FILE.npy|.npz or --dataset NAME "
            "(its train split), got neither; recipes 'dynamic' and 'fp16' need no data"
        )


def run_stage(ctx: RunContext, options: QuantizeOptions) -> None:
    """Quantize the current model (and, with ``include_input``, the input model too) as ``options`` say.

    ``ctx``: the :class:`converters.context.RunContext`; ``options``: the ``[quantize]`` section.
    """
    final = quantize_artifact(
        ctx, options, ctx.current, ctx.prefix, ctx.current_artifact, pruned=ctx.before_prune is not None
    )
    if options.include_input and ctx.current is not ctx.model:
        quantize_artifact(ctx, options, ctx.model, "", ctx.base)
    ctx.record(_comparison(ctx, options, final))


def bigger_than_input_note(source: Any, name: str, size: int) -> str | None:
    """One line when the quantized file (``size`` bytes) is bigger than the ``.tflite`` it was made from.

    A float16-weight input (MediaPipe's sparse pose_detection: DENSIFY over sparse float16 weights) goes
    through a dense float32 parent, so its fp16 and even int8 files can outgrow the downloaded file.
    """
    from pathlib import Path

    if not isinstance(source, (str, Path)) or not str(source).endswith(".tflite"):
        return None
    path = Path(source)
    if not path.is_file():
        return None
    original = path.stat().st_size
    if size <= original:
        return None
    return (
        f"{name} is {size / original:.2f}x the input file {path.name} ({size:,} vs {original:,} bytes): "
        "the input stores its weights smaller (float16 or sparse) than this scheme does; keep the input "
        "file where size matters"
    )


def litert_scheme(model: LoadedModel, options: QuantizeOptions) -> str | None:
    """The LiteRT quantizer scheme this run uses for ``model``, or None for the TFLite converter.

    A ``.tflite`` input always goes through the LiteRT quantizer (``mode`` picks the scheme
    unless ``scheme`` names one); a Keras/SavedModel input only when ``scheme`` is set.
    """
    if options.scheme:
        return options.scheme
    return schemes.litert_for_mode(options.mode) if model.kind == KIND_TFLITE else None


def _litert_artifact(ctx: RunContext, options: QuantizeOptions, scheme: str, base_name: str, parent: Any) -> Any:
    """Quantize ``parent`` (a float32 artifact in staging) with the LiteRT quantizer and record it."""
    from importlib import metadata

    from converters import litert_quant
    from converters.calibration import range_warnings
    from edge_sdk.inspect_model import inspect_model

    float_bytes = (ctx.staging / parent.file).read_bytes()
    calibration = stats = None
    dropped = 0
    if schemes.needs_calibration(scheme):
        if ctx.data.calibration_x is None:  # the pipeline refuses this before any stage; never a crash here
            raise CalibrationError(
                f"scheme {scheme!r} needs calibration data: expected --calibration FILE or --dataset NAME, got none"
            )
        sample = subset(ctx.data.calibration_x, options.calibration_samples, ctx.seed)
        stats = input_stats(sample)
        calibration, dropped = drop_nan_samples(sample)
    ctx.progress.say(
        f"quantizing {parent.file} with the LiteRT quantizer ({scheme})"
        + (f", calibration data from {ctx.data.calibration_source}" if calibration else "")
    )
    tflite, report = litert_quant.quantize_tflite_report(
        float_bytes, scheme, calibration, keep_float=options.keep_float, io=options.io
    )
    if report.get("keep_float_unmatched"):  # a typo keeps nothing float: say which pattern found nothing
        ctx.warn(
            f"--keep-float {', '.join(map(repr, report['keep_float_unmatched']))} matched no op of "
            f"{parent.file} (patterns are searched in each op's output tensor names; "
            "edge-sdk inspect --tensors lists them)"
        )
    if report["fallback"]:  # ops LiteRT's kernels refuse in this scheme stayed float: one line
        ctx.warn(f"{base_name}: {report['fallback']}" if base_name else report["fallback"])
    info = inspect_model(tflite)
    float_ops = dict(info.get("float_ops", {}))
    from edge_sdk.inspect_model import manifest_kind

    kind = manifest_kind(info, schemes.manifest_kind(scheme))
    suffix = schemes.suffix(scheme)
    name = f"{base_name}-{suffix}" if base_name else suffix
    note = nothing_quantized_note(f"{name}.tflite", schemes.manifest_kind(scheme), kind, str(info.get("kind")))
    if note:
        ctx.warn(note)
    elif schemes.needs_calibration(scheme) and float_ops:
        ops = ", ".join(f"{name} x{count}" for name, count in sorted(float_ops.items()))
        where = f"{base_name}: " if base_name else ""
        ctx.warn(f"{where}operators that stayed float in the {scheme} model: {ops}")
    bigger = bigger_than_input_note(ctx.source, f"{name}.tflite", len(tflite))
    if bigger:
        ctx.warn(bigger)
    if dropped:
        ctx.warn(f"dropped {dropped} calibration sample(s) holding NaN")
    if stats and ctx.data.eval_x is not None:
        for message in range_warnings(stats, ctx.data.eval_x):
            ctx.warn(message)
    try:
        version = metadata.version("litert-quantizer")
    except metadata.PackageNotFoundError:  # pragma: no cover - it imported, so it is installed
        version = None
    return ctx.add_tflite(
        name,
        tflite,
        kind=kind,
        stage=STAGE,
        parent=parent.sha256,
        calibration=stats,
        quantization_report={
            "mode": options.mode,
            "scheme": scheme,
            "quantizer": "litert-quantizer",
            "quantizer_version": version,
            "keep_float": list(options.keep_float),
            "io": options.io if schemes.needs_calibration(scheme) else "float32",
            "float_ops": float_ops,
            "inspected_kind": info.get("kind"),
            "kept_float_for_litert": report["kept_float"],
            "calibration_source": ctx.data.calibration_source if calibration else None,
        },
    )


def quantize_artifact(
    ctx: RunContext, options: QuantizeOptions, model: LoadedModel, base_name: str, parent: Any, pruned: bool = False
) -> Artifact:
    """Quantize ``model`` (after QAT when asked) and record ``<base_name>-<mode>``; returns the artifact.

    ``parent``: the float32 artifact it comes from; ``pruned``: the model is pruned
    (QAT then preserves the zeros, and the manifest reports them).
    """
    from converters.calibration import as_input_dict, range_warnings
    from converters.model_files import from_keras

    scheme = litert_scheme(model, options)
    if scheme is not None:
        return _litert_artifact(ctx, options, scheme, base_name, parent)
    mode = options.mode
    source = model
    qat_note: dict[str, Any] = {}
    if options.qat:
        model.require("qat", "quantize (qat)")
        train_x, train_y = ctx.training_data("quantize (qat)")
        ctx.progress.say(f"quantization-aware training of {base_name} ({options.qat_epochs} epoch(s))")
        qmodel = qat(model.model, train_x, train_y, epochs=options.qat_epochs, preserve_sparsity=pruned, batch_size=64)
        source = from_keras(qmodel)
        qat_note = {"qat": True, "qat_scheme": "prune-preserve" if pruned else "default-8bit"}
    calibration = ctx.data.calibration_x if mode == "int8" else None
    if mode == "int8" and calibration is not None:
        calibration = as_input_dict(calibration, model.inputs)
    ctx.progress.say(
        f"converting {base_name or 'the input model'} to {mode}"
        + (f" with calibration data from {ctx.data.calibration_source}" if calibration else "")
    )
    result = convert(
        source,
        mode,
        calibration=calibration,
        io=options.io,
        calibration_samples=options.calibration_samples,
        seed=ctx.seed,
    )
    for line in summarize_float_ops(result):
        if mode == "int8":
            ctx.warn(f"{base_name}: {line}" if base_name else line)
    if result.dropped_nan_samples:
        ctx.warn(f"dropped {result.dropped_nan_samples} calibration sample(s) holding NaN")
    if result.calibration and ctx.data.eval_x is not None:
        for message in range_warnings(result.calibration, ctx.data.eval_x):
            ctx.warn(message)
    suffix = schemes.suffix(mode)
    name = f"{base_name}-{suffix}" if base_name else suffix
    note = nothing_quantized_note(
        f"{name}.tflite", schemes.manifest_kind(mode), result.manifest_kind, result.inspect_kind
    )
    if note:
        ctx.warn(note)
    extra_metrics = dict(qat_note)
    if pruned:
        tflite_sparsity = weight_sparsity(result.tflite)
        if tflite_sparsity:
            # report the pruned layers' sparsity as it survived conversion (unpruned tensors excluded)
            kept = [v for v in tflite_sparsity.values() if v > 0.05]
            extra_metrics["sparsity"] = round(float(np.mean(kept)), 4) if kept else 0.0
    return ctx.add_tflite(
        name,
        result.tflite,
        kind=result.manifest_kind,
        stage=STAGE,
        parent=parent.sha256,
        calibration=result.calibration,
        extra_metrics=extra_metrics,
        quantization_report={
            "mode": mode,
            "io": result.io,
            "float_ops": result.float_ops,
            "inspected_kind": result.inspect_kind,
            "calibration_source": ctx.data.calibration_source if mode == "int8" else None,
        },
        **({"weight_sparsity": weight_sparsity(result.tflite)} if pruned else {}),
    )


@dataclasses.dataclass
class QuantizeComparison(Comparison):
    """summary.json's ``comparisons["quantize"]``: the input model's quantized file against its float32, and the
    file the run ends with (``final_*``) against the same float32."""

    key: ClassVar[str] = "quantize"
    line_order: ClassVar[int] = 50
    mode: str
    artifact: str  # the final quantized artifact's name
    final_size_ratio: float
    final_gzip_ratio: float
    scheme: str | None = None  # the LiteRT quantizer's scheme, when it quantized
    input_size_ratio: float | None = None  # the input model's quantized file, when there is one
    input_gzip_ratio: float | None = None
    input_accuracy_drop_points: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "artifact": self.artifact}
        if self.scheme is not None:
            out["scheme"] = self.scheme
        if self.input_size_ratio is not None:
            out["input_size_ratio"] = self.input_size_ratio
            out["input_gzip_ratio"] = self.input_gzip_ratio
            if self.input_accuracy_drop_points is not None:
                out["input_accuracy_drop_points"] = self.input_accuracy_drop_points
        out["final_size_ratio"] = self.final_size_ratio
        out["final_gzip_ratio"] = self.final_gzip_ratio
        return out

    def lines(self) -> list[str]:
        if self.input_size_ratio is None:
            return []
        line = f"quantize: {self.scheme or self.mode} file is {self.input_size_ratio:.3f}x float32"
        if self.input_accuracy_drop_points is not None:
            line += f", accuracy drop {self.input_accuracy_drop_points:.2f} points vs the float model"
        return [line]


def _comparison(ctx: RunContext, options: QuantizeOptions, final: Artifact) -> QuantizeComparison:
    base = ctx.base
    record = QuantizeComparison(
        options.mode,
        final.name,
        round(final.size_bytes / base.size_bytes, 4),
        round(final.gzip_size_bytes / base.gzip_size_bytes, 4),
        scheme=litert_scheme(ctx.model, options),
    )
    input_names = {s.suffix for s in schemes.SCHEMES.values()}  # the input model's: no name prefix
    input_q = next((a for a in ctx.artifacts if a.stage == STAGE and a.name in input_names), None)
    if input_q is not None:
        record.input_size_ratio = round(input_q.size_bytes / base.size_bytes, 4)
        record.input_gzip_ratio = round(input_q.gzip_size_bytes / base.gzip_size_bytes, 4)
        float_acc = base.metrics.get("float_model_accuracy")
        q_acc = input_q.metrics.get("accuracy")
        if float_acc is not None and q_acc is not None:
            record.input_accuracy_drop_points = round(100 * (float_acc - q_acc), 3)
    return record
