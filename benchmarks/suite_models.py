"""The models the benchmark suite compares, built with the real converter pipeline.

For each built-in model (the mnist CNN and Wide & Deep on the Adult census
table) ``converters.pipeline`` runs the ``prune-int8`` recipe: it trains the zoo
model on its dataset, writes the float32 TFLite reference, prunes it to 80%
sparsity and quantizes it to full int8, quantizes the unpruned model to int8 as
well, and exports the float SavedModel (serving signature) and a tf2onnx ONNX
model checked against onnxruntime. Each artifact has a manifest with its
accuracy on the test split.

Training is kept short (the goal is latency, not accuracy): 2 epochs, 1 epoch
of pruning fine-tuning. ``bench_inputs.npz`` holds 32 real test rows per input.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path(os.environ.get("EDGE_BENCH_MODELS", ROOT / "benchmarks" / ".models"))
SUITE = {"cnn": "mnist", "wide-deep": "adult"}
RECIPE = "prune-int8"
OVERRIDES = {"train.epochs": 2, "prune.epochs": 1, "export.formats": ["tflite", "savedmodel", "onnx"]}
#: variant name -> artifact file in the pipeline's output directory
VARIANTS = {
    "tf-savedmodel": "model_savedmodel",
    "tflite-float32": "float32.tflite",
    "tflite-int8": "int8.tflite",
    "tflite-pruned-int8": "pruned-int8.tflite",
    "onnxruntime-float32": "model-onnx.onnx",
}
INPUTS_FILE = "bench_inputs.npz"
ROWS = 32


def bench_threads() -> int:
    """Threads every runtime gets in this benchmark session (``EDGE_BENCH_THREADS``, default 1)."""
    return int(os.environ.get("EDGE_BENCH_THREADS", "1"))


def model_dir(name: str, root: Path = DEFAULT_DIR) -> Path:
    """Where the artifacts of built-in model ``name`` live."""
    return Path(root) / name


def is_built(name: str, root: Path = DEFAULT_DIR) -> bool:
    """True when every variant and the sample inputs of ``name`` exist."""
    directory = model_dir(name, root)
    return all((directory / f).exists() for f in (*VARIANTS.values(), "summary.json"))


def build(name: str, root: Path = DEFAULT_DIR, progress: bool = True) -> Path:
    """Run the pipeline for built-in model ``name`` and save 32 real test rows beside its artifacts."""
    from converters import pipeline

    out = model_dir(name, root)
    # force: this cache folder also holds files the suite adds beside the artifacts (bench_build.json, inputs)
    result = pipeline.run(RECIPE, name, out, dataset=SUITE[name], overrides=OVERRIDES, progress=progress, force=True)
    (out / "bench_build.json").write_text(
        json.dumps(
            {"recipe": RECIPE, "overrides": OVERRIDES, "dataset": SUITE[name], "seconds": result.seconds}, indent=2
        )
    )
    write_inputs(name, root)
    return out


def write_inputs(name: str, root: Path = DEFAULT_DIR) -> Path:
    """Save the first 32 rows of the dataset's test split, as the model's inputs, to ``bench_inputs.npz``."""
    from converters import pipeline
    from converters.model_files import load

    out = model_dir(name, root)
    reference = load(str(out / VARIANTS["tf-savedmodel"]))
    data = pipeline.load_data(reference, dataset=SUITE[name])
    rows = {key: np.asarray(value)[:ROWS] for key, value in data.eval_x.items()}
    np.savez(out / INPUTS_FILE, **rows)
    return out / INPUTS_FILE


def ensure_built(root: Path = DEFAULT_DIR, rebuild: bool = False, progress: bool = True) -> dict[str, Path]:
    """Build whichever suite models are missing (or all with ``rebuild``); return name -> directory."""
    dirs = {}
    for name in SUITE:
        if rebuild or not is_built(name, root):
            print(f"building {name} on {SUITE[name]} with the {RECIPE} recipe ...", file=sys.stderr)
            build(name, root, progress=progress)
        elif not (model_dir(name, root) / INPUTS_FILE).exists():
            write_inputs(name, root)
        dirs[name] = model_dir(name, root)
    return dirs


def load_inputs(name: str, root: Path = DEFAULT_DIR) -> dict[str, np.ndarray]:
    """The saved real test rows of ``name``, by input name."""
    with np.load(model_dir(name, root) / INPUTS_FILE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def manifest(name: str, variant: str, root: Path = DEFAULT_DIR) -> dict:
    """The manifest of one variant (accuracy, size, kind)."""
    path = model_dir(name, root) / VARIANTS[variant]
    manifest_path = path.with_suffix(".json") if path.suffix else path.parent / f"{path.name}.json"
    return json.loads(manifest_path.read_text())
