"""The load stage: the input model (a file, or a zoo model trained on the fly) and its float32 artifact.

Entry: :func:`run_stage` ``(ctx, options: TrainOptions)``. It loads ``ctx.source`` (or
trains the zoo model it names on ``--dataset`` with the ``[train]`` options), gathers the
run's data, runs every later stage's pre-flight check (so a missing calibration set fails
before minutes of distillation), then writes ``float32.tflite``: the input model's float32
artifact every later size ratio and accuracy drop is measured against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from converters.context import RunContext, bind, dataset_inputs, load_data
from converters.errors import ConversionError, DataError
from converters.inputs import InputKind, input_kind
from converters.recipe import Recipe, TrainOptions
from training.names import DATASETS_TEXT, ZOO_MODELS

STAGE = "load"


def planned_steps(recipe: Recipe) -> int:
    """Progress lines this stage prints: load or train, then the float32 artifact."""
    return 2


def check(ctx: RunContext, options: TrainOptions) -> None:
    """Nothing to check before the model is known. ``ctx``/``options``: as :func:`run_stage`."""


def run_stage(ctx: RunContext, options: TrainOptions) -> None:
    """Load or train the input model, gather the data, run the later stages' checks, write float32.tflite.

    ``ctx``: the :class:`converters.context.RunContext`; ``options``: the ``[train]`` section
    (used when ``ctx.source`` is a zoo name).
    """
    from converters.model_files import from_keras, load

    kind = input_kind(ctx.source)
    if kind is InputKind.ZOO:
        if ctx.dataset is None:
            raise DataError(f"MODEL {ctx.source!r} is a zoo name: expected --dataset ({DATASETS_TEXT}) to train it on")
        data = load_data(None, dataset=ctx.dataset, seed=ctx.seed)
        untrained = _build_zoo(ctx.source, data, ctx)
        model = from_keras(untrained)
        bind(data, model)
        if ctx.calibration or ctx.eval_data or ctx.train_data:
            data = load_data(
                model,
                dataset=data.dataset,
                calibration=ctx.calibration,
                eval_data=ctx.eval_data,
                train_data=ctx.train_data,
                seed=ctx.seed,
            )
        ctx.model, ctx.data = model, data
        _check_data(ctx, zoo=True)  # the user's files against the training split, before minutes of training
        _fit_zoo(ctx.source, untrained, data, options, ctx)  # trains in place: ``model`` wraps it
        ctx.input_parent = None
    else:
        ctx.progress.say(f"loading {ctx.source}")
        model = _load_input(ctx.source, load, ctx.recipe.options("import"))
        data = load_data(
            model,
            dataset=ctx.dataset,
            calibration=ctx.calibration,
            eval_data=ctx.eval_data,
            train_data=ctx.train_data,
            seed=ctx.seed,
        )
        ctx.input_parent = _source_digest(model)
        ctx.model, ctx.data = model, data
        _check_data(ctx, zoo=False)  # before any conversion: the data against the training statistics
    ctx.model, ctx.data = model, data
    onnx_input = kind is InputKind.ONNX
    if not onnx_input:
        _check_fixed_shapes(model, ctx.recipe.import_.shapes())
    if onnx_input:
        from converters.onnx_import import record_layout

        record_layout(ctx)
    ctx.run_checks()
    from converters.task_checks import TaskComparison, determine_task

    determine_task(ctx)
    if ctx.task is not None:
        ctx.record(TaskComparison(ctx.task.value, ctx.task_why))
    if getattr(model, "float_parent", None):  # a float16 / int8-weight .tflite: how its float32 parent agrees
        record_agreement(ctx, model)
    if data.eval_x is None:
        ctx.warn("no eval data (--eval or --dataset): accuracy is not reported")
    ctx.base = ctx.float32_artifact(model, "float32", "input", ctx.input_parent)
    if onnx_input:  # float32.tflite against ONNX Runtime on the same data: recorded, gated
        from converters.onnx_import import check_onnx_input

        check_onnx_input(ctx)
    ctx.advance(model, ctx.base, "")


def record_agreement(ctx: RunContext, model: Any) -> None:
    """Measure how the float32 parent of ``model`` (a loaded ``.tflite``) agrees with the file, and say so.

    ``ctx``: the run context (its eval, else calibration, else training data is compared on);
    the result goes into ``model.float_parent["agreement"]`` (the float32 artifact's manifest).
    A dynamic-range proxy gets one warning line with its agreement; an exact parent one progress line.
    """
    from converters.tflite_float_parent import agreement

    record = model.float_parent
    check_x, check_on = ctx.check_data()
    original = model.path.read_bytes()
    name = model.path.name
    if check_x is None:
        record["agreement"] = None
        if record["proxy"]:
            ctx.warn(
                f"{name} is {record['from_kind']}: float32.tflite is a float proxy made by dequantizing its "
                "int8 weights; its agreement with the file is not measured (no --eval/--calibration data)"
            )
        return
    measured = agreement(original, model.tflite_bytes, check_x)
    measured["data"] = check_on
    record["agreement"] = measured
    top1 = measured.get("top1_agreement")
    figures = (
        f"top-1 agreement {100 * top1:.2f}%, " if top1 is not None else ""
    ) + f"max abs difference {measured['max_abs_diff']:.3g} on {measured['samples']} rows of {check_on}"
    if record["proxy"]:
        ctx.warn(
            f"{name} is {record['from_kind']}: float32.tflite is a float proxy made by dequantizing its int8 "
            f"weights ({figures}); accuracy drops and parity are measured against that proxy"
        )
    elif measured["bit_identical"]:
        ctx.progress.note(
            f"{name} is {record['from_kind']}: its weights turned into float32 constants; "
            f"float32.tflite gives bit-identical outputs on {check_on}"
        )
    else:
        ctx.warn(
            f"{name} is {record['from_kind']}: its float32 parent was expected to be exact but differs "
            f"from the file ({figures})"
        )


def _load_input(source: Any, load: Any, options: Any = None) -> Any:
    """The input model: an .onnx path through onnx2tf (:mod:`converters.onnx_import`, with the recipe's
    ``[import]`` options), anything else through ``load``."""
    if input_kind(source) is InputKind.ONNX and isinstance(source, (str, Path)):
        from converters.onnx_import import load_onnx

        return load_onnx(Path(source), options)
    return load(source)


def _check_fixed_shapes(model: Any, shapes: dict[str, tuple[int, ...]]) -> None:
    """``--input-shape`` on a Keras/SavedModel/.tflite input: checked against the model (names, rank, fixed
    dimensions). Dynamic dimensions beyond the batch are fixed for a SavedModel or Keras 3 input (converted
    through a SavedModel whose signature takes the fixed shapes); a tf_keras or .tflite input with such
    dimensions is refused by name, so the flag is never silently ignored."""
    specs = {s.name: s for s in getattr(model, "inputs", [])}
    needs_fixing = False
    for name, shape in shapes.items():
        spec = specs.get(name)
        if spec is None:
            raise DataError(f"--input-shape names input {name!r}, but the model's inputs are {', '.join(specs)}")
        have = list(spec.shape)
        if len(have) != len(shape) or any(h is not None and h != w for h, w in zip(have, shape, strict=False)):
            raise DataError(
                f"--input-shape {name}={','.join(map(str, shape))} does not fit input {name!r} "
                f"{['?' if d is None else d for d in have]}"
            )
        needs_fixing = needs_fixing or any(h is None for h in have[1:])
    if not needs_fixing:
        return
    from converters.model_files import KIND_KERAS3, KIND_SAVEDMODEL

    if getattr(model, "kind", None) not in (KIND_SAVEDMODEL, KIND_KERAS3):
        raise DataError(
            f"--input-shape: fixing dynamic dimensions beyond the batch is done for ONNX, SavedModel and "
            f"Keras 3 inputs; this {getattr(model, 'kind', '?')} model needs to be exported with fixed "
            "shapes"
        )
    _fix_saved_model_shapes(model, shapes)


def _fix_saved_model_shapes(model: Any, shapes: dict[str, tuple[int, ...]]) -> None:
    """Point ``model`` at a SavedModel whose ``serving_default`` takes ``shapes`` (calling the original)."""
    import tempfile

    from converters._tf import tf
    from converters.model_files import InputSpec
    from converters.savedmodel import saved_model_dir

    loaded = tf.saved_model.load(str(saved_model_dir(model)))
    signature = loaded.signatures["serving_default"]
    _, kwargs = signature.structured_input_signature
    fixed = {
        key: tf.TensorSpec(shapes.get(spec.name or key, shapes.get(key, spec.shape)), spec.dtype, name=spec.name or key)
        for key, spec in kwargs.items()
    }
    module = tf.Module()
    module.inner = loaded

    @tf.function(input_signature=[fixed])
    def serve(feed):
        return signature(**feed)

    module.serve = serve
    tmp = tempfile.TemporaryDirectory(prefix="edge-sdk-fixed-")
    target = Path(tmp.name) / "saved_model"
    tf.saved_model.save(module, str(target), signatures={"serving_default": serve.get_concrete_function()})
    model.use_saved_model(target, tmp)  # the converter reads this SavedModel; tmp is removed with the model
    model.inputs = [InputSpec(s.name, tuple(shapes.get(s.name, s.shape)), s.dtype) for s in model.inputs]


def _check_data(ctx: RunContext, zoo: bool) -> None:
    """Validate the run's data against the training statistics (:mod:`converters.datacheck`)."""
    from converters.datacheck import check_run

    check_run(ctx, zoo)


def _build_zoo(name: str, data: Any, ctx: RunContext) -> Any:
    """The zoo model ``name``, untrained, sized by ``data``'s dataset."""
    try:
        from training import zoo
    except ImportError as exc:
        raise ConversionError(f"zoo model {name!r} needs the training package ({exc})") from None
    if data.dataset is None:
        raise DataError(f"zoo model {name!r} is trained on the fly and needs --dataset ({DATASETS_TEXT})")
    return zoo.build(name, data.dataset, seed=ctx.seed)


def _fit_zoo(name: str, model: Any, data: Any, options: TrainOptions, ctx: RunContext) -> Any:
    from converters.finetune import augment_shift, compile_and_fit
    from converters.model_files import _keras_specs

    x = dataset_inputs(data.dataset.x_train, _keras_specs(model), "training")
    shift = 0
    if options.augment and data.dataset.task == "image":
        shift = augment_shift(*np.asarray(data.dataset.x_train).shape[1:3])
    ctx.progress.say(
        f"training zoo model '{name}' on {data.dataset.name} ({options.epochs} epochs"
        + (f", random {shift}-pixel shifts" if shift else "")
        + ")"
    )
    compile_and_fit(
        model,
        x,
        data.train_y,
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        seed=ctx.seed,
        shift=shift,
        callbacks=ctx.progress.epochs(f"train {name}", options.epochs),
    )
    return model


def _source_digest(model: Any) -> Any:
    """sha256 of the input file or SavedModel directory (the lineage parent of float32.tflite)."""
    if model.path is None:
        return None
    from edge_sdk.digest import tree_sha256
    from edge_sdk.fileio import sha256_file

    return tree_sha256(model.path) if model.path.is_dir() else sha256_file(model.path)


def build_student(spec: str, data: Any, seed: int) -> Any:
    """A fresh, untrained student: ``spec`` is a zoo name (sized by ``data``'s dataset) or a tf_keras file.

    ``seed`` seeds its initial weights.
    """
    from converters._tf import tf_keras

    tf_keras.utils.set_random_seed(seed)
    if spec in ZOO_MODELS:
        try:
            from training import zoo
        except ImportError as exc:
            raise ConversionError(f"student {spec!r} is a zoo model and needs the training package ({exc})") from None
        if data.dataset is None:
            raise DataError(f"student {spec!r} is a zoo model and needs --dataset to size its inputs and classes")
        return zoo.build(spec, data.dataset)
    from converters.model_files import load

    loaded = load(spec)
    loaded.require("distill-student", "distill")
    return loaded.model
