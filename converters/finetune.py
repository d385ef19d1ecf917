"""The tf_keras fine-tuning loop the stages share (zoo training in ``source``, prune, QAT in ``quantize``).

Models may end in softmax (k classes), sigmoid (1 unit, binary) or emit
logits; the loss follows what the output layer is (:func:`output_kind`).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def output_kind(model: Any) -> str:
    """``softmax`` | ``sigmoid`` | ``logits`` for the model's (single) output."""
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if not activation and hasattr(last, "layer"):  # a tfmot wrapper
        activation = getattr(getattr(last.layer, "activation", None), "__name__", "")
    units = int(model.outputs[0].shape[-1])
    if activation == "softmax" or last.__class__.__name__ == "Softmax":
        return "softmax"
    if activation == "sigmoid" and units == 1:
        return "sigmoid"
    return "logits" if units > 1 else "binary-logits"


def task_loss(model: Any):
    """The cross-entropy loss that matches the model's output layer."""
    from converters._tf import tf_keras

    kind = output_kind(model)
    if kind == "sigmoid":
        return tf_keras.losses.BinaryCrossentropy()
    if kind == "binary-logits":
        return tf_keras.losses.BinaryCrossentropy(from_logits=True)
    return tf_keras.losses.SparseCategoricalCrossentropy(from_logits=kind == "logits")


def model_inputs(model: Any, inputs: dict[str, np.ndarray]):
    """What ``model.fit``/``model(...)`` expects: the array itself for one input, else the dict."""
    return next(iter(inputs.values())) if len(inputs) == 1 else inputs


def compile_and_fit(
    model: Any,
    inputs: dict[str, np.ndarray],
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    callbacks: list[Any] | None = None,
    seed: int = 0,
    loss: Any = None,
    shift: int = 0,
) -> Any:
    """Compile with Adam and the matching loss, then fit quietly; return the History.

    ``shift``: for one NHWC image input, each epoch sees every image moved by a random
    shift of up to that many pixels (zero fill) - the classic cheap way to a better
    teacher on digits. ``0``: the data as it is.
    """
    from converters._tf import tf, tf_keras

    tf.random.set_seed(seed)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate), loss=loss or task_loss(model))
    if not shift:
        return model.fit(
            model_inputs(model, inputs),
            labels,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks or [],
        )
    ((name, images),) = inputs.items()
    height, width, channels = images.shape[1:]

    def shifted(image, label):
        padded = tf.image.pad_to_bounding_box(image, shift, shift, height + 2 * shift, width + 2 * shift)
        return tf.image.random_crop(padded, (height, width, channels)), label

    tf_keras.utils.set_random_seed(seed)
    data = (
        tf.data.Dataset.from_tensor_slices((images, np.asarray(labels)))
        .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        .map(shifted, num_parallel_calls=2)
        .batch(batch_size)
    )
    return model.fit(data, epochs=epochs, verbose=0, callbacks=callbacks or [])


def augment_shift(height: int, width: int) -> int:
    """The training-augmentation shift for an image size: 1/14 of the shorter side, at least 1.

    2 pixels on 28x28 mnist; 1 on 8x8 digits, where 2 pixels (a quarter of the image)
    cost the zoo cnn 12 points at 12 epochs (84% instead of 94-96%).
    """
    return max(1, round(min(height, width) / 14))
