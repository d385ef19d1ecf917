"""Conformance set: real architectures, built offline, through the int8, dynamic and fp16 recipes.

    .venv/bin/python benchmarks/conformance.py                       # every model, table on stdout
    .venv/bin/python benchmarks/conformance.py --models onnx-cnn,lstm --json results.json

Each model is built here without downloading anything (Keras applications with
``weights=None`` at 96x96, models trained for a moment on scikit-learn's digits, ONNX graphs
written with ``onnx.helper``), saved in the input format a user would hand over (Keras 3
``.keras``, tf_keras ``.h5`` or SavedModel, ``.onnx``), then converted by
``converters.pipeline.run`` with each recipe and ``export.formats = tflite``. Every run ends
as ``ok`` (a validated model: the pipeline evaluated it and refused NaN/inf) or ``refused``
with the converter's one-line reason; anything else (a traceback) is a conformance failure.

Columns: the quantized file's size and single-example latency (1 thread) as ratios to the
run's float32.tflite, and top-1 agreement with the float32 model on held-out data (the first
output; the float32.tflite matches its float model within ~1e-6).
Calibration data is real: crops of scikit-learn's two sample photographs for the image models,
scikit-learn digits for the others. Progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras models, as the converters import them


RECIPES = ("int8", "dynamic", "fp16")
IMAGE_SIZE = 96


# ------------------------------------------------------------------------------------------------
# data (real, offline)
# ------------------------------------------------------------------------------------------------
def photo_crops(n: int, size: int = IMAGE_SIZE, offset: int = 0) -> np.ndarray:
    """``n`` float32 ``size`` x ``size`` x 3 crops in [0, 1] of scikit-learn's two sample photographs."""
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(p, dtype=np.float32) / 255.0 for p in load_sample_images().images]
    rng = np.random.default_rng(1000 + offset)
    crops = []
    for i in range(n):
        photo = photos[i % 2]
        span = int(rng.integers(size, 2 * size + 1))
        top = int(rng.integers(0, photo.shape[0] - span))
        left = int(rng.integers(0, photo.shape[1] - span))
        crop = photo[top : top + span, left : left + span]
        idx = (np.arange(size) * span / size).astype(int)  # nearest-neighbour resize
        crops.append(crop[idx][:, idx])
    return np.stack(crops).astype(np.float32)


def digits(n: int | None = None):
    """scikit-learn digits: images (N, 8, 8) in [0, 1] float32 and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:n], d.target.astype(np.int64)[:n]


def digits_nchw_rgb(size: int = 16):
    """Digits as NCHW 3-channel images (upsampled, a colour per channel), the ONNX CNN's input, and labels."""
    x, y = digits()
    x = np.repeat(np.repeat(x, size // 8, axis=1), size // 8, axis=2)
    return np.stack([x, 0.8 * x + 0.1, 1.0 - x], axis=1).astype(np.float32), y


# ------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Built:
    """A conformance model on disk with its data: what a user would pass to ``edge-sdk convert``."""

    name: str
    input_kind: str  # "keras3" | "tf_keras" | "savedmodel" | "onnx"
    path: Path
    calibration: Path
    eval_inputs: dict[str, np.ndarray]
    description: str
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. {"import.input_shapes": [...]}
    eval_labels: np.ndarray | None = None  # when set: the task metric (top-1 accuracy) of float32 and the file


def _save_data(folder: Path, calibration: dict[str, np.ndarray]) -> Path:
    path = folder / "calibration.npz"
    np.savez(path, **calibration)
    return path


def _keras_app(name: str, folder: Path, epochs: int) -> Built:
    import keras

    keras.utils.set_random_seed(0)
    shape = (IMAGE_SIZE, IMAGE_SIZE, 3)
    apps = keras.applications
    if name == "mobilenetv2":
        model = apps.MobileNetV2(shape, alpha=0.35, weights=None, classes=10)
        what = "Keras 3 MobileNetV2 alpha 0.35, 96x96, random weights"
    elif name == "mobilenetv3small":
        model = apps.MobileNetV3Small(shape, weights=None, classes=10, include_preprocessing=False)
        what = "Keras 3 MobileNetV3Small, 96x96, random weights"
    else:
        model = apps.EfficientNetB0(weights=None, input_shape=shape, classes=10, include_top=True)
        what = "Keras 3 EfficientNetB0, 96x96, random weights"
    path = folder / f"{name}.keras"
    model.save(path)
    # "x": the calibration loader's name for a single input (Keras 3 names it differently once reloaded)
    return Built(
        name, "keras3", path, _save_data(folder, {"x": photo_crops(64)}), {"x": photo_crops(48, offset=1)}, what
    )


def _resnet(folder: Path, epochs: int) -> Built:
    """A small ResNet (three residual stages, batch norm) in Keras 3, random weights."""
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        shortcut = x
        y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same", use_bias=False)(y))
        if stride != 1 or shortcut.shape[-1] != width:
            shortcut = layers.BatchNormalization()(layers.Conv2D(width, 1, strides=stride, use_bias=False)(shortcut))
        x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="small_resnet")
    path = folder / "resnet.keras"
    model.save(path)
    return Built(
        "resnet",
        "keras3",
        path,
        _save_data(folder, {"image": photo_crops(64)}),
        {"image": photo_crops(48, offset=1)},
        "Keras 3 small ResNet (3 residual stages, BN), random weights",
    )


def _transformer(folder: Path, epochs: int) -> Built:
    from training.tiny_models import build_text_transformer, digits_token_data

    model = build_text_transformer(epochs=max(1, epochs))
    path = folder / "transformer.keras"
    model.save(path)
    inputs, _ = digits_token_data()
    return Built(
        "transformer",
        "keras3",
        path,
        _save_data(folder, {k: v[:300] for k, v in inputs.items()}),
        {k: v[1400:] for k, v in inputs.items()},
        "Keras 3 transformer encoder (Embedding, MHA, LayerNorm, GELU; int32 tokens + float features), "
        "trained on digits",
    )


def _lstm(folder: Path, epochs: int) -> Built:
    """A tf_keras LSTM over digit rows (8 steps of 8 pixels), trained briefly, saved as .h5."""
    from training.tiny_models import build_digits_rnn

    x, _ = digits()
    model = build_digits_rnn("LSTM", epochs=epochs)
    path = folder / "lstm.h5"
    model.save(path)
    return Built(
        "lstm",
        "tf_keras",
        path,
        _save_data(folder, {"rows": x[:300]}),
        {"rows": x[1400:]},
        "tf_keras LSTM(32) over digit rows, trained on digits, .h5",
    )


def _gru(folder: Path, epochs: int) -> Built:
    """A Keras 3 GRU over digit rows (8 steps of 8 pixels), trained briefly, saved as .keras."""
    from training.tiny_models import build_digits_rnn

    x, _ = digits()
    model = build_digits_rnn("GRU", keras3=True, epochs=epochs)
    path = folder / "gru.keras"
    model.save(path)
    return Built(
        "gru",
        "keras3",
        path,
        _save_data(folder, {"rows": x[:300]}),
        {"rows": x[1400:]},
        "Keras 3 GRU(32) over digit rows, trained on digits, .keras",
    )


def _multi_io(folder: Path, epochs: int) -> Built:
    """A tf_keras functional model with two inputs and two outputs, trained briefly, saved as a SavedModel."""
    from converters._tf import tf_keras
    from training.saving import save_savedmodel

    tf_keras.utils.set_random_seed(0)
    x, y = digits()
    image = x[..., None]
    stats = np.stack(
        [x.mean(axis=(1, 2)), x.std(axis=(1, 2)), x.max(axis=(1, 2)), (x > 0.5).mean(axis=(1, 2))], axis=1
    ).astype(np.float32)
    layers = tf_keras.layers
    image_in = tf_keras.Input((8, 8, 1), name="image")
    stats_in = tf_keras.Input((4,), name="stats")
    h = layers.Flatten()(layers.Conv2D(8, 3, activation="relu")(image_in))
    h = layers.Concatenate()([h, layers.Dense(8, activation="relu")(stats_in)])
    h = layers.Dense(32, activation="relu")(h)
    probs = layers.Dense(10, activation="softmax", name="probs")(h)
    ink = layers.Dense(1, name="ink")(h)
    model = tf_keras.Model([image_in, stats_in], [probs, ink], name="multi_io")
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
    model.fit([image[:1400], stats[:1400]], [y[:1400], stats[:1400, :1]], epochs=epochs, batch_size=32, verbose=0)
    path = folder / "multi_io_savedmodel"
    save_savedmodel(model, path)
    return Built(
        "multi-io",
        "savedmodel",
        path,
        _save_data(folder, {"image": image[:300], "stats": stats[:300]}),
        {"image": image[1400:], "stats": stats[1400:]},
        "tf_keras functional model, 2 inputs (image, stats) and 2 outputs (class, regression), SavedModel",
    )


def _onnx_save(graph: Any, path: Path, opset: int = 17) -> None:
    import onnx
    from onnx import helper

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edge-sdk-conformance"
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_onnx_cnn(path: Path, epochs: int = 8) -> dict[str, Any]:
    """An ONNX CNN (NCHW input 'image' N x 3 x 16 x 16, Conv/Relu/MaxPool x2, Flatten, Gemm, Softmax).

    Its weights are a tf_keras twin's, trained for ``epochs`` on digits drawn as 3-channel
    16x16 images, moved to ONNX's layouts (OIHW kernels, (c, h, w) flatten order).
    Returns ``{"x": NCHW images, "y": labels}`` (rows 1400+ were not trained on).
    """
    from onnx import TensorProto, helper, numpy_helper

    from converters._tf import tf_keras

    x, y = digits_nchw_rgb()
    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    inputs = tf_keras.Input((16, 16, 3))
    h = layers.MaxPooling2D(2)(layers.Conv2D(8, 3, padding="same", activation="relu")(inputs))
    h = layers.MaxPooling2D(2)(layers.Conv2D(16, 3, padding="same", activation="relu")(h))
    twin = tf_keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(h)))
    twin.compile("adam", "sparse_categorical_crossentropy")
    twin.fit(x[:1400].transpose(0, 2, 3, 1), y[:1400], epochs=epochs, batch_size=32, verbose=0)
    (k1, b1), (k2, b2), (wd, bd) = [layer.get_weights() for layer in twin.layers if layer.get_weights()]
    wd = wd.reshape(4, 4, 16, 10).transpose(2, 0, 1, 3).reshape(256, 10)
    weights = {"w1": k1.transpose(3, 2, 0, 1), "b1": b1, "w2": k2.transpose(3, 2, 0, 1), "b2": b2, "wd": wd, "bd": bd}
    init = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()]
    node = helper.make_node
    nodes = [
        node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        node("Relu", ["c1"], ["r1"], name="relu1"),
        node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        node("Relu", ["c2"], ["r2"], name="relu2"),
        node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], name="pool2"),
        node("Flatten", ["p2"], ["flat"], axis=1, name="flatten"),
        node("Gemm", ["flat", "wd", "bd"], ["logits"], name="dense"),
        node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "onnx_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        init,
    )
    _onnx_save(graph, path)
    return {"x": x, "y": y}


def gelu_pattern_nodes(x: str, out: str, prefix: str) -> tuple:
    """PyTorch's exact-GELU export: Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5; returns (nodes, initializers)."""
    from onnx import helper, numpy_helper

    consts = {f"{prefix}_sqrt2": np.sqrt(2.0), f"{prefix}_one": 1.0, f"{prefix}_half": 0.5}
    init = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items()]
    node = helper.make_node
    nodes = [
        node("Div", [x, f"{prefix}_sqrt2"], [f"{prefix}_div"], name=f"{prefix}/Div"),
        node("Erf", [f"{prefix}_div"], [f"{prefix}_erf"], name=f"{prefix}/Erf"),
        node("Add", [f"{prefix}_erf", f"{prefix}_one"], [f"{prefix}_add"], name=f"{prefix}/Add"),
        node("Mul", [x, f"{prefix}_add"], [f"{prefix}_mul"], name=f"{prefix}/Mul"),
        node("Mul", [f"{prefix}_mul", f"{prefix}_half"], [out], name=f"{prefix}/Mul_1"),
    ]
    return nodes, init


def build_onnx_mlp(path: Path, epochs: int = 10) -> dict[str, Any]:
    """An ONNX MLP on flattened digits: Gemm -> LayerNormalization -> GELU as PyTorch exports it -> Gemm -> Softmax.

    Weights from a tf_keras twin (Dense, LayerNormalization, exact GELU, Dense) trained for ``epochs``.
    Returns ``{"x": (N, 64) float32, "y": labels}``.
    """
    from onnx import TensorProto, helper, numpy_helper

    from converters._tf import tf_keras

    images, y = digits()
    x = images.reshape(len(images), 64)
    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    inputs = tf_keras.Input((64,))
    h = layers.LayerNormalization(epsilon=1e-5)(layers.Dense(64)(inputs))
    h = layers.Activation(lambda t: tf_keras.activations.gelu(t, approximate=False))(h)
    twin = tf_keras.Model(inputs, layers.Dense(10, activation="softmax")(h))
    twin.compile("adam", "sparse_categorical_crossentropy")
    twin.fit(x[:1400], y[:1400], epochs=epochs, batch_size=32, verbose=0)
    (w1, b1), (gamma, beta), (w2, b2) = [layer.get_weights() for layer in twin.layers if layer.get_weights()]
    weights = {"w1": w1, "b1": b1, "gamma": gamma, "beta": beta, "w2": w2, "b2": b2}
    init = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()]
    gelu, gelu_init = gelu_pattern_nodes("normed", "activated", "gelu")
    node = helper.make_node
    nodes = [
        node("Gemm", ["features", "w1", "b1"], ["hidden"], name="dense1"),
        node("LayerNormalization", ["hidden", "gamma", "beta"], ["normed"], axis=-1, epsilon=1e-5, name="norm"),
        *gelu,
        node("Gemm", ["activated", "w2", "b2"], ["logits"], name="dense2"),
        node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "onnx_mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        init + gelu_init,
    )
    _onnx_save(graph, path)
    return {"x": x, "y": y}


def _onnx_cnn(folder: Path, epochs: int) -> Built:
    path = folder / "cnn.onnx"
    data = build_onnx_cnn(path, epochs=max(1, epochs))
    return Built(
        "onnx-cnn",
        "onnx",
        path,
        _save_data(folder, {"image": data["x"][:300]}),
        {"image": data["x"][1400:]},
        "ONNX CNN (onnx.helper), NCHW 3x16x16, weights trained on digits",
    )


def _onnx_mlp(folder: Path, epochs: int) -> Built:
    path = folder / "mlp.onnx"
    data = build_onnx_mlp(path, epochs=max(1, epochs))
    return Built(
        "onnx-mlp",
        "onnx",
        path,
        _save_data(folder, {"features": data["x"][:300]}),
        {"features": data["x"][1400:]},
        "ONNX MLP (onnx.helper): Gemm, LayerNormalization, PyTorch's Div/Erf/Add/Mul/Mul GELU; trained on digits",
    )


def _float_tflite(folder: Path, epochs: int) -> Built:
    """A float32 .tflite (what most users have): training.tiny_models' digits CNN, converted by TensorFlow."""
    from converters._tf import tf
    from training.tiny_models import digits_data, train_tiny_digits_cnn

    x, y = digits_data(1797)
    model = train_tiny_digits_cnn(x[:1400], y[:1400], epochs=max(1, epochs))
    path = folder / "digits_float32.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return Built(
        "float-tflite",
        "tflite",
        path,
        _save_data(folder, {"x": x[:300]}),
        {"x": x[1400:]},
        "float32 .tflite of a conv8-dense10 digits CNN (training.tiny_models), quantized by the LiteRT quantizer",
    )


# name -> builder(folder, epochs); order = the table's
MODELS: dict[str, Callable[[Path, int], Built]] = {
    "mobilenetv2": lambda folder, epochs: _keras_app("mobilenetv2", folder, epochs),
    "mobilenetv3small": lambda folder, epochs: _keras_app("mobilenetv3small", folder, epochs),
    "efficientnetb0": lambda folder, epochs: _keras_app("efficientnetb0", folder, epochs),
    "resnet": _resnet,
    "transformer": _transformer,
    "lstm": _lstm,
    "gru": _gru,
    "multi-io": _multi_io,
    "onnx-cnn": _onnx_cnn,
    "onnx-mlp": _onnx_mlp,
    "float-tflite": _float_tflite,
}


# ------------------------------------------------------------------------------------------------
# real exported models, read out of public wheels in a cache (never downloaded during make test)
# ------------------------------------------------------------------------------------------------
WHEEL_CACHE_ENV = "EDGE_SDK_WHEEL_CACHE"
RAPIDOCR_WHEEL = "rapidocr-onnxruntime==1.4.4"
RAPIDOCR_MODELS = "rapidocr_onnxruntime/models/"


def wheel_cache() -> Path:
    """Where set-up keeps downloaded wheels: ``$EDGE_SDK_WHEEL_CACHE``, else ``~/.cache/edge-sdk/wheels``."""
    return Path(os.environ.get(WHEEL_CACHE_ENV) or Path.home() / ".cache" / "edge-sdk" / "wheels")


def download_wheels() -> None:
    """Set-up step (``--download``): ``pip download --no-deps`` the public wheels into the cache, once."""
    import subprocess

    cache = wheel_cache()
    cache.mkdir(parents=True, exist_ok=True)
    if not list(cache.glob("rapidocr_onnxruntime-1.4.4-*.whl")):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", RAPIDOCR_WHEEL, "-d", str(cache)], check=True
        )


def rapidocr_model(name: str, folder: Path) -> Path:
    """``name`` (e.g. ``ch_ppocr_mobile_v2.0_cls_infer.onnx``) read out of the cached rapidocr wheel into ``folder``.

    Raises ``FileNotFoundError`` naming the set-up command when the wheel is not in the cache.
    """
    import zipfile

    wheels = sorted(wheel_cache().glob("rapidocr_onnxruntime-1.4.4-*.whl"))
    if not wheels:
        raise FileNotFoundError(
            f"no {RAPIDOCR_WHEEL} wheel in {wheel_cache()}: run "
            "`python benchmarks/conformance.py --download` (or pip download --no-deps "
            f"{RAPIDOCR_WHEEL} -d {wheel_cache()}) once"
        )
    target = folder / name
    with zipfile.ZipFile(wheels[0]) as wheel:
        target.write_bytes(wheel.read(RAPIDOCR_MODELS + name))
    return target


def ocr_crops(
    n: int, height: int, width: int, mean: Sequence[float], std: Sequence[float], offset: int = 0
) -> np.ndarray:
    """``n`` NCHW float32 crops of scikit-learn's sample photographs, normalised ``(x/255 - mean) / std``."""
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(p, dtype=np.float32) / 255.0 for p in load_sample_images().images]
    rng = np.random.default_rng(2000 + offset)
    out = []
    for i in range(n):
        photo = photos[i % 2]
        top = int(rng.integers(0, photo.shape[0] - height))
        left = int(rng.integers(0, photo.shape[1] - width))
        crop = (photo[top : top + height, left : left + width] - np.asarray(mean, np.float32)) / np.asarray(
            std, np.float32
        )
        out.append(crop.transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def text_lines(n: int, height: int = 48, width: int = 192, seed: int = 0) -> tuple:
    """``n`` synthetic text-line images (Pillow's default font, black on white), every other one turned 180
    degrees: the direction classifier's task. Returns (NCHW float32 normalised (x/255-0.5)/0.5, labels 0/180 as 0/1).
    The float ONNX model gets 97.9% of 96 right (measured)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    words = "the quick brown fox jumps over lazy dog edge sdk converts models 2026 text line reads well".split()
    try:
        font = ImageFont.load_default(size=28)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    xs, ys = [], []
    for i in range(n):
        image = Image.new("RGB", (2 * width, height), (255, 255, 255))
        ImageDraw.Draw(image).text((4, 6), " ".join(rng.choice(words, 3)), fill=(0, 0, 0), font=font)
        box = image.convert("L").point(lambda v: 255 - v).getbbox() or (0, 0, 2 * width, height)
        image = image.crop((0, 0, min(2 * width, box[2] + 6), height)).resize((width, height))
        a = np.asarray(image, np.float32) / 255.0
        if i % 2:
            a = a[::-1, ::-1]
        xs.append(((a - 0.5) / 0.5).transpose(2, 0, 1))
        ys.append(i % 2)
    return np.stack(xs).astype(np.float32), np.asarray(ys)


def _ppocr_cls(folder: Path, epochs: int) -> Built:
    path = rapidocr_model("ch_ppocr_mobile_v2.0_cls_infer.onnx", folder)
    x, y = text_lines(96)
    return Built(
        "ppocr-cls",
        "onnx",
        path,
        _save_data(folder, {"x": x[:48]}),
        {"x": x[48:]},
        f"PaddleOCR text direction classifier [N,3,48,192] ({RAPIDOCR_WHEEL} wheel, paddle2onnx export), "
        "--input-shape x=1,3,48,192; data: synthetic text lines, half turned 180 degrees",
        overrides={"import.input_shapes": ("x=1,3,48,192",)},
        eval_labels=y[48:],
    )


def _ppocr(
    name: str,
    file: str,
    shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    what: str,
    samples: int = 32,
    atol: float | None = None,
) -> Callable[[Path, int], Built]:
    def build(folder: Path, epochs: int) -> Built:
        path = rapidocr_model(file, folder)
        x = ocr_crops(samples + 16, shape[2], shape[3], mean, std)
        return Built(
            name,
            "onnx",
            path,
            _save_data(folder, {"x": x[:samples]}),
            {"x": x[samples:]},
            f"{what} ({RAPIDOCR_WHEEL} wheel, paddle2onnx export), --input-shape x={','.join(map(str, shape))}",
            overrides={
                "import.input_shapes": (f"x={','.join(map(str, shape))}",),
                **({"export.onnx_atol": atol} if atol else {}),
            },
        )

    return build


# PaddleOCR from the rapidocr wheel; normalisations as rapidocr feeds them
REAL_MODELS: dict[str, Callable[[Path, int], Built]] = {
    "ppocr-cls": _ppocr_cls,
    "ppocr-rec": _ppocr(
        "ppocr-rec",
        "ch_PP-OCRv4_rec_infer.onnx",
        (1, 3, 48, 320),
        (0.5,) * 3,
        (0.5,) * 3,
        "PP-OCRv4 text recognizer (SVTR, CTC) [N,3,48,W]",
        samples=16,
        atol=1e-3,
    ),
    "ppocr-det": _ppocr(
        "ppocr-det",
        "ch_PP-OCRv4_det_infer.onnx",
        (1, 3, 320, 320),
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
        "PP-OCRv4 text detector (DBNet) [N,3,H,W]",
        samples=8,
    ),
}


# ------------------------------------------------------------------------------------------------
# exports built as PyTorch writes them (tests/onnx_export_models.py; no torch, no download)
# ------------------------------------------------------------------------------------------------
def _export_models():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import onnx_export_models

    return onnx_export_models


def _onnx_yolo(square: bool) -> Callable[[Path, int], Built]:
    def build(folder: Path, epochs: int) -> Built:
        em = _export_models()
        path = folder / "yolo.onnx"
        if square:  # 4 + 16 rows == 20 anchors: onnx2tf splits the wrong axis without split_before_concat
            em.yolo_detector(path, classes=16)
            what = "YOLOv8-style head, square [1,20,20] output (4+16 rows x 20 anchors), 32x32 input"
            overrides = {"task.task": "detection", "task.detection_head": "yolov8"}
        else:
            em.yolo_detector(path, image_size=640)
            what = "YOLOv8-style head, [1,7,20] output, boxes in pixels of a 640 frame beside 0-1 scores"
            overrides = {}
        x = np.stack([c.transpose(2, 0, 1) for c in photo_crops(48, em.YOLO_SIZE)]).astype(np.float32)
        return Built(
            "onnx-yolo-square" if square else "onnx-yolo",
            "onnx",
            path,
            _save_data(folder, {"images": x[:32]}),
            {"images": x[32:]},
            what + " (onnx.helper, PyTorch names)",
            overrides=overrides,
        )

    return build


def _onnx_torch_lstm(folder: Path, epochs: int) -> Built:
    em = _export_models()
    path = em.lstm_model(folder / "lstm.onnx")
    rng = np.random.default_rng(0)
    data = {
        "input.1": rng.normal(size=(48, 8, 4)).astype(np.float32),
        "h0": rng.normal(0, 0.5, (48, 1, 8)).astype(np.float32),
        "c0": rng.normal(0, 0.5, (48, 1, 8)).astype(np.float32),
    }
    return Built(
        "onnx-torch-lstm",
        "onnx",
        path,
        _save_data(folder, {k: v[:32] for k, v in data.items()}),
        {k: v[32:] for k, v in data.items()},
        "torch.nn.LSTM(4, 8, batch_first=True) as exported with h0/c0 inputs (onnx.helper, input.1)",
    )


EXPORT_MODELS: dict[str, Callable[[Path, int], Built]] = {
    "onnx-yolo": _onnx_yolo(square=False),
    "onnx-yolo-square": _onnx_yolo(square=True),
    "onnx-torch-lstm": _onnx_torch_lstm,
}


def _builder(name: str) -> Callable[[Path, int], Built]:
    return MODELS.get(name) or EXPORT_MODELS.get(name) or REAL_MODELS[name]


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------
def _agreement(float_tflite: bytes, quant_tflite: bytes, inputs: dict[str, np.ndarray]) -> float | None:
    """Top-1 agreement of the two models on ``inputs``: the first output holding class scores (None if none does)."""
    from converters.evaluation import tflite_outputs

    want = tflite_outputs(float_tflite, inputs)
    got = tflite_outputs(quant_tflite, inputs)
    for name, scores in want.items():
        if scores.ndim == 2 and scores.shape[1] >= 2 and name in got:
            return float(np.mean(np.argmax(scores, axis=1) == np.argmax(got[name], axis=1)))
        if scores.ndim == 3 and scores.shape[2] >= 2 and name in got:  # per time step (a CTC recognizer's characters)
            return float(np.mean(np.argmax(scores, axis=2) == np.argmax(got[name], axis=2)))
    return None


def convert_one(built: Built, recipe: str, out: Path, source: Any = None) -> dict[str, Any]:
    """Run ``recipe`` on ``built`` (``source``: an already loaded model to reuse) and return its result row.

    Status ``ok`` (validated artifacts), ``refused`` (an EdgeSdkError: the converter's one-line
    reason) or ``error`` (anything else: a conformance failure, with the exception's type).
    """
    from converters import pipeline
    from edge_sdk.errors import EdgeSdkError

    row: dict[str, Any] = {"model": built.name, "input": built.input_kind, "recipe": recipe}
    started = time.perf_counter()
    try:
        result = pipeline.run(
            recipe,
            source if source is not None else built.path,
            out,
            calibration=str(built.calibration),
            overrides={"export.formats": ("tflite",), **built.overrides},
        )
    except EdgeSdkError as exc:
        row.update(status="refused", reason=str(exc).splitlines()[0][:300])
    except Exception as exc:  # noqa: BLE001 - exactly what the conformance set exists to catch
        row.update(
            status="error",
            reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}",
            traceback=traceback.format_exc(limit=6),
        )
    else:
        base = result.get("float32")
        quant = result.get(result.comparisons["quantize"]["artifact"])
        float_bytes = (out / base.file).read_bytes()
        quant_bytes = (out / quant.file).read_bytes()
        row.update(
            status="ok",
            kind=quant.kind,
            float32_bytes=base.size_bytes,
            bytes=quant.size_bytes,
            size_ratio=round(quant.size_bytes / base.size_bytes, 3),
        )
        f_lat, q_lat = base.metrics.get("latency_us"), quant.metrics.get("latency_us")
        if f_lat and q_lat:
            row.update(float32_latency_us=f_lat, latency_us=q_lat, latency_ratio=round(q_lat / f_lat, 2))
        agreement = _agreement(float_bytes, quant_bytes, built.eval_inputs)
        row["agreement"] = None if agreement is None else round(agreement, 4)
        if built.eval_labels is not None:
            from converters.evaluation import primary, tflite_outputs

            for key, data in (("float32_accuracy", float_bytes), ("accuracy", quant_bytes)):
                scores = primary(tflite_outputs(data, built.eval_inputs))
                row[key] = round(float(np.mean(np.argmax(scores, axis=1) == built.eval_labels)), 4)
        task = quant.metrics.get("task") or {}
        for key in ("recall_min", "mask_iou", "correlation", "snr_db_min"):
            if task.get(key) is not None:
                row["task_metric"] = f"{key} {task[key]:.3g}"
                break
        onnx_check = result.comparisons.get("onnx_input")
        if onnx_check:
            row["onnxruntime_max_abs_error"] = onnx_check.get("max_abs_error")
        row["warnings"] = list(result.warnings)
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def load_source(built: Built) -> Any:
    """The loaded model to reuse across recipes for an ONNX input (onnx2tf runs once), else None."""
    if built.input_kind != "onnx":
        return None
    from converters import recipe as recipes
    from converters.onnx_import import load_onnx

    options = recipes.with_overrides(recipes.load("int8"), built.overrides).import_
    return load_onnx(built.path, options)


def run(
    names: Sequence[str],
    recipes: Sequence[str] = RECIPES,
    *,
    epochs: int = 3,
    workdir: Path | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    """Build each model in ``names`` and convert it with each recipe; one row per (model, recipe).

    ``epochs``: training epochs of the models that are trained; ``workdir``: where models and
    outputs go (a temporary directory when None); ``say``: progress lines.
    """
    names = [m for n in names for m in (REAL_MODELS if n == "real" else EXPORT_MODELS if n == "exports" else [n])]
    unknown = [n for n in names if n not in MODELS and n not in REAL_MODELS and n not in EXPORT_MODELS]
    if unknown:
        raise SystemExit(
            f"error: unknown model(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(list(MODELS) + list(EXPORT_MODELS) + list(REAL_MODELS))}, exports or real"
        )
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edge-sdk-conformance-")
        workdir = Path(tmp.name)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for i, name in enumerate(names, 1):
            folder = Path(workdir) / name
            folder.mkdir(parents=True, exist_ok=True)
            say(f"[conformance {i}/{len(names)} {time.perf_counter() - started:6.0f}s] building {name}")
            built = None
            try:
                built = _builder(name)(folder, epochs)
                source = load_source(built)
            except Exception as exc:  # noqa: BLE001 - a model that cannot even load is a row, not a crash
                from edge_sdk.errors import EdgeSdkError

                # building failed (this script's fault) or loading failed without a converter error: "error"
                status = "refused" if built is not None and isinstance(exc, EdgeSdkError) else "error"
                for recipe in recipes:
                    rows.append(
                        {
                            "model": name,
                            "input": built.input_kind if built else "?",
                            "recipe": recipe,
                            "status": status,
                            "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}",
                        }
                    )
                say(f"  {name}: {status} before conversion: {rows[-1]['reason']}")
                continue
            for recipe in recipes:
                row = convert_one(built, recipe, folder / f"out-{recipe}", source)
                row["description"] = built.description
                rows.append(row)
                detail = (
                    f"size {row['size_ratio']}x, latency {row.get('latency_ratio')}x, agreement {row.get('agreement')}"
                    if row["status"] == "ok"
                    else row["reason"]
                )
                say(f"  {name} {recipe}: {row['status']} ({detail}) in {row['seconds']}s")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The results as the Markdown table docs/converters.md shows."""

    def fmt(value: Any, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    ort_column = any("onnxruntime_max_abs_error" in r for r in rows)
    task_column = any("accuracy" in r for r in rows)
    metric_column = any("task_metric" in r for r in rows)
    lines = [
        "| model | input | recipe | status | size x float32 | latency x float32 | top-1 agreement |"
        + (" float32 vs ORT (max abs) |" if ort_column else "")
        + (" accuracy float32 -> file |" if task_column else "")
        + (" task metric vs float32 |" if metric_column else ""),
        "|---|---|---|---|---|---|---|"
        + ("---|" if ort_column else "")
        + ("---|" if task_column else "")
        + ("---|" if metric_column else ""),
    ]
    for r in rows:
        # directories in a reason are this machine's temp paths: keep the file names only
        reason = re.sub(r"(?<![\w.])/(?:[^\s/:'\"]+/)+", "", r.get("reason", ""))
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {reason}"
        lines.append(
            f"| {r['model']} | {r['input']} | {r['recipe']} | {status} | {fmt(r.get('size_ratio'), '{:.3f}')} "
            f"| {fmt(r.get('latency_ratio'), '{:.2f}')} | {fmt(r.get('agreement'), '{:.1%}')} |"
            + (f" {fmt(r.get('onnxruntime_max_abs_error'), '{:.2g}')} |" if ort_column else "")
            + (
                (
                    f" {fmt(r.get('float32_accuracy'), '{:.1%}')} -> {fmt(r.get('accuracy'), '{:.1%}')} |"
                    if "accuracy" in r
                    else " - |"
                )
                if task_column
                else ""
            )
            + (f" {r.get('task_metric') or '-'} |" if metric_column else "")
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: exit 0 when every row is ok or a named refusal, 1 when any run ended in an unexpected error."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma separated, from: {', '.join(MODELS)}; exports ({', '.join(EXPORT_MODELS)}: "
        "ONNX built as PyTorch exports them); real ({', '.join(REAL_MODELS)}: "
        f"public exported models read from the wheel cache {wheel_cache()})",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help=f"set-up: pip download --no-deps {RAPIDOCR_WHEEL} into the wheel cache first (once)",
    )
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma separated (default int8,dynamic,fp16)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the trained models (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE ('-' for stdout only)")
    parser.add_argument("--workdir", help="keep models and outputs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    if args.download:
        download_wheels()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    rows = run(names, recipes, epochs=args.epochs, workdir=Path(args.workdir) if args.workdir else None)
    if args.json == "-":
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(markdown_table(rows))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 1 if any(r["status"] == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
