"""Run a recipe end to end: every stage writes its model and manifest, then a table.

    result = run(recipe, "model.keras" | "cnn", dataset="mnist", out="out/")

Flow: the input model (a file, or a zoo model trained on the fly) is converted
to a float32 .tflite reference; then, as the recipe says, ``distill`` trains a
small student from it (and, for comparison, the same student without
distillation), ``prune`` prunes the current model, ``quantize`` converts it
(dynamic / float16 / int8, optionally after QAT) and, with ``include_input``,
the unpruned input model too. Each artifact gets a manifest (sha256, sizes,
I/O specs with quantization, labels, preprocessing, parent sha256, recipe,
accuracy on the eval split, calibration stats, tool versions).

Everything is built in a staging directory beside ``--out`` and only renamed
into place when all stages and every ``before_promote`` hook passed
(``edge_sdk.fileio.atomic_output_dir``): a killed or failed run leaves ``--out``
as it was. Hooks receive the :class:`PipelineResult` (artifacts, their eval
results and the staging directory) and may raise an ``EdgeSdkError`` to stop
promotion; quality gates (issue 5) plug in there.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from converters import recipe as recipes
from converters._train import build_record
from converters.calibration import as_input_dict, load_data_file, range_warnings
from converters.errors import CalibrationError, ConversionError, DataError, StageNotApplicableError
from converters.loading import LoadedModel
from edge_sdk.fileio import atomic_output_dir, atomic_write_bytes, atomic_write_text, sha256_bytes
from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest

TOOL_MODULES = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnx", "onnxruntime")
ZOO_NAMES = ("cnn", "cnn-student", "wide-deep")
SUMMARY_FILE = "summary.json"
PID_FILE = ".convert.pid"  # inside staging only: lets a later run clean up after a killed one


# ------------------------------------------------------------------------------------------------
# data and results
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    """The arrays a run needs, as ``{input name: array}`` plus labels."""

    train_x: Optional[Dict[str, np.ndarray]] = None
    train_y: Optional[np.ndarray] = None
    eval_x: Optional[Dict[str, np.ndarray]] = None
    eval_y: Optional[np.ndarray] = None
    calibration_x: Optional[Dict[str, np.ndarray]] = None
    calibration_source: str = ""
    eval_source: str = ""
    labels: Optional[List[str]] = None
    preprocessing: Optional[Dict[str, Any]] = None
    dataset: Any = None


@dataclasses.dataclass
class Artifact:
    """One model the run produced, with its manifest and eval results."""

    name: str
    file: str
    kind: str
    stage: str
    sha256: str
    size_bytes: int
    gzip_size_bytes: int
    parent: Optional[str]
    metrics: Dict[str, Any]
    manifest: Dict[str, Any]
    keras_model: Any = None  # the float Keras model this artifact came from, when there is one

    def row(self) -> Dict[str, Any]:
        """The artifact as a summary row."""
        return {
            "artifact": self.name, "file": self.file, "stage": self.stage, "kind": self.kind,
            "size_bytes": self.size_bytes, "gzip_size_bytes": self.gzip_size_bytes,
            "accuracy": self.metrics.get("accuracy"), "latency_us": self.metrics.get("latency_us"),
            "params": self.metrics.get("params"), "sparsity": self.metrics.get("sparsity"),
            "sha256": self.sha256, "parent_sha256": self.parent,
        }


@dataclasses.dataclass
class PipelineResult:
    """Artifacts and comparisons of one run; ``out`` is set once promoted."""

    recipe: recipes.Recipe
    artifacts: List[Artifact]
    comparisons: Dict[str, Any]
    warnings: List[str]
    staging: Path
    out: Optional[Path] = None
    seconds: float = 0.0

    def get(self, name: str) -> Optional[Artifact]:
        """The artifact called ``name``, if the run produced it."""
        return next((a for a in self.artifacts if a.name == name), None)

    def path(self, name: str) -> Path:
        """Where artifact ``name`` lives (in ``out`` after promotion, else in staging)."""
        artifact = self.get(name)
        if artifact is None:
            raise KeyError(f"no artifact {name!r}; have {[a.name for a in self.artifacts]}")
        return (self.out or self.staging) / artifact.file

    def summary(self) -> Dict[str, Any]:
        """JSON summary: recipe, one row per artifact, comparisons, warnings, timing."""
        return {
            "recipe": self.recipe.to_dict(),
            "artifacts": [a.row() for a in self.artifacts],
            "comparisons": self.comparisons,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 1),
            "out": str(self.out) if self.out else None,
        }

    def table(self) -> str:
        """The end-of-run table: one row per artifact."""
        from edge_sdk.report import format_table

        reference = self.get("float32")
        rows = []
        for a in self.artifacts:
            ratio = a.size_bytes / reference.size_bytes if reference and a.file.endswith(".tflite") else None
            acc = a.metrics.get("accuracy")
            rows.append([
                a.name, a.stage, a.kind, a.size_bytes, a.gzip_size_bytes,
                f"{ratio:.3f}" if ratio is not None else None,
                f"{100 * acc:.2f}%" if acc is not None else None,
                f"{a.metrics['latency_us']:.0f}" if a.metrics.get("latency_us") is not None else None,
                f"{a.metrics['sparsity']:.0%}" if a.metrics.get("sparsity") is not None else None,
            ])
        return format_table(rows, ["artifact", "stage", "kind", "bytes", "gzip bytes", "x float32",
                                   "accuracy", "latency us", "sparsity"])


class Progress:
    """Step lines and per-epoch bars on stderr (tqdm when installed)."""

    def __init__(self, enabled: bool = True, total_steps: int = 0):
        self.enabled = enabled
        self.step = 0
        self.total = total_steps
        self.started = time.perf_counter()

    def say(self, message: str) -> None:
        """Print one progress line to stderr."""
        if self.enabled:
            self.step += 1
            elapsed = time.perf_counter() - self.started
            total = f"/{self.total}" if self.total else ""
            print(f"[convert {self.step}{total} {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        """Print a warning to stderr (always)."""
        print(f"warning: {message}", file=sys.stderr, flush=True)

    def epochs(self, desc: str, epochs: int) -> List[Any]:
        """A Keras callback list showing one tqdm bar per training run."""
        if not self.enabled:
            return []
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return []
        from converters._tf import tf_keras

        class EpochBar(tf_keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(total=epochs, desc=f"  {desc}", unit="epoch", file=sys.stderr, leave=False, disable=None)

            def on_epoch_end(self, epoch, logs=None):
                self.bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.4f}")
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()

        return [EpochBar()]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _dataset_inputs(x: Any, specs: Sequence[Any], purpose: str) -> Dict[str, np.ndarray]:
    return as_input_dict(x, specs, purpose=purpose, error=DataError)


def _tree_digest(directory: Path) -> tuple:
    """(digest bytes, total size, gzip size) of a directory artifact such as a SavedModel."""
    lines = []
    total = gz = 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        lines.append(f"{path.relative_to(directory).as_posix()}\0{sha256_bytes(data)}\n")
        total += len(data)
        gz += len(gzip.compress(data, compresslevel=9, mtime=0))
    return "".join(lines).encode(), total, gz


def tflite_accuracy(tflite: bytes, eval_x: Dict[str, np.ndarray], eval_y: np.ndarray) -> float:
    """Accuracy of a .tflite (through ``edge_sdk.load``) on the eval split."""
    import edge_sdk
    from converters._train import accuracy

    model = edge_sdk.load(tflite, verify=False, num_threads=1)
    outputs = []
    n = len(eval_y)
    for start in range(0, n, 256):
        batch = {k: v[start : start + 256] for k, v in eval_x.items()}
        outputs.append(np.asarray(model.predict(batch if len(batch) > 1 else next(iter(batch.values())))))
    return accuracy(np.concatenate(outputs, axis=0), eval_y)


def tflite_latency_us(tflite: bytes, sample: Dict[str, np.ndarray], runs: int) -> Optional[float]:
    """Median microseconds of a single-sample ``predict`` through ``edge_sdk.load`` (1 thread); None for 0 runs."""
    from converters.autotune import measure_latency_us

    if runs <= 0:
        return None
    return measure_latency_us(tflite, {k: v[:1] for k, v in sample.items()}, runs=runs, warmup=3)


def _float_input_specs(model: LoadedModel) -> List[Dict[str, Any]]:
    """Manifest input entries for a float model (-1 marks a dynamic dimension, as for .tflite)."""
    return [{"name": s.name, "shape": [-1 if d is None else int(d) for d in s.shape], "dtype": s.dtype,
             "quantization": None} for s in model.inputs]


def _float_output_specs(model: LoadedModel) -> List[Dict[str, Any]]:
    """Manifest output entries for a Keras model (empty when the model does not say)."""
    outputs = getattr(model.model, "outputs", None) or []
    names = list(getattr(model.model, "output_names", None) or [])
    specs = []
    for i, tensor in enumerate(outputs):
        name = names[i] if i < len(names) else getattr(tensor, "name", f"output_{i}").split(":")[0].split("/")[0]
        specs.append({"name": name, "shape": [-1 if d is None else int(d) for d in tensor.shape],
                      "dtype": getattr(tensor.dtype, "name", str(tensor.dtype)), "quantization": None})
    return specs


def _tflite_specs(tflite: bytes) -> tuple:
    import edge_sdk

    model = edge_sdk.load(tflite, verify=False)
    return model.inputs, model.outputs


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------
class _Run:
    """State of one pipeline run (kept out of the public API)."""

    def __init__(self, recipe: recipes.Recipe, data: Data, staging: Path, progress: Progress, seed: int):
        self.recipe = recipe
        self.data = data
        self.staging = staging
        self.progress = progress
        self.seed = seed
        self.artifacts: List[Artifact] = []
        self.warnings: List[str] = []
        self.latency_runs = recipe.section("export")["latency_runs"]

    def warn(self, message: str) -> None:
        """Record ``message`` for the summary and print it now (once: repeats are dropped)."""
        if message not in self.warnings:
            self.warnings.append(message)
            self.progress.warn(message)

    # -- writing ---------------------------------------------------------------------------------
    def _manifest(self, data_bytes: bytes, file: str, *, kind: str, stage: str, inputs=(), outputs=(),
                  parent: Optional[str] = None, metrics=None, calibration=None, **extra) -> Dict[str, Any]:
        return build_manifest(
            data_bytes, file, kind=kind, stage=stage, inputs=inputs, outputs=outputs,
            labels=self.data.labels, preprocessing=self.data.preprocessing, parent_sha256=parent,
            recipe=self.recipe.to_dict(), metrics=metrics or {}, calibration=calibration,
            extra_tool_modules=TOOL_MODULES, build=build_record(self.seed, kind), **extra,
        )

    def add_tflite(self, name: str, tflite: bytes, *, kind: str, stage: str, parent: Optional[str],
                   keras_model: Any = None, calibration=None, extra_metrics=None, **extra) -> Artifact:
        """Evaluate a .tflite, write it and its manifest into staging, and record it."""
        metrics: Dict[str, Any] = dict(extra_metrics or {})
        if self.data.eval_x is not None and self.data.eval_y is not None:
            metrics["accuracy"] = round(tflite_accuracy(tflite, self.data.eval_x, self.data.eval_y), 6)
            metrics["eval_samples"] = int(len(self.data.eval_y))
        sample = self.data.eval_x or self.data.calibration_x or self.data.train_x
        if sample is not None:
            latency = tflite_latency_us(tflite, sample, self.latency_runs)
            if latency is not None:
                metrics["latency_us"] = round(latency, 1)
        inputs, outputs = _tflite_specs(tflite)
        file = f"{name}.tflite"
        manifest = self._manifest(tflite, file, kind=kind, stage=stage, inputs=inputs, outputs=outputs,
                                  parent=parent, metrics=metrics, calibration=calibration, **extra)
        atomic_write_bytes(self.staging / file, tflite)
        write_manifest(manifest, manifest_path_for(self.staging / file))
        artifact = Artifact(name, file, kind, stage, manifest["sha256"], manifest["size_bytes"],
                            manifest["gzip_size_bytes"], parent, metrics, manifest, keras_model)
        self.artifacts.append(artifact)
        acc = metrics.get("accuracy")
        self.progress.say(
            f"wrote {file}: {artifact.size_bytes:,} bytes"
            + (f", accuracy {100 * acc:.2f}%" if acc is not None else "")
        )
        return artifact

    def add_directory(self, name: str, directory: Path, *, kind: str, stage: str, parent: Optional[str],
                      specs_from: LoadedModel, metrics=None) -> Artifact:
        """Record a directory artifact (SavedModel) with a tree digest as its sha256."""
        digest, total, gz = _tree_digest(directory)
        inputs = _float_input_specs(specs_from)
        manifest = self._manifest(digest, directory.name, kind=kind, stage=stage, inputs=inputs,
                                  outputs=_float_output_specs(specs_from),
                                  parent=parent, metrics=metrics or {}, sha256_of="directory-tree")
        manifest["size_bytes"] = total
        manifest["gzip_size_bytes"] = gz
        write_manifest(manifest, manifest_path_for(directory))
        artifact = Artifact(name, directory.name, kind, stage, manifest["sha256"], total, gz, parent,
                            metrics or {}, manifest)
        self.artifacts.append(artifact)
        self.progress.say(f"wrote {directory.name}/ ({total:,} bytes)")
        return artifact

    def add_file(self, name: str, file: str, data: bytes, *, kind: str, stage: str, parent: Optional[str],
                 specs_from: LoadedModel, metrics=None, **extra) -> Artifact:
        """Write a non-TFLite model file (.keras, .onnx) and its manifest."""
        atomic_write_bytes(self.staging / file, data)
        inputs = _float_input_specs(specs_from)
        manifest = self._manifest(data, file, kind=kind, stage=stage, inputs=inputs,
                                  outputs=_float_output_specs(specs_from), parent=parent,
                                  metrics=metrics or {}, **extra)
        write_manifest(manifest, manifest_path_for(self.staging / file))
        artifact = Artifact(name, file, kind, stage, manifest["sha256"], manifest["size_bytes"],
                            manifest["gzip_size_bytes"], parent, metrics or {}, manifest)
        self.artifacts.append(artifact)
        self.progress.say(f"wrote {file} ({artifact.size_bytes:,} bytes)")
        return artifact

    # -- stages ----------------------------------------------------------------------------------
    def float_model_accuracy(self, model: LoadedModel) -> Optional[float]:
        """Accuracy of the float (Keras / SavedModel) model itself on the eval split."""
        from converters._train import accuracy

        if self.data.eval_x is None or self.data.eval_y is None:
            return None
        return round(accuracy(model.predict(self.data.eval_x), self.data.eval_y), 6)

    def reference(self, model: LoadedModel, name: str, stage: str, parent: Optional[str], **metrics) -> Artifact:
        """The float32 .tflite of ``model``, with the float model's own accuracy beside it."""
        from converters import quantize

        result = quantize.convert(model, "float32")
        metrics = {k: v for k, v in metrics.items() if v is not None}
        float_acc = self.float_model_accuracy(model)
        if float_acc is not None:
            metrics["float_model_accuracy"] = float_acc
        params = model.count_params()
        if params is not None:
            metrics.setdefault("params", params)
        return self.add_tflite(name, result.tflite, kind="float32", stage=stage, parent=parent,
                               keras_model=model, extra_metrics=metrics)

    def require_training_data(self, stage: str) -> None:
        """Raise when a stage that fine-tunes has no training data."""
        if self.data.train_x is None or self.data.train_y is None:
            raise DataError(
                f"stage '{stage}' fine-tunes the model and needs training data: expected --dataset NAME "
                f"(digits, mnist, adult) or --train FILE.npz (inputs + 'y'), got neither"
            )

    def quantized(self, model: LoadedModel, base_name: str, parent: Artifact, stage: str = "quantize",
                  sparsity: Optional[Dict[str, float]] = None) -> Artifact:
        """Quantize ``model`` as the recipe says and record the artifact."""
        from converters import quantize

        opts = self.recipe.section("quantize")
        mode = opts["mode"]
        source = model
        qat_note = {}
        if opts["qat"]:
            model.require("qat", "quantize (qat)")
            self.require_training_data("quantize (qat)")
            self.progress.say(f"quantization-aware training of {base_name} ({opts['qat_epochs']} epoch(s))")
            qmodel = quantize.qat(
                model.model, self.data.train_x, self.data.train_y, epochs=opts["qat_epochs"],
                preserve_sparsity=bool(sparsity), batch_size=64,
            )
            from converters.loading import from_keras

            source = from_keras(qmodel)
            qat_note = {"qat": True, "qat_scheme": "prune-preserve" if sparsity else "default-8bit"}
        calibration = self.data.calibration_x if mode == "int8" else None
        if mode == "int8" and calibration is not None:
            calibration = as_input_dict(calibration, model.inputs)
        self.progress.say(f"converting {base_name or 'the input model'} to {mode}"
                          + (f" with calibration data from {self.data.calibration_source}" if calibration else ""))
        result = quantize.convert(source, mode, calibration=calibration, io=opts["io"],
                                  calibration_samples=opts["calibration_samples"], seed=self.seed)
        for line in quantize.summarize_float_ops(result):
            if mode == "int8":
                self.warn(f"{base_name}: {line}")
        if result.dropped_nan_samples:
            self.warn(f"dropped {result.dropped_nan_samples} calibration sample(s) holding NaN")
        if result.calibration and self.data.eval_x is not None:
            for message in range_warnings(result.calibration, self.data.eval_x):
                self.warn(message)
        suffix = {"int8": "int8", "dynamic": "dynamic", "float16": "float16"}[mode]
        name = f"{base_name}-{suffix}" if base_name else suffix
        extra_metrics = dict(qat_note)
        if sparsity is not None:
            tflite_sparsity = quantize.weight_sparsity(result.tflite)
            if tflite_sparsity:
                # report the pruned layers' sparsity as it survived conversion (unpruned tensors excluded)
                kept = [v for v in tflite_sparsity.values() if v > 0.05]
                extra_metrics["sparsity"] = round(float(np.mean(kept)), 4) if kept else 0.0
        return self.add_tflite(
            name, result.tflite, kind=result.manifest_kind, stage=stage, parent=parent.sha256,
            calibration=result.calibration, extra_metrics=extra_metrics,
            quantization_report={"mode": mode, "io": result.io, "float_ops": result.float_ops,
                                 "inspected_kind": result.inspect_kind,
                                 "calibration_source": self.data.calibration_source if mode == "int8" else None},
            **({"weight_sparsity": quantize.weight_sparsity(result.tflite)} if sparsity is not None else {}),
        )


def _train_zoo(name: str, data: Data, opts: Dict[str, Any], progress: Progress, seed: int) -> Any:
    from converters._train import augment_shift, compile_and_fit

    try:
        from training import zoo
    except ImportError as exc:
        raise ConversionError(f"zoo model {name!r} needs the training package ({exc})") from None
    if data.dataset is None:
        raise DataError(f"zoo model {name!r} is trained on the fly and needs --dataset (digits, mnist, adult)")
    model = zoo.build(name, data.dataset, seed=seed)
    x = _dataset_inputs(data.dataset.x_train, _specs(model), "training")
    shift = 0
    if opts["augment"] and data.dataset.task == "image":
        shift = augment_shift(*np.asarray(data.dataset.x_train).shape[1:3])
    progress.say(f"training zoo model '{name}' on {data.dataset.name} ({opts['epochs']} epochs"
                 + (f", random {shift}-pixel shifts" if shift else "") + ")")
    compile_and_fit(model, x, data.train_y, epochs=opts["epochs"], batch_size=opts["batch_size"],
                    learning_rate=opts["learning_rate"], seed=seed, shift=shift,
                    callbacks=progress.epochs(f"train {name}", opts["epochs"]))
    return model


def _specs(keras_model: Any) -> list:
    from converters.loading import _keras_specs

    return _keras_specs(keras_model)


def _training_views(opts: Dict[str, Any], train_x: Dict[str, np.ndarray],
                    warn: Callable[[str], None]) -> Dict[str, Any]:
    """The recipe's ``shift``/``mixup`` where they apply (one NHWC image input), else none and a warning."""
    views = {"shift": opts["shift"], "mixup": opts["mixup"]}
    if not any(views.values()):
        return views
    if _one_image_input(train_x):
        return views
    warn(f"distill.shift/mixup need one NHWC image input; this model takes {_shapes(train_x)}: "
         "the student and its baseline train on the data as it is")
    return {"shift": 0, "mixup": 0.0}


def _transfer_set(source: str, teacher: LoadedModel) -> Optional[np.ndarray]:
    """The recipe's unlabelled transfer set (a .npy/.npz matching the model's one input), or None."""
    if not source:
        return None
    arrays, _ = load_data_file(source, teacher.inputs, purpose="distill.transfer")
    if len(arrays) != 1:
        raise DataError(f"distill.transfer {source}: a transfer set needs a one-input model, this one has "
                        f"{len(arrays)} inputs")
    return next(iter(arrays.values()))


def _one_image_input(train_x: Dict[str, np.ndarray]) -> bool:
    return len(train_x) == 1 and np.asarray(next(iter(train_x.values()))).ndim == 4


def _shapes(train_x: Dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {tuple(np.shape(v)[1:])}" for k, v in train_x.items())


def _build_student(spec: str, data: Data, seed: int) -> Any:
    """A fresh, untrained student: a zoo name, or a tf_keras file re-initialised from its config."""
    from converters._tf import tf_keras

    tf_keras.utils.set_random_seed(seed)
    if spec in ZOO_NAMES:
        try:
            from training import zoo
        except ImportError as exc:
            raise ConversionError(f"student {spec!r} is a zoo model and needs the training package ({exc})") from None
        if data.dataset is None:
            raise DataError(f"student {spec!r} is a zoo model and needs --dataset to size its inputs and classes")
        return zoo.build(spec, data.dataset)
    from converters.loading import load

    loaded = load(spec)
    loaded.require("distill-student", "distill")
    return loaded.model


def load_data(
    model: Optional[LoadedModel],
    *,
    dataset: Any = None,
    calibration: Optional[str] = None,
    eval_data: Optional[str] = None,
    train_data: Optional[str] = None,
    seed: int = 0,
) -> Data:
    """Gather train/eval/calibration arrays from a zoo dataset and/or the user's files."""
    data = Data()
    if dataset is not None:
        if isinstance(dataset, (str, Path)):
            try:
                from training import datasets
            except ImportError as exc:
                raise DataError(f"--dataset needs the training package ({exc})") from None
            dataset = datasets.load(str(dataset), seed=seed)
        data.dataset = dataset
        data.labels = list(dataset.labels) if getattr(dataset, "labels", None) is not None else None
        data.preprocessing = getattr(dataset, "preprocessing", None)
        data.train_y = np.asarray(dataset.y_train)
        data.eval_y = np.asarray(dataset.y_test)
        data.calibration_source = f"{dataset.name} train split"
        data.eval_source = f"{dataset.name} test split"
    if model is not None:
        bind(data, model)
    if train_data is not None:
        if model is None:
            raise DataError("--train needs the model's inputs to check against")
        data.train_x, data.train_y = load_data_file(train_data, model.inputs, "training", want_labels=True)
        if calibration is None:
            data.calibration_x = data.train_x
            data.calibration_source = f"{train_data} (training data)"
    if calibration is not None:
        if model is None:
            raise DataError("--calibration needs the model's inputs to check against")
        data.calibration_x, _ = load_data_file(calibration, model.inputs, "calibration")
        data.calibration_source = str(calibration)
    if eval_data is not None:
        if model is None:
            raise DataError("--eval needs the model's inputs to check against")
        data.eval_x, data.eval_y = load_data_file(eval_data, model.inputs, "eval", want_labels=True)
        data.eval_source = str(eval_data)
    return data


def bind(data: Data, model: LoadedModel) -> None:
    """Check the zoo dataset's arrays against ``model``'s inputs and keep them by input name."""
    if data.dataset is None:
        return
    ds = data.dataset
    if data.train_x is None:
        data.train_x = _dataset_inputs(ds.x_train, model.inputs, f"{ds.name} training")
    if data.eval_x is None:
        data.eval_x = _dataset_inputs(ds.x_test, model.inputs, f"{ds.name} eval")
    if data.calibration_x is None:
        data.calibration_x = data.train_x


def count_stages(recipe: recipes.Recipe, zoo: bool) -> int:
    """How many progress lines a run prints (for the "step i/N" counter)."""
    steps = 1 + 1  # train or load, then the float32 reference
    changed = False
    if "distill" in recipe.stages:
        steps += 2 + (2 if recipe.section("distill")["baseline"] else 0)
        changed = True
    if "prune" in recipe.stages:
        steps += 2
        changed = True
    if "quantize" in recipe.stages:
        q = recipe.section("quantize")
        per_model = 2 + (1 if q["qat"] else 0)
        steps += per_model * (2 if q["include_input"] and changed else 1)
    targets = 2 if changed else 1
    for fmt in recipe.section("export")["formats"]:
        steps += {"savedmodel": 2, "keras": targets, "onnx": 2 * targets}.get(fmt, 0)
    return steps


def run_in(
    staging: Path,
    recipe: recipes.Recipe,
    source: Union[str, Path, Any],
    *,
    dataset: Any = None,
    calibration: Optional[str] = None,
    eval_data: Optional[str] = None,
    train_data: Optional[str] = None,
    progress: Optional[Progress] = None,
    seed: int = 0,
) -> PipelineResult:
    """Run ``recipe`` on ``source`` writing every artifact into ``staging`` (no promotion)."""
    from converters import distill as distill_stage
    from converters import prune as prune_stage
    from converters._tf import tf_keras
    from converters._train import count_nonzero_params
    from converters.loading import from_keras, load

    started = time.perf_counter()
    is_zoo = isinstance(source, str) and source in ZOO_NAMES and not Path(source).exists()
    progress = progress or Progress(enabled=False)
    progress.total = count_stages(recipe, is_zoo)
    tf_keras.utils.set_random_seed(seed)

    if is_zoo:
        if dataset is None:
            raise DataError(f"MODEL {source!r} is a zoo name: expected --dataset (digits, mnist, adult) to train it on")
        data = load_data(None, dataset=dataset, seed=seed)
        keras_model = _train_zoo(source, data, recipe.section("train"), progress, seed)
        model = from_keras(keras_model)
        bind(data, model)
        data = load_data(model, dataset=data.dataset, calibration=calibration, eval_data=eval_data,
                         train_data=train_data, seed=seed) if (calibration or eval_data or train_data) else data
        input_parent = None
    else:
        progress.say(f"loading {source}")
        model = load(source)
        data = load_data(model, dataset=dataset, calibration=calibration, eval_data=eval_data,
                         train_data=train_data, seed=seed)
        input_parent = _source_digest(model)
    stage_needs = {"distill": "distill-teacher", "prune": "prune", "quantize": "quantize"}
    for stage in recipe.stages:
        model.require(stage_needs[stage], stage)
        if stage in ("distill", "prune"):
            if data.train_x is None:
                raise DataError(
                    f"stage '{stage}' fine-tunes the model and needs training data: expected --dataset NAME "
                    f"(digits, mnist, adult) or --train FILE.npz (inputs + 'y'), got neither"
                )
    transfer = None
    if "distill" in recipe.stages:  # a bad transfer file fails here, before any training
        transfer = _transfer_set(recipe.section("distill")["transfer"], model)
    if "quantize" in recipe.stages and recipe.section("quantize")["qat"]:
        model.require("qat", "quantize (qat)")
    if "quantize" in recipe.stages and recipe.section("quantize")["mode"] == "int8" and data.calibration_x is None:
        # fail before any work is done, not after minutes of distillation
        raise CalibrationError(
            "int8 quantization needs calibration data: expected --calibration FILE.npy|.npz or --dataset NAME "
            "(its train split), got neither; recipes 'dynamic' and 'fp16' need no data"
        )

    run = _Run(recipe, data, staging, progress, seed)
    if data.eval_x is None:
        run.warn("no eval data (--eval or --dataset): accuracy is not reported")
    distilling = "distill" in recipe.stages
    base = run.reference(model, "float32", "input", input_parent)
    current_model, current_artifact, prefix = model, base, ""
    comparisons: Dict[str, Any] = {}

    if distilling:
        opts = recipe.section("distill")
        student = _build_student(opts["student"], data, seed)
        if opts["baseline"]:
            baseline = tf_keras.models.clone_model(student)
            baseline.set_weights(student.get_weights())  # same initial weights: only the loss differs
        views = _training_views(opts, data.train_x, run.warn)
        progress.say(
            f"distilling into '{opts['student']}' ({student.count_params():,} params vs teacher "
            f"{model.count_params():,}; alpha={opts['alpha']}, T={opts['temperature']}, {opts['epochs']} epochs"
            + (f", views shifted up to {views['shift']} px" if views["shift"] else "")
            + (f", mixup {views['mixup']}" if views["mixup"] else "")
            + (f", {len(transfer):,} unlabelled transfer inputs ({opts['transfer']})" if transfer is not None else "")
            + ")"
        )
        result = distill_stage.distill(
            model, student, data.train_x, data.train_y, alpha=opts["alpha"],
            temperature=opts["temperature"], epochs=opts["epochs"], batch_size=opts["batch_size"],
            learning_rate=opts["learning_rate"], seed=seed,
            callbacks=progress.epochs("distill", opts["epochs"]), transfer=transfer, **views,
        )
        student_loaded = from_keras(student)
        student_art = run.reference(student_loaded, "student-float32", "distill", base.sha256,
                                    teacher_batches=result.teacher_batches)
        comparisons["distill"] = {
            "teacher_params": model.count_params(), "student_params": student.count_params(),
            "param_ratio": round(student.count_params() / model.count_params(), 4),
            "teacher_accuracy": base.metrics.get("float_model_accuracy"),
            "student_accuracy": student_art.metrics.get("float_model_accuracy"),
            "alpha": opts["alpha"], "temperature": opts["temperature"], "epochs": opts["epochs"], **views,
            "transfer": {"source": opts["transfer"], "inputs": len(transfer)} if transfer is not None else None,
        }
        if opts["baseline"]:
            progress.say(f"training the same student without distillation, for comparison ({opts['epochs']} epochs)")
            distill_stage.train_student(
                baseline, data.train_x, data.train_y, None, epochs=opts["epochs"], batch_size=opts["batch_size"],
                learning_rate=opts["learning_rate"], seed=seed, callbacks=progress.epochs("baseline", opts["epochs"]),
                **views,  # the very same training images: the two runs differ only in the loss
            )
            baseline_art = run.reference(from_keras(baseline), "student-baseline-float32", "baseline", base.sha256)
            comparisons["distill"]["baseline_accuracy"] = baseline_art.metrics.get("float_model_accuracy")
        current_model, current_artifact, prefix = student_loaded, student_art, "student"

    if "prune" in recipe.stages:
        opts = recipe.section("prune")
        current_model.require("prune", "prune")
        progress.say(
            f"pruning {prefix or 'model'} to {opts['target_sparsity']:.0%} sparsity"
            + (" (2:4 structured)" if opts["structured"] == "2:4" else "")
            + f", fine-tuning {opts['epochs']} epochs"
        )
        pruned = prune_stage.prune(
            current_model.model, data.train_x, data.train_y, target_sparsity=opts["target_sparsity"],
            initial_sparsity=opts["initial_sparsity"], structured=opts["structured"], epochs=opts["epochs"],
            batch_size=opts["batch_size"], learning_rate=opts["learning_rate"], frequency=opts["frequency"],
            min_share=opts["min_share"],
            progress=(progress.epochs("prune", opts["epochs"]) or [None])[0],
        )
        pruned_loaded = from_keras(pruned.model)
        name = f"{prefix}-pruned" if prefix else "pruned"
        pruned_art = run.reference(
            pruned_loaded, f"{name}-float32", "prune", current_artifact.sha256,
            sparsity=round(pruned.overall_sparsity, 4),
            nonzero_params=count_nonzero_params(pruned.model),
        )
        pruned_art.manifest["sparsity_report"] = pruned.report()
        write_manifest(pruned_art.manifest, manifest_path_for(staging / pruned_art.file))
        comparisons["prune"] = {
            "target_sparsity": opts["target_sparsity"], "structured": opts["structured"],
            "overall_sparsity": round(pruned.overall_sparsity, 4), "layers": pruned.report(),
        }
        dense_parent = current_artifact
        current_model, current_artifact, prefix = pruned_loaded, pruned_art, name

    if "quantize" in recipe.stages:
        opts = recipe.section("quantize")
        q_art = run.quantized(current_model, prefix, current_artifact,
                              sparsity=comparisons.get("prune"))
        if opts["include_input"] and current_model is not model:
            run.quantized(model, "", base)
        comparisons["quantize"] = _quantize_comparisons(run, base, q_art, comparisons)
        if "prune" in recipe.stages:
            dense_gz = dense_parent.gzip_size_bytes
            comparisons["prune"]["gzip_ratio_vs_dense_float32"] = round(q_art.gzip_size_bytes / dense_gz, 4)
            comparisons["prune"]["dense_float32"] = dense_parent.name

    for fmt in recipe.section("export")["formats"]:
        _export(run, fmt, model, base, current_model, current_artifact, distilling, data)

    result = PipelineResult(recipe, run.artifacts, comparisons, run.warnings, staging,
                            seconds=time.perf_counter() - started)
    atomic_write_text(staging / SUMMARY_FILE, json.dumps(result.summary(), indent=2) + "\n")
    return result


def _quantize_comparisons(run: _Run, base: Artifact, q_art: Artifact, comparisons: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"mode": run.recipe.section("quantize")["mode"], "artifact": q_art.name}
    input_q = next((a for a in run.artifacts if a.name in ("int8", "dynamic", "float16")), None)
    if input_q is not None:
        out["input_size_ratio"] = round(input_q.size_bytes / base.size_bytes, 4)
        out["input_gzip_ratio"] = round(input_q.gzip_size_bytes / base.gzip_size_bytes, 4)
        float_acc = base.metrics.get("float_model_accuracy")
        q_acc = input_q.metrics.get("accuracy")
        if float_acc is not None and q_acc is not None:
            out["input_accuracy_drop_points"] = round(100 * (float_acc - q_acc), 3)
    out["final_size_ratio"] = round(q_art.size_bytes / base.size_bytes, 4)
    out["final_gzip_ratio"] = round(q_art.gzip_size_bytes / base.gzip_size_bytes, 4)
    return out


def _source_digest(model: LoadedModel) -> Optional[str]:
    if model.path is None:
        return None
    if model.path.is_dir():
        return hashlib.sha256(_tree_digest(model.path)[0]).hexdigest()
    from edge_sdk.fileio import sha256_file

    return sha256_file(model.path)


def _export(run: _Run, fmt: str, model: LoadedModel, base: Artifact, final: LoadedModel,
            final_art: Artifact, distilling: bool, data: Data) -> None:
    """Write the extra formats for the input model and, when it differs, the final float model."""
    from converters import export

    targets = [("model" if not distilling else "teacher", model, base)]
    if final is not model:
        targets.append((final_art.name.replace("-float32", ""), final, final_art))
    sample = data.eval_x or data.calibration_x or data.train_x
    for stem, loaded, parent in targets:
        if fmt == "tflite":
            continue  # every stage already wrote its .tflite
        if fmt == "savedmodel":
            if stem != targets[0][0]:
                continue  # one SavedModel (the float reference) is what the parity tools need
            directory = run.staging / f"{stem}_savedmodel"
            run.progress.say(f"exporting SavedModel {directory.name}/")
            export.export_savedmodel(loaded, directory)
            run.add_directory(f"{stem}-savedmodel", directory, kind="savedmodel", stage="export",
                              parent=parent.sha256, specs_from=loaded,
                              metrics={"accuracy": parent.metrics.get("float_model_accuracy")})
        elif fmt == "keras":
            if loaded.kind == "savedmodel":
                continue
            path = run.staging / f"{stem}.keras"
            export.export_keras(loaded, path)
            run.add_file(f"{stem}-keras", path.name, path.read_bytes(), kind="keras", stage="export",
                         parent=parent.sha256, specs_from=loaded,
                         metrics={"accuracy": parent.metrics.get("float_model_accuracy"),
                                  "params": parent.metrics.get("params")})
        elif fmt == "onnx":
            if sample is None:
                raise DataError("ONNX export is checked against onnxruntime and needs sample inputs "
                                "(--dataset, --eval or --calibration)")
            opts = run.recipe.section("export")
            check = {k: v[:64] for k, v in sample.items()}
            run.progress.say(f"exporting {stem}.onnx (opset {opts['onnx_opset']}) and checking it with onnxruntime")
            result = export.export_onnx(loaded, check, opset=opts["onnx_opset"], atol=opts["onnx_atol"])
            metrics: Dict[str, Any] = {"onnx_max_abs_diff": result.max_abs_diff,
                                       "onnx_samples_checked": result.samples_checked}
            if data.eval_x is not None and data.eval_y is not None:
                metrics["accuracy"] = round(_onnx_accuracy(result, data), 6)
            latency = export.onnx_quick_latency_us(result.onnx, sample, result.input_names, run.latency_runs)
            if latency is not None:
                metrics["latency_us"] = round(latency, 1)
            run.add_file(f"{stem}-onnx", f"{stem}-onnx.onnx", result.onnx, kind="onnx", stage="export",
                         parent=parent.sha256, specs_from=loaded, metrics=metrics, onnx_opset=result.opset)


def _onnx_accuracy(result: Any, data: Data) -> float:
    import onnxruntime as ort

    from converters._train import accuracy

    session = ort.InferenceSession(result.onnx, providers=["CPUExecutionProvider"])
    feed = dict(zip(result.input_names, data.eval_x.values()))
    return accuracy(np.asarray(session.run(None, feed)[0]), data.eval_y)


def _remove_abandoned_staging(out: Path) -> None:
    """Delete staging dirs for ``out`` left by a killed run (their process is gone); keep live ones."""
    for staging in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int((staging / PID_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or a run that has not written its pid yet
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except PermissionError:
            continue


def run(
    recipe: Union[str, recipes.Recipe],
    source: Union[str, Path, Any],
    out: Union[str, Path],
    *,
    dataset: Any = None,
    calibration: Optional[str] = None,
    eval_data: Optional[str] = None,
    train_data: Optional[str] = None,
    overrides: Optional[Dict[str, Any]] = None,
    progress: Union[bool, Progress] = False,
    before_promote: Sequence[Callable[[PipelineResult], None]] = (),
    seed: int = 0,
) -> PipelineResult:
    """Run a recipe and promote the artifacts into ``out`` atomically.

    ``before_promote`` hooks see the finished result in staging and may raise an
    ``EdgeSdkError`` to stop promotion (``out`` then stays as it was).
    """
    if not isinstance(recipe, recipes.Recipe):
        recipe = recipes.load(recipe)
    if overrides:
        recipe = recipes.with_overrides(recipe, overrides)
    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConversionError(f"--out {out}: expected a directory (or a new path), got an existing file")
    _remove_abandoned_staging(out)
    with atomic_output_dir(out) as staging:
        (staging / PID_FILE).write_text(str(os.getpid()))
        result = run_in(staging, recipe, source, dataset=dataset, calibration=calibration,
                        eval_data=eval_data, train_data=train_data, progress=reporter, seed=seed)
        for hook in before_promote:
            hook(result)
        (staging / PID_FILE).unlink()
    result.out = out
    summary = result.summary()
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return result


__all__ = [
    "Artifact", "Data", "PipelineResult", "Progress", "StageNotApplicableError",
    "load_data", "run", "run_in", "tflite_accuracy", "tflite_latency_us",
]
