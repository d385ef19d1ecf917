"""Parity: does the quantized TFLite model still do the float model's job?

Runs the float model (a SavedModel's ``serving_default`` or a Keras file, through
TensorFlow; a float ``.tflite`` through the edge_sdk runtime, no TensorFlow; an
``.onnx`` through ONNX Runtime) and the TFLite model (through ``edge_sdk.load``, the runtime devices
use) on the same inputs and reports:

* task accuracy of each and the drop in points (with labels);
* top-1 agreement between the two;
* per output: max and mean absolute error, relative L2 error, cosine similarity;
* per class: accuracy of each model and agreement, so a class the quantization
  hurt shows even when the overall figure looks fine;
* the worst examples by index;
* optionally the per-layer error of a fresh int8 conversion (``converters.debugger``).

Data (``load_eval_data``): a ``.npz`` with one array per input name (or ``x`` for a
one-input model) and optional labels ``y``; a ``.npy`` of inputs; or a built-in
dataset name (``digits``, ``mnist``, ``adult``: its test split via ``training.datasets``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from converters.calibration import dtype_mismatch
from converters.errors import DataError, first_line
from converters.inputs import InputKind, input_kind
from edge_sdk.metrics import label_classes
from edge_sdk.reference import (
    SignatureMismatchError,
    class_predictions,
    data_sha256,
    error_metrics,
    float_lineage,
    match_tensors,
    shape_text,
)
from training.names import DATASETS_TEXT

HISTOGRAM_BINS = 30
PathLike = str | Path


# ---------------------------------------------------------------------------------------------
# the float model


KIND_ONNX = "onnx"
# float models the TensorFlow tools (per-layer debugger, auto-tuner) cannot re-convert
NOT_TENSORFLOW_KINDS = ("tflite", KIND_ONNX)


class OnnxFloat:
    """A float ``.onnx`` model run through ONNX Runtime (CPU), as a parity reference."""

    kind = KIND_ONNX

    def __init__(self, path: Path):
        from edge_sdk.errors import MissingExtraError

        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtraError(
                "an .onnx float model runs through onnxruntime, which is not installed: pip install 'edge-sdk[convert]'"
            ) from None
        self.path = path
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            raise DataError(f"{path}: expected an ONNX model onnxruntime can load: {first_line(exc)}") from None

    @staticmethod
    def _shape(dims: Sequence[Any]) -> tuple[int | None, ...]:
        return tuple(d if isinstance(d, int) and d >= 0 else None for d in dims)

    @staticmethod
    def _dtype(type_name: str) -> str:
        # onnxruntime spells element types "tensor(float)", "tensor(int64)" ...
        inner = type_name[len("tensor(") : -1] if type_name.startswith("tensor(") else type_name
        return {"float": "float32", "double": "float64", "float16": "float16"}.get(inner, inner)

    def specs(self) -> tuple[list, list]:
        """(inputs as ``(name, shape, dtype)``, outputs as ``(name, shape)``)."""
        inputs = [(i.name, self._shape(i.shape), self._dtype(i.type)) for i in self.session.get_inputs()]
        outputs = [(o.name, self._shape(o.shape)) for o in self.session.get_outputs()]
        return inputs, outputs

    def run(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{output name: array}`` on ``batch``."""
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(None, dict(batch)), strict=False))


@dataclasses.dataclass
class FloatModel:
    """A float model with named inputs and outputs: Keras/SavedModel (TensorFlow), float .tflite or .onnx."""

    path: Path | None
    loaded: Any  # converters.model_files.LoadedModel, or an OnnxFloat
    inputs: list[tuple[str, tuple[int | None, ...], str]]  # name, shape, dtype
    outputs: list[tuple[str, tuple[int | None, ...]]]

    @property
    def kind(self) -> str:
        """``tf_keras``, ``keras3``, ``savedmodel``, ``tflite`` or ``onnx``."""
        return self.loaded.kind

    def require_tensorflow_model(self, what: str) -> None:
        """Raise a one-line error when ``what`` (a TensorFlow tool) cannot take this float model."""
        if self.kind in NOT_TENSORFLOW_KINDS:
            from edge_sdk.errors import EdgeSdkError

            raise EdgeSdkError(
                f"{what} re-quantizes the float model with TensorFlow and needs a Keras model or "
                f"SavedModel; got a .{self.kind} file ({self.path})"
            )

    @property
    def input_names(self) -> list[str]:
        """Input names in order."""
        return [name for name, _, _ in self.inputs]

    def sha256s(self) -> list[str]:
        """sha256 of this model (file or SavedModel tree), then its manifest's and its ancestors'."""
        return float_lineage(self.path) if self.path is not None else []

    def predict_all(
        self, inputs: Mapping[str, np.ndarray], batch_size: int = 256, progress: bool = False
    ) -> dict[str, np.ndarray]:
        """Run the model on ``{input name: array}``; returns ``{output name: float32 array}``."""
        from edge_sdk.console import progress as bar

        tf = None if self.kind in NOT_TENSORFLOW_KINDS else _tensorflow()

        n = len(next(iter(inputs.values())))
        # a model exported with a fixed batch (PyTorch's default: 1; its Reshape to [1, 7, -1] fails on
        # 64 rows) takes batches of exactly that size
        fixed = {shape[0] for _, shape, _ in self.inputs if shape and isinstance(shape[0], int) and shape[0] > 0}
        if fixed and self.kind != "tflite":  # the light runtime feeds a .tflite row by row itself
            batch_size = min(fixed)
        chunks: dict[str, list[np.ndarray]] = {name: [] for name, _ in self.outputs}
        starts = range(0, n, batch_size)
        for start in bar(starts, "float model", total=len(starts), enabled=progress):
            batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
            try:
                result = self._call(tf, batch)
            except Exception as exc:  # noqa: BLE001 - TF raises many types; one line, no traceback
                raise DataError(f"the float model {self.path or ''} failed on the data: {first_line(exc)}") from None
            for name, _ in self.outputs:
                chunks[name].append(np.asarray(result[name], dtype=np.float32))
        return {name: np.concatenate(parts, axis=0) for name, parts in chunks.items()}

    def _call(self, tf, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if self.kind == KIND_ONNX:
            return self.loaded.run(batch)
        if self.kind == "tflite":
            if not hasattr(self, "_runtime"):
                import edge_sdk

                self._runtime = edge_sdk.load(self.loaded.tflite_bytes, num_threads=1)
            return self._runtime.predict_all(dict(batch))
        if self.loaded.kind == "savedmodel":
            fn = self.loaded.model.signatures["serving_default"]
            out = fn(**{k: tf.constant(v) for k, v in batch.items()})
            return {k: v.numpy() for k, v in out.items()}
        model = self.loaded.model
        feed = batch if len(batch) > 1 else next(iter(batch.values()))
        out = model(feed, training=False)
        if isinstance(out, Mapping):
            return {k: np.asarray(v) for k, v in out.items()}
        if not isinstance(out, (list, tuple)):
            out = [out]
        return {name: np.asarray(v) for (name, _), v in zip(self.outputs, out, strict=False)}


def _tensorflow():
    from converters._tf import tf

    return tf


def load_float_model(path_or_model: Any) -> FloatModel:
    """Load a SavedModel directory, a .keras/.h5 file, a float .tflite or an .onnx (or wrap a Keras model or a LoadedModel)."""
    from converters.model_files import KIND_TFLITE, LoadedModel, load

    if isinstance(path_or_model, FloatModel):
        return path_or_model
    if isinstance(path_or_model, (str, Path)) and input_kind(path_or_model) is InputKind.ONNX:
        path = Path(path_or_model)
        if not path.is_file():
            raise DataError(f"float model {path}: no such file (expected an .onnx file)")
        onnx_model = OnnxFloat(path)
        inputs, outputs = onnx_model.specs()
        return FloatModel(path, onnx_model, inputs, outputs)
    loaded = path_or_model if isinstance(path_or_model, LoadedModel) else load(path_or_model)
    if isinstance(path_or_model, LoadedModel):
        path_or_model = loaded.path
    inputs = [(s.name, tuple(s.shape), s.dtype) for s in loaded.inputs]
    if loaded.kind == KIND_TFLITE:
        import edge_sdk

        runtime = edge_sdk.load(loaded.tflite_bytes, verify=False)
        outputs = [(spec.name, tuple(spec.shape)) for spec in runtime.outputs]
    elif loaded.kind == "savedmodel":
        structured = loaded.model.signatures["serving_default"].structured_outputs
        outputs = [(name, _dims(spec.shape)) for name, spec in sorted(structured.items())]
    else:
        model = loaded.model
        names = list(getattr(model, "output_names", None) or [])
        tensors = list(model.outputs)
        if len(names) != len(tensors):
            names = [f"output_{i}" for i in range(len(tensors))]
        outputs = [(name, _dims(t.shape)) for name, t in zip(names, tensors, strict=False)]
    model_path = Path(path_or_model) if isinstance(path_or_model, (str, Path)) else None
    return FloatModel(model_path, loaded, inputs, outputs)


def _dims(shape: Any) -> tuple[int | None, ...]:
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    return tuple(None if d is None or int(d) < 0 else int(d) for d in dims)


# ---------------------------------------------------------------------------------------------
# data


@dataclasses.dataclass
class EvalData:
    """Inputs keyed by the float model's input names, optional labels, where they came from."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str
    class_names: list[str] | None = None

    @property
    def samples(self) -> int:
        """Number of examples."""
        return int(len(next(iter(self.inputs.values()))))


def _read_arrays(data: Any) -> tuple[dict[str, np.ndarray], np.ndarray | None, str, list[str] | None]:
    """Raw arrays from a path, a dataset name, an array or a dict; no checks against models yet."""
    if isinstance(data, np.ndarray):
        return {"x": data}, None, "array", None
    if isinstance(data, Mapping):
        arrays = {k: np.asarray(v) for k, v in data.items()}
        labels = arrays.pop("y", None)
        return arrays, labels, "arrays", None
    text = str(data)
    path = Path(text)
    if path.suffix.lower() in (".npz", ".npy") or path.exists():
        if not path.is_file():
            raise DataError(
                f"data file {path}: no such file (expected a .npz/.npy file or a dataset name such as {DATASETS_TEXT})"
            )
        try:
            loaded = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - numpy raises several types for bad files
            raise DataError(f"data {path}: expected a .npz or .npy file, could not read it ({exc})") from None
        if isinstance(loaded, np.ndarray):
            return {"x": loaded}, None, str(path), None
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
        labels = arrays.pop("y", None)
        return arrays, labels, str(path), None
    return _dataset_arrays(text, "test")


def _dataset_arrays(name: str, split: str):
    try:
        from training import datasets
    except ImportError as exc:
        raise DataError(
            f"data {name!r}: not a file, and the built-in datasets are not available ({exc}); expected a .npz/.npy file"
        ) from None
    try:
        ds = datasets.load(name, seed=0)
    except Exception as exc:  # noqa: BLE001 - an unknown name or a missing file
        raise DataError(
            f"data {name!r}: expected a .npz/.npy file or a dataset name ({DATASETS_TEXT}); {first_line(exc)}"
        ) from None
    x = getattr(ds, f"x_{split}")
    y = getattr(ds, f"y_{split}")
    arrays = dict(x) if isinstance(x, Mapping) else {"x": x}
    labels = getattr(ds, "labels", None)
    return arrays, np.asarray(y), f"{name} ({split} split)", (list(labels) if labels is not None else None)


def load_eval_data(
    data: Any,
    float_inputs: Sequence[tuple[str, tuple[int | None, ...], str]],
    quantized_inputs: Sequence[tuple[str, tuple[int | None, ...]]] | None = None,
    *,
    labels: Any = None,
    limit: int | None = None,
    split: str = "test",
) -> EvalData:
    """Load evaluation data and check it against both models' inputs.

    ``data``: a .npz/.npy path, a dataset name (its ``split``), an array or a dict;
    ``float_inputs``: the float model's ``(name, shape, dtype)``; ``quantized_inputs``:
    the quantized model's ``(name, shape)`` in the same order, checked too when given.
    ``labels`` (a path to .npy or an array) replaces any ``y`` in the data.
    ``limit`` keeps the first N examples. Raises :class:`DataError` naming the
    data's shapes and what each model expects.
    """
    if split != "test" and isinstance(data, str) and not Path(data).suffix:
        arrays, y, source, class_names = _dataset_arrays(data, split)
    else:
        arrays, y, source, class_names = _read_arrays(data)
    names = [n for n, _, _ in float_inputs]
    if len(names) == 1 and names[0] not in arrays:
        for alias in ("x", "arr_0"):
            if alias in arrays:
                arrays = {names[0]: arrays[alias]}
                break
        else:
            if len(arrays) == 1:
                arrays = {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise DataError(
            f"data {source}: expected arrays for input(s) {names} (or 'x' for a one-input model), "
            f"got keys {sorted(arrays)}"
        )
    inputs = {n: np.asarray(arrays[n]) for n in names}

    def expected_text():
        text = "float model expects " + ", ".join(f"{n}{shape_text(s)}" for n, s, _ in float_inputs)
        if quantized_inputs is not None:
            text += "; quantized model expects " + ", ".join(f"{n}{shape_text(s)}" for n, s in quantized_inputs)
        return text

    def fits(arr, shape):
        return arr.ndim == len(shape) and all(
            w is None or w == g for w, g in zip(shape[1:], arr.shape[1:], strict=False)
        )

    q_shapes = [s for _, s in quantized_inputs] if quantized_inputs is not None else None
    for i, (name, shape, dtype) in enumerate(float_inputs):
        arr = inputs[name]
        ok_float = fits(arr, shape)
        ok_quant = q_shapes is None or fits(arr, q_shapes[i])
        if not (ok_float and ok_quant):
            who = (
                "either model"
                if not ok_float and not ok_quant
                else ("the float model" if not ok_float else "the quantized model")
            )
            raise DataError(
                f"data {source}: input {name!r} has shape {tuple(arr.shape)}, which does not fit "
                f"{who}: {expected_text()}"
            )
        if arr.dtype.kind not in "fiub":
            raise DataError(f"data {source}: input {name!r} has dtype {arr.dtype}; expected numbers ({dtype})")
        problem = dtype_mismatch(arr, dtype, shape)  # integers for a float input are refused, as convert does
        if problem:
            raise DataError(f"data {source} for input {name!r}: {problem}")
        if np.dtype(dtype).kind == "f":
            inputs[name] = arr.astype(dtype, copy=False)
    lengths = {len(a) for a in inputs.values()}
    if len(lengths) != 1:
        raise DataError(f"data {source}: inputs have different numbers of examples {sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        raise DataError(f"data {source}: expected at least one example, got 0")
    if labels is not None:
        y = _load_labels(labels)
        source_labels = str(labels) if isinstance(labels, (str, Path)) else "labels"
    else:
        source_labels = f"{source} 'y'"
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != n:
            raise DataError(
                f"labels ({source_labels}): expected {n} labels, one per example, got {0 if y.ndim == 0 else len(y)}"
            )
    if limit is not None:
        if limit < 1:
            raise DataError(f"--samples: expected at least 1, got {limit}")
        inputs = {k: v[:limit] for k, v in inputs.items()}
        y = y[:limit] if y is not None else None
    return EvalData(inputs, y, source, class_names)


def _load_labels(labels: Any) -> np.ndarray:
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        if not path.is_file():
            raise DataError(f"labels file {path}: no such file (expected a .npy of class ids)")
        try:
            loaded = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
            raise DataError(f"labels {path}: expected a .npy file, could not read it ({exc})") from None
        if not isinstance(loaded, np.ndarray):
            with loaded:
                if "y" not in loaded.files:
                    raise DataError(f"labels {path}: expected a .npy, or a .npz with 'y'; got keys {loaded.files}")
                loaded = loaded["y"]
        return loaded
    return np.asarray(labels)


# ---------------------------------------------------------------------------------------------
# the comparison


def compare_outputs(
    float_outputs: Mapping[str, np.ndarray],
    quantized_outputs: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    labels: np.ndarray | None = None,
    *,
    worst: int = 10,
    class_names: Sequence[str] | None = None,
    label_source: str = "labels",
    task: Any = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    head: str = "auto",
    score_threshold: float = 0.25,
    declared_by: str = "--task",
) -> dict[str, Any]:
    """All parity figures from two models' outputs on the same examples.

    ``float_outputs``/``quantized_outputs``: ``{output name: array}`` of each model;
    ``pairs`` is ``[(float output name, quantized output name)]``; the first pair
    is the primary output used for accuracy, agreement, classes and worst examples.
    ``labels``: class ids (or one-hot rows) of the examples, refused with a
    :class:`edge_sdk.metrics.LabelError` naming ``label_source`` when they hold
    classes the primary output does not have; ``worst``: how many worst examples to
    list; ``class_names``: names for the per-class rows.
    ``task`` (an :class:`edge_sdk.tasks.Task`, a name, or None: inferred from the outputs; ``declared_by``
    says where a given one came from, for the report's ``task.why``) picks
    the task metrics (``task_metrics``); only a classifier gets argmax agreement, accuracy and
    per-class rows, and its ``labels`` are class ids; other tasks take labels as
    :func:`edge_sdk.tasks.task_metrics` says. ``inputs`` (the examples) feed the autoencoder's
    score; ``head``/``score_threshold``: detection decoding. Every result lists ``wipeouts``:
    outputs (or channel groups) quantization collapsed (:func:`edge_sdk.tasks.find_wipeouts`).
    """
    from edge_sdk import tasks as task_lib

    task, task_why = task_lib.infer_task(inputs or {}, {f: float_outputs[f] for f, _ in pairs}, task, declared_by)
    is_classifier = task in (task_lib.Task.CLASSIFICATION, task_lib.Task.MULTILABEL)
    task_labels = None if task == task_lib.Task.CLASSIFICATION else labels
    if not is_classifier:
        labels = None  # never argmax or count classes over an output that is not class scores
    outputs = []
    for f_name, q_name in pairs:
        entry = {
            "float": f_name,
            "quantized": q_name,
            **error_metrics(float_outputs[f_name], quantized_outputs[q_name]),
        }
        outputs.append(entry)
    f_primary = np.asarray(float_outputs[pairs[0][0]])
    q_primary = np.asarray(quantized_outputs[pairs[0][1]])
    n = f_primary.shape[0]
    f_cls = class_predictions(f_primary) if task == task_lib.Task.CLASSIFICATION else None
    q_cls = class_predictions(q_primary) if task == task_lib.Task.CLASSIFICATION else None
    summary: dict[str, Any] = {
        "primary_output": pairs[0][0],
        "samples": int(n),
        "float_accuracy": None,
        "quantized_accuracy": None,
        "accuracy_drop_points": None,
        "top1_agreement": None,
    }
    classes = None
    if f_cls is not None and q_cls is not None:  # outputs matched by shape: both or neither
        agree = f_cls == q_cls
        summary["top1_agreement"] = float(agree.mean())
        summary["disagreements"] = int((~agree).sum())
        if labels is not None:
            classes = label_classes(labels, f_primary, label_source)  # y=57 on 10 classes is refused
            f_ok, q_ok = f_cls == classes, q_cls == classes
            summary["float_accuracy"] = float(f_ok.mean())
            summary["quantized_accuracy"] = float(q_ok.mean())
            summary["accuracy_drop_points"] = (summary["float_accuracy"] - summary["quantized_accuracy"]) * 100.0
    per_example = np.abs(q_primary.astype(np.float64) - f_primary.astype(np.float64)).reshape(n, -1)
    example_error = per_example.max(axis=1)
    per_class = _per_class(f_cls, q_cls, classes, class_names) if f_cls is not None and q_cls is not None else []
    order = np.argsort(-example_error, kind="stable")[: max(0, worst)]
    worst_rows = []
    for idx in order:
        row = {
            "index": int(idx),
            "max_abs_error": float(example_error[idx]),
            "mean_abs_error": float(per_example[idx].mean()),
        }
        if f_cls is not None and q_cls is not None:
            row.update(
                {
                    "float_class": int(f_cls[idx]),
                    "quantized_class": int(q_cls[idx]),
                    "agree": bool(f_cls[idx] == q_cls[idx]),
                }
            )
            if classes is not None:
                row["label"] = int(classes[idx])
        worst_rows.append(row)
    all_errors = per_example.reshape(-1)
    hi = float(all_errors.max()) if all_errors.size else 0.0
    counts, edges = np.histogram(all_errors, bins=HISTOGRAM_BINS, range=(0.0, hi if hi > 0 else 1.0))
    tm = task_lib.task_metrics(
        task,
        float_outputs,
        quantized_outputs,
        pairs,
        inputs=inputs,
        labels=task_labels if task != task_lib.Task.CLASSIFICATION else labels,
        head=head,
        score_threshold=score_threshold,
    )
    summary["task"] = task.value
    return {
        "summary": summary,
        "task": {"name": task.value, "why": task_why},
        "task_metrics": tm.to_dict(),
        "task_rows": tm.rows(),
        "wipeouts": task_lib.find_wipeouts(float_outputs, quantized_outputs, pairs),
        "outputs": outputs,
        "per_class": per_class,
        "per_class_basis": "label" if classes is not None else "float model's prediction",
        "worst_examples": worst_rows,
        "error_histogram": {
            "output": pairs[0][0],
            "edges": edges.tolist(),
            "counts": counts.tolist(),
            "what": "absolute error of every element of the primary output",
        },
    }


def _per_class(f_cls, q_cls, classes, class_names) -> list[dict[str, Any]]:
    basis = classes if classes is not None else f_cls
    rows = []
    for c in np.unique(basis):
        mask = basis == c
        row: dict[str, Any] = {
            "class": int(c),
            "count": int(mask.sum()),
            "agreement": float(np.mean(f_cls[mask] == q_cls[mask])),
        }
        if class_names is not None and 0 <= int(c) < len(class_names):
            row["name"] = str(class_names[int(c)])
        if classes is not None:
            row["float_accuracy"] = float(np.mean(f_cls[mask] == c))
            row["quantized_accuracy"] = float(np.mean(q_cls[mask] == c))
            row["drop_points"] = (row["float_accuracy"] - row["quantized_accuracy"]) * 100.0
        rows.append(row)
    return rows


def run_parity(
    float_model: PathLike | FloatModel,
    quantized: PathLike | Any,
    data: Any,
    *,
    labels: Any = None,
    limit: int | None = None,
    worst: int = 10,
    layers: bool = False,
    calibration: Any = None,
    calibration_samples: int = 200,
    num_threads: int | None = None,
    progress: bool = True,
    slice_by: Sequence[str] = (),
    min_slice_count: int | None = None,
    task: Any = None,
    head: str = "auto",
    score_threshold: float = 0.25,
) -> dict[str, Any]:
    """Compare ``float_model`` and the TFLite ``quantized`` on ``data``; return the JSON-ready result.

    ``task``: the model's task (a name or :class:`edge_sdk.tasks.Task`; None or ``auto``: the
    quantized model's manifest ``task``, else inferred); ``head``/``score_threshold``: detection decoding.

    ``data``: as :func:`load_eval_data`; ``labels``: replaces its ``y``; ``limit``: the
    first N examples; ``worst``: how many worst examples to list; ``num_threads``:
    interpreter threads for the .tflite; ``progress``: bars and lines on stderr.
    ``slice_by``/``min_slice_count``: sliced evaluation (:mod:`edge_sdk.slices`), in ``result["slices"]``.
    With ``layers``, also run :func:`converters.debugger.layer_errors` on a fresh
    int8 conversion of the float model, calibrated on ``calibration`` (default:
    the first ``calibration_samples`` examples of ``data``).
    """
    import edge_sdk
    from edge_sdk.inspect_model import inspect_model

    fm = float_model if isinstance(float_model, FloatModel) else load_float_model(float_model)
    if isinstance(quantized, str | Path) or not hasattr(quantized, "predict_all"):
        qm = edge_sdk.load(quantized, num_threads=num_threads)
    else:
        qm = quantized  # a loaded Model (or anything with its predict_all, inputs, outputs, model_bytes)
    q_inputs = [(s.name, tuple(s.shape)) for s in qm.inputs]
    q_outputs = [(s.name, tuple(s.shape)) for s in qm.outputs]
    in_pairs = match_tensors([(n, s) for n, s, _ in fm.inputs], q_inputs, "input")
    out_pairs = match_tensors(fm.outputs, q_outputs, "output")
    check_input_dtypes(fm, qm, in_pairs)
    from edge_sdk.tasks import check_task_outputs, parse_task

    declared = parse_task(task)
    declared_by = "--task"
    if declared is None and (getattr(qm, "manifest", None) or {}).get("task"):
        declared, declared_by = parse_task(qm.manifest["task"]), "the quantized model's manifest"
    q_output_shapes = dict(q_outputs)
    check_task_outputs(declared, [(q, q_output_shapes[q]) for _, q in out_pairs], declared_by)  # before any run

    q_shapes = dict(q_inputs)
    ev = load_eval_data(data, fm.inputs, [(q, q_shapes[q]) for _, q in in_pairs], labels=labels, limit=limit)
    _say(progress, f"parity: {ev.samples} examples from {ev.source}")
    t0 = time.perf_counter()
    float_out = fm.predict_all(ev.inputs, progress=progress)
    t1 = time.perf_counter()
    feed = {q: ev.inputs[f] for f, q in in_pairs}
    quant_out = _predict_tflite(qm, feed, progress)
    t2 = time.perf_counter()
    for f_name, q_name in out_pairs:
        if float_out[f_name].shape != quant_out[q_name].shape:
            raise SignatureMismatchError(
                f"output {f_name} of the float model has shape {float_out[f_name].shape} but the quantized "
                f"model's {q_name} has {quant_out[q_name].shape} on the same data"
            )
    class_names = ev.class_names
    if class_names is None and getattr(qm, "manifest", None):
        class_names = qm.manifest.get("labels")
    label_source = (
        (str(labels) if isinstance(labels, (str, Path)) else "labels")
        if labels is not None
        else f"labels ({ev.source} 'y')"
    )
    result = compare_outputs(
        float_out,
        quant_out,
        out_pairs,
        ev.labels,
        worst=worst,
        class_names=class_names,
        label_source=label_source,
        task=declared,
        declared_by=declared_by,
        inputs=ev.inputs,
        head=head,
        score_threshold=score_threshold,
    )
    if slice_by:
        result["slices"] = _slices(
            slice_by,
            min_slice_count,
            ev,
            float_out[out_pairs[0][0]],
            quant_out[out_pairs[0][1]],
            qm,
            class_names,
            label_source,
        )
    info = inspect_model(qm.model_bytes)
    result.update(
        {
            "float_model": {
                "path": str(fm.path) if fm.path else None,
                "kind": fm.kind,
                "sha256": next(iter(fm.sha256s()), None),
                # a float16 / int8-weight .tflite runs as its float32 parent (exact, or a proxy)
                "float_parent": getattr(fm.loaded, "float_parent", None),
            },
            "quantized_model": {
                "path": str(qm.path) if qm.path else None,
                "sha256": qm.sha256,
                "size_bytes": qm.size_bytes,
                "kind": info.get("kind"),
                "backend": qm.backend,
                "float_ops": info.get("float_ops"),
                "integer_ops": info.get("integer_ops"),
            },
            "data": {
                "source": ev.source,
                "samples": ev.samples,
                "sha256": data_sha256(ev.inputs),
                "has_labels": ev.labels is not None,
            },
            "timing_seconds": {"float": round(t1 - t0, 3), "quantized": round(t2 - t1, 3)},
            "layers": None,
        }
    )
    if layers and fm.kind in NOT_TENSORFLOW_KINDS:
        result["layers_note"] = (
            f"no per-layer errors: they come from TensorFlow's QuantizationDebugger, which needs "
            f"a Keras model or SavedModel as the float model, not a .{fm.kind} file"
        )
    elif layers:
        from converters.debugger import layer_errors

        cal = _calibration_inputs(calibration, fm, ev, calibration_samples)
        _say(
            progress,
            f"parity: per-layer error of a fresh int8 conversion ({len(next(iter(cal.values())))} "
            "calibration examples)",
        )
        result["layers"] = [row.to_dict() for row in layer_errors(fm.loaded, cal)]
        result["layers_note"] = (
            "per-layer errors come from TFLite's QuantizationDebugger on a fresh full-int8 "
            "conversion of the float model, not from the quantized file itself"
        )
    return result


def _slices(slice_by, min_slice_count, ev: EvalData, f_primary, q_primary, qm, class_names, label_source):
    """Sliced evaluation of the primary output (:func:`edge_sdk.slices.sliced_evaluation`)."""
    from edge_sdk.slices import MIN_SLICE_COUNT, sliced_evaluation

    classes = label_classes(ev.labels, f_primary, label_source) if ev.labels is not None else None
    preprocessing = (getattr(qm, "manifest", None) or {}).get("preprocessing")
    return sliced_evaluation(
        list(slice_by),
        ev.inputs,
        class_predictions(f_primary),
        class_predictions(q_primary),
        classes,
        preprocessing=preprocessing,
        class_names=class_names,
        min_count=MIN_SLICE_COUNT if min_slice_count is None else min_slice_count,
    )


def check_input_dtypes(fm: FloatModel, qm: Any, in_pairs: Sequence[tuple[str, str]]) -> None:
    """Refuse two models whose paired inputs cannot take the same data (one line naming both dtypes).

    A quantized input (int8/int16 with a scale) takes the float model's float data: the runtime
    quantizes it. Otherwise float must meet float and integer meet integer (token ids stay ids).
    """
    q_specs = {s.name: s for s in qm.inputs}
    for f_name, q_name in in_pairs:
        f_dtype = np.dtype(next(d for n, _, d in fm.inputs if n == f_name))
        q_spec = q_specs[q_name]
        q_dtype = np.dtype(q_spec.dtype)
        if f_dtype.kind == q_dtype.kind or (f_dtype.kind == "f" and q_spec.quantization is not None):
            continue
        if f_dtype.kind in "iu" and q_dtype.kind in "iu":
            continue  # int32 vs int64 token ids: the same numbers
        raise SignatureMismatchError(
            f"input {f_name!r} of the float model takes {f_dtype.name} but input {q_name!r} of the quantized model "
            f"takes {q_dtype.name}"
            + ("" if q_spec.quantization is None else " (quantized)")
            + ": the two models cannot be fed the same data; expected the quantized model of this float model"
        )


def _calibration_inputs(calibration: Any, fm: FloatModel, ev: EvalData, samples: int) -> dict[str, np.ndarray]:
    if calibration is None:
        return {k: v[:samples] for k, v in ev.inputs.items()}
    cal = load_eval_data(calibration, fm.inputs, split="train")
    return {k: v[:samples] for k, v in cal.inputs.items()}


def _predict_tflite(model: Any, feed: Mapping[str, np.ndarray], progress: bool, batch_size: int = 256):
    from edge_sdk.console import progress as bar

    n = len(next(iter(feed.values())))
    parts: dict[str, list[np.ndarray]] = {}
    starts = range(0, n, batch_size)
    for start in bar(starts, "quantized model", total=len(starts), enabled=progress):
        out = model.predict_all({k: v[start : start + batch_size] for k, v in feed.items()})
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr)


def summary_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    """Rows ``[metric, value]`` for the human table of a parity result."""
    s = result["summary"]
    rows: list[list[Any]] = [["examples", s["samples"]]]
    task_rows = [list(r) for r in result.get("task_rows") or []]
    if s.get("task") == "classification":  # accuracy and agreement follow below, as before
        task_rows = [r for r in task_rows if r[0] == "task" or r[0].startswith("top") and r[0] != "top1 agreement"]
    rows += task_rows
    for w in result.get("wipeouts") or []:
        rows.append(["WIPED OUT", w["what"]])
    if s.get("float_accuracy") is not None:
        rows += [
            ["float accuracy", s["float_accuracy"]],
            ["quantized accuracy", s["quantized_accuracy"]],
            ["accuracy drop (points)", round(s["accuracy_drop_points"], 3)],
        ]
    if s.get("top1_agreement") is not None:
        rows.append(["top-1 agreement", s["top1_agreement"]])
    return rows
