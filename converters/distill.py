"""Knowledge distillation: train a small student on a teacher's soft targets.

    loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))

``t`` and ``s`` are teacher and student logits; models that end in softmax
(or a single sigmoid unit) are turned back into logits (log-probabilities,
which give the same softmax at any temperature). The T^2 factor keeps the
soft-target gradients on the same scale as the hard-label ones (Hinton et al.).

The teacher runs exactly once per batch of training data, before training: its
logits are stored beside the labels and reused in every epoch, so it is never
re-run needlessly. Any teacher works: a tf_keras or Keras 3 file or a SavedModel.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional

import numpy as np

from converters.errors import ConversionError, RecipeError

_EPS = 1e-7


@dataclasses.dataclass
class DistillResult:
    """The trained student and the teacher pass it was trained from."""

    model: Any
    alpha: float
    temperature: float
    teacher_batches: int
    final_loss: float


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
        return np.log(np.clip(out, _EPS, 1.0))
    return out


def run_teacher(
    teacher_predict: Callable[[Dict[str, np.ndarray]], np.ndarray],
    inputs: Dict[str, np.ndarray],
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


def distillation_loss(student: Any, alpha: float, temperature: float):
    """A Keras loss taking ``y_true = [label, teacher logits...]`` and the student's output."""
    from converters._tf import tf
    from converters._train import output_kind

    kind = output_kind(student)

    def student_logits(y_pred):
        if kind == "softmax":
            return tf.math.log(tf.clip_by_value(y_pred, _EPS, 1.0))
        if kind in ("sigmoid", "binary-logits"):
            z = y_pred
            if kind == "sigmoid":
                p = tf.clip_by_value(y_pred, _EPS, 1 - _EPS)
                z = tf.math.log(p) - tf.math.log1p(-p)
            return tf.concat([tf.zeros_like(z), z], axis=-1)
        return y_pred

    def loss(y_true, y_pred):
        labels = tf.cast(y_true[:, 0], tf.int32)
        t_logits = y_true[:, 1:]
        s_logits = student_logits(y_pred)
        hard = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=s_logits)
        soft_t = tf.nn.softmax(t_logits / temperature)
        log_soft_s = tf.nn.log_softmax(s_logits / temperature)
        log_soft_t = tf.math.log(tf.clip_by_value(soft_t, 1e-12, 1.0))
        kl = tf.reduce_sum(soft_t * (log_soft_t - log_soft_s), axis=-1)
        return alpha * hard + (1.0 - alpha) * (temperature**2) * kl

    return loss


def distill(
    teacher_predict: Callable[[Dict[str, np.ndarray]], np.ndarray],
    student: Any,
    inputs: Dict[str, np.ndarray],
    labels: np.ndarray,
    *,
    alpha: float = 0.1,
    temperature: float = 4.0,
    epochs: int = 6,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    seed: int = 0,
    callbacks: Optional[list] = None,
) -> DistillResult:
    """Train the tf_keras ``student`` in place from the teacher's soft targets and the labels."""
    from converters._tf import tf_keras
    from converters._train import compile_and_fit

    if not 0.0 <= alpha <= 1.0:
        raise RecipeError(f"distill alpha: expected a weight between 0 and 1, got {alpha}")
    if temperature <= 0:
        raise RecipeError(f"distill temperature: expected > 0, got {temperature}")
    if not isinstance(student, tf_keras.Model):
        raise ConversionError(
            f"the distillation student must be a tf_keras model, got {type(student).__module__}.{type(student).__name__}"
        )
    logits, batches = run_teacher(teacher_predict, inputs, batch_size=max(batch_size, 256))
    n_student_classes = int(student.outputs[0].shape[-1])
    n_teacher_classes = logits.shape[-1]
    if n_student_classes != n_teacher_classes and not (n_student_classes == 1 and n_teacher_classes == 2):
        raise ConversionError(
            f"teacher and student disagree on the classes: teacher gives {n_teacher_classes}, "
            f"student {n_student_classes} outputs"
        )
    packed = np.concatenate([np.asarray(labels, dtype=np.float32).reshape(-1, 1), logits], axis=1)
    history = compile_and_fit(
        student, inputs, packed, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        loss=distillation_loss(student, alpha, temperature), seed=seed, callbacks=callbacks,
    )
    losses = history.history.get("loss", [float("nan")])
    return DistillResult(student, alpha, temperature, batches, float(losses[-1]))
