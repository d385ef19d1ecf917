"""The manifest: a JSON file beside every artifact that says what it is.

``model.tflite`` has ``model.json``. The runtime checks the model's sha256
against it, and that what it declares (inputs, outputs, quantization, size,
labels) is what the model has (:func:`check_manifest_matches_model`); the
Android demo reads preprocessing and quantization from it, and ``edge-sdk
convert`` chains manifests through ``parent_sha256``. The format is documented
in ``docs/manifest.md``.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import platform
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from edge_sdk.errors import IntegrityError, ManifestError
from edge_sdk.fileio import PathLike, atomic_write_text, not_a_regular_file, sha256_bytes
from edge_sdk.jsonio import loads_strict

MANIFEST_FORMAT = "edge-sdk-manifest/1"
REQUIRED_FIELDS = ("format", "model_file", "sha256", "size_bytes", "inputs", "outputs")
#: A manifest is a few KB (labels included); anything this large is not one.
MAX_MANIFEST_BYTES = 64 << 20


def manifest_path_for(model_path: PathLike) -> Path:
    """``dir/model.tflite`` -> ``dir/model.json`` (a directory model gets ``dir.json``)."""
    model_path = Path(model_path)
    return model_path.with_suffix(".json") if model_path.suffix else model_path.parent / f"{model_path.name}.json"


def gzip_size(data: bytes) -> int:
    """Size of ``data`` gzipped at level 9, the usual proxy for download size."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def tool_versions(extra_modules: Iterable[str] = ()) -> dict[str, str]:
    """Versions of Python, edge-sdk and the named modules that are importable."""
    import importlib
    import sys

    from edge_sdk import __version__

    versions = {"python": platform.python_version(), "edge-sdk": __version__}
    for name in ("numpy", "ai_edge_litert", *extra_modules):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a missing optional module is just not listed
                continue
        version = getattr(module, "__version__", None)
        if version is None and name == "ai_edge_litert":
            version = _dist_version("ai-edge-litert")
        if version:
            versions[name] = str(version)
    return versions


def _dist_version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - unreadable package metadata is reported as unknown, never fatal
        return None


def tensor_specs_to_json(specs: Sequence[Any]) -> list[dict[str, Any]]:
    """Turn runtime ``TensorSpec`` records (or dicts) into manifest entries."""
    out = []
    for spec in specs:
        if isinstance(spec, dict):
            out.append(spec)
            continue
        out.append(spec.to_dict())
    return out


def build_manifest(
    model_bytes: bytes,
    model_file: str,
    *,
    kind: str,
    stage: str,
    inputs: Sequence[Any] = (),
    outputs: Sequence[Any] = (),
    labels: Sequence[str] | None = None,
    preprocessing: dict[str, Any] | None = None,
    parent_sha256: str | None = None,
    recipe: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    extra_tool_modules: Iterable[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Assemble a manifest dict for ``model_bytes`` (hashes and sizes computed here)."""
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "model_file": model_file,
        "sha256": sha256_bytes(model_bytes),
        "size_bytes": len(model_bytes),
        "gzip_size_bytes": gzip_size(model_bytes),
        "stage": stage,
        "kind": kind,
        "inputs": tensor_specs_to_json(inputs),
        "outputs": tensor_specs_to_json(outputs),
        "labels": list(labels) if labels is not None else None,
        "preprocessing": preprocessing,
        "parent_sha256": parent_sha256,
        "recipe": recipe,
        "metrics": metrics or {},
        "calibration": calibration,
        "tool_versions": tool_versions(extra_tool_modules),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    manifest.update(extra)
    return manifest


def write_manifest(manifest: dict[str, Any], path: PathLike) -> Path:
    """Write ``manifest`` to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def read_manifest(path: PathLike) -> dict[str, Any]:
    """Read and minimally validate a manifest; raise :class:`ManifestError` if unusable."""
    path = Path(path)
    problem = not_a_regular_file(path)
    if problem == "does not exist":
        raise ManifestError(f"manifest not found: expected a JSON file at {path}")
    if problem:
        raise ManifestError(f"manifest {path} {problem}; expected a JSON file")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"manifest {path} is {size:,} bytes; expected a JSON file of at most {MAX_MANIFEST_BYTES:,} bytes"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    manifest = loads_strict(raw, f"manifest {path}", ManifestError)
    if not isinstance(manifest, dict):
        raise ManifestError(f"manifest {path}: expected a JSON object, got {type(manifest).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in manifest]
    if missing:
        raise ManifestError(f"manifest {path} lacks required field(s): {', '.join(missing)}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise ManifestError(f"manifest {path}: expected format {MANIFEST_FORMAT!r}, got {manifest['format']!r}")
    return manifest


def find_manifest(model_path: PathLike) -> Path | None:
    """The manifest beside ``model_path`` if there is one.

    Something there that is not a regular file (a directory, a FIFO, a device) is refused with
    :class:`ManifestError`, never taken for "no manifest": that would skip the sha256 check.
    """
    candidate = manifest_path_for(model_path)
    if os.path.abspath(candidate) == os.path.abspath(model_path):
        return None
    problem = not_a_regular_file(candidate)
    if problem == "does not exist":
        return None
    if problem:
        raise ManifestError(
            f"the manifest path beside the model, {candidate}, {problem}; expected the "
            "model's JSON manifest there, or nothing"
        )
    return candidate


# -- does the manifest describe this model? ---------------------------------------------------------


class ManifestMismatchError(IntegrityError):
    """A manifest whose declared inputs, outputs, quantization, size or labels contradict the model."""


#: Relative tolerance for quantization scales: manifests store float32 scales as JSON doubles.
_SCALE_RTOL = 1e-6


def _spec_dict(spec: Any) -> dict[str, Any]:
    return spec if isinstance(spec, dict) else spec.to_dict()


def _shape_list(shape: Any) -> list[int] | None:
    """A shape as a list of ints, -1 for a dynamic dimension; None when it is not a list of dims."""
    if not isinstance(shape, (list, tuple)):
        return None
    out = []
    for d in shape:
        if d is None:
            out.append(-1)
        elif isinstance(d, int) and not isinstance(d, bool):
            out.append(-1 if d < 0 else d)
        else:
            return None
    return out


def _same_numbers(a: Any, b: Any, relative: float) -> bool:
    a_list = list(a) if isinstance(a, (list, tuple)) else [a]
    b_list = list(b) if isinstance(b, (list, tuple)) else [b]
    if len(a_list) != len(b_list):
        return False
    for x, y in zip(a_list, b_list, strict=False):
        if (
            isinstance(x, bool)
            or isinstance(y, bool)
            or not isinstance(x, (int, float))
            or not isinstance(y, (int, float))
        ):
            return False
        if relative == 0.0:
            if x != y:
                return False
        elif not math.isclose(float(x), float(y), rel_tol=relative, abs_tol=0.0):
            return False
    return True


def _quantization_problem(declared: Any, actual: dict[str, Any] | None) -> str | None:
    if declared is None and actual is None:
        return None
    if declared is None or actual is None:
        show = "none" if declared is None else json.dumps(declared, sort_keys=True)
        return (
            f"quantization: manifest {show}, model {'none' if actual is None else json.dumps(actual, sort_keys=True)}"
        )
    if not isinstance(declared, dict):
        return f"quantization: manifest {declared!r} (expected an object with scale and zero_point), model {actual}"
    for key, relative in (("scale", _SCALE_RTOL), ("zero_point", 0.0)):
        if key not in declared:
            return f"quantization.{key}: missing from the manifest, model {actual[key]}"
        if not _same_numbers(declared[key], actual[key], relative):
            return f"quantization.{key}: manifest {declared[key]}, model {actual[key]}"
    if declared.get("axis") != actual.get("axis"):
        return f"quantization.axis: manifest {declared.get('axis')}, model {actual.get('axis')}"
    return None


def _tensor_problems(kind: str, declared: Any, actual: list[dict[str, Any]]) -> list[str]:
    """Contradictions between the manifest's ``kind`` list ("inputs"/"outputs") and the model's spec dicts."""
    if declared is None or declared == [] or declared == actual:
        return []  # not declared (older tools wrote no I/O), or written from these very specs
    if not isinstance(declared, list) or not all(isinstance(d, dict) for d in declared):
        return [
            f"{kind}: manifest {json.dumps(declared)[:80]} (expected a list of objects), "
            f"model {', '.join(a['name'] for a in actual)}"
        ]
    model_names = [a["name"] for a in actual]
    declared_names = [d.get("name") for d in declared]
    if len(declared) != len(actual) or sorted(map(str, declared_names)) != sorted(model_names):
        return [
            f"{kind}: manifest declares {len(declared)} ({', '.join(map(str, declared_names))}), "
            f"model has {len(actual)} ({', '.join(model_names)})"
        ]
    by_name = {a["name"]: a for a in actual}
    problems = []
    for entry in declared:
        name = entry["name"]
        model = by_name[name]
        where = f"{kind[:-1]} {name!r}"
        if "shape" in entry:
            shape = _shape_list(entry["shape"])
            if shape != model["shape"]:
                problems.append(f"{where} shape: manifest {entry['shape']}, model {model['shape']}")
        if "dtype" in entry and entry["dtype"] != model["dtype"]:
            problems.append(f"{where} dtype: manifest {entry['dtype']!r}, model {model['dtype']!r}")
        if "quantization" in entry:
            problem = _quantization_problem(entry["quantization"], model["quantization"])
            if problem:
                problems.append(f"{where} {problem}")
    return problems


def _labels_problem(labels: Any, outputs: list[dict[str, Any]]) -> str | None:
    """The labels must name the classes of an output: one per unit, or two for a single sigmoid unit."""
    if not isinstance(labels, list) or not labels:
        return None
    widths = {}
    for entry in outputs:
        shape = entry["shape"]
        if len(shape) >= 2 and shape[-1] is not None and shape[-1] >= 0:  # rank 1 is only the batch
            widths[entry["name"]] = shape[-1]
    if not widths:
        return None  # no output with a fixed width: nothing to count against
    if any(len(labels) == w or (w == 1 and len(labels) == 2) for w in widths.values()):
        return None
    shown = ", ".join(f"{n!r} has width {w}" for n, w in widths.items())
    return f"labels: manifest lists {len(labels)} labels, but the model's output {shown}"


def manifest_contradictions(
    manifest: dict[str, Any], inputs: Sequence[Any], outputs: Sequence[Any], size_bytes: int | None = None
) -> list[str]:
    """Every way ``manifest`` contradicts a model with these ``inputs``/``outputs`` specs and size.

    Specs are runtime ``TensorSpec`` records (the interpreter's own, so this
    costs no extra parsing) or manifest-style dicts. Compared: ``size_bytes``;
    the input and output names, shapes (-1 = dynamic), dtypes and quantization
    (scale to a relative 1e-6, zero point and axis exactly); and the number of
    ``labels`` against the output width. Fields a manifest leaves out, and empty
    ``inputs``/``outputs`` lists, are not contradictions. Returns one line per
    contradiction, each naming the field, the manifest's value and the model's.
    """
    problems: list[str] = []
    declared_size = manifest.get("size_bytes")
    if size_bytes is not None and declared_size is not None and declared_size != size_bytes:
        problems.append(f"size_bytes: manifest {declared_size}, model {size_bytes}")
    output_dicts = [_spec_dict(s) for s in outputs]
    problems += _tensor_problems("inputs", manifest.get("inputs"), [_spec_dict(s) for s in inputs])
    problems += _tensor_problems("outputs", manifest.get("outputs"), output_dicts)
    labels = _labels_problem(manifest.get("labels"), output_dicts)
    if labels:
        problems.append(labels)
    return problems


def check_manifest_matches_model(
    manifest: dict[str, Any],
    inputs: Sequence[Any],
    outputs: Sequence[Any],
    size_bytes: int | None = None,
    where: str = "the model",
) -> None:
    """Raise :class:`ManifestMismatchError` if ``manifest`` contradicts the model (see :func:`manifest_contradictions`)."""
    problems = manifest_contradictions(manifest, inputs, outputs, size_bytes)
    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise ManifestMismatchError(
            f"{where} contradicts its manifest: {problems[0]}{more}. The manifest was edited or belongs to "
            "another model; pass verify=False only if you know why."
        )
