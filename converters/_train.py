"""Small shared pieces for the stages that fine-tune tf_keras models.

Models may end in softmax (k classes), sigmoid (1 unit, binary) or emit
logits; the loss and the accuracy follow what the output layer is.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edge_sdk.metrics import accuracy  # noqa: F401 - one accuracy rule, the runtime's (issue 17)


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


def model_inputs(model: Any, inputs: Dict[str, np.ndarray]):
    """What ``model.fit``/``model(...)`` expects: the array itself for one input, else the dict."""
    return next(iter(inputs.values())) if len(inputs) == 1 else inputs


def compile_and_fit(
    model: Any,
    inputs: Dict[str, np.ndarray],
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    callbacks: Optional[List[Any]] = None,
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
        return model.fit(model_inputs(model, inputs), labels, epochs=epochs, batch_size=batch_size, shuffle=True,
                         verbose=0, callbacks=callbacks or [])
    (name, images), = inputs.items()
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


# Artifact kinds whose bytes vary between runs with the same inputs, recipe and seed, and why.
# Everything else the converter writes (.tflite of every kind, .onnx) is byte-identical run to run.
NOT_BYTE_IDENTICAL = {
    "keras": "a .keras archive records when it was saved (metadata.json date_saved, zip member times)",
    "savedmodel": "TensorFlow writes a random uuid into fingerprint.pb on every save; saved_model.pb, the "
    "variables and keras_metadata.pb are byte-identical",
}


def build_record(seed: int, kind: str) -> Dict[str, Any]:
    """The manifest's ``build`` entry: the seed, whether op determinism was on, and whether the bytes reproduce.

    ``byte_identical`` promises that another run with the same model, recipe, data, seed
    and tool versions on the same kind of machine writes the same bytes; ``why_not`` says
    what varies when it does not.
    """
    from converters._tf import DETERMINISTIC

    why = NOT_BYTE_IDENTICAL.get(kind)
    if why is None and not DETERMINISTIC:
        why = "TensorFlow op determinism was off (EDGE_SDK_DETERMINISTIC=0), so training may differ run to run"
    record: Dict[str, Any] = {"seed": int(seed), "op_determinism": bool(DETERMINISTIC), "byte_identical": why is None}
    if why is not None:
        record["why_not"] = why
    return record


def augment_shift(height: int, width: int) -> int:
    """The training-augmentation shift for an image size: 1/14 of the shorter side, at least 1.

    2 pixels on 28x28 mnist; 1 on 8x8 digits, where 2 pixels (a quarter of the image)
    cost the zoo cnn 12 points at 12 epochs (84% instead of 94-96%).
    """
    return max(1, round(min(height, width) / 14))


def count_nonzero_params(model: Any) -> int:
    """Weights that are not exactly zero (what pruning removes)."""
    return int(sum(int(np.count_nonzero(w)) for w in model.get_weights()))


def subset(inputs: Dict[str, np.ndarray], n: int, seed: int = 0) -> Dict[str, np.ndarray]:
    """A reproducible random subset of ``n`` samples (all of them if fewer)."""
    total = len(next(iter(inputs.values())))
    if n >= total:
        return inputs
    idx = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    return {k: v[idx] for k, v in inputs.items()}


def names_of(specs: Sequence[Any]) -> List[str]:
    """Input names from a list of specs."""
    return [s.name for s in specs]
