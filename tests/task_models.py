"""Tiny non-classifier models on real data (scikit-learn digits), for the task-aware parity tests.

* :func:`build_yolo_detector`: a YOLOv8-style head with ONE output ``[batch, 4 + C, N]``: rows 0-3
  are box centre/size in pixels of a 640-pixel image (0-640), rows 4.. sigmoid class scores. Full
  int8 gives that output one scale (about 2.5), so every class score becomes exactly 0.
* :func:`build_autoencoder`: a dense autoencoder on the 64 digit pixels (64 in, 64 out); anomalies
  are the same digits with half of their pixels replaced by noise.
* :func:`build_segmenter`: a tiny fully-convolutional net whose one-channel sigmoid mask marks the
  ink of 8x8 digits (label: pixel > 0.25).

Each trains in a few seconds on two cores (tf_keras, a handful of epochs).
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

YOLO_CLASSES = 3
YOLO_ANCHORS = 16
IMAGE_SIZE = 640.0


def digits_flat(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as float32 rows of 64 pixels in [0, 1]: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[:1300]], y[order[:1300]], x[order[1300:]], y[order[1300:]]


def corrupt(x: np.ndarray, seed: int = 1, share: float = 0.5) -> np.ndarray:
    """``x`` with ``share`` of every row's pixels replaced by uniform noise: the anomalies."""
    rng = np.random.default_rng(seed)
    out = x.copy()
    mask = rng.random(out.shape) < share
    out[mask] = rng.random(int(mask.sum())).astype(np.float32)
    return out


def build_autoencoder(x_train: np.ndarray, epochs: int = 20, seed: int = 0):
    """64 -> 32 -> 12 -> 32 -> 64 (sigmoid) dense autoencoder, trained on MSE."""
    from converters._tf import tf_keras

    tf_keras.utils.set_random_seed(seed)
    layers = tf_keras.layers
    model = tf_keras.Sequential(
        [
            layers.Input((64,), name="pixels"),
            layers.Dense(32, activation="relu"),
            layers.Dense(12, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(64, activation="sigmoid", name="reconstruction"),
        ]
    )
    model.compile(tf_keras.optimizers.Adam(3e-3), "mse")
    model.fit(x_train, x_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def yolo_targets(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One box per digit image (the ink's bounding box scaled to 640 px) and its class (digit % C).

    Returns (boxes [n, 4] as cx, cy, w, h in pixels, classes [n]).
    """
    img = x.reshape(-1, 8, 8) > 0.25
    boxes = np.zeros((len(x), 4), np.float32)
    for i, m in enumerate(img):
        rows, cols = np.where(m.any(axis=1))[0], np.where(m.any(axis=0))[0]
        y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        s = IMAGE_SIZE / 8.0
        boxes[i] = [(x0 + x1) / 2 * s, (y0 + y1) / 2 * s, (x1 - x0) * s, (y1 - y0) * s]
    return boxes, (y % YOLO_CLASSES).astype(np.int64)


def build_yolo_detector(x_train: np.ndarray, y_train: np.ndarray, epochs: int = 15, seed: int = 0):
    """A YOLO-style head on 8x8 digits: one output [batch, 4 + C, N] (boxes in pixels, sigmoid scores).

    Every one of the N anchors predicts the image's box (pixels, via a 640x-scaled linear layer)
    and per-class scores; anchor 0 is trained to be the confident one, the others to stay low.
    """
    from converters._tf import tf_keras

    tf_keras.utils.set_random_seed(seed)
    layers = tf_keras.layers
    n, c = YOLO_ANCHORS, YOLO_CLASSES
    inp = layers.Input((8, 8, 1), name="image")
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    h = layers.Flatten()(h)
    h = layers.Dense(48, activation="relu")(h)
    box = layers.Dense(4 * n)(h)
    box = layers.Rescaling(IMAGE_SIZE)(box)
    box = layers.Reshape((4, n), name="boxes")(box)
    cls = layers.Dense(c * n, activation="sigmoid")(h)
    cls = layers.Reshape((c, n), name="scores")(cls)
    out = layers.Concatenate(axis=1, name="detections")([box, cls])
    model = tf_keras.Model(inp, out)
    boxes, classes = yolo_targets(x_train.reshape(len(x_train), -1), y_train)
    target = np.zeros((len(x_train), 4 + c, n), np.float32)
    target[:, :4, :] = boxes[:, :, None]
    target[np.arange(len(x_train)), 4 + classes, 0] = 1.0
    weight = np.ones((4 + c, 1), np.float32)
    weight[:4] = 1.0 / IMAGE_SIZE**2

    def loss(t, p):
        return tf_keras.backend.mean(tf_keras.backend.square(t - p) * weight)

    model.compile(tf_keras.optimizers.Adam(3e-3), loss)
    model.fit(x_train.reshape(-1, 8, 8, 1), target, epochs=epochs, batch_size=32, verbose=0)
    return model


def segmenter_inputs(x: np.ndarray) -> np.ndarray:
    """Digits as tinted RGB images [n, 8, 8, 3] (ink dark blue on a light background)."""
    gray = x.reshape(-1, 8, 8, 1)
    return (1.0 - gray * np.array([0.9, 0.8, 0.4], np.float32)).astype(np.float32)


def build_segmenter(x_train: np.ndarray, epochs: int = 8, seed: int = 0):
    """conv8 -> conv8 -> conv1 sigmoid: the [8, 8, 1] ink mask of an RGB-tinted 8x8 digit."""
    from converters._tf import tf_keras

    tf_keras.utils.set_random_seed(seed)
    layers = tf_keras.layers
    model = tf_keras.Sequential(
        [
            layers.Input((8, 8, 3), name="image"),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.Conv2D(1, 1, activation="sigmoid", name="mask"),
        ]
    )
    model.compile(tf_keras.optimizers.Adam(3e-3), "binary_crossentropy")
    mask = (x_train.reshape(-1, 8, 8, 1) > 0.25).astype(np.float32)
    model.fit(segmenter_inputs(x_train), mask, epochs=epochs, batch_size=32, verbose=0)
    return model


def to_tflite(model, calibration: np.ndarray, mode: str = "int8") -> bytes:
    """``int8`` (int8 in/out, full integer), ``float32`` or ``float16``."""
    from converters._tf import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode in ("int8", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":

        def rep():
            for row in calibration[:200]:
                yield [row[None].astype(np.float32)]

        converter.representative_dataset = rep
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()
