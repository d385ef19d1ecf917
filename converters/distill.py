"""Knowledge distillation: train a small student on a teacher's soft targets.

    loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))

``t`` and ``s`` are teacher and student logits; models that end in softmax
(or a single sigmoid unit) are turned back into logits (log-probabilities,
which give the same softmax at any temperature). The T^2 factor keeps the
soft-target gradients on the same scale as the hard-label ones (Hinton et al.).

The teacher runs exactly once per batch of training data, before training: its
logits are stored beside the labels and reused in every epoch, so it is never
re-run needlessly. With fresh views per epoch (shifts, mixup) it runs once per
batch of each epoch's views instead. Any teacher works: a tf_keras or Keras 3
file or a SavedModel.
The baseline (the same student without distillation) runs through the same loop
with the same batch order, so the two differ only in the loss.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from converters.context import Comparison, RunContext
from converters.errors import ConversionError, RecipeError
from converters.recipe import DistillOptions, Recipe, build_options
from training import names

_EPS = 1e-7


@dataclasses.dataclass
class DistillResult:
    """The trained student and the teacher pass it was trained from."""

    model: Any
    alpha: float
    temperature: float
    teacher_batches: int
    final_loss: float
    steps: int = 0  # optimiser steps taken (the same with and without a transfer set)


def teacher_logits(outputs: np.ndarray) -> np.ndarray:
    """Teacher outputs as class logits: probabilities -> log-probabilities, one sigmoid unit -> [0, z]."""
    out = np.asarray(outputs, dtype=np.float32)
    if out.ndim == 1:
        out = out[:, None]
    if out.shape[-1] == 1:
        if out.min() >= 0 and out.max() <= 1:  # sigmoid probabilities
            p = np.clip(out, _EPS, 1 - _EPS)
            out = np.log(p) - np.log1p(-p)
        return np.concatenate([np.zeros_like(out), out], axis=-1)
    if out.min() >= 0 and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):  # softmax probabilities
        return np.log(np.maximum(out, 1e-30))
    return out


def run_teacher(
    teacher_predict: Callable[[dict[str, np.ndarray]], np.ndarray],
    inputs: dict[str, np.ndarray],
    batch_size: int,
) -> tuple:
    """Run the teacher once per batch over ``inputs``; return (logits, number of batches)."""
    n = len(next(iter(inputs.values())))
    chunks = []
    batches = 0
    for start in range(0, n, batch_size):
        chunks.append(np.asarray(teacher_predict({k: v[start : start + batch_size] for k, v in inputs.items()})))
        batches += 1
    return teacher_logits(np.concatenate(chunks, axis=0)), batches


def logits_function(model: Any) -> Callable[[Any, bool], Any]:
    """``f(x, training) -> class logits`` for a tf_keras model, taken before its softmax/sigmoid.

    Using the real pre-activation logits (not log of clipped probabilities)
    keeps gradients for the small probabilities that soft targets are about.
    One sigmoid unit z becomes the two-class logits [0, z].
    """
    from converters._tf import tf, tf_keras
    from converters.finetune import output_kind

    kind = output_kind(model)
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    binary = kind in ("sigmoid", "binary-logits")

    def two_class(z):
        return tf.concat([tf.zeros_like(z), z], axis=-1) if binary else z

    if kind in ("softmax", "sigmoid") and activation in ("softmax", "sigmoid"):
        features = tf_keras.Model(model.inputs, last.input)
        if isinstance(last, tf_keras.layers.Dense):

            def dense_logits(x, training):
                z = tf.matmul(features(x, training=training), last.kernel)
                return two_class(z + last.bias if last.use_bias else z)

            return dense_logits
        if isinstance(last, tf_keras.layers.Activation):
            return lambda x, training: two_class(features(x, training=training))
    if kind in ("logits", "binary-logits"):
        return lambda x, training: two_class(model(x, training=training))

    def from_probabilities(x, training):  # e.g. a separate Softmax layer: log-probabilities
        p = model(x, training=training)
        if binary:
            p = tf.clip_by_value(p, 1e-30, 1 - 1e-7)
            return two_class(tf.math.log(p) - tf.math.log1p(-p))
        return tf.math.log(tf.maximum(p, 1e-30))

    return from_probabilities


def teacher_function(teacher: Any) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Teacher logits for a batch: real logits for tf_keras teachers, else from its outputs."""
    from converters._tf import tf
    from converters.model_files import LoadedModel

    if isinstance(teacher, LoadedModel) and teacher.is_tf_keras:
        logits = logits_function(teacher.model)
        single = len(teacher.inputs) == 1

        def run(batch):
            x = next(iter(batch.values())) if single else batch
            return np.asarray(logits(tf.constant(x) if single else {k: tf.constant(v) for k, v in x.items()}, False))

        return run
    predict = teacher.predict if isinstance(teacher, LoadedModel) else teacher
    return lambda batch: teacher_logits(np.asarray(predict(batch)))


def kd_loss(
    student_logits: Any,
    teacher_logits: Any,
    labels: Any,
    alpha: float,
    temperature: float,
    partner_labels: Any = None,
    mix: Any = None,
    hard_weight: Any = None,
) -> Any:
    """Per-sample ``alpha*CE(labels) + (1-alpha)*T^2*KL(softmax(t/T) || softmax(s/T))``.

    For mixed images (``mix*a + (1-mix)*b``) the hard term is ``mix*CE(a's label) +
    (1-mix)*CE(b's label)``, with ``partner_labels`` the labels of b. ``hard_weight``
    scales the hard term per sample (0 for unlabelled transfer images).
    """
    from converters._tf import tf

    def ce(y):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(y, tf.int32), logits=student_logits)

    hard = ce(labels)
    if partner_labels is not None:
        hard = mix * hard + (1.0 - mix) * ce(partner_labels)
    if hard_weight is not None:
        hard = hard * hard_weight
    if alpha >= 1.0:
        return hard
    t = float(temperature)
    soft_t = tf.nn.softmax(teacher_logits / t)
    kl = tf.reduce_sum(
        soft_t * (tf.nn.log_softmax(teacher_logits / t) - tf.nn.log_softmax(student_logits / t)), axis=-1
    )
    return alpha * hard + (1.0 - alpha) * (t * t) * kl


def train_student(
    student: Any,
    inputs: dict[str, np.ndarray],
    labels: np.ndarray,
    teacher: Any = None,
    options: DistillOptions | None = None,
    *,
    seed: int = 0,
    callbacks: list | None = None,
    shift: Any = None,
    transfer: np.ndarray | None = None,
    **overrides: Any,
) -> DistillResult:
    """Train ``student`` in place; with ``teacher=None`` it is plain cross-entropy (the baseline).

    ``inputs``: ``{input name: array}``; ``labels``: class ids; ``teacher``: a LoadedModel
    or a ``predict(batch) -> outputs`` callable. ``options``: the recipe's ``[distill]``
    section (alpha, temperature, epochs, batch_size, learning_rate, mixup; default: its
    declared defaults); ``overrides``: single keys of it (``epochs=3``), validated the
    same way. ``seed`` fixes the batch order and views; ``callbacks`` get Keras epoch events.

    Both cases run the same loop, optimiser and batch order, so a comparison
    between them differs only in the loss.

    ``shift`` (default: the options' ``shift``): each epoch sees a fresh view of every training image shifted by up to
    ``shift`` pixels (zero fill); the views depend only on ``seed`` and the epoch, so
    the baseline sees exactly the same images. The teacher runs once per batch of each
    epoch's views (never twice on the same image). ``0`` (the default): no views, the
    teacher runs once in all. ``"auto"`` is 2 for one NHWC image input of at least 16x16
    pixels, else 0. The distill-prune-int8 recipe uses 2 (with T 1): on mnist it lifts
    both students alike, so distillation ties the baseline there (docs/converters.md).

    ``mixup``: each epoch's views are also mixed pairwise, ``m*a + (1-m)*b`` with
    ``m ~ Beta(mixup, mixup)`` per image and b a random partner; the hard-label
    term mixes the two labels alike, the teacher labels the mixed image itself
    ("function matching"). ``0`` (the default): no mixing. Needs one input array.

    ``transfer``: unlabelled inputs (one array shaped like the training input) that
    the teacher labels for the student, beside the labelled data: the classic transfer
    set. They get the soft-target term only and go through the same views. Needs a
    teacher; the baseline cannot use them, having no targets for them. ``epochs`` stays a
    budget of passes over the *labelled* data: with a transfer set the student takes the
    same number of optimiser steps as the baseline (``epochs * ceil(labelled / batch)``),
    its batches drawn from labelled and unlabelled inputs together, so a gain is not
    bought with extra training and the time stays that of the recipe
    (:func:`epochs_with_transfer` passes; the last one may stop early).
    """
    from converters._tf import tf, tf_keras

    opts = build_options(DistillOptions, options, **overrides)
    alpha, temperature, epochs, batch_size = opts.alpha, opts.temperature, opts.epochs, opts.batch_size
    learning_rate, mixup = opts.learning_rate, opts.mixup
    shift = opts.shift if shift is None else shift
    if not isinstance(student, tf_keras.Model):
        raise ConversionError(
            f"the distillation student must be a tf_keras model, got {type(student).__module__}.{type(student).__name__}"
        )
    tf_keras.utils.set_random_seed(seed)
    student_logits = logits_function(student)
    labelled = None
    step_budget = None  # None: every epoch runs whole
    if transfer is not None:
        labelled_count = len(np.asarray(labels).reshape(-1))
        step_budget = epochs * math.ceil(labelled_count / batch_size)
        inputs, labels, labelled = _with_transfer(inputs, labels, transfer, teacher is not None, mixup)
        epochs = epochs_with_transfer(epochs, labelled_count, len(labels) - labelled_count, batch_size)
    n = len(labels)
    batches = 0
    shift = _resolve_shift(shift, inputs)
    if mixup and len(inputs) != 1:
        raise ConversionError(f"distill mixup: mixed views need one input array, the model has {len(inputs)}")
    use_views = bool(shift or mixup)
    n_classes = max(int(student.outputs[0].shape[-1]), 2)

    def teacher_pass(batch_inputs):
        logits, count = run_teacher(teacher_function(teacher), batch_inputs, batch_size=max(batch_size, 256))
        if logits.shape[-1] != n_classes:
            raise ConversionError(
                f"teacher and student disagree on the classes: teacher gives {logits.shape[-1]} class logits, "
                f"student has {int(student.outputs[0].shape[-1])} output(s)"
            )
        return logits, count

    soft = np.zeros((n, n_classes), dtype=np.float32)
    if teacher is not None:
        weight = float(alpha)
        if not use_views:  # one pass, reused every epoch
            soft, batches = teacher_pass(inputs)
    else:
        weight = 1.0
    names = list(inputs)
    arrays = [np.asarray(inputs[k]) for k in names]
    y_all = np.asarray(labels).reshape(-1).astype(np.int32)
    optimizer = tf_keras.optimizers.Adam(learning_rate)
    t = float(temperature)

    @tf.function
    def step(xb, yb, tb, yb2=None, mix=None, hw=None):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(kd_loss(student_logits(xb, True), tb, yb, weight, t, yb2, mix, hw))
        grads = tape.gradient(loss, student.trainable_variables)
        optimizer.apply_gradients(zip(grads, student.trainable_variables, strict=False))
        return loss

    callbacks = callbacks or []
    for cb in callbacks:
        cb.set_model(student)
        cb.on_train_begin()
    last = float("nan")
    if not use_views:  # the original loop: one tf.data pipeline, reshuffled each epoch
        x = arrays[0] if len(arrays) == 1 else dict(zip(names, arrays, strict=False))
        columns = (x, y_all, soft) + ((labelled,) if labelled is not None else ())
        data = tf.data.Dataset.from_tensor_slices(columns)
        data = data.shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    steps = 0
    for epoch in range(epochs):
        total, count = 0.0, 0
        if not use_views:
            for batch in data:
                if step_budget is not None and steps >= step_budget:
                    break
                total += float(step(*batch[:3], hw=batch[3] if labelled is not None else None))
                count += 1
                steps += 1
        else:
            rng = np.random.default_rng([int(seed), epoch])
            view = shifted_views(arrays[0], shift, rng) if shift else arrays[0]
            if mixup:
                view, partner, mix = mixed_views(view, mixup, rng)
            if teacher is not None:
                soft, more = teacher_pass({names[0]: view})
                batches += more
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                if step_budget is not None and steps >= step_budget:
                    break
                steps += 1
                idx = order[start : start + batch_size]
                tensors = [tf.constant(view[idx]), tf.constant(y_all[idx]), tf.constant(soft[idx])]
                if mixup:
                    tensors += [tf.constant(y_all[partner[idx]]), tf.constant(mix[idx])]
                hard_weight = tf.constant(labelled[idx]) if labelled is not None else None
                total += float(step(*tensors, hw=hard_weight))
                count += 1
        last = total / max(count, 1)
        for cb in callbacks:
            cb.on_epoch_end(epoch, {"loss": last})
    for cb in callbacks:
        cb.on_train_end()
    return DistillResult(student, weight, t, batches, last, steps)


def epochs_with_transfer(epochs: int, labelled: int, transfer: int, batch_size: int) -> int:
    """Passes over labelled + ``transfer`` inputs that take the steps of ``epochs`` passes over the labelled ones."""
    if not transfer:
        return epochs
    return math.ceil(epochs * math.ceil(labelled / batch_size) / math.ceil((labelled + transfer) / batch_size))


def _with_transfer(
    inputs: dict[str, np.ndarray], labels: np.ndarray, transfer: Any, has_teacher: bool, mixup: float
) -> tuple:
    """Labelled inputs plus the transfer set: (inputs, labels with placeholders, 1/0 labelled weights)."""
    if not has_teacher:
        raise ConversionError("a distillation transfer set needs a teacher: its inputs have no labels of their own")
    if len(inputs) != 1:
        raise ConversionError(f"a distillation transfer set needs one input array, the model has {len(inputs)}")
    if mixup:
        raise ConversionError(
            "distill: use a transfer set or mixup, not both (mixing in unlabelled images "
            "leaves the mixed hard labels undefined)"
        )
    ((name, x),) = inputs.items()
    x = np.asarray(x)
    extra = np.asarray(transfer)
    if extra.ndim != x.ndim or extra.shape[1:] != x.shape[1:] or extra.dtype.kind != "f":
        raise ConversionError(
            f"distill transfer set: expected float inputs shaped (N, {', '.join(map(str, x.shape[1:]))}) like "
            f"the training input {name!r}, got {extra.dtype} shaped {extra.shape}"
        )
    labels = np.asarray(labels).reshape(-1)
    merged = np.concatenate([x, extra.astype(x.dtype, copy=False)])
    placeholders = np.concatenate([labels, np.zeros(len(extra), labels.dtype)])
    labelled = np.concatenate([np.ones(len(x), np.float32), np.zeros(len(extra), np.float32)])
    return {name: merged}, placeholders, labelled


def _resolve_shift(shift: Any, inputs: dict[str, np.ndarray]) -> int:
    if shift == "auto":
        if len(inputs) != 1:
            return 0
        x = np.asarray(next(iter(inputs.values())))
        return 2 if x.ndim == 4 and min(x.shape[1:3]) >= 16 else 0
    shift = int(shift)
    if shift < 0:
        raise RecipeError(f"distill shift: expected >= 0 pixels, got {shift}")
    if shift and (len(inputs) != 1 or np.asarray(next(iter(inputs.values()))).ndim != 4):
        raise ConversionError("distill shift: shifted views need one NHWC image input")
    return shift


def shifted_views(images: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Every image moved by its own random (dy, dx) in [-shift, shift], zero fill (NHWC)."""
    n, h, w = images.shape[:3]
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
    dy = np.asarray(rng.integers(0, 2 * shift + 1, n))  # numpy's stub picks the scalar overload for n: Any
    dx = np.asarray(rng.integers(0, 2 * shift + 1, n))
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def mixed_views(views: np.ndarray, concentration: float, rng: np.random.Generator) -> tuple:
    """``(m*views + (1-m)*views[partner], partner, m)``, ``m ~ Beta(c, c)`` per sample, partner a permutation."""
    n = len(views)
    partner = rng.permutation(n)
    mix = rng.beta(concentration, concentration, n).astype(np.float32)
    weight = mix.reshape((n,) + (1,) * (views.ndim - 1))
    mixed = (weight * views + (1.0 - weight) * views[partner]).astype(views.dtype, copy=False)
    return mixed, partner, mix


def distill(
    teacher: Any,
    student: Any,
    inputs: dict[str, np.ndarray],
    labels: np.ndarray,
    options: DistillOptions | None = None,
    **keywords: Any,
) -> DistillResult:
    """Distil ``teacher`` (a LoadedModel or a ``predict(batch) -> outputs`` callable) into ``student``.

    ``options`` and keywords as :func:`train_student` (a ``[distill]`` section or single keys of it, plus
    ``seed``, ``callbacks``, ``shift``, ``transfer``).
    """
    if teacher is None:
        raise ConversionError("distill needs a teacher model; got none")
    return train_student(student, inputs, labels, teacher, options, **keywords)


# ------------------------------------------------------------------------------------------------
# the pipeline stage
# ------------------------------------------------------------------------------------------------
STAGE = "distill"


def planned_steps(recipe: Recipe) -> int:
    """Progress lines this stage prints: train and write the student (and its baseline)."""
    return 2 + (2 if recipe.distill.baseline else 0)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


@dataclasses.dataclass
class DistillComparison(Comparison):
    """summary.json's ``comparisons["distill"]``: student against teacher (and against the same student trained
    without distillation, when ``distill.baseline`` ran)."""

    key: ClassVar[str] = "distill"
    line_order: ClassVar[int] = 10
    teacher_params: int
    student_params: int
    param_ratio: float
    teacher_accuracy: float | None
    student_accuracy: float | None
    alpha: float
    temperature: float
    epochs: int
    views: dict[str, Any]  # the training views (shift, mixup...), spread into the record
    transfer: dict[str, Any] | None
    baseline_accuracy: float | None = None
    baseline_ran: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {
            "teacher_params": self.teacher_params,
            "student_params": self.student_params,
            "param_ratio": self.param_ratio,
            "teacher_accuracy": self.teacher_accuracy,
            "student_accuracy": self.student_accuracy,
            "alpha": self.alpha,
            "temperature": self.temperature,
            "epochs": self.epochs,
            **self.views,
            "transfer": self.transfer,
        }
        if self.baseline_ran:
            out["baseline_accuracy"] = self.baseline_accuracy
        return out

    def lines(self) -> list[str]:
        line = (
            f"distill: student {self.student_params:,} params ({self.param_ratio:.2f}x teacher), "
            f"accuracy {_pct(self.student_accuracy)} vs teacher {_pct(self.teacher_accuracy)}"
        )
        if self.baseline_accuracy is not None:
            line += f"; same student without distillation {_pct(self.baseline_accuracy)}"
        return [line]


def check(ctx: RunContext, options: DistillOptions) -> None:
    """Before any work: the teacher can teach, there is training data, the transfer set fits.

    ``ctx``: the run context (model and data known, nothing written yet); ``options``: this stage's section.
    """
    ctx.model.require("distill-teacher", STAGE)
    ctx.require_training_data(STAGE)
    # a bad transfer file fails here, before any training
    # a dataset-name transfer set comes from the run's own split (never its validation or test images)
    split_seed = getattr(ctx.data.dataset, "seed", ctx.seed) if ctx.data.dataset is not None else ctx.seed
    if options.transfer == AUTO_TRANSFER:
        ctx.transfer, ctx.transfer_source = auto_transfer_set(
            ctx.data.dataset, ctx.model, split_seed, ctx.data.train_x, options.transfer_limit
        )
    else:
        ctx.transfer = _transfer_set(options.transfer, ctx.model, seed=split_seed, labelled=ctx.data.train_x)
        ctx.transfer_source = options.transfer


def run_stage(ctx: RunContext, options: DistillOptions) -> None:
    """Distil the current model into the recipe's student (and train the student alone, for comparison).

    ``ctx``: the :class:`converters.context.RunContext`; ``options``: the ``[distill]`` section.
    Writes ``student-float32`` (and ``student-baseline-float32``); the student becomes the
    model later stages work on.
    """
    from converters._tf import tf_keras
    from converters.load_stage import build_student
    from converters.model_files import from_keras

    data, progress, teacher, base = ctx.data, ctx.progress, ctx.current, ctx.current_artifact
    transfer, transfer_source = ctx.transfer, ctx.transfer_source
    student = build_student(options.student, data, ctx.seed)
    teacher_params = teacher.count_params()
    if teacher_params is None:  # a .tflite teacher without float32 weights: no parameter count to compare with
        raise ConversionError(f"distill: expected a teacher with float32 weights, got none in {base.file}")
    if options.baseline:
        baseline = tf_keras.models.clone_model(student)
        baseline.set_weights(student.get_weights())  # same initial weights: only the loss differs
    train_x, train_y = ctx.training_data(STAGE)
    views = _training_views(options, train_x, ctx.warn)
    passes = epochs_with_transfer(
        options.epochs, len(train_y), len(transfer) if transfer is not None else 0, options.batch_size
    )
    progress.say(
        f"distilling into '{options.student}' ({student.count_params():,} params vs teacher "
        f"{teacher_params:,}; alpha={options.alpha}, T={options.temperature}, {options.epochs} epochs"
        + (f", views shifted up to {views['shift']} px" if views["shift"] else "")
        + (f", mixup {views['mixup']}" if views["mixup"] else "")
        + (
            f", {len(transfer):,} unlabelled transfer inputs ({transfer_source}) in the same steps: {passes} passes"
            if transfer is not None
            else ""
        )
        + (f"; no transfer set: {transfer_source}" if transfer is None and transfer_source else "")
        + ")"
    )
    result = distill(
        teacher,
        student,
        train_x,
        train_y,
        options,
        seed=ctx.seed,
        callbacks=progress.epochs("distill", passes),
        transfer=transfer,
        **views,
    )
    student_loaded = from_keras(student)
    student_art = ctx.float32_artifact(
        student_loaded, "student-float32", STAGE, base.sha256, teacher_batches=result.teacher_batches
    )
    comparison = DistillComparison(
        teacher_params,
        student.count_params(),
        round(student.count_params() / teacher_params, 4),
        base.metrics.get("float_model_accuracy"),
        student_art.metrics.get("float_model_accuracy"),
        options.alpha,
        options.temperature,
        options.epochs,
        views,
        ({"source": transfer_source, "inputs": len(transfer), "passes": passes} if transfer is not None else None),
    )
    ctx.record(comparison)
    if options.baseline:
        progress.say(f"training the same student without distillation, for comparison ({options.epochs} epochs)")
        train_student(
            baseline,
            train_x,
            train_y,
            None,
            options,
            seed=ctx.seed,
            callbacks=progress.epochs("baseline", options.epochs),
            **views,
        )  # the very same training images: the two runs differ only in the loss
        baseline_art = ctx.float32_artifact(from_keras(baseline), "student-baseline-float32", "baseline", base.sha256)
        comparison.baseline_accuracy = baseline_art.metrics.get("float_model_accuracy")
        comparison.baseline_ran = True
    ctx.advance(student_loaded, student_art, "student")


def _training_views(
    options: DistillOptions, train_x: dict[str, np.ndarray], warn: Callable[[str], None]
) -> dict[str, Any]:
    """The recipe's ``shift``/``mixup`` where they apply (one NHWC image input), else none and a warning."""
    views = {"shift": options.shift, "mixup": options.mixup}
    if not any(views.values()):
        return views
    if len(train_x) == 1 and np.asarray(next(iter(train_x.values()))).ndim == 4:
        return views
    shapes = ", ".join(f"{k} {tuple(np.shape(v)[1:])}" for k, v in train_x.items())
    warn(
        f"distill.shift/mixup need one NHWC image input; this model takes {shapes}: "
        "the student and its baseline train on the data as it is"
    )
    return {"shift": 0, "mixup": 0.0}


AUTO_TRANSFER = "auto"
IMAGE_DATASETS = names.IMAGE_DATASETS


def auto_transfer_set(
    dataset: Any, teacher: Any, seed: int, labelled: dict[str, np.ndarray] | None, limit: float
) -> tuple:
    """``transfer = "auto"``: (images, source) of the run's own built-in image dataset, or (None, why not).

    The training images of ``dataset``'s split for ``seed`` that are not labelled training
    data (``--dataset fashion-mnist:2000`` leaves 47,000), at most ``limit`` per labelled
    image, a seeded sample. None for any other data (a user's files, tabular data, a whole
    split already labelled): then the student learns from the labelled data alone.
    """
    name = str(getattr(dataset, "name", "")).split(":")[0]  # "fashion-mnist:2000" is a subset of fashion-mnist
    if name not in IMAGE_DATASETS:
        return None, (
            "auto finds unlabelled images only in a built-in image dataset run on a subset "
            "(--dataset fashion-mnist:N); pass --transfer FILE for other data"
        )
    images = _unlabelled_images(name, teacher, seed, labelled)  # a wrong shape still fails, naming it
    if not len(images):
        return None, (
            f"auto: every {name} training image is already labelled "
            "(--dataset fashion-mnist:N labels N and leaves the rest)"
        )
    count = len(next(iter(labelled.values()))) if labelled else 0
    most = int(limit * count)
    if len(images) > most:
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), most, replace=False))]
    if not len(images):
        return None, f"auto: transfer_limit {limit} takes no images"
    return images, f"auto: {len(images):,} unlabelled {name} training images"


def _transfer_set(
    source: str, teacher: Any, seed: int = 0, labelled: dict[str, np.ndarray] | None = None
) -> np.ndarray | None:
    """The recipe's unlabelled transfer set, or None.

    ``source``: a .npy/.npz matching the model's one input, or a built-in image dataset name
    (``fashion-mnist``, ``fashion-mnist:N``, ``mnist``, ``digits``): the images of its training
    split for ``seed`` (the run dataset's split seed), without the ones already in ``labelled`` (so ``--dataset fashion-mnist:5000
    --transfer fashion-mnist`` gives 5,000 labelled images and the other 44,000 unlabelled).
    """
    from converters.calibration import load_data_file
    from converters.errors import DataError

    if not source:
        return None
    if _is_dataset_name(source):
        return _dataset_transfer(source, teacher, seed, labelled)
    arrays, _ = load_data_file(source, teacher.inputs, purpose="distill.transfer")
    if len(arrays) != 1:
        raise DataError(
            f"distill.transfer {source}: a transfer set needs a one-input model, this one has {len(arrays)} inputs"
        )
    return next(iter(arrays.values()))


def is_transfer_name(source: str) -> bool:
    """``auto`` or a built-in image dataset name (``fashion-mnist:N``): a transfer set that is not a file."""
    return source == AUTO_TRANSFER or source in IMAGE_DATASETS or source.startswith("fashion-mnist:")


def _is_dataset_name(source: str) -> bool:
    from pathlib import Path

    if Path(source).exists():
        return False
    return source != AUTO_TRANSFER and is_transfer_name(source)


def _dataset_transfer(name: str, teacher: Any, seed: int, labelled: dict[str, np.ndarray] | None) -> np.ndarray:
    """A built-in image dataset's training images (minus the labelled ones) as a transfer set."""
    from converters.errors import DataError

    images = _unlabelled_images(name, teacher, seed, labelled)
    if not len(images):
        raise DataError(
            f"distill.transfer {name!r}: every image of its training split is already labelled "
            "training data; expected a larger dataset (e.g. fashion-mnist with --dataset fashion-mnist:N)"
        )
    return images


def _unlabelled_images(name: str, teacher: Any, seed: int, labelled: dict[str, np.ndarray] | None) -> np.ndarray:
    """The training images of built-in ``name`` for ``seed`` that are not in ``labelled`` (maybe none)."""
    from converters.errors import DataError

    try:
        from training import datasets
    except ImportError as exc:
        raise DataError(f"distill.transfer {name!r}: a dataset name needs the training package ({exc})") from None
    images = np.asarray(datasets.load(name, seed=seed).x_train)
    if len(teacher.inputs) != 1:
        raise DataError(
            f"distill.transfer {name!r}: a transfer set needs a one-input model, this one has "
            f"{len(teacher.inputs)} inputs"
        )
    if labelled:
        x = np.asarray(next(iter(labelled.values())))
        if x.shape[1:] != images.shape[1:]:
            raise DataError(
                f"distill.transfer {name!r}: expected images shaped {tuple(x.shape[1:])} like the "
                f"training input, the dataset has {tuple(images.shape[1:])}"
            )
        seen = {row.tobytes() for row in x}
        images = images[np.fromiter((row.tobytes() not in seen for row in images), bool, len(images))]
    return images
