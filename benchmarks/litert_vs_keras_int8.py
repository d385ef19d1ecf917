"""MLPerf Tiny ResNet-8: the LiteRT quantizer path's int8 against the TFLiteConverter path's, same data.

    .venv/bin/python benchmarks/litert_vs_keras_int8.py                  # table on stdout
    .venv/bin/python benchmarks/litert_vs_keras_int8.py --json out.json  # and the numbers as JSON

The model is MLPerf Tiny's CIFAR-10 ResNet-8 float (``tests/data/public_models``, a ``.tflite``
with no SignatureDef; it takes raw 0-255 pixels). Rows:

* ``float32``: the file itself (the reference every agreement is measured against).
* ``litert int8``: what ``edge-sdk convert X.tflite --recipe int8 --calibration C`` writes
  (:func:`converters.litert_quant.quantize_tflite`, int8 inputs/outputs).
* ``litert int8, moving-average ranges (before)``: the same, with the quantizer's own calibration ranges (a
  moving average of each sample's min/max, ~0.9 of the true range), which edge-sdk used before.
* ``tfliteconverter int8 (same data)``: the same network rebuilt in tf_keras from the ``.tflite``'s own
  weights (:func:`keras_from_tflite`: the graph is CONV_2D/ADD/AVERAGE_POOL_2D/RESHAPE/FULLY_CONNECTED/
  SOFTMAX, batch norm already folded; the rebuild matches the file within ~1e-6) and converted by
  TFLiteConverter full-int8 with the same calibration crops and int8 inputs/outputs: the fair
  "Keras path" comparison.
* ``mlperf int8 reference``: MLPerf's own ``pretrainedResnet_quant.tflite`` (TFLiteConverter int8, calibrated
  by MLPerf on CIFAR-10 images, which are not installed here): shown beside, not the bound.

Data (no download): scikit-learn's two sample photographs cut into 32x32 crops (squares of 32 to
160 pixels, strided down), raw 0-255 floats. Calibration crops come from the left half of each
photo, evaluation crops from the right half: held out. Columns: file size, top-1 agreement with
float32 over the eval crops, max absolute error of the (softmax) output against float32, and the
median single-example latency (1 thread) as a ratio to the TFLiteConverter int8, measured
interleaved in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")


ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "data" / "public_models"
FLOAT = MODELS / "mlperf_tiny_ic_resnet8_float.tflite"
REFERENCE = MODELS / "mlperf_tiny_ic_resnet8_int8_reference.tflite"
CALIBRATION = 200
EVAL = 3000
SEEDS = (0, 1, 2)


def photo_crops(n: int, seed: int, half: str) -> np.ndarray:
    """``n`` 32x32x3 crops, raw 0-255 float32, of the ``half`` (``"left"``/``"right"``) of the two sample photos.

    Each crop is a square of 32-160 pixels taken every ``side // 32`` pixels (no interpolation).
    """
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.RandomState(seed)
    out = []
    for k in range(n):
        photo = photos[k % len(photos)]
        width = photo.shape[1] // 2
        lo = 0 if half == "left" else width
        side = rng.randint(32, 161)
        step = side // 32
        span = 32 * step
        y = rng.randint(0, photo.shape[0] - span + 1)
        x = lo + rng.randint(0, width - span + 1)
        out.append(photo[y : y + span : step, x : x + span : step])
    return np.stack(out).astype(np.float32)


def data(calibration: int = CALIBRATION, evaluation: int = EVAL, seed: int = 0):
    """``(calibration crops, eval crops)``: left halves for calibration, right halves held out for eval."""
    return photo_crops(calibration, 100 + seed, "left"), photo_crops(evaluation, 200 + seed, "right")


# -- the network in tf_keras, from the .tflite's own weights --------------------------------------------------
def keras_from_tflite(tflite: bytes):
    """A tf_keras functional model computing what ``tflite`` computes (the ops ResNet-8 uses; others refused)."""
    import tf_keras as keras
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fu

    model = fu.read_model_from_bytearray(bytearray(tflite))
    graph = model.subgraphs[0]

    def const(index: int) -> np.ndarray:
        tensor = graph.tensors[index]
        raw = np.asarray(model.buffers[tensor.buffer].data, dtype=np.uint8)
        dtype = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT32: np.int32}[tensor.type]
        return raw.view(dtype).reshape(list(tensor.shape))

    activation = {0: None, 1: "relu", 3: "relu6"}
    padding = {0: "same", 1: "valid"}
    inputs = {}
    values: dict[int, Any] = {}
    for index in graph.inputs:
        tensor = graph.tensors[index]
        inputs[index] = keras.Input(tuple(int(d) for d in tensor.shape[1:]), name=tensor.name.decode())
        values[index] = inputs[index]
    for op in graph.operators:
        name = fu.opcode_to_name(model, op.opcodeIndex)
        options = op.builtinOptions
        x = values.get(op.inputs[0])
        if name == "CONV_2D":
            kernel = const(op.inputs[1])  # OHWI
            layer = keras.layers.Conv2D(
                kernel.shape[0],
                kernel.shape[1:3],
                strides=(options.strideH, options.strideW),
                padding=padding[options.padding],
                activation=activation[options.fusedActivationFunction],
            )
            y = layer(x)
            layer.set_weights([kernel.transpose(1, 2, 3, 0), const(op.inputs[2])])
        elif name == "ADD":
            y = keras.layers.Add()([values[op.inputs[0]], values[op.inputs[1]]])
            if activation[options.fusedActivationFunction]:
                y = keras.layers.Activation(activation[options.fusedActivationFunction])(y)
        elif name == "AVERAGE_POOL_2D":
            y = keras.layers.AveragePooling2D(
                (options.filterHeight, options.filterWidth),
                strides=(options.strideH, options.strideW),
                padding=padding[options.padding],
            )(x)
        elif name == "RESHAPE":
            shape = [int(d) for d in graph.tensors[op.outputs[0]].shape[1:]]
            y = keras.layers.Reshape(shape)(x)
        elif name == "FULLY_CONNECTED":
            weights = const(op.inputs[1])  # [units, inputs]
            layer = keras.layers.Dense(weights.shape[0], activation=activation[options.fusedActivationFunction])
            y = layer(x)
            layer.set_weights([weights.T, const(op.inputs[2])])
        elif name == "SOFTMAX":
            y = keras.layers.Softmax()(x)
        else:
            raise ValueError(f"keras_from_tflite: no rebuild for {name}")
        values[op.outputs[0]] = y
    outputs = [values[i] for i in graph.outputs]
    return keras.Model(list(inputs.values()), outputs[0] if len(outputs) == 1 else outputs)


def tfliteconverter_int8(keras_model, calibration: np.ndarray) -> bytes:
    """TFLiteConverter full-int8 (int8 inputs/outputs) of ``keras_model``, calibrated on ``calibration`` rows."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative():
        for row in calibration:
            yield [row[None].astype(np.float32)]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def litert_int8(float_bytes: bytes, calibration: np.ndarray, ranges: str = "min-max") -> bytes:
    """What ``edge-sdk convert X.tflite --recipe int8`` writes: the LiteRT quantizer, int8 inputs/outputs.

    ``ranges="moving-average"``: the quantizer's own calibration ranges (what edge-sdk used before).
    """
    from converters import litert_quant

    saved, litert_quant.RANGES = litert_quant.RANGES, ranges
    try:
        return litert_quant.quantize_tflite(float_bytes, "int8", {"input_1": calibration})
    finally:
        litert_quant.RANGES = saved


# -- measuring ------------------------------------------------------------------------------------------------
def outputs(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """Float outputs of ``tflite`` on the raw-pixel rows ``x`` (int8 edges quantized/dequantized by edge_sdk)."""
    import warnings

    import edge_sdk

    model = edge_sdk.load(tflite, num_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clip warnings: measured as error, not printed
        return np.concatenate([np.asarray(model.predict(x[i : i + 100]), np.float32) for i in range(0, len(x), 100)])


def compare(float_out: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and max abs error of ``out`` against the float32 outputs."""
    return {
        "agreement": float(np.mean(np.argmax(out, -1) == np.argmax(float_out, -1))),
        "max_error": float(np.max(np.abs(out - float_out))),
    }


def latencies_us(models: dict[str, bytes], x: np.ndarray, rounds: int = 7, runs: int = 60) -> dict[str, float]:
    """Median single-example latency (1 thread) of each model, in interleaved rounds (same machine load)."""
    import warnings

    import edge_sdk

    loaded = {k: edge_sdk.load(v, num_threads=1) for k, v in models.items()}
    row = x[:1]
    times: dict[str, list[float]] = {k: [] for k in models}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in loaded.values():
            for _ in range(5):
                model.predict(row)
        for _ in range(rounds):
            for key, model in loaded.items():
                start = time.perf_counter_ns()
                for _ in range(runs):
                    model.predict(row)
                times[key].append((time.perf_counter_ns() - start) / runs / 1000.0)
    return {k: statistics.median(v) for k, v in times.items()}


def run(
    calibration: int = CALIBRATION,
    evaluation: int = EVAL,
    keras: bool = True,
    latency: bool = True,
    seeds: Sequence[int] = SEEDS,
    before: bool = True,
) -> dict[str, Any]:
    """Every row's size, agreement, max error and latency ratio; see the module docs.

    Each seed draws its own calibration and eval crops and quantizes again; agreement is pooled over
    every seed's eval crops (``per_seed`` keeps each), size and latency come from the first seed's files.
    """
    float_bytes = FLOAT.read_bytes()
    bound = "tfliteconverter int8 (same data)" if keras else "mlperf int8 reference"
    hits: dict[str, int] = {}
    errors: dict[str, float] = {}
    per_seed = []
    first: dict[str, bytes] = {}
    total = 0
    for seed in seeds:
        cal, ev = data(calibration, evaluation, seed)
        models: dict[str, bytes] = {"float32": float_bytes, "litert int8": litert_int8(float_bytes, cal)}
        if before:
            models["litert int8, moving-average ranges (before)"] = litert_int8(float_bytes, cal, "moving-average")
        if keras:
            models["tfliteconverter int8 (same data)"] = tfliteconverter_int8(keras_from_tflite(float_bytes), cal)
        models["mlperf int8 reference"] = REFERENCE.read_bytes()
        first = first or models
        float_out = outputs(float_bytes, ev)
        seed_row = {"seed": seed}
        for name, model in models.items():
            measured = compare(float_out, outputs(model, ev))
            hits[name] = hits.get(name, 0) + int(round(measured["agreement"] * len(ev)))
            errors[name] = max(errors.get(name, 0.0), measured["max_error"])
            seed_row[name] = round(measured["agreement"], 4)
        seed_row["gap_points"] = round(100 * (seed_row[bound] - seed_row["litert int8"]), 2)
        per_seed.append(seed_row)
        total += len(ev)
    rows = {
        name: {"size_bytes": len(model), "agreement": hits[name] / total, "max_error": errors[name]}
        for name, model in first.items()
    }
    if latency:
        times = latencies_us(first, data(1, 1, seeds[0])[1])
        for name in rows:
            rows[name]["latency_us"] = round(times[name], 1)
            rows[name]["latency_ratio"] = round(times[name] / times[bound], 3)
    gap = rows[bound]["agreement"] - rows["litert int8"]["agreement"]
    return {
        "model": FLOAT.name,
        "calibration_crops": calibration,
        "eval_crops_per_seed": evaluation,
        "seeds": list(seeds),
        "rows": rows,
        "per_seed": per_seed,
        "bound_row": bound,
        "agreement_gap_points": round(100 * gap, 2),
    }


def table(result: dict[str, Any]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| file | size (bytes) | top-1 agreement with float32 | max abs error | latency vs TFLiteConverter int8 |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        ratio = f"{row['latency_ratio']:.2f}x" if "latency_ratio" in row else "-"
        lines.append(
            f"| {name} | {row['size_bytes']:,} | {100 * row['agreement']:.1f}% | {row['max_error']:.3f} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", type=int, default=CALIBRATION, help="calibration crops (left halves)")
    parser.add_argument("--eval", type=int, default=EVAL, help="held-out eval crops (right halves)")
    parser.add_argument(
        "--seeds",
        type=lambda v: [int(x) for x in v.split(",")],
        default=list(SEEDS),
        help="comma-separated data seeds; agreement is pooled over them (default 0,1,2)",
    )
    parser.add_argument("--no-keras", action="store_true", help="skip the tf_keras rebuild (no TensorFlow)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    result = run(args.calibration, args.eval, keras=not args.no_keras, seeds=args.seeds)
    print(table(result))
    for row in result["per_seed"]:
        print(
            f"seed {row['seed']}: "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in row.items() if k not in ("seed", "gap_points"))
            + f"; gap {row['gap_points']:+.2f}"
        )
    print(f"\nagreement gap ({result['bound_row']} minus litert int8): {result['agreement_gap_points']:+.2f} points")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
