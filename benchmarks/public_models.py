"""The public real-model set through edge-sdk, beside MLPerf's own int8 files (issue 23 item 7).

    .venv/bin/python benchmarks/public_models.py                 # every model x int8, dynamic, fp16: a table
    .venv/bin/python benchmarks/public_models.py --json          # the rows as JSON on stdout
    .venv/bin/python benchmarks/public_models.py --models kws --recipes int8

Models (tests/data/public_models, SOURCES.md), none written by edge-sdk, converted as a user
would hand them over (``converters.pipeline.run`` = ``edge-sdk convert FILE --recipe R
--calibration C``):

* ``resnet8``: MLPerf Tiny CIFAR-10 ResNet-8, float32 with no SignatureDef; input raw 0-255
  pixels [1, 32, 32, 3]. Data: 32x32 crops of scikit-learn's two sample photographs
  (``load_sample_images``), 200 to calibrate, 3,000 others to compare on. Reference:
  MLPerf's int8 (TFLiteConverter, CIFAR calibration).
* ``kws``: MLPerf Tiny keyword-spotting DS-CNN, dynamic-range (its float parent is the
  dequantized proxy, :mod:`converters.tflite_float_parent`); input MFCCs [1, 49, 10, 1].
  Data: ``kws_tts_mfcc.npz``, the ten keywords spoken by espeak-ng and silence, MFCCs as MLPerf
  computes them (``benchmarks/kws_features.py``; no speech dataset installs offline): half to
  calibrate, half to compare on; the labels give each model's keyword accuracy too.
  Reference: MLPerf's int8.
* ``selfie``: MediaPipe selfie segmentation, float16 weights (its float parent is exact);
  input [1, 256, 256, 3] in [0, 1], output a [1, 256, 256, 1] person mask. Data: crops of
  matplotlib's sample portrait of Grace Hopper (a person, as the model expects; scikit-learn's two
  photographs hold none) resized to 256x256, a quarter of the calibration rows from scikit-learn's
  photographs. No int8 reference exists.

Columns, all against the run's ``float32.tflite`` (the float parent) on the held-out rows:
size ratio, agreement (top-1 for the classifiers; mask IoU of ``mask > 0.5``, averaged over
images, for the segmenter; argmax over a mask measures nothing) and single-example latency
ratio (1 thread; float32, edge-sdk's file and the reference timed interleaved in one loop, so
the ratios share the machine's state). ``vs ref`` columns put edge-sdk's int8 beside MLPerf's:
size (matches when within 3% or smaller), agreement and latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "tests" / "data" / "public_models"
RECIPES = ("int8", "dynamic", "fp16")
MODELS: dict[str, dict[str, Any]] = {
    "resnet8": {
        "file": "mlperf_tiny_ic_resnet8_float.tflite",
        "reference": "mlperf_tiny_ic_resnet8_int8_reference.tflite",
        "metric": "top1",
        "input": "float32, no SignatureDef",
    },
    "kws": {
        "file": "mlperf_tiny_kws_dscnn_dynamic.tflite",
        "reference": "mlperf_tiny_kws_dscnn_int8_reference.tflite",
        "metric": "top1",
        "input": "dynamic-range",
    },
    "selfie": {
        "file": "mediapipe_selfie_segmentation.tflite",
        "reference": None,
        "metric": "mask-iou",
        "input": "float16 weights",
    },
}
SIZE_TOLERANCE = 0.03


# ------------------------------------------------------------------------------------------------
# data (real, offline)
# ------------------------------------------------------------------------------------------------
def photo_crops(n: int, size: int, offset: int, scale: float) -> np.ndarray:
    """``n`` square crops of scikit-learn's two sample photographs, resized to ``size`` (nearest), times ``scale``."""
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(p, dtype=np.float32) for p in load_sample_images().images]
    rng = np.random.default_rng(7000 + offset)
    crops = []
    for i in range(n):
        photo = photos[i % 2]
        span = int(rng.integers(min(size, 64), min(photo.shape[:2]) + 1))
        top = int(rng.integers(0, photo.shape[0] - span + 1))
        left = int(rng.integers(0, photo.shape[1] - span + 1))
        idx = (np.arange(size) * span / size).astype(int)
        crops.append(photo[top : top + span, left : left + span][idx][:, idx])
    return (np.stack(crops) * scale).astype(np.float32)


def portrait_crops(n: int, offset: int, size: int = 256) -> np.ndarray:
    """``n`` crops (random spans >= 60% of the width, half mirrored) of matplotlib's sample photograph of
    Grace Hopper (``mpl-data/sample_data/grace_hopper.jpg``, a person: the selfie segmenter's subject),
    resized to ``size`` (bilinear), in [0, 1]."""
    import matplotlib.cbook
    from PIL import Image

    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    width, height = photo.size
    rng = np.random.default_rng(9000 + offset)
    crops = []
    for i in range(n):
        span = int(rng.integers(int(0.6 * min(width, height)), min(width, height) + 1))
        left = int(rng.integers(0, width - span + 1))
        top = int(rng.integers(0, height - span + 1))
        crop = (
            np.asarray(
                photo.crop((left, top, left + span, top + span)).resize((size, size), Image.BILINEAR), dtype=np.float32
            )
            / 255.0
        )
        crops.append(crop[:, ::-1] if i % 2 else crop)
    return np.stack(crops).astype(np.float32)


def model_data(name: str, small: bool = False):
    """(calibration rows, held-out rows, held-out labels or None) for model ``name``; ``small``: fewer rows."""
    if name == "resnet8":
        # 200 held-out crops carry about 2 points of noise in top-1 agreement (the float model's top two
        # scores are often close on non-CIFAR photos): compare on 3,000
        return photo_crops(60 if small else 200, 32, 0, 1.0), photo_crops(600 if small else 3000, 32, 1, 1.0), None
    if name == "kws":
        data = np.load(FOLDER / "kws_tts_mfcc.npz")
        x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
        half = len(x) // 2
        if small:
            return x[:80], x[half : half + 80], y[half : half + 80]
        return x[:half], x[half:], y[half:]
    if name == "selfie":
        n_cal, n_held = (8, 4) if small else (24, 12)
        calibration = np.concatenate([portrait_crops(n_cal - n_cal // 4, 0), photo_crops(n_cal // 4, 256, 0, 1 / 255)])
        return calibration, portrait_crops(n_held, 1), None
    raise SystemExit(f"error: unknown model {name!r}; expected one of {', '.join(MODELS)}")


# ------------------------------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------------------------------
def outputs(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """The first output of ``tflite`` on every row of ``x``, one example a call (1 thread)."""
    import edge_sdk

    model = edge_sdk.load(tflite, num_threads=1)
    return np.concatenate([np.asarray(model.predict(x[i : i + 1]), dtype=np.float32) for i in range(len(x))])


def agreement(metric: str, want: np.ndarray, got: np.ndarray) -> float:
    """Top-1 agreement (``top1``) or mean IoU of ``mask > 0.5`` (``mask-iou``; two empty masks count 1)."""
    if metric == "top1":
        return float(np.mean(want.argmax(-1) == got.argmax(-1)))
    a = want.reshape(len(want), -1) > 0.5
    b = got.reshape(len(got), -1) > 0.5
    inter = np.logical_and(a, b).sum(1)
    union = np.logical_or(a, b).sum(1)
    return float(np.mean(np.where(union == 0, 1.0, inter / np.maximum(union, 1))))


def interleaved_latency_us(models: dict[str, bytes], example: np.ndarray, rounds: int) -> dict[str, float]:
    """Median microseconds per single-example predict of each model, timed in turn within each round (1 thread)."""
    import edge_sdk

    loaded = {name: edge_sdk.load(data, num_threads=1) for name, data in models.items()}
    for model in loaded.values():
        for _ in range(3):
            model.predict(example)
    times: dict[str, list[int]] = {name: [] for name in loaded}
    for _ in range(rounds):
        for name, model in loaded.items():
            start = time.perf_counter_ns()
            model.predict(example)
            times[name].append(time.perf_counter_ns() - start)
    return {name: statistics.median(values) / 1000.0 for name, values in times.items()}


def convert(name: str, recipe: str, calibration: Path, out: Path) -> dict[str, Any]:
    """``edge-sdk convert`` of model ``name`` with ``recipe``: the float32 parent, the quantized file, the run."""
    from converters import pipeline

    result = pipeline.run(
        recipe,
        str(FOLDER / MODELS[name]["file"]),
        out,
        calibration=str(calibration),
        overrides={"export.formats": ("tflite",)},
    )
    quant = result.get(result.comparisons["quantize"]["artifact"])
    return {
        "float32": (out / "float32.tflite").read_bytes(),
        "quantized": (out / quant.file).read_bytes(),
        "kind": quant.kind,
        "warnings": list(result.warnings),
        "float_parent": json.loads((out / "float32.json").read_text()).get("float_parent"),
    }


def run(
    names: Sequence[str] = tuple(MODELS),
    recipes: Sequence[str] = RECIPES,
    *,
    small: bool = False,
    workdir: Path | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    """One row per (model, recipe): sizes, agreement and latency ratios, and the reference int8 beside int8.

    ``small``: fewer data rows and timing rounds (the ``make test`` form); ``workdir``: where outputs
    go (a temporary directory when None); ``say``: progress lines.
    """
    from edge_sdk.errors import EdgeSdkError

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edge-sdk-public-")
        workdir = Path(tmp.name)
    rows: list[dict[str, Any]] = []
    try:
        for name in names:
            spec = MODELS[name]
            cal, held, labels = model_data(name, small)
            folder = Path(workdir) / name
            folder.mkdir(parents=True, exist_ok=True)
            np.savez(folder / "calibration.npz", x=cal)
            reference = (FOLDER / spec["reference"]).read_bytes() if spec["reference"] else None
            for recipe in recipes:
                say(f"[public models] {name} {recipe}: converting ({len(cal)} calibration rows)")
                row: dict[str, Any] = {
                    "model": name,
                    "input": spec["input"],
                    "recipe": recipe,
                    "metric": spec["metric"],
                }
                started = time.perf_counter()
                try:
                    made = convert(name, recipe, folder / "calibration.npz", folder / f"out-{recipe}")
                except EdgeSdkError as exc:
                    row.update(status="refused", reason=str(exc).splitlines()[0][:300])
                    rows.append(row)
                    say(f"  refused: {row['reason']}")
                    continue
                float_bytes, quant = made["float32"], made["quantized"]
                want = outputs(float_bytes, held)
                got = outputs(quant, held)
                subjects = {"float32": float_bytes, "edge": quant}
                with_reference = reference is not None and recipe == "int8"
                if with_reference:
                    subjects["reference"] = reference
                rounds = (3 if small else 15) if name == "selfie" else (15 if small else 60)
                latency = interleaved_latency_us(subjects, held[:1], rounds)
                row.update(
                    status="ok",
                    kind=made["kind"],
                    float32_bytes=len(float_bytes),
                    bytes=len(quant),
                    size_ratio=round(len(quant) / len(float_bytes), 4),
                    agreement=round(agreement(spec["metric"], want, got), 4),
                    float32_latency_us=round(latency["float32"], 1),
                    latency_us=round(latency["edge"], 1),
                    latency_ratio=round(latency["edge"] / latency["float32"], 3),
                    samples=len(held),
                    float_parent=(made["float_parent"] or {}).get("from_kind"),
                    warnings=made["warnings"],
                )
                if labels is not None:
                    row["float32_accuracy"] = round(float(np.mean(want.argmax(-1) == labels)), 4)
                    row["accuracy"] = round(float(np.mean(got.argmax(-1) == labels)), 4)
                if with_reference:
                    ref_out = outputs(reference, held)
                    row.update(
                        reference_bytes=len(reference),
                        reference_size_ratio=round(len(reference) / len(float_bytes), 4),
                        reference_agreement=round(agreement(spec["metric"], want, ref_out), 4),
                        reference_latency_us=round(latency["reference"], 1),
                        reference_latency_ratio=round(latency["reference"] / latency["float32"], 3),
                    )
                    if labels is not None:
                        row["reference_accuracy"] = round(float(np.mean(ref_out.argmax(-1) == labels)), 4)
                    row["vs_reference"] = {
                        "size": round(len(quant) / len(reference), 4),
                        "size_matches": len(quant) <= len(reference) * (1 + SIZE_TOLERANCE),
                        "agreement_points": round(100 * (row["agreement"] - row["reference_agreement"]), 2),
                        "latency": round(latency["edge"] / latency["reference"], 3),
                    }
                row["seconds"] = round(time.perf_counter() - started, 1)
                rows.append(row)
                say(
                    f"  ok: {made['kind']}, size {row['size_ratio']}x, agreement {row['agreement']}, "
                    f"latency {row['latency_ratio']}x"
                    + (
                        f"; reference int8: size {row['reference_size_ratio']}x, "
                        f"agreement {row['reference_agreement']}, latency "
                        f"{row['reference_latency_ratio']}x"
                        if with_reference
                        else ""
                    )
                )
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as the Markdown table docs/converters.md shows."""

    def fmt(value: Any, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    lines = [
        "| model | input | recipe | status / kind | size x float32 | agreement with float32 | latency x float32 "
        "| MLPerf int8: size x float32 | agreement | latency x float32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        status = r.get("kind", "") if r["status"] == "ok" else f"{r['status']}: {r.get('reason', '')}"
        metric = "IoU " if r["metric"] == "mask-iou" else ""
        lines.append(
            f"| {r['model']} | {r['input']} | {r['recipe']} | {status} | {fmt(r.get('size_ratio'), '{:.3f}')} "
            f"| {metric}{fmt(r.get('agreement'), '{:.1%}')} | {fmt(r.get('latency_ratio'), '{:.2f}')} "
            f"| {fmt(r.get('reference_size_ratio'), '{:.3f}')} | {fmt(r.get('reference_agreement'), '{:.1%}')} "
            f"| {fmt(r.get('reference_latency_ratio'), '{:.2f}')} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: exit 0 when every run converted, 1 when any was refused."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma separated, from: {', '.join(MODELS)}")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma separated (default int8,dynamic,fp16)")
    parser.add_argument("--small", action="store_true", help="fewer rows and timing rounds (the make test form)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    parser.add_argument("--workdir", help="keep outputs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; expected some of {', '.join(MODELS)}")
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    rows = run(names, recipes, small=args.small, workdir=Path(args.workdir) if args.workdir else None)
    print(json.dumps(rows, indent=2, default=str) if args.json else markdown_table(rows))
    return 1 if any(r["status"] != "ok" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
