"""The scheme table of docs/converters.md ("Bring your own model"), for any float .tflite.

    python scripts/byom_table.py FLOAT.tflite CALIBRATION.npz EVAL.npz

CALIBRATION.npz: one array per input name (its first 300 rows calibrate); EVAL.npz: the same inputs
plus labels ``y``. Prints one markdown row per LiteRT quantizer scheme: size and latency relative to
the float file (latency: medians of interleaved rounds, 1 thread, batch 1), top-1 agreement with the
float model and accuracy. Needs only the runtime and the 'quantize' extra (no TensorFlow).
"""

import sys

import numpy as np

import edge_sdk
from converters import litert_quant
from converters.latency_check import confirm_latency_us


def main(float_path: str, calibration_path: str, eval_path: str) -> None:
    """Print the table for ``float_path`` calibrated on ``calibration_path``, scored on ``eval_path``."""
    float_bytes = open(float_path, "rb").read()
    calibration = dict(np.load(calibration_path))
    evaluation = dict(np.load(eval_path))
    labels = evaluation.pop("y")

    def top1(model_bytes: bytes) -> np.ndarray:
        outputs = edge_sdk.load(model_bytes, num_threads=1).predict_all(evaluation)
        return np.argmax(next(iter(outputs.values())), axis=-1)

    reference = top1(float_bytes)
    print("| scheme | size x float32 | latency x float32 | top-1 agreement | accuracy |")
    print("|---|---|---|---|---|")
    print(f"| float32 | 1.000 ({len(float_bytes):,} B) | 1.00 | 1.000 | {(reference == labels).mean():.4f} |")
    for scheme in litert_quant.SCHEMES:
        quantized = litert_quant.quantize_tflite(float_bytes, scheme, {k: v[:300] for k, v in calibration.items()})
        predicted = top1(quantized)
        float_us, quant_us = confirm_latency_us(float_bytes, quantized, evaluation)
        print(
            f"| {scheme} | {len(quantized) / len(float_bytes):.3f} | {quant_us / float_us:.2f} "
            f"({quant_us:.0f} vs {float_us:.0f} us) | {(predicted == reference).mean():.4f} | "
            f"{(predicted == labels).mean():.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
