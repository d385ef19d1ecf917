"""Run a recipe end to end: every stage writes its model and manifest, then a table.

    result = run(recipe, "model.keras" | "cnn", dataset="mnist", out="out/")

Flow: the pipeline is a loop over the run's stages, ``load``, the recipe's
``stages`` and ``export``; each stage module (:mod:`converters.load_stage`,
:mod:`converters.distill`, :mod:`converters.prune`, :mod:`converters.quantize`,
:mod:`converters.export`) has one entry, ``run_stage(ctx, options)``, taking the
:class:`converters.context.RunContext` and its typed recipe section, a
``check(ctx, options)`` run before any work, and ``planned_steps(recipe)`` for the
progress counter. The input model (a file, or a zoo model trained on the fly) is
converted to its float32 .tflite; then, as the recipe says, ``distill`` trains a
small student from it (and, for comparison, the same student without
distillation), ``prune`` prunes the current model, ``quantize`` converts it
(dynamic / float16 / int8, optionally after QAT) and, with ``include_input``,
the unpruned input model too. Each artifact gets a manifest (sha256, sizes,
I/O specs with quantization, labels, preprocessing, parent sha256, recipe,
accuracy on the eval split, calibration stats, tool versions).

Everything is built in a staging directory beside ``--out`` and only renamed
into place when all stages and every ``before_promote`` hook passed
(``edge_sdk.fileio.atomic_output_dir``): a killed or failed run leaves ``--out``
as it was. Hooks receive the :class:`PipelineResult` (artifacts, their eval
results and the staging directory) and may raise an ``EdgeSdkError`` to stop
promotion; quality gates (issue 5) plug in there.
"""

from __future__ import annotations

import functools
import glob
import importlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from converters import recipe as recipes
from converters.context import (
    Artifact,
    Comparison,
    Data,
    PipelineResult,
    RunContext,
    Stage,
    bind,
    load_data,
    render_comparisons,
)
from converters.errors import ConversionError, StageNotApplicableError
from converters.evaluation import tflite_accuracy, tflite_latency_us
from converters.gate import GateFailedError
from converters.inputs import InputKind, input_kind
from converters.progress import Progress
from edge_sdk.fileio import atomic_output_dir, atomic_write_text, staging_prefix
from edge_sdk.outputs import check_dir_output, mark_output_dir, model_inputs

SUMMARY_FILE = "summary.json"
PID_FILE = ".convert.pid"  # inside staging only: lets a later run clean up after a killed one
# stage name -> (module with run_stage/check/planned_steps, recipe section it takes)
STAGE_MODULES = {
    "load": ("converters.load_stage", "train"),
    "distill": ("converters.distill", "distill"),
    "prune": ("converters.prune", "prune"),
    "quantize": ("converters.quantize", "quantize"),
    "export": ("converters.export", "export"),
    "auto": ("converters.auto", "auto"),
}


def stage_plan(recipe: recipes.Recipe) -> list[tuple[str, Stage, Any]]:
    """``(stage name, stage module, its options section)`` for every stage a run of ``recipe`` goes through."""
    plan: list[tuple[str, Stage, Any]] = []
    for name in ("load", *recipe.stages, "export"):
        module_name, section = STAGE_MODULES[name]
        module = cast(Stage, importlib.import_module(module_name))  # the contract: tests/structure/test_stages.py
        plan.append((name, module, recipe.options(section)))
    return plan


def planned_steps(recipe: recipes.Recipe) -> int:
    """How many progress lines a run prints (the "step i/N" counter): each stage says its own."""
    return sum(module.planned_steps(recipe) for _, module, _ in stage_plan(recipe))


def _run_in(
    staging: Path,
    recipe: recipes.Recipe,
    source: str | Path | Any,
    *,
    dataset: Any = None,
    calibration: str | None = None,
    eval_data: str | None = None,
    train_data: str | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    train_stats: str | None = None,
    allow_drift: bool = False,
) -> PipelineResult:
    """Run ``recipe`` on ``source`` writing every artifact into ``staging`` (no promotion).

    ``source``: a model path, a zoo name (trained on the fly on ``dataset``) or an in-memory
    Keras model; ``dataset``/``calibration``/``eval_data``/``train_data``: the run's data
    (see :func:`converters.context.load_data`); ``progress``: where step lines go; ``seed``:
    seeds every random source of the run; ``train_stats``/``allow_drift``: the training data's statistics
    the data is checked against before any work, and whether anomalies are only recorded
    (:mod:`converters.datacheck`).
    """
    started = time.perf_counter()
    progress = progress or Progress(enabled=False)
    recipe, skipped = _onnx_source_formats(recipe, source)
    plan = stage_plan(recipe)
    progress.total = sum(module.planned_steps(recipe) for _, module, _ in plan)
    if input_kind(source).needs_tensorflow:  # a float .tflite input runs without TensorFlow (LiteRT quantizer)
        from converters._tf import tf_keras

        tf_keras.utils.set_random_seed(seed)
    ctx = RunContext(
        recipe,
        staging,
        progress,
        seed,
        source=source,
        dataset=dataset,
        calibration=calibration,
        eval_data=eval_data,
        train_data=train_data,
    )
    ctx.train_stats, ctx.allow_drift = train_stats, allow_drift
    # every later stage checks its needs as soon as the load stage knows the model and data
    ctx.checks = [functools.partial(_check, module, options) for _, module, options in plan[1:]]
    if skipped:
        ctx.warn(skipped)
    for _, module, options in plan:
        module.run_stage(ctx, options)
    from converters.latency_check import check_latency
    from converters.task_checks import check_wipeouts

    check_wipeouts(ctx)  # an int8 whose class scores became one constant is never promoted silently

    check_latency(ctx)  # a quantized artifact slower than its float32 says so, naming the ops XNNPACK left out
    for record in [v for v in ctx.comparisons.values() if isinstance(v, Comparison)]:
        record.finish(ctx)
    comparisons, lines = render_comparisons(ctx.comparisons)
    result = PipelineResult(
        recipe, ctx.artifacts, comparisons, ctx.warnings, staging, seconds=time.perf_counter() - started, lines=lines
    )
    atomic_write_text(staging / SUMMARY_FILE, json.dumps(result.summary(), indent=2) + "\n")
    return result


def _check(module: Stage, options: Any, ctx: RunContext) -> None:
    module.check(ctx, options)


def _onnx_source_formats(recipe: recipes.Recipe, source: Any) -> tuple[recipes.Recipe, str | None]:
    """An ONNX input is not exported to ONNX again: drop the format, with the reason, for such a source."""
    if not (input_kind(source) is InputKind.ONNX and "onnx" in recipe.export.formats):
        return recipe, None
    kept = tuple(f for f in recipe.export.formats if f != "onnx") or ("tflite",)
    adjusted = recipes.with_overrides(recipe, {"export.formats": kept})
    adjusted.requested_formats = tuple(f for f in recipe.requested_formats if f != "onnx")  # what the user named
    return adjusted, "export: the input is an ONNX model already, so the 'onnx' format is skipped"


def _remove_abandoned_staging(out: Path) -> None:
    """Delete staging dirs for ``out`` left by a killed run (their process is gone); keep live ones."""
    for staging in out.parent.glob(glob.escape(staging_prefix(out)) + "*"):
        try:
            pid = int((staging / PID_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or a run that has not written its pid yet
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except PermissionError:
            continue


def _keep_rejected(rejected: Path, out: Path, exc: GateFailedError) -> None:
    """``--keep-rejected``: move staging's ``rejected/`` (the failing file and its report) to ``<out>.rejected``.

    That folder is replaced only when edge-sdk wrote it; the gate's message says where it went.
    """
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.outputs import check_dir_output, mark_output_dir

    dest = out.parent / f"{out.name}.rejected"
    try:
        check_dir_output(dest, "--keep-rejected", replace=True)
        with atomic_output_dir(dest) as tmp:
            for item in rejected.iterdir():
                shutil.move(str(item), str(tmp / item.name))
            mark_output_dir(tmp, "convert --keep-rejected")
        note = f"; the rejected file and its report are in {dest}"
    except EdgeSdkError as why:
        note = f"; the rejected file was not kept: {why}"
    exc.verdict += note
    exc.args = (exc.verdict,)


def run(
    recipe: str | recipes.Recipe,
    source: str | Path | Any,
    out: str | Path,
    *,
    dataset: Any = None,
    calibration: str | None = None,
    eval_data: str | None = None,
    train_data: str | None = None,
    overrides: dict | None = None,
    progress: bool | Progress = False,
    before_promote: Sequence[Callable[[PipelineResult], None]] = (),
    seed: int = 0,
    train_stats: str | None = None,
    allow_drift: bool = False,
    force: bool = False,
) -> PipelineResult:
    """Run a recipe and promote the artifacts into ``out`` atomically.

    ``recipe``: a built-in name, a .toml path or a :class:`converters.recipe.Recipe`;
    ``overrides``: ``{"section.key": value}`` applied to it; ``source``, ``dataset``,
    ``calibration``, ``eval_data``, ``train_data``, ``seed``, ``train_stats`` and ``allow_drift`` as :func:`_run_in`; ``progress``: True or a :class:`Progress` for step
    lines on stderr. ``before_promote`` hooks see the finished result in staging and
    may raise an ``EdgeSdkError`` to stop promotion (``out`` then stays as it was).

    ``out`` must be new, empty or a folder edge-sdk wrote (its marker, written into staging before
    promotion, says so); any other non-empty folder, or one holding the input, raises
    :class:`~edge_sdk.errors.OutputError` before any work unless ``force=True`` (which never
    replaces an input). See :mod:`edge_sdk.outputs`.
    """
    if not isinstance(recipe, recipes.Recipe):
        recipe = recipes.load(recipe)
    if overrides:
        recipe = recipes.with_overrides(recipe, overrides)
    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConversionError(f"--out {out}: expected a directory (or a new path), got an existing file")
    protected = (
        model_inputs(source, "input model")
        if isinstance(source, (str, os.PathLike)) and os.path.lexists(source)
        else []
    )
    check_dir_output(out, "out", protected, force=force, replace=True, force_hint="force=True")
    _remove_abandoned_staging(out)
    with atomic_output_dir(out) as staging:
        (staging / PID_FILE).write_text(str(os.getpid()))
        try:
            result = _run_in(
                staging,
                recipe,
                source,
                dataset=dataset,
                calibration=calibration,
                eval_data=eval_data,
                train_data=train_data,
                progress=reporter,
                seed=seed,
                train_stats=train_stats,
                allow_drift=allow_drift,
            )
            for hook in before_promote:
                hook(result)
        except GateFailedError as exc:
            if recipe.import_.keep_rejected and (staging / "rejected").is_dir():
                _keep_rejected(staging / "rejected", out, exc)
            raise
        (staging / PID_FILE).unlink()
        mark_output_dir(staging, "convert", record_entries=True)  # promoted with the artifacts, never after
    result.out = out
    summary = result.summary()
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return result


__all__ = [
    "Artifact",
    "Data",
    "PipelineResult",
    "Progress",
    "RunContext",
    "StageNotApplicableError",
    "bind",
    "load_data",
    "planned_steps",
    "run",
    "stage_plan",
    "tflite_accuracy",
    "tflite_latency_us",
]
