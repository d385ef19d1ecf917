"""Golden references: prove that a device's runtime reproduces the build machine's results.

On the build machine (with TensorFlow), ``edge-sdk parity --write-reference
golden.npz FLOAT --data DATA`` stores fixed inputs, the float model's outputs and
the sha256 of the float model and of the data. On the device, with only numpy and
the LiteRT interpreter, ``edge-sdk parity --reference golden.npz model.tflite``
runs the .tflite on those inputs and compares.

The file is a plain ``.npz`` (no pickles):

* ``meta``: a JSON string: format, float model path and sha256, data sha256,
  input/output names and shapes, label presence, tool versions, the sha256 of
  a quantized model whose outputs were stored too (optional), and
  ``integrity``: the sha256 of every stored part (inputs, float outputs,
  quantized outputs, labels, and the rest of ``meta``), so a corrupted or
  edited reference is blamed on the reference file, never on the model;
* ``input_<i>``: the i-th input (names in ``meta["inputs"]``);
* ``float_<j>``: the float model's j-th output (names in ``meta["outputs"]``);
* ``quantized_<j>``: optional, the build machine's outputs of the quantized model;
* ``labels``: optional ground truth.

Format ``edge-sdk-reference/1`` files (before ``integrity``: their hash covered
the inputs only) are refused with a message to write them again.

``meta["kernels"]`` (optional) records which kernels produced the stored outputs
(``{"float": "xnnpack", "quantized": "builtin"}``, see :func:`kernels_of`), because
the tolerance of a device run depends on it (issue 16, measured on emulated aarch64):

* int8/uint8 outputs through XNNPACK are bitwise equal on x86 and aarch64, so the
  same kernels get ``max_steps`` (default 1 quantization step);
* int8 outputs of the builtin kernels differ from XNNPACK's by up to 11 steps on
  one machine, so a run on other kernels than the reference's gets
  :data:`OTHER_KERNELS_MAX_STEPS`;
* float32 outputs differ by up to about 1e-6 absolute between machines whatever
  the kernels; when the model checked is the reference's float .tflite itself,
  its outputs must be within :data:`FLOAT32_MAX_ULPS` units in the last place of
  the output's largest magnitude.

This module imports numpy and edge_sdk only: never TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from edge_sdk.errors import EdgeSdkError
from edge_sdk.fileio import atomic_output_path, sha256_file

REFERENCE_FORMAT = "edge-sdk-reference/2"
_OLD_FORMATS = ("edge-sdk-reference/1",)
#: int8/uint8 steps allowed when the device's kernels differ from the reference's (measured up to 11).
OTHER_KERNELS_MAX_STEPS = 16.0
#: float32 outputs of the same .tflite on another machine: ulps of the output's largest magnitude
#: (measured about 1e-6 absolute on outputs near 1, i.e. under 10 of these).
FLOAT32_MAX_ULPS = 64.0
PathLike = str | os.PathLike[str]


class ErrorMetrics(TypedDict):
    """:func:`error_metrics`' figures for one output (``cosine_over``: ``"examples"`` or ``"batch"``)."""

    max_abs_error: float
    mean_abs_error: float
    relative_error: float
    cosine_mean: float
    cosine_min: float
    cosine_over: str


class GoldenReferenceError(EdgeSdkError):
    """A reference file that is missing, unreadable or malformed."""


class GoldenReferenceMismatchError(GoldenReferenceError):
    """A reference written for a different model (sha256 or signature differs)."""


class SignatureMismatchError(EdgeSdkError):
    """Two models (or a model and a reference) whose inputs or outputs do not correspond."""


# ---------------------------------------------------------------------------------------------
# identities


def model_sha256(path: PathLike) -> str:
    """sha256 of a model file, or of a directory model (SavedModel) as a whole.

    A directory hashes the sorted ``relative path\\0file sha256\\n`` lines (the
    digest ``edge-sdk convert`` records for SavedModel artifacts and inputs), so
    the same SavedModel copied elsewhere keeps its identity.
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise GoldenReferenceError(
            f"cannot hash {path}: expected a model file or a SavedModel directory, found nothing"
        )
    from edge_sdk.digest import tree_sha256  # the one directory rule, shared with edge-sdk convert

    return tree_sha256(path)


def model_identities(path: PathLike) -> list[str]:
    """sha256 values that name ``path``: its own and any its manifest records for it."""
    from edge_sdk.manifest import find_manifest, read_manifest

    ids = [model_sha256(path)]
    found = find_manifest(path) if Path(path).exists() else None
    if found is not None:
        try:
            recorded = read_manifest(found).get("sha256")
        except EdgeSdkError:
            recorded = None
        if recorded and recorded not in ids:
            ids.append(recorded)
    return ids


def float_lineage(path: PathLike) -> list[str]:
    """The float model's identities followed by its ancestors named in manifests beside it.

    A reference stores these, so a .tflite derived from the same source (its
    manifest chain meets this list) is recognised as the same model's lineage.
    """
    ids = model_identities(path)
    chain = lineage(path, ids[0]) if Path(path).exists() else None
    for sha in chain or []:
        if sha not in ids:
            ids.append(sha)
    return ids


def lineage(model_path: PathLike, own_sha256: str) -> list[str] | None:
    """The sha256 chain from a model up through ``parent_sha256`` in the manifests beside it.

    Returns ``None`` when the model has no manifest (its lineage is unknown).
    The chain starts with the model itself; a parent whose manifest sits in the
    same directory is followed further.
    """
    from edge_sdk.manifest import find_manifest, read_manifest

    model_path = Path(model_path)
    own = find_manifest(model_path)
    if own is None:
        return None
    by_sha: dict[str, dict[str, Any]] = {}
    for candidate in model_path.parent.glob("*.json"):
        try:
            found = read_manifest(candidate)
        except EdgeSdkError:
            continue
        if found.get("sha256"):
            by_sha[found["sha256"]] = found
    try:
        first = read_manifest(own)
    except EdgeSdkError:
        return None
    chain = [own_sha256]
    manifest: dict[str, Any] | None = first
    while manifest is not None:
        for key in ("parent_sha256", "source_sha256"):
            value = manifest.get(key) or (manifest.get("recipe") or {}).get(key)
            if value and value not in chain:
                chain.append(value)
        parent = manifest.get("parent_sha256")
        manifest = by_sha.get(parent) if parent else None
        if manifest is not None and manifest.get("sha256") in chain[:-1]:
            break  # a cycle in hand-edited manifests
    return chain


# ---------------------------------------------------------------------------------------------
# matching tensors of two models


def match_tensors(
    expected: Sequence[tuple[str, tuple[int | None, ...]]],
    actual: Sequence[tuple[str, tuple[int | None, ...]]],
    what: str,
    left: str = "float model",
    right: str = "quantized model",
) -> list[tuple[str, str]]:
    """Pair tensors of two models by name, or by position when the names differ.

    Each side is a list of ``(name, shape)``; the batch dimension is ignored and
    ``None`` matches any size. Returns ``[(left name, right name)]`` in ``left``'s
    order, or raises :class:`SignatureMismatchError` naming both sides.
    """

    def show(side: Sequence[tuple[str, tuple[int | None, ...]]]) -> str:
        return ", ".join(f"{n}{shape_text(s)}" for n, s in side) or "none"

    def compatible(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> bool:
        if len(a) != len(b):
            return False
        return all(x is None or y is None or x == y for x, y in zip(a[1:], b[1:], strict=False))

    problem = None
    if len(expected) != len(actual):
        problem = f"{len(expected)} vs {len(actual)} {what}s"
    else:
        names_left = [n for n, _ in expected]
        by_name = dict(actual)
        if set(names_left) == set(by_name):
            pairs = [(n, n) for n in names_left]
        else:
            pairs = [(a[0], b[0]) for a, b in zip(expected, actual, strict=False)]
        shapes_right = dict(actual)
        shapes_left = dict(expected)
        bad = [(left, r) for left, r in pairs if not compatible(shapes_left[left], shapes_right[r])]
        if not bad:
            return pairs
        left_name, right_name = bad[0]
        problem = (
            f"{what} {left_name}{shape_text(shapes_left[left_name])} does not match "
            f"{right_name}{shape_text(shapes_right[right_name])}"
        )
    raise SignatureMismatchError(
        f"different {what} signatures ({problem}): {left} has {show(expected)}; {right} has {show(actual)}"
    )


def shape_text(shape: Sequence[int | None]) -> str:
    """``[1,?,224,3]``: a tensor shape for messages (None or a negative dimension is dynamic: ``?``)."""
    return "[" + ",".join("?" if d is None or (isinstance(d, int) and d < 0) else str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------------------------
# metrics shared with converters.parity


def class_scores(output: Any) -> np.ndarray | None:
    """``output`` as one row of class scores per example, or None when it is not that.

    ``[N, classes]`` and ``[N]`` (one unit) are class scores as they are; ``[N, 1, ..., 1, classes]`` (one
    position per example, e.g. a classifier ending in a 1x1 conv) is reshaped to ``[N, classes]``; a map
    with more than one position (``[N, H, W, C]`` per-pixel scores) is not class scores.
    """
    out = np.asarray(output)
    if out.ndim < 1 or out.dtype.kind not in "fiu":
        return None
    if out.ndim > 2:
        if any(d != 1 for d in out.shape[1:-1]):
            return None  # (N, H, W, C) maps and the like are not one class per example
        out = out.reshape(out.shape[0], out.shape[-1])
    return out


def class_predictions(output: np.ndarray) -> np.ndarray | None:
    """Top-1 class per example: argmax over the last axis, or a 0.5 / 0 threshold for one unit.

    Returns ``None`` for outputs that are not per-example class scores (:func:`class_scores`).
    """
    out = class_scores(output)
    if out is None:
        return None
    flat = out if out.ndim == 2 else out.reshape(-1, 1)
    if flat.shape[1] == 1:
        values = flat[:, 0].astype(np.float64)
        finite = values[np.isfinite(values)]
        threshold = 0.5 if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0 else 0.0
        thresholded: np.ndarray = (values > threshold).astype(np.int64)
        return thresholded
    top1: np.ndarray = np.argmax(flat, axis=1).astype(np.int64)
    return top1


def error_metrics(reference: np.ndarray, other: np.ndarray) -> ErrorMetrics:
    """Max/mean absolute error, relative L2 error and per-example cosine similarity.

    ``relative_error`` is ||other - reference|| / ||reference|| over the whole
    tensor; cosine is computed per example and reported as its mean and minimum.
    For one value per example (a sigmoid output) a per-example cosine is only a
    sign test, so the cosine of the whole column is reported instead
    (``cosine_over``: ``"examples"`` or ``"batch"``).
    """
    ref = np.asarray(reference, dtype=np.float64)
    oth = np.asarray(other, dtype=np.float64)
    if ref.shape != oth.shape:
        raise SignatureMismatchError(f"cannot compare outputs of shape {ref.shape} and {oth.shape}")
    diff = np.abs(oth - ref)
    n = ref.shape[0] if ref.ndim else 1
    r2 = ref.reshape(n, -1)
    o2 = oth.reshape(n, -1)
    over = "examples"
    if r2.shape[1] == 1:
        r2, o2, over = r2.reshape(1, -1), o2.reshape(1, -1), "batch"
    norms = np.linalg.norm(r2, axis=1) * np.linalg.norm(o2, axis=1)
    dots = np.sum(r2 * o2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(
            norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(np.linalg.norm(r2 - o2, axis=1) == 0, 1.0, 0.0)
        )
    ref_norm = float(np.linalg.norm(ref))
    return {
        "max_abs_error": float(diff.max()) if diff.size else 0.0,
        "mean_abs_error": float(diff.mean()) if diff.size else 0.0,
        "relative_error": float(np.linalg.norm(oth - ref) / ref_norm) if ref_norm > 0 else float(np.linalg.norm(oth)),
        "cosine_mean": float(np.mean(cosine)) if cosine.size else 1.0,
        "cosine_min": float(np.min(cosine)) if cosine.size else 1.0,
        "cosine_over": over,
    }


def labels_to_classes(labels: np.ndarray) -> np.ndarray:
    """Class ids from integer labels, or from one-hot / probability rows."""
    arr = np.asarray(labels)
    if arr.dtype.kind not in "biuf":
        raise EdgeSdkError(f"labels: expected integer class ids (or one-hot rows), got dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] > 1:
        top1: np.ndarray = np.argmax(arr, axis=1).astype(np.int64)
        return top1
    arr = arr.reshape(arr.shape[0], -1)[:, 0] if arr.ndim > 1 else arr
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise EdgeSdkError("labels: expected integer class ids (or one-hot rows), got non-integer floats")
    return arr.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# kernels


#: Backends whose default interpreter applies the XNNPACK delegate to int8 as well as float32 ops.
_XNNPACK_BACKENDS = frozenset({"litert", "tf"})


def kernels_of(model: Any) -> str:
    """``"xnnpack"`` or ``"builtin"``: the kernel set a loaded model's quantized ops run on.

    LiteRT (and tf.lite) apply the XNNPACK delegate by default; tflite-runtime 2.14
    runs int8 on its builtin kernels (which is why it is about 19x slower there).
    """
    return "xnnpack" if getattr(model, "backend", None) in _XNNPACK_BACKENDS else "builtin"


# ---------------------------------------------------------------------------------------------
# the file


@dataclasses.dataclass
class Reference:
    """A golden reference loaded from disk."""

    path: Path | None
    meta: dict[str, Any]
    inputs: dict[str, np.ndarray]
    float_outputs: dict[str, np.ndarray]
    quantized_outputs: dict[str, np.ndarray] | None = None
    labels: np.ndarray | None = None

    @property
    def samples(self) -> int:
        """Number of examples stored."""
        return int(len(next(iter(self.inputs.values()))))

    @property
    def float_sha256s(self) -> list[str]:
        """sha256 values naming the float model the reference was written from."""
        return list(self.meta.get("float_sha256s") or [self.meta["float_sha256"]])


def data_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over named arrays (name, dtype, shape and bytes), independent of dict order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def _meta_sha256(meta: Mapping[str, Any]) -> str:
    """sha256 of ``meta``'s canonical JSON without its ``integrity`` entry."""
    body = {k: v for k, v in meta.items() if k != "integrity"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _integrity(
    inputs: Mapping[str, np.ndarray],
    floats: Mapping[str, np.ndarray],
    quantized: Mapping[str, np.ndarray] | None,
    labels: np.ndarray | None,
    meta: Mapping[str, Any],
) -> dict[str, str | None]:
    """The sha256 of every part of a reference, as stored in ``meta["integrity"]``."""
    return {
        "inputs": data_sha256(inputs),
        "float_outputs": data_sha256(floats),
        "quantized_outputs": data_sha256(quantized) if quantized is not None else None,
        "labels": data_sha256({"labels": labels}) if labels is not None else None,
        "meta": _meta_sha256(meta),
    }


def write_reference(
    path: PathLike,
    inputs: Mapping[str, np.ndarray],
    float_outputs: Mapping[str, np.ndarray],
    *,
    float_model: str,
    float_sha256s: Sequence[str],
    labels: np.ndarray | None = None,
    quantized_outputs: Mapping[str, np.ndarray] | None = None,
    quantized_sha256: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a golden reference ``.npz`` atomically and return its path."""
    from edge_sdk.manifest import tool_versions

    if not inputs or not float_outputs:
        raise GoldenReferenceError("a reference needs at least one input and one output array")
    lengths = {len(a) for a in inputs.values()} | {len(a) for a in float_outputs.values()}
    if len(lengths) != 1:
        raise GoldenReferenceError(f"reference arrays must share one batch size, got {sorted(lengths)}")
    n = lengths.pop()
    if labels is not None and len(labels) != n:
        raise GoldenReferenceError(f"labels: expected {n} (one per stored example), got {len(labels)}")
    in_names = list(inputs)
    out_names = list(float_outputs)
    meta = {
        "format": REFERENCE_FORMAT,
        "float_model": str(float_model),
        "float_sha256": float_sha256s[0],
        "float_sha256s": list(float_sha256s),
        "data_sha256": data_sha256(inputs),
        "samples": n,
        "inputs": [
            {"name": k, "shape": list(np.shape(inputs[k])), "dtype": np.asarray(inputs[k]).dtype.name} for k in in_names
        ],
        "outputs": [{"name": k, "shape": list(np.shape(float_outputs[k]))} for k in out_names],
        "has_labels": labels is not None,
        "quantized_sha256": quantized_sha256 if quantized_outputs is not None else None,
        "tool_versions": tool_versions(),
    }
    if extra:
        meta.update(dict(extra))
    arrays: dict[str, np.ndarray] = {}
    for i, name in enumerate(in_names):
        arrays[f"input_{i}"] = np.asarray(inputs[name])
    stored_floats = {name: np.asarray(float_outputs[name], dtype=np.float32) for name in out_names}
    for j, name in enumerate(out_names):
        arrays[f"float_{j}"] = stored_floats[name]
    stored_quantized = None
    if quantized_outputs is not None:
        if set(quantized_outputs) != set(out_names):
            raise GoldenReferenceError(
                f"quantized outputs {sorted(quantized_outputs)} must use the float output names {out_names}"
            )
        stored_quantized = {name: np.asarray(quantized_outputs[name], dtype=np.float32) for name in out_names}
        for j, name in enumerate(out_names):
            arrays[f"quantized_{j}"] = stored_quantized[name]
    stored_labels = np.asarray(labels) if labels is not None else None
    if stored_labels is not None:
        arrays["labels"] = stored_labels
    meta["integrity"] = _integrity(
        {k: np.asarray(inputs[k]) for k in in_names}, stored_floats, stored_quantized, stored_labels, meta
    )
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_output_path(path) as tmp:
        with open(tmp, "wb") as handle:
            # numpy's stub lets **kwds fill allow_pickle (bool); these keys are tensor names, never that.
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
    return Path(path)


def read_reference(path: PathLike) -> Reference:
    """Load and validate a golden reference ``.npz``."""
    path = Path(path)
    if not path.is_file():
        raise GoldenReferenceError(f"reference file not found: {path} (expected a .npz written by --write-reference)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a .npy: one bare array, no metadata
            raise GoldenReferenceError(f"{path} is a .npy array; expected the .npz written by --write-reference")
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
    except GoldenReferenceError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for bad files
        raise GoldenReferenceError(f"{path} is not a readable .npz reference: {exc}") from None
    if "meta" not in arrays:
        raise GoldenReferenceError(
            f"{path}: expected a 'meta' entry (a file written by --write-reference), got arrays {sorted(arrays)}"
        )
    from edge_sdk.jsonio import loads_strict

    meta = loads_strict(str(arrays["meta"]), f"{path}: 'meta'", GoldenReferenceError)
    if not isinstance(meta, dict):
        raise GoldenReferenceError(f"{path}: 'meta' must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") in _OLD_FORMATS:
        raise GoldenReferenceError(
            f"{path} was written by an older edge-sdk (format {meta['format']!r}), whose integrity hash covers "
            "only the inputs, so a damaged stored output would be blamed on the model; write the reference "
            "again with: edge-sdk parity --write-reference REFERENCE.npz FLOAT_MODEL [QUANTIZED_MODEL] --data DATA"
        )
    if meta.get("format") != REFERENCE_FORMAT:
        raise GoldenReferenceError(f"{path}: expected format {REFERENCE_FORMAT!r}, got {meta.get('format')!r}")
    for key in ("inputs", "outputs"):  # a hand-edited file must not reach the checks as KeyError/TypeError
        specs = meta.get(key)
        if (
            not isinstance(specs, list)
            or not specs
            or not all(
                isinstance(x, dict)
                and isinstance(x.get("name"), str)
                and isinstance(x.get("shape"), list)
                and all(isinstance(d, int) for d in x["shape"])
                for x in specs
            )
        ):
            raise GoldenReferenceError(
                f"{path}: 'meta.{key}' must be a non-empty list of {{name, shape}} objects, got {str(specs)[:80]}"
            )
    hashes = meta.get("float_sha256s")
    if hashes is not None and not (isinstance(hashes, list) and all(isinstance(h, str) for h in hashes)):
        raise GoldenReferenceError(
            f"{path}: 'meta.float_sha256s' must be a list of sha256 strings, got {str(hashes)[:80]}"
        )
    if not isinstance(meta.get("float_sha256"), str):
        raise GoldenReferenceError(
            f"{path}: 'meta.float_sha256' must be the float model's sha256 (a string), got {meta.get('float_sha256')!r}"
        )
    try:
        inputs = {spec["name"]: arrays[f"input_{i}"] for i, spec in enumerate(meta["inputs"])}
        floats = {spec["name"]: arrays[f"float_{j}"] for j, spec in enumerate(meta["outputs"])}
        quantized = None
        if meta.get("quantized_sha256"):
            quantized = {spec["name"]: arrays[f"quantized_{j}"] for j, spec in enumerate(meta["outputs"])}
    except KeyError as exc:
        raise GoldenReferenceError(f"{path}: the reference is incomplete, missing array {exc}") from None
    labels = arrays.get("labels")
    if bool(meta.get("has_labels")) != (labels is not None):
        raise GoldenReferenceError(
            f"{path}: meta says has_labels={meta.get('has_labels')}, but the 'labels' array is "
            f"{'present' if labels is not None else 'missing'}; the file is corrupt or was edited"
        )
    recorded = meta.get("integrity")
    if not isinstance(recorded, dict):
        raise GoldenReferenceError(
            f"{path}: expected an 'integrity' entry in meta (sha256 of every stored part), "
            "found none; the file is corrupt or was edited"
        )
    actual = _integrity(inputs, floats, quantized, labels, meta)
    names = {
        "inputs": "stored inputs",
        "float_outputs": "stored float model outputs",
        "quantized_outputs": "stored quantized model outputs",
        "labels": "stored labels",
        "meta": "metadata (model hashes, names, shapes)",
    }
    for part, what in names.items():
        if recorded.get(part) != actual[part]:
            raise GoldenReferenceError(
                f"{path}: the {what} do not match their sha256 {recorded.get(part)} (got {actual[part]}); the "
                "reference file is corrupt or was edited, so no model was checked against it"
            )
    return Reference(path, meta, inputs, floats, quantized, labels)


# ---------------------------------------------------------------------------------------------
# checking a model against a reference


def check_reference(
    reference: Reference | PathLike,
    model: PathLike | Any,
    *,
    min_agreement: float = 0.99,
    max_abs_error: float | None = None,
    max_steps: float = 1.0,
    num_threads: int | None = None,
    require_lineage: bool = False,
    judge: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run a .tflite on the reference inputs and compare with the stored outputs.

    Checks, each reported in ``checks``:

    * lineage: the model's manifest chain (``parent_sha256``) or the stored
      quantized sha256 must name the reference's float model; a known lineage
      that does not is a :class:`GoldenReferenceMismatchError` (a reference from a
      different model). Without a manifest the lineage is ``unknown`` (an error
      only with ``require_lineage``);
    * signature: input and output names/shapes must match the reference;
    * ``min_agreement``: top-1 agreement with the float outputs (class outputs);
    * ``max_abs_error``: optional cap on the absolute error against the float outputs;
    * ``max_steps``: when the reference holds this very model's build-machine
      outputs (same sha256), every output must be within ``max_steps``
      quantization steps of them (the device reproduces the build machine).

    Returns a JSON-ready dict with ``status`` (pass|fail; error, exit code 2, when a budget's figure
    could not be measured), ``exit_code`` and a one-line ``verdict``.
        ``judge`` (e.g. :func:`edge_sdk.tasks.judge_reference`) takes ``(inputs, float outputs, model
    outputs, output pairs, the model's manifest)`` and returns extra result keys, extra ``checks``
    and ``classification`` (False: no top-1 agreement or accuracy by argmax).
    """
    import edge_sdk

    ref = reference if isinstance(reference, Reference) else read_reference(reference)
    if isinstance(model, str | os.PathLike) or not hasattr(model, "predict_all"):
        loaded = edge_sdk.load(model, num_threads=num_threads)
    else:
        loaded = model  # a loaded Model (or anything with its predict_all, inputs, outputs, sha256, backend)
    model_path = getattr(loaded, "path", None)
    model_sha = loaded.sha256

    chain = lineage(model_path, model_sha) if model_path is not None else None
    stored_q = ref.meta.get("quantized_sha256")
    float_ids = set(ref.float_sha256s)
    if stored_q and stored_q == model_sha:
        lineage_status = "verified (the reference stores this model's outputs)"
    elif chain is not None and float_ids & set(chain):
        lineage_status = "verified (the manifest chain meets the reference's float model lineage)"
    elif chain is not None:
        raise GoldenReferenceMismatchError(
            f"reference {ref.path} was written from float model {ref.meta.get('float_model')} "
            f"(sha256 {ref.meta['float_sha256'][:16]}...), but {model_path}'s manifest chain is "
            f"{' -> '.join(c[:16] + '...' for c in chain)}, which never meets the float model's lineage: "
            "the reference is for a different model"
        )
    elif require_lineage:
        raise GoldenReferenceMismatchError(
            f"{model_path or 'the model'} has no manifest, so its lineage cannot be checked against the "
            f"reference's float model sha256 {ref.meta['float_sha256'][:16]}... (expected model.json beside it)"
        )
    else:
        lineage_status = "unknown (no manifest beside the model; signature and outputs checked only)"

    ref_inputs = [(s["name"], (None,) + tuple(s["shape"][1:])) for s in ref.meta["inputs"]]
    model_inputs = [(s.name, tuple(s.shape)) for s in loaded.inputs]
    in_pairs = match_tensors(ref_inputs, model_inputs, "input", "reference", "model")
    ref_outputs = [(s["name"], (None,) + tuple(s["shape"][1:])) for s in ref.meta["outputs"]]
    model_outputs = [(s.name, tuple(s.shape)) for s in loaded.outputs]
    try:
        out_pairs = match_tensors(ref_outputs, model_outputs, "output", "reference", "model")
    except SignatureMismatchError as exc:
        raise GoldenReferenceMismatchError(f"reference {ref.path} does not fit this model: {exc}") from None

    feed = {model_name: ref.inputs[ref_name] for ref_name, model_name in in_pairs}
    produced = loaded.predict_all(feed)
    specs = {s.name: s for s in loaded.outputs}
    kernels = kernels_of(loaded)
    ref_kernels = ref.meta.get("kernels") or {}
    is_float_tflite = model_sha in float_ids and str(ref.meta.get("float_model", "")).endswith(".tflite")
    step_limit = max_steps
    if stored_q and stored_q == model_sha and ref_kernels.get("quantized") not in (None, kernels):
        step_limit = max(max_steps, OTHER_KERNELS_MAX_STEPS)
    judged: dict[str, Any] = {}
    if judge is not None:  # edge_sdk.tasks.judge_reference: the task's figures, wipe-outs, whether argmax applies
        got_all = {m: np.asarray(produced[m], dtype=np.float32) for _, m in out_pairs}
        judged = judge(ref.inputs, ref.float_outputs, got_all, out_pairs, getattr(loaded, "manifest", None))
    is_classifier = judged.get("classification", True)
    outputs = []
    checks: list[dict[str, Any]] = []
    for ref_name, model_name in out_pairs:
        got = np.asarray(produced[model_name], dtype=np.float32)
        want = ref.float_outputs[ref_name]
        entry: dict[str, Any] = {"reference": ref_name, "model": model_name, **error_metrics(want, got)}
        ref_cls, got_cls = class_predictions(want), class_predictions(got)
        if ref_cls is not None and (scores := class_scores(want)) is not None and scores.ndim == 2 and is_classifier:
            entry["top1_agreement"] = float(np.mean(ref_cls == got_cls))
        if stored_q and stored_q == model_sha and ref.quantized_outputs is not None:
            build = ref.quantized_outputs[ref_name]
            step = _output_step(specs[model_name], build)
            diff = float(np.max(np.abs(build.astype(np.float64) - got))) if got.size else 0.0
            entry["build_max_abs_diff"] = diff
            entry["build_max_steps"] = diff / step
            entry["bitwise_equal"] = bool(np.array_equal(build, got))
        elif is_float_tflite:  # the reference's own float .tflite, run on this machine
            ulp = float(np.spacing(np.float32(np.max(np.abs(want))))) if want.size else 1e-45
            diff = float(np.max(np.abs(want.astype(np.float64) - got))) if got.size else 0.0
            entry["build_max_abs_diff"] = diff
            entry["build_max_ulps"] = diff / ulp
            entry["bitwise_equal"] = bool(np.array_equal(want, got))
        outputs.append(entry)
    for entry in outputs:
        if "top1_agreement" in entry:
            checks.append(
                {
                    "name": "min_agreement",
                    "output": entry["model"],
                    "threshold": min_agreement,
                    "value": entry["top1_agreement"],
                    "passed": entry["top1_agreement"] >= min_agreement,
                }
            )
        if max_abs_error is not None:
            checks.append(
                {
                    "name": "max_abs_error",
                    "output": entry["model"],
                    "threshold": max_abs_error,
                    "value": entry["max_abs_error"],
                    "passed": entry["max_abs_error"] <= max_abs_error,
                }
            )
        if "build_max_steps" in entry:
            checks.append(
                {
                    "name": "max_steps",
                    "output": entry["model"],
                    "threshold": step_limit,
                    "value": entry["build_max_steps"],
                    "passed": entry["build_max_steps"] <= step_limit,
                }
            )
        if "build_max_ulps" in entry:
            checks.append(
                {
                    "name": "max_ulps",
                    "output": entry["model"],
                    "threshold": FLOAT32_MAX_ULPS,
                    "value": entry["build_max_ulps"],
                    "passed": entry["build_max_ulps"] <= FLOAT32_MAX_ULPS,
                }
            )
    checks.extend(judged.get("checks") or [])  # a wiped-out output fails whatever the thresholds
    accuracy = None
    if ref.labels is not None and is_classifier:
        first = outputs[0]
        cls = class_predictions(np.asarray(produced[first["model"]]))
        if cls is not None:
            accuracy = float(np.mean(cls == labels_to_classes(ref.labels)))
    passed = all(c["passed"] for c in checks)
    unmeasured = any(c["passed"] is None for c in checks)  # a budget whose figure is not measurable here
    status = "error" if unmeasured else "pass" if passed else "fail"
    if not checks:
        verdict = (
            f"NO CHECK: {model_path or 'model'} ran on {ref.samples} reference inputs; "
            "no class output, no task budget (--min-iou, --min-snr-db ...) and no --max-abs-error to gate on"
        )
        status = "none"
    else:
        worst = [c for c in checks if not c["passed"]] or checks
        parts = []
        for c in worst:
            if c.get("text"):
                parts.append(c["text"])
                continue
            op = (
                ("<=" if c["name"] != "min_agreement" else ">=")
                if c["passed"]
                else (">" if c["name"] != "min_agreement" else "<")
            )
            parts.append(f"{c['name']} {c['output']}: {c['value']:.4g} {op} {c['threshold']:.4g}")
        verdict = (
            f"{'ERROR' if unmeasured else 'PASS' if passed else 'FAIL'}: "
            f"{Path(str(model_path)).name if model_path else 'model'} vs "
            f"reference ({ref.samples} examples, backend {loaded.backend}): " + "; ".join(parts)
        )
    for warning in (judged.get("task_metrics") or {}).get("warnings") or []:
        if warning not in verdict:  # a figure that could not be measured is never a silent pass
            verdict += f" (warning: {warning})"
    return {
        "reference": str(ref.path) if ref.path else None,
        "model": str(model_path) if model_path else None,
        "model_sha256": model_sha,
        "float_model": ref.meta.get("float_model"),
        "float_sha256": ref.meta.get("float_sha256"),
        "lineage": lineage_status,
        "samples": ref.samples,
        "backend": loaded.backend,
        "kernels": kernels,
        "reference_kernels": ref_kernels or None,
        "accuracy": accuracy,
        **{k: v for k, v in judged.items() if k not in ("checks", "classification")},
        "outputs": outputs,
        "checks": checks,
        "status": status,
        "exit_code": 2 if unmeasured else 0 if passed else 1,
        "verdict": verdict,
    }


def _output_step(spec: Any, build: np.ndarray) -> float:
    """One quantization step of an output; for a float output, 1e-4 of its largest magnitude.

    Kernels may legitimately differ by one rounding step between machines
    (XNNPACK versus reference kernels), and float outputs by accumulation order.
    """
    q = getattr(spec, "quantization", None)
    if q is not None:
        scale = q.scale if not isinstance(q.scale, tuple) else max(q.scale)
        if scale:
            return float(scale)
    peak = float(np.max(np.abs(build))) if build.size else 0.0
    return max(1e-4 * peak, 1e-7)
