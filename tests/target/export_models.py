"""Write the runtime tests' models and golden references into a directory, on the build machine.

    python tests/target/export_models.py OUT_DIR

The aarch64 and tflite-runtime lanes (issue 16) have no TensorFlow: they run ``tests/runtime``
and ``tests/target`` with ``EDGE_SDK_TEST_MODELS=OUT_DIR`` on these files, and check the golden
references (written here, on x86 with LiteRT) against their own outputs. ``models.json`` maps each
fixture name to its file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

#: Golden references written here: file -> (float model, quantized model or None).
GOLDEN = {
    "golden_int8.npz": ("float32", "int8"),
    "golden_uint8.npz": ("float32", "uint8"),
    "golden_float32.npz": ("float32", None),
}


def write_golden_references(models: dict[str, Path], out: Path, samples: int = 32) -> dict[str, Path]:
    """Golden references from the float32 .tflite (and a quantized one) run here with LiteRT."""
    import edge_sdk
    from edge_sdk.reference import kernels_of, model_sha256, write_reference

    x = np.load(models["x"])[:samples]
    labels = np.load(models["y"])[:samples]
    written = {}
    for file, (float_name, quantized_name) in GOLDEN.items():
        float_model = edge_sdk.load(models[float_name], num_threads=1)
        inputs = {float_model.inputs[0].name: x}
        float_outputs = float_model.predict_all(inputs)
        quantized = None
        extra = {"kernels": {"float": kernels_of(float_model)}}
        if quantized_name:
            qm = edge_sdk.load(models[quantized_name], num_threads=1)
            quantized = qm.predict_all({qm.inputs[0].name: x})
            extra["kernels"]["quantized"] = kernels_of(qm)
        written[file] = write_reference(
            out / file,
            inputs,
            float_outputs,
            float_model=models[float_name].name,
            float_sha256s=[model_sha256(models[float_name])],
            labels=labels,
            quantized_outputs=quantized,
            quantized_sha256=model_sha256(models[quantized_name]) if quantized_name else None,
            extra=extra,
        )
    return written


def export(out: Path) -> dict[str, str]:
    """Build every runtime test model into ``out``, write golden references and ``models.json``."""
    from runtime_model_factory import build_models, build_tabular_models

    out.mkdir(parents=True, exist_ok=True)
    paths = build_models(out)
    paths.update(build_tabular_models(out))  # test_fast_path.py's 13-input Wide & Deep-shaped pair
    paths["x"] = out / "x.npy"
    paths["y"] = out / "y.npy"
    write_golden_references(paths, out)
    index = {name: Path(path).relative_to(out).as_posix() for name, path in paths.items()}
    (out / "models.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return index


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/target/export_models.py OUT_DIR")
    names = export(Path(sys.argv[1]))
    print(f"wrote {len(names)} models and {len(GOLDEN)} golden references into {sys.argv[1]}")
