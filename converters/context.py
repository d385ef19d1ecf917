"""The state one conversion run shares between its stages, and the results it produces.

:class:`RunContext` is what every stage entry (``run_stage(ctx, options)`` in
:mod:`converters.load_stage`, :mod:`converters.distill`, :mod:`converters.prune`,
:mod:`converters.quantize`, :mod:`converters.export`) receives: the recipe, the data,
the staging directory, progress and warnings, the input model and its float32
artifact, the model the next stage works on (``current``) and the comparisons so far.
It writes artifacts (``add_tflite``, ``add_directory``, ``add_file``), each with its
manifest, and checks every model it evaluates for NaN/inf outputs.

Names used here: the *input float32 artifact* (``ctx.base``) is the float32 .tflite of
the model the user gave; "reference" is kept for the golden .npz of ``edge-sdk parity``.
This module imports no stage module, so stages and the pipeline can both import it.
"""

from __future__ import annotations

import dataclasses
import gzip
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import (
    Any,
    ClassVar,
    Protocol,
    TypeVar,
    runtime_checkable,
)

import numpy as np

from converters import recipe as recipes
from converters.calibration import as_input_dict, load_data_file
from converters.errors import DataError
from converters.evaluation import CHECK_SAMPLES, check_finite, primary, tflite_latency_us, tflite_outputs
from converters.model_files import KIND_TFLITE, LoadedModel
from converters.progress import Progress
from edge_sdk.digest import tree_listing
from edge_sdk.fileio import atomic_write_bytes
from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest
from edge_sdk.metrics import accuracy
from training.names import DATASETS_TEXT

TOOL_MODULES = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnx", "onnxruntime")
TRAINING_DATA_HINT = f"expected --dataset NAME ({DATASETS_TEXT}) or --train FILE.npz (inputs + 'y'), got neither"


C = TypeVar("C", bound="Comparison")


# ------------------------------------------------------------------------------------------------
# data and results
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    """The arrays a run needs, as ``{input name: array}`` plus labels."""

    train_x: dict[str, np.ndarray] | None = None
    train_y: np.ndarray | None = None
    eval_x: dict[str, np.ndarray] | None = None
    eval_y: np.ndarray | None = None
    calibration_x: dict[str, np.ndarray] | None = None
    calibration_source: str = ""
    eval_source: str = ""
    labels: list[str] | None = None
    preprocessing: dict[str, Any] | None = None
    dataset: Any = None

    def sample(self) -> dict[str, np.ndarray] | None:
        """Some inputs to run a model on: the eval data, else calibration, else training data."""
        return self.eval_x or self.calibration_x or self.train_x


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
    parent: str | None
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    keras_model: Any = None  # the float model (a LoadedModel) this artifact came from, when there is one

    def row(self) -> dict[str, Any]:
        """The artifact as a summary row."""
        return {
            "artifact": self.name,
            "file": self.file,
            "stage": self.stage,
            "kind": self.kind,
            "size_bytes": self.size_bytes,
            "gzip_size_bytes": self.gzip_size_bytes,
            "accuracy": self.metrics.get("accuracy"),
            "latency_us": self.metrics.get("latency_us"),
            "params": self.metrics.get("params"),
            "sparsity": self.metrics.get("sparsity"),
            "sha256": self.sha256,
            "parent_sha256": self.parent,
        }


class Comparison:
    """A stage's comparison record: summary.json's ``comparisons[key]`` and the lines printed under the table.

    Each stage subclasses it as a dataclass (``prune.PruneComparison``, ``distill.DistillComparison``...)
    and records it with :meth:`RunContext.record`; nothing outside the stage reads its fields by name,
    the CLI prints :attr:`PipelineResult.lines`.
    """

    key: ClassVar[str] = ""  # its entry in summary.json's "comparisons"
    line_order: ClassVar[int] = 100  # where its lines go under the table (smaller first)

    def to_json(self) -> Any:
        """What summary.json holds under ``comparisons[key]`` (plain JSON values)."""
        raise NotImplementedError

    def lines(self) -> list[str]:
        """The lines ``edge-sdk convert`` prints under the artifact table (none: empty)."""
        return []

    def finish(self, ctx: RunContext) -> None:
        """Called once every stage ran, before the summary is written (figures that need later stages' files)."""

    def empty(self) -> bool:
        """True when there is nothing to record (the entry is left out of the summary)."""
        return False


def render_comparisons(comparisons: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(summary.json's ``comparisons``, the lines under the table) of a run's records and plain entries."""
    rendered = {
        k: (v.to_json() if isinstance(v, Comparison) else v)
        for k, v in comparisons.items()
        if not (isinstance(v, Comparison) and v.empty())
    }
    records = sorted((v for v in comparisons.values() if isinstance(v, Comparison)), key=lambda r: r.line_order)
    return rendered, [line for record in records for line in record.lines()]


@dataclasses.dataclass
class PipelineResult:
    """Artifacts and comparisons of one run; ``out`` is set once promoted.

    ``comparisons`` is summary.json's entry (plain JSON); ``lines`` what the stages' records say under the table.
    """

    recipe: recipes.Recipe
    artifacts: list[Artifact]
    comparisons: dict[str, Any]
    warnings: list[str]
    staging: Path
    out: Path | None = None
    seconds: float = 0.0
    lines: list[str] = dataclasses.field(default_factory=list)

    @property
    def verdict(self) -> str | None:
        """The quality gate's verdict line, when the run was gated."""
        return (self.comparisons.get("gate") or {}).get("verdict")

    def get(self, name: str) -> Artifact | None:
        """The artifact called ``name``, if the run produced it."""
        return next((a for a in self.artifacts if a.name == name), None)

    def path(self, name: str) -> Path:
        """Where artifact ``name`` lives (in ``out`` after promotion, else in staging)."""
        artifact = self.get(name)
        if artifact is None:
            raise KeyError(f"no artifact {name!r}; have {[a.name for a in self.artifacts]}")
        return (self.out or self.staging) / artifact.file

    def summary(self) -> dict[str, Any]:
        """JSON summary: recipe, one row per artifact, comparisons, warnings, timing."""
        summary = {
            "recipe": self.recipe.to_dict(),
            "artifacts": [a.row() for a in self.artifacts],
            "comparisons": self.comparisons,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 1),
            "out": str(self.out) if self.out else None,
        }
        if "auto" in self.comparisons:  # --recipe auto: the file name of the candidate it chose
            summary["chosen"] = self.comparisons["auto"]["chosen"]
        return summary

    def table(self) -> str:
        """The end-of-run table: one row per artifact, sizes relative to the input float32 artifact."""
        from edge_sdk.report import format_table

        input_float32 = self.get("float32")
        rows = []
        for a in self.artifacts:
            ratio = a.size_bytes / input_float32.size_bytes if input_float32 and a.file.endswith(".tflite") else None
            acc = a.metrics.get("accuracy")
            rows.append(
                [
                    a.name,
                    a.stage,
                    a.kind,
                    a.size_bytes,
                    a.gzip_size_bytes,
                    f"{ratio:.3f}" if ratio is not None else None,
                    f"{100 * acc:.2f}%" if acc is not None else None,
                    f"{a.metrics['latency_us']:.0f}" if a.metrics.get("latency_us") is not None else None,
                    f"{a.metrics['sparsity']:.0%}" if a.metrics.get("sparsity") is not None else None,
                ]
            )
        return format_table(
            rows,
            ["artifact", "stage", "kind", "bytes", "gzip bytes", "x float32", "accuracy", "latency us", "sparsity"],
        )


# ------------------------------------------------------------------------------------------------
# the manifest's build record
# ------------------------------------------------------------------------------------------------
# Artifact kinds whose bytes vary between runs with the same inputs, recipe and seed, and why.
# Everything else the converter writes (.tflite of every kind, .onnx) is byte-identical run to run.
NOT_BYTE_IDENTICAL = {
    "keras": "a .keras archive records when it was saved (metadata.json date_saved, zip member times)",
    "savedmodel": "TensorFlow writes a random uuid into fingerprint.pb on every save; saved_model.pb, the "
    "variables and keras_metadata.pb are byte-identical",
}


def build_record(seed: int, kind: str) -> dict[str, Any]:
    """The manifest's ``build`` entry: the seed, whether op determinism was on, and whether the bytes reproduce.

    ``byte_identical`` promises that another run with the same model, recipe, data, seed
    and tool versions on the same kind of machine writes the same bytes; ``why_not`` says
    what varies when it does not.
    """
    from converters._tf import DETERMINISTIC

    why = NOT_BYTE_IDENTICAL.get(kind)
    if why is None and not DETERMINISTIC:
        why = "TensorFlow op determinism was off (EDGE_SDK_DETERMINISTIC=0), so training may differ run to run"
    record: dict[str, Any] = {"seed": int(seed), "op_determinism": bool(DETERMINISTIC), "byte_identical": why is None}
    if why is not None:
        record["why_not"] = why
    return record


# ------------------------------------------------------------------------------------------------
# manifest I/O specs
# ------------------------------------------------------------------------------------------------
def float_input_specs(model: LoadedModel) -> list[dict[str, Any]]:
    """Manifest input entries for a float model (-1 marks a dynamic dimension, as for .tflite)."""
    return [
        {
            "name": s.name,
            "shape": [-1 if d is None else int(d) for d in s.shape],
            "dtype": s.dtype,
            "quantization": None,
        }
        for s in model.inputs
    ]


def float_output_specs(model: LoadedModel) -> list[dict[str, Any]]:
    """Manifest output entries for a Keras model (empty when the model does not say)."""
    outputs = getattr(model.model, "outputs", None) or []
    names = list(getattr(model.model, "output_names", None) or [])
    specs = []
    for i, tensor in enumerate(outputs):
        name = names[i] if i < len(names) else getattr(tensor, "name", f"output_{i}").split(":")[0].split("/")[0]
        specs.append(
            {
                "name": name,
                "shape": [-1 if d is None else int(d) for d in tensor.shape],
                "dtype": getattr(tensor.dtype, "name", str(tensor.dtype)),
                "quantization": None,
            }
        )
    return specs


def _tflite_specs(tflite: bytes) -> tuple:
    import edge_sdk

    model = edge_sdk.load(tflite, verify=False)
    return model.inputs, model.outputs


def _directory_sizes(directory: Path) -> tuple:
    total = gz = 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        total += len(data)
        gz += len(gzip.compress(data, compresslevel=9, mtime=0))
    return total, gz


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------
class RunContext:
    """State of one pipeline run, handed to every stage entry (see module docs)."""

    def __init__(
        self,
        recipe: recipes.Recipe,
        staging: Path,
        progress: Progress,
        seed: int,
        *,
        source: Any = None,
        dataset: Any = None,
        calibration: str | None = None,
        eval_data: str | None = None,
        train_data: str | None = None,
    ):
        self.recipe = recipe
        self.staging = staging
        self.progress = progress
        self.seed = seed
        # what the user asked for; the load stage turns these into ``model`` and ``data``
        self.source = source
        self.dataset = dataset
        self.calibration = calibration
        self.eval_data = eval_data
        self.train_data = train_data
        self.data = Data()
        # set by the load stage before any other stage runs (declared, not initialised: every stage can rely on
        # them, and reading one earlier is an AttributeError naming it, not a None passed along)
        self.model: LoadedModel  # the input model
        self.base: Artifact  # the input model's float32 .tflite
        self.current: LoadedModel  # the model the next stage works on
        self.current_artifact: Artifact  # its float32 .tflite
        self.input_parent: str | None = None  # sha256 of the input file, when there is one
        self.prefix = ""  # name stem of the current model's artifacts ("", "student", "student-pruned")
        self.before_prune: Artifact | None = None  # the dense float32 artifact pruning started from
        self.transfer: np.ndarray | None = None  # distill's unlabelled transfer set, read by its check
        self.transfer_source = ""  # where it came from, or why "auto" found none
        self.artifacts: list[Artifact] = []
        self.warnings: list[str] = []
        # summary.json's "comparisons": stage records (:class:`Comparison`) and plain JSON entries of the checks
        self.comparisons: dict[str, Any] = {}
        self.checks: list[Callable[[RunContext], None]] = []  # later stages' checks, run once data is known
        self.train_stats: str | None = None  # --train-stats: the training data's statistics (converters.datacheck)
        self.allow_drift = False  # --allow-drift: data anomalies are recorded, not refused
        self.manifest_extra: dict[str, Any] = {}  # fields every artifact's manifest carries (data_stats, data_check)
        self.task: Any = None  # edge_sdk.tasks.Task of the input model (converters.task_checks.determine_task)
        self.task_why = ""

    @property
    def judged_by_accuracy(self) -> bool:
        """True unless the task is known and is not classification: no argmax "accuracy" of a detector's
        boxes or an autoencoder's pixels against anomaly flags (edge_sdk.tasks)."""
        return self.task is None or getattr(self.task, "value", self.task) == "classification"

    @property
    def latency_runs(self) -> int:
        """Timed runs for the quick latency column (``export.latency_runs``)."""
        return self.recipe.export.latency_runs

    def warn(self, message: str) -> None:
        """Record ``message`` for the summary and print it now (once: repeats are dropped)."""
        if message not in self.warnings:
            self.warnings.append(message)
            self.progress.warn(message)

    def advance(self, model: LoadedModel, artifact: Artifact, prefix: str) -> None:
        """Make ``model`` (with its float32 ``artifact``) the one the next stage works on; ``prefix`` names its artifacts."""
        self.current, self.current_artifact, self.prefix = model, artifact, prefix

    def record(self, comparison: Comparison) -> None:
        """Record a stage's comparison (replacing an earlier one with the same key)."""
        self.comparisons[comparison.key] = comparison

    def recorded(self, kind: type[C]) -> C:
        """The record of class ``kind`` this run has, made (empty) and recorded on first use."""
        found = self.comparisons.get(kind.key)
        if not isinstance(found, kind):
            found = kind()
            self.record(found)
        return found

    def run_checks(self) -> None:
        """Run every planned stage's pre-flight check (once the model and data are known, before any work)."""
        for check in self.checks:
            check(self)

    def require_training_data(self, stage: str) -> None:
        """Raise :class:`DataError` when a stage that fine-tunes has no training data."""
        self.training_data(stage)

    def training_data(self, stage: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(inputs by name, labels) a fine-tuning ``stage`` trains on; a :class:`DataError` naming it when none."""
        x, y = self.data.train_x, self.data.train_y
        if x is None or y is None:
            raise DataError(f"stage '{stage}' fine-tunes the model and needs training data: {TRAINING_DATA_HINT}")
        return x, y

    # -- checking ---------------------------------------------------------------------------------
    def check_data(self) -> tuple:
        """(inputs, description) a model is checked for NaN/inf on: the eval data, else a slice of the rest."""
        if self.data.eval_x is not None:
            return self.data.eval_x, f"the eval data ({self.data.eval_source or 'eval split'})"
        if self.data.calibration_x is not None:
            sample = {k: v[:CHECK_SAMPLES] for k, v in self.data.calibration_x.items()}
            keep = np.ones(len(next(iter(sample.values()))), dtype=bool)  # NaN samples are dropped before calibrating
            for v in sample.values():
                keep &= np.isfinite(v.reshape(len(v), -1)).all(axis=1) if v.dtype.kind == "f" else True
            if keep.any():
                sample = {k: v[keep] for k, v in sample.items()}
            return sample, f"the calibration data ({self.data.calibration_source or 'calibration'})"
        if self.data.train_x is not None:
            return {k: v[:CHECK_SAMPLES] for k, v in self.data.train_x.items()}, "the training data"
        return None, ""

    # -- writing ---------------------------------------------------------------------------------
    def _manifest(
        self,
        data_bytes: bytes,
        file: str,
        *,
        kind: str,
        stage: str,
        inputs=(),
        outputs=(),
        parent: str | None = None,
        metrics=None,
        calibration=None,
        **extra,
    ) -> dict[str, Any]:
        return build_manifest(
            data_bytes,
            file,
            kind=kind,
            stage=stage,
            inputs=inputs,
            outputs=outputs,
            labels=self.data.labels,
            preprocessing=self.data.preprocessing,
            parent_sha256=parent,
            recipe=self.recipe.to_dict(),
            metrics=metrics or {},
            calibration=calibration,
            extra_tool_modules=self._tool_modules(),
            build=self._build_record(kind),
            **{**self.manifest_extra, **({"task": self.task.value} if self.task is not None else {}), **extra},
        )

    def _light(self) -> bool:
        """A .tflite input run with no TensorFlow loaded: manifests must not import it to describe the build."""
        model = getattr(self, "model", None)  # None until the load stage ran
        return model is not None and model.kind == KIND_TFLITE and "converters._tf" not in sys.modules

    def _tool_modules(self) -> tuple:
        return () if self._light() else TOOL_MODULES  # importing TensorFlow just to print its version: no

    def _build_record(self, kind: str) -> dict[str, Any]:
        if self._light():
            # the LiteRT quantizer has no random source: same float file, data and scheme -> same bytes
            return {
                "seed": int(self.seed),
                "op_determinism": None,
                "byte_identical": True,
                "note": "quantized by the LiteRT quantizer, no TensorFlow involved",
            }
        return build_record(self.seed, kind)

    def add_tflite(
        self,
        name: str,
        tflite: bytes,
        *,
        kind: str,
        stage: str,
        parent: str | None,
        keras_model: Any = None,
        calibration=None,
        extra_metrics=None,
        **extra,
    ) -> Artifact:
        """Evaluate a .tflite (refusing NaN/inf outputs), write it and its manifest into staging, record it.

        ``name``: artifact name (file ``<name>.tflite``); ``kind``/``stage``: manifest fields;
        ``parent``: sha256 of the artifact it came from; ``keras_model``: the float model it
        is a conversion of; ``calibration``: input statistics; ``extra_metrics``/``extra``:
        more manifest metrics / fields.
        """
        metrics: dict[str, Any] = dict(extra_metrics or {})
        check_x, check_on = self.check_data()
        if check_x is not None:
            outputs = tflite_outputs(tflite, check_x, calibration=calibration)  # the clip warning judges by it
            check_finite(outputs, f"stage '{stage}': {name}.tflite", check_on)
            if self.data.eval_x is not None and self.data.eval_y is not None and self.judged_by_accuracy:
                acc = accuracy(primary(outputs), self.data.eval_y, f"eval labels ({self.data.eval_source})")
                if acc is not None:
                    metrics["accuracy"] = round(acc, 6)
                metrics["eval_samples"] = int(len(self.data.eval_y))
        sample = self.data.sample()
        if sample is not None:
            latency = tflite_latency_us(tflite, sample, self.latency_runs)
            if latency is not None:
                metrics["latency_us"] = round(latency, 1)
        inputs, outputs_spec = _tflite_specs(tflite)
        file = f"{name}.tflite"
        manifest = self._manifest(
            tflite,
            file,
            kind=kind,
            stage=stage,
            inputs=inputs,
            outputs=outputs_spec,
            parent=parent,
            metrics=metrics,
            calibration=calibration,
            **extra,
        )
        atomic_write_bytes(self.staging / file, tflite)
        write_manifest(manifest, manifest_path_for(self.staging / file))
        artifact = Artifact(
            name,
            file,
            kind,
            stage,
            manifest["sha256"],
            manifest["size_bytes"],
            manifest["gzip_size_bytes"],
            parent,
            metrics,
            manifest,
            keras_model,
        )
        self.artifacts.append(artifact)
        acc = metrics.get("accuracy")
        self.progress.say(
            f"wrote {file}: {artifact.size_bytes:,} bytes" + (f", accuracy {100 * acc:.2f}%" if acc is not None else "")
        )
        return artifact

    def add_directory(
        self,
        name: str,
        directory: Path,
        *,
        kind: str,
        stage: str,
        parent: str | None,
        specs_from: LoadedModel,
        metrics=None,
    ) -> Artifact:
        """Record a directory artifact (SavedModel) with its tree digest (:mod:`edge_sdk.digest`) as sha256.

        Arguments as :meth:`add_tflite`; ``specs_from``: the model whose I/O the manifest
        lists; ``metrics``: its manifest metrics.
        """
        listing = tree_listing(directory)
        total, gz = _directory_sizes(directory)
        manifest = self._manifest(
            listing,
            directory.name,
            kind=kind,
            stage=stage,
            inputs=float_input_specs(specs_from),
            outputs=float_output_specs(specs_from),
            parent=parent,
            metrics=metrics or {},
            sha256_of="directory-tree",
        )
        manifest["size_bytes"] = total
        manifest["gzip_size_bytes"] = gz
        write_manifest(manifest, manifest_path_for(directory))
        artifact = Artifact(
            name, directory.name, kind, stage, manifest["sha256"], total, gz, parent, metrics or {}, manifest
        )
        self.artifacts.append(artifact)
        self.progress.say(f"wrote {directory.name}/ ({total:,} bytes)")
        return artifact

    def add_file(
        self,
        name: str,
        file: str,
        data: bytes,
        *,
        kind: str,
        stage: str,
        parent: str | None,
        specs_from: LoadedModel,
        metrics=None,
        **extra,
    ) -> Artifact:
        """Write a non-TFLite model file (.keras, .onnx) named ``file`` holding ``data``, and its manifest.

        Other arguments as :meth:`add_directory`.
        """
        atomic_write_bytes(self.staging / file, data)
        manifest = self._manifest(
            data,
            file,
            kind=kind,
            stage=stage,
            inputs=float_input_specs(specs_from),
            outputs=float_output_specs(specs_from),
            parent=parent,
            metrics=metrics or {},
            **extra,
        )
        write_manifest(manifest, manifest_path_for(self.staging / file))
        artifact = Artifact(
            name,
            file,
            kind,
            stage,
            manifest["sha256"],
            manifest["size_bytes"],
            manifest["gzip_size_bytes"],
            parent,
            metrics or {},
            manifest,
        )
        self.artifacts.append(artifact)
        self.progress.say(f"wrote {file} ({artifact.size_bytes:,} bytes)")
        return artifact

    # -- the float32 artifact of a float model -----------------------------------------------------
    def float_model_accuracy(self, model: LoadedModel, stage: str, name: str) -> float | None:
        """Accuracy of the float (Keras / SavedModel) model itself on the eval split, refusing NaN/inf outputs.

        ``stage`` and ``name`` (the artifact being made) name the model in the error.
        """
        check_x, check_on = self.check_data()
        if check_x is None:
            return None
        output = model.predict(check_x)
        check_finite({"output": output}, f"stage '{stage}': the float model behind {name}", check_on)
        if self.data.eval_x is None or self.data.eval_y is None or not self.judged_by_accuracy:
            return None
        acc = accuracy(output, self.data.eval_y, f"eval labels ({self.data.eval_source})")
        return None if acc is None else round(acc, 6)

    def float32_artifact(
        self, model: LoadedModel, name: str, stage: str, parent: str | None, **metrics: Any
    ) -> Artifact:
        """Convert ``model`` to a float32 .tflite and record it, with the float model's own accuracy beside it.

        ``name``/``stage``/``parent``: as :meth:`add_tflite`; ``metrics``: extra manifest metrics.
        """
        if model.kind == KIND_TFLITE:
            flatbuffer = model.tflite_bytes  # the user's float .tflite is its own float32 artifact
        else:
            from converters.tflite_convert import convert  # TensorFlow only for a float model that is not a .tflite

            flatbuffer = convert(model, "float32").tflite
        metrics = {k: v for k, v in metrics.items() if v is not None}
        float_acc = self.float_model_accuracy(model, stage, name)
        if float_acc is not None:
            metrics["float_model_accuracy"] = float_acc
        params = model.count_params()
        if params is not None:
            metrics.setdefault("params", params)
        extra = {"float_parent": model.float_parent} if model.float_parent else {}
        if model.signature_added:
            extra["signature_added"] = model.signature_added
        return self.add_tflite(
            name,
            flatbuffer,
            kind="float32",
            stage=stage,
            parent=parent,
            keras_model=model,
            extra_metrics=metrics,
            **extra,
        )


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def load_data(
    model: LoadedModel | None,
    *,
    dataset: Any = None,
    calibration: str | None = None,
    eval_data: str | None = None,
    train_data: str | None = None,
    seed: int = 0,
) -> Data:
    """Gather train/eval/calibration arrays from a zoo dataset and/or the user's files.

    ``model``: the loaded model the arrays are checked against (None: only the dataset is read);
    ``dataset``: a built-in dataset name or path, or a loaded Dataset; ``calibration``,
    ``eval_data``, ``train_data``: .npy/.npz paths; ``seed``: the dataset split seed.
    """
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
        # labels are optional: every task can be judged against the float model alone (issue 25)
        data.eval_x, data.eval_y = load_data_file(eval_data, model.inputs, "eval")
        _check_label_count(data.eval_x, data.eval_y, str(eval_data))
        data.eval_source = str(eval_data)
    return data


def _check_label_count(inputs: dict[str, np.ndarray], labels: np.ndarray | None, source: str) -> None:
    """Labels, when given, must be one per example (checked before any conversion starts)."""
    if labels is None:
        return
    n = len(next(iter(inputs.values())))
    y = np.asarray(labels)
    if y.ndim == 0 or len(y) != n:
        raise DataError(
            f"eval data {source}: expected {n} labels under 'y' (one per example), got {0 if y.ndim == 0 else len(y)}"
        )


def dataset_inputs(x: Any, specs: Sequence[Any], purpose: str) -> dict[str, np.ndarray]:
    """The dataset split ``x`` as ``{input name: array}``, checked against ``specs`` (``purpose`` names it)."""
    return as_input_dict(x, specs, purpose=purpose, error=DataError)


def bind(data: Data, model: LoadedModel) -> None:
    """Check the zoo dataset's arrays against ``model``'s inputs and keep them by input name."""
    if data.dataset is None:
        return
    ds = data.dataset
    if data.train_x is None:
        data.train_x = dataset_inputs(ds.x_train, model.inputs, f"{ds.name} training")
    if data.eval_x is None:
        data.eval_x = dataset_inputs(ds.x_test, model.inputs, f"{ds.name} eval")
    if data.calibration_x is None:
        data.calibration_x = data.train_x


# ------------------------------------------------------------------------------------------------
# the stage contract
# ------------------------------------------------------------------------------------------------
@runtime_checkable
class Stage(Protocol):
    """What a stage module is (``pipeline.STAGE_MODULES`` names them): three functions, no state of its own.

    ``options`` is the stage's typed recipe section (``recipe.PruneOptions``...). A stage reads the
    model it works on from ``ctx.current``/``ctx.current_artifact``/``ctx.prefix``, writes artifacts
    through ``ctx.add_tflite``/``add_directory``/``add_file``/``float32_artifact``, records its
    comparison with ``ctx.record(<its Comparison dataclass>)`` and hands its model on with ``ctx.advance``.
    """

    def run_stage(self, ctx: RunContext, options: Any) -> None:
        """Do the stage's work on ``ctx.current``."""
        ...

    def check(self, ctx: RunContext, options: Any) -> None:
        """Before any work, once the model and data are known: refuse what cannot run (an ``EdgeSdkError``)."""
        ...

    def planned_steps(self, recipe: recipes.Recipe) -> int:
        """How many progress lines the stage prints for ``recipe``."""
        ...
