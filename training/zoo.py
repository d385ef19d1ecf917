"""The model zoo: tf_keras models that convert to TFLite with builtin ops only.

* ``cnn``: the image teacher (conv32, conv64, dense128, softmax).
* ``cnn-student``: the same shape at a fraction of the width (conv16, conv32,
  dense32), at most a quarter of the teacher's parameters.
* ``wide-deep``: Wide & Deep for tables (Cheng et al. 2016). The wide part is
  a linear model over every categorical feature and over crossed pairs; the
  deep part embeds each categorical feature, joins the numeric features and
  runs two ReLU layers. Their logits add up into one sigmoid unit: the output
  ``probability`` has shape [batch, 1] and is P(label class 1).

Models are tf_keras (not Keras 3) because tensorflow-model-optimization only
prunes and quantization-aware-trains tf_keras models. String lookup happens in
the data pipeline (vocabularies travel in the manifest); inside the model a
cross is ``index_a * size_b + index_b`` on int32 indices (capped at the OOV index), so
the graph is only GATHER, MUL, ADD, MINIMUM/MAXIMUM, FULLY_CONNECTED and friends.
"""

from __future__ import annotations

import math
import os
from typing import Any

from training import names
from training.errors import TrainingError, UnknownNameError

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

MODELS = names.ZOO_MODELS
IMAGE_MODELS = names.IMAGE_MODELS
# (conv1 filters, conv2 filters, dense units, dropout)
_CNN_WIDTHS = {"cnn": (32, 64, 128, 0.4), "cnn-student": (16, 32, 32, 0.2)}
DEEP_UNITS = (64, 32)
IMAGE_INPUT_NAME = "image"
IMAGE_OUTPUT_NAME = "probabilities"
TABULAR_OUTPUT_NAME = "probability"


def build(name: str, dataset: Any, seed: int = 0):
    """Build an untrained ``name`` model sized for ``dataset`` (a :class:`training.datasets.Dataset`)."""
    if name not in MODELS:
        raise UnknownNameError(f"unknown model {name!r}: expected one of {list(MODELS)}")
    import tf_keras

    tf_keras.utils.set_random_seed(int(seed))
    if name in IMAGE_MODELS:
        if dataset.task != "image":
            raise TrainingError(
                f"model {name!r} needs an image dataset, got {dataset.name!r} ({dataset.task}); "
                "use --model wide-deep for tables"
            )
        return _build_cnn(name, tuple(dataset.input_shape), dataset.num_classes)
    if dataset.task != "tabular" or dataset.feature_spec is None:
        raise TrainingError(
            f"model 'wide-deep' needs a tabular dataset with a feature spec, got {dataset.name!r} ({dataset.task}); "
            "use --model cnn or cnn-student for images"
        )
    if dataset.num_classes != 2:
        raise TrainingError(
            f"model 'wide-deep' predicts a binary label (one sigmoid unit), but {dataset.name!r} has "
            f"{dataset.num_classes} classes {dataset.labels}"
        )
    return _build_wide_deep(dataset.feature_spec)


def count_params(model: Any) -> int:
    """Number of parameters (trainable and not) in ``model``."""
    return int(model.count_params())


def _build_cnn(name: str, input_shape: tuple, num_classes: int):
    import tf_keras
    from tf_keras import layers

    if len(input_shape) != 3:
        raise TrainingError(f"model {name!r} expects images of shape (height, width, channels), got {input_shape}")
    c1, c2, units, dropout = _CNN_WIDTHS[name]
    # Small images (8x8 digits) keep their size through the convs; larger ones shrink, which keeps the dense layer small.
    padding = "same" if min(input_shape[:2]) < 16 else "valid"
    inputs = tf_keras.Input(shape=input_shape, name=IMAGE_INPUT_NAME)
    x = layers.Conv2D(c1, 3, padding=padding, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(c2, 3, padding=padding, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout1")(x)
    x = layers.Dense(units, activation="relu", name="dense1")(x)
    x = layers.Dropout(dropout, name="dropout2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=IMAGE_OUTPUT_NAME)(x)
    return tf_keras.Model(inputs, outputs, name=name.replace("-", "_"))


def embedding_dim(size: int) -> int:
    """Deep-part embedding width for a vocabulary of ``size`` (incl. OOV): ceil(sqrt), 2..8."""
    return int(min(8, max(2, math.ceil(math.sqrt(size)))))


def _build_wide_deep(spec: Any):
    import tensorflow as tf
    import tf_keras
    from tf_keras import layers

    from training.features import CategoricalFeature

    inputs: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    numeric: list[Any] = []
    for f in spec.features:
        if isinstance(f, CategoricalFeature):
            inp = tf_keras.Input(shape=(1,), dtype="int32", name=f.input_name)
            inputs[f.input_name] = inp
            # An index past the vocabulary lands in the OOV bucket instead of failing the lookup. Only the
            # upper bound: min(max(x, 0), 6) is rewritten by the converter into an int32 RELU6, which
            # TFLite lacks. A negative index still fails the lookup loudly (never a silent wrong answer).
            categorical[f.name] = (f, tf.minimum(inp, f.oov_index))
        else:
            inp = tf_keras.Input(shape=(1,), dtype="float32", name=f.input_name)
            inputs[f.input_name] = inp
            numeric.append(inp)

    wide_terms = []
    deep_parts = []
    for f, idx in categorical.values():
        wide = layers.Embedding(f.size, 1, name=f"wide_{f.input_name}")(idx)
        wide_terms.append(layers.Flatten(name=f"wide_{f.input_name}_flat")(wide))
        dim = f.embedding_dim or embedding_dim(f.size)
        emb = layers.Embedding(f.size, dim, name=f"embed_{f.input_name}")(idx)
        deep_parts.append(layers.Flatten(name=f"embed_{f.input_name}_flat")(emb))
    for a, b in spec.crosses:
        fa, ia = categorical[a]
        fb, ib = categorical[b]
        crossed = ia * fb.size + ib
        tag = f"{fa.input_name}_x_{fb.input_name}"
        wide = layers.Embedding(fa.size * fb.size, 1, name=f"wide_cross_{tag}")(crossed)
        wide_terms.append(layers.Flatten(name=f"wide_cross_{tag}_flat")(wide))
    if numeric:
        numbers = numeric[0] if len(numeric) == 1 else layers.Concatenate(name="numeric")(numeric)
        wide_terms.append(layers.Dense(1, use_bias=False, name="wide_numeric")(numbers))
        deep_parts.append(numbers)

    deep = deep_parts[0] if len(deep_parts) == 1 else layers.Concatenate(name="deep_input")(deep_parts)
    for i, units in enumerate(DEEP_UNITS, start=1):
        deep = layers.Dense(units, activation="relu", name=f"deep_dense{i}")(deep)
    deep_logit = layers.Dense(1, name="deep_logit")(deep)
    logit = layers.Add(name="logit")(wide_terms + [deep_logit]) if wide_terms else deep_logit
    output = layers.Activation("sigmoid", name=TABULAR_OUTPUT_NAME)(logit)
    return tf_keras.Model(inputs, output, name="wide_deep")
