"""The manifest: a JSON file beside every artifact that says what it is.

``model.tflite`` has ``model.json``. The runtime checks the model's sha256
against it, the Android demo reads preprocessing and quantization from it, and
``edge-sdk convert`` chains manifests through ``parent_sha256``. The format is
documented in ``docs/manifest.md``.
"""
from __future__ import annotations

import gzip
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence

from edge_sdk.errors import ManifestError
from edge_sdk.fileio import PathLike, atomic_write_text, sha256_bytes

MANIFEST_FORMAT = "edge-sdk-manifest/1"
REQUIRED_FIELDS = ("format", "model_file", "sha256", "size_bytes", "inputs", "outputs")


def manifest_path_for(model_path: PathLike) -> Path:
    """``dir/model.tflite`` -> ``dir/model.json`` (a directory model gets ``dir.json``)."""
    model_path = Path(model_path)
    return model_path.with_suffix(".json") if model_path.suffix else model_path.parent / f"{model_path.name}.json"


def gzip_size(data: bytes) -> int:
    """Size of ``data`` gzipped at level 9, the usual proxy for download size."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def tool_versions(extra_modules: Iterable[str] = ()) -> Dict[str, str]:
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


def _dist_version(dist: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def tensor_specs_to_json(specs: Sequence[Any]) -> list:
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
    labels: Optional[Sequence[str]] = None,
    preprocessing: Optional[Dict[str, Any]] = None,
    parent_sha256: Optional[str] = None,
    recipe: Optional[Dict[str, Any]] = None,
    metrics: Optional[Dict[str, Any]] = None,
    calibration: Optional[Dict[str, Any]] = None,
    extra_tool_modules: Iterable[str] = (),
    **extra: Any,
) -> Dict[str, Any]:
    """Assemble a manifest dict for ``model_bytes`` (hashes and sizes computed here)."""
    manifest: Dict[str, Any] = {
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


def write_manifest(manifest: Dict[str, Any], path: PathLike) -> Path:
    """Write ``manifest`` to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def read_manifest(path: PathLike) -> Dict[str, Any]:
    """Read and minimally validate a manifest; raise :class:`ManifestError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: expected a JSON file at {path}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest {path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"manifest {path}: expected a JSON object, got {type(manifest).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in manifest]
    if missing:
        raise ManifestError(f"manifest {path} lacks required field(s): {', '.join(missing)}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise ManifestError(
            f"manifest {path}: expected format {MANIFEST_FORMAT!r}, got {manifest['format']!r}"
        )
    return manifest


def find_manifest(model_path: PathLike) -> Optional[Path]:
    """The manifest beside ``model_path`` if there is one."""
    candidate = manifest_path_for(model_path)
    return candidate if candidate.is_file() and os.path.abspath(candidate) != os.path.abspath(model_path) else None
