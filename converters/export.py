"""Export a model as TFLite bytes, a SavedModel, a .keras file or ONNX.

ONNX goes through tf2onnx's ``from_function`` on a ``tf.function`` around the
model (``from_keras`` fails on Keras 3 models), opset 17 or newer, and is
checked against onnxruntime on sample inputs before it is accepted.

Optional formats never sink a run: a format the user named (``--formats``,
``--set export.formats=...`` or their own recipe file: ``Recipe.requested_formats``)
that fails stops the run (exit 2, nothing promoted); one that only came with a
built-in recipe (the ONNX export of ``int8``) becomes a warning in the table and
``summary.json`` (``comparisons["export"]["skipped"]``) with the reason, and the
TFLite artifacts are promoted. A ``.tflite`` input has no model to export: named
formats are refused before any work, the others skipped with a warning.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from converters.context import Comparison, RunContext
from converters.errors import ConversionError, DataError, ExportError, first_line
from converters.model_files import KIND_SAVEDMODEL, LoadedModel
from converters.recipe import ExportOptions, Recipe
from converters.savedmodel import export_savedmodel

MIN_OPSET = 17


def export_keras(model: LoadedModel, path: Path) -> Path:
    """Write a tf_keras or Keras 3 model as the ``.keras`` file ``path`` (SavedModel inputs cannot)."""
    if model.kind == KIND_SAVEDMODEL:
        raise ExportError(
            f"{model.describe()} is a SavedModel without Keras layers; expected a Keras model for .keras export"
        )
    try:
        model.model.save(str(path))
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
        raise ExportError(f".keras export to {path} failed: {first_line(exc, 400)}") from None
    return Path(path)


@dataclasses.dataclass
class OnnxResult:
    """The ONNX bytes and how closely onnxruntime matched the source model."""

    onnx: bytes
    opset: int
    max_abs_diff: float
    samples_checked: int
    input_names: list
    output_names: list


def export_onnx(
    model: LoadedModel,
    sample_inputs: dict[str, np.ndarray],
    *,
    opset: int = MIN_OPSET,
    atol: float = 1e-4,
) -> OnnxResult:
    """Convert ``model`` to ONNX and check onnxruntime's outputs against the model's on ``sample_inputs``.

    ``opset``: the ONNX opset (17 or newer); ``atol``: the largest allowed output difference.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"ONNX opset: expected {MIN_OPSET} or newer, got {opset}")
    import onnxruntime as ort
    import tf2onnx

    from converters._tf import tf

    specs = model.inputs
    names = [s.name for s in specs]
    signature = [tf.TensorSpec([None] + list(s.shape[1:]), tf.as_dtype(s.dtype), name=s.name) for s in specs]
    if model.kind == KIND_SAVEDMODEL:
        serving = model.model.signatures["serving_default"]

        def call(*args):
            result = serving(**dict(zip(names, args, strict=False)))
            return result[sorted(result)[0]]
    else:
        keras_model = model.model

        def call(*args):
            feed = args[0] if len(args) == 1 else dict(zip(names, args, strict=False))
            return keras_model(feed, training=False)

    function = tf.function(call, input_signature=signature)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
        raise ExportError(
            f"tf2onnx could not convert {model.describe()} (opset {opset}): {first_line(exc, 400)}"
        ) from None
    onnx_bytes = proto.SerializeToString()
    try:
        session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
        raise ExportError(f"onnxruntime rejected the exported ONNX model: {first_line(exc, 400)}") from None
    ort_inputs = [i.name for i in session.get_inputs()]
    feed_names = dict(zip(names, ort_inputs, strict=False))
    feed = {feed_names[n]: sample_inputs[n] for n in names}
    got = np.asarray(session.run(None, feed)[0])
    want = model.predict(sample_inputs)
    if got.shape != want.shape:
        raise ExportError(f"ONNX output shape {got.shape} does not match the model's {want.shape}")
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
    if not diff <= atol:
        raise ExportError(
            f"ONNX export disagrees with the source model: max |diff| {diff:.3g} on "
            f"{len(want)} samples, expected <= {atol:g}"
        )
    return OnnxResult(
        onnx=onnx_bytes,
        opset=opset,
        max_abs_diff=diff,
        samples_checked=int(len(want)),
        input_names=ort_inputs,
        output_names=[o.name for o in session.get_outputs()],
    )


def onnx_quick_latency_us(
    onnx_bytes: bytes, sample: dict[str, np.ndarray], input_names: list, runs: int = 20
) -> float | None:
    """Median microseconds per single-sample onnxruntime run (1 thread); None for 0 ``runs``.

    ``onnx_bytes``: the model; ``sample``: ``{input name: array}``, its first row is fed;
    ``input_names``: onnxruntime's input names, in the sample's order.
    """
    import time

    import onnxruntime as ort

    if runs <= 0:
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    feed = {n: v[:1] for n, v in zip(input_names, sample.values(), strict=False)}
    session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


# ------------------------------------------------------------------------------------------------
# the pipeline stage
# ------------------------------------------------------------------------------------------------
STAGE = "export"


def planned_steps(recipe: Recipe) -> int:
    """Progress lines this stage prints for the recipe's formats (one or two models each)."""
    targets = 2 if ("distill" in recipe.stages or "prune" in recipe.stages) else 1
    return sum({"savedmodel": 2, "keras": targets, "onnx": 2 * targets}.get(fmt, 0) for fmt in recipe.export.formats)


@dataclasses.dataclass
class ExportComparison(Comparison):
    """summary.json's ``comparisons["export"]``: optional formats that were not written, each with the reason
    (left out of the summary when every format was written)."""

    key: ClassVar[str] = "export"
    line_order: ClassVar[int] = 60
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def empty(self) -> bool:
        return not self.skipped

    def to_json(self) -> dict[str, Any]:
        return {"skipped": self.skipped}

    def lines(self) -> list[str]:
        return [
            f"warning: {fmt} export skipped (not asked for with --formats): {reason}"
            for fmt, reason in self.skipped.items()
        ]


def _extra_formats(options: ExportOptions) -> list[str]:
    return [fmt for fmt in options.formats if fmt != "tflite"]  # every stage already wrote its .tflite


def check(ctx: RunContext, options: ExportOptions) -> None:
    """Before any work: the input can be exported, and ONNX has sample inputs to check onnxruntime against.

    ``ctx``: the run context (model and data known, nothing written yet); ``options``: this stage's section.
    A format the user did not name that cannot run is dropped with a warning instead.
    """
    requested = set(ctx.recipe.requested_formats)
    skipped = ctx.recorded(ExportComparison).skipped
    formats = _extra_formats(options)
    if formats and "export" not in ctx.model.capabilities:
        named = [fmt for fmt in formats if fmt in requested]
        if named:
            ctx.model.require("export", f"export ({', '.join(named)})")
        for fmt in formats:
            _skip(ctx, skipped, fmt, f"needs a Keras model or SavedModel; got a .{ctx.model.kind} file")
        return
    if "onnx" in formats and ctx.data.sample() is None:
        reason = (
            "ONNX export is checked against onnxruntime and needs sample inputs (--dataset, --eval or --calibration)"
        )
        if "onnx" in requested:
            raise DataError(reason)
        _skip(ctx, skipped, "onnx", reason)


def _skip(ctx: RunContext, skipped: dict[str, str], fmt: str, reason: str) -> None:
    """Record that optional format ``fmt`` was not written and why (warning + ``comparisons["export"]``)."""
    skipped[fmt] = reason
    ctx.warn(f"{fmt} export skipped (not asked for with --formats): {reason}")


def run_stage(ctx: RunContext, options: ExportOptions) -> None:
    """Write the recipe's extra formats for the input model and, when it differs, the final float model.

    ``ctx``: the :class:`converters.context.RunContext`; ``options``: the ``[export]`` section.
    The input model's files are called ``teacher-*`` when the run distilled, else ``model-*``.
    """
    distilling = "distill" in ctx.recipe.stages
    targets = [("model" if not distilling else "teacher", ctx.model, ctx.base)]
    if ctx.current is not ctx.model:
        targets.append((ctx.current_artifact.name.replace("-float32", ""), ctx.current, ctx.current_artifact))
    requested = set(ctx.recipe.requested_formats)
    skipped = ctx.recorded(ExportComparison).skipped
    for fmt in _extra_formats(options):
        if fmt in skipped:
            continue
        for stem, loaded, parent in targets:
            try:
                if fmt == "savedmodel" and stem == targets[0][0]:  # one SavedModel (the input's): what parity needs
                    _savedmodel(ctx, stem, loaded, parent)
                elif fmt == "keras" and loaded.kind != KIND_SAVEDMODEL:
                    _keras(ctx, stem, loaded, parent)
                elif fmt == "onnx":
                    _onnx(ctx, options, stem, loaded, parent)
            except Exception as exc:  # noqa: BLE001 - an optional format never sinks a run, whatever it raised
                if fmt in requested:
                    if isinstance(exc, ConversionError):
                        raise
                    raise ExportError(
                        f"{fmt} export of {loaded.describe()} failed: {type(exc).__name__}: {first_line(exc, 400)}"
                    ) from None
                _remove_partial(ctx, fmt, stem)
                _skip(ctx, skipped, fmt if len(targets) == 1 else f"{stem} {fmt}", first_line(exc, 400))


def _remove_partial(ctx: RunContext, fmt: str, stem: str) -> None:
    """Delete what a failed optional export left in staging, so nothing half-written is promoted."""
    leftovers = {"savedmodel": [f"{stem}_savedmodel"], "keras": [f"{stem}.keras"], "onnx": [f"{stem}-onnx.onnx"]}
    for name in leftovers.get(fmt, []):
        path = ctx.staging / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def _savedmodel(ctx: RunContext, stem: str, loaded: LoadedModel, parent: Any) -> None:
    directory = ctx.staging / f"{stem}_savedmodel"
    ctx.progress.say(f"exporting SavedModel {directory.name}/")
    export_savedmodel(loaded, directory)
    ctx.add_directory(
        f"{stem}-savedmodel",
        directory,
        kind="savedmodel",
        stage=STAGE,
        parent=parent.sha256,
        specs_from=loaded,
        metrics={"accuracy": parent.metrics.get("float_model_accuracy")},
    )


def _keras(ctx: RunContext, stem: str, loaded: LoadedModel, parent: Any) -> None:
    path = ctx.staging / f"{stem}.keras"
    export_keras(loaded, path)
    ctx.add_file(
        f"{stem}-keras",
        path.name,
        path.read_bytes(),
        kind="keras",
        stage=STAGE,
        parent=parent.sha256,
        specs_from=loaded,
        metrics={"accuracy": parent.metrics.get("float_model_accuracy"), "params": parent.metrics.get("params")},
    )


def _onnx(ctx: RunContext, options: ExportOptions, stem: str, loaded: LoadedModel, parent: Any) -> None:
    from edge_sdk.metrics import accuracy

    sample = ctx.data.sample()
    if sample is None:  # check() refused or skipped ONNX without sample inputs
        raise DataError("ONNX export is checked against onnxruntime and needs sample inputs")
    check = {k: v[:64] for k, v in sample.items()}
    ctx.progress.say(f"exporting {stem}.onnx (opset {options.onnx_opset}) and checking it with onnxruntime")
    result = export_onnx(loaded, check, opset=options.onnx_opset, atol=options.onnx_atol)
    metrics: dict[str, Any] = {"onnx_max_abs_diff": result.max_abs_diff, "onnx_samples_checked": result.samples_checked}
    if ctx.data.eval_x is not None and ctx.data.eval_y is not None:
        acc = accuracy(onnx_outputs(result, ctx.data.eval_x), ctx.data.eval_y, f"eval labels ({ctx.data.eval_source})")
        if acc is not None:
            metrics["accuracy"] = round(acc, 6)
    latency = onnx_quick_latency_us(result.onnx, sample, result.input_names, ctx.latency_runs)
    if latency is not None:
        metrics["latency_us"] = round(latency, 1)
    ctx.add_file(
        f"{stem}-onnx",
        f"{stem}-onnx.onnx",
        result.onnx,
        kind="onnx",
        stage=STAGE,
        parent=parent.sha256,
        specs_from=loaded,
        metrics=metrics,
        onnx_opset=result.opset,
    )


def onnx_outputs(result: OnnxResult, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of the exported ONNX model on ``inputs`` (onnxruntime, CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(result.onnx, providers=["CPUExecutionProvider"])
    feed = dict(zip(result.input_names, inputs.values(), strict=False))
    return np.asarray(session.run(None, feed)[0])
