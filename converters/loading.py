"""Detect and load a model given to the converter, and say which stages it can take.

Accepted inputs:

* tf_keras ``.keras`` files and ``.h5`` files (including ones saved by Keras 2
  releases): every stage applies;
* Keras 3 ``.keras`` files: post-training quantization and export apply (through a
  SavedModel export), and the model can be a distillation teacher; tfmot pruning
  and QAT do not, because tfmot only accepts tf_keras models;
* SavedModel directories: if Keras wrote them (``keras_metadata.pb``) they load as
  tf_keras models; otherwise the serving signature is used, which allows
  post-training quantization, export and use as a teacher.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from converters.errors import ModelLoadError, StageNotApplicableError

KIND_TF_KERAS = "tf_keras"
KIND_KERAS3 = "keras3"
KIND_SAVEDMODEL = "savedmodel"

# what each input kind can take; the CLI prints these when a stage does not apply
CAPABILITIES = {
    KIND_TF_KERAS: ("quantize", "qat", "prune", "distill-student", "distill-teacher", "export"),
    KIND_KERAS3: ("quantize", "distill-teacher", "export"),
    KIND_SAVEDMODEL: ("quantize", "distill-teacher", "export"),
}
_WHY_NOT = {
    KIND_KERAS3: "tensorflow-model-optimization (pruning, QAT) and the distillation trainer only take tf_keras "
    "models, and this is a Keras 3 model; save it with tf_keras (import tf_keras; rebuild and "
    "model.save('m.keras')) to use those stages",
    KIND_SAVEDMODEL: "a SavedModel not written by Keras has no layers to prune or fine-tune",
}


@dataclasses.dataclass
class InputSpec:
    """One model input: its name, shape (None for the batch) and dtype name."""

    name: str
    shape: Tuple[Optional[int], ...]
    dtype: str


@dataclasses.dataclass
class LoadedModel:
    """A model ready for the converter stages, with what it is and what it can take."""

    kind: str
    path: Optional[Path]
    model: Any  # tf_keras.Model | keras.Model | loaded SavedModel
    inputs: List[InputSpec]
    _saved_model_dir: Optional[Path] = None
    _tmp: Any = None

    @property
    def capabilities(self) -> Tuple[str, ...]:
        """Stages this input can take (see :data:`CAPABILITIES`)."""
        return CAPABILITIES[self.kind]

    def require(self, capability: str, stage: str) -> None:
        """Raise :class:`StageNotApplicableError` if this input cannot take ``capability``."""
        if capability in self.capabilities:
            return
        raise StageNotApplicableError(
            f"stage '{stage}' needs a tf_keras model, but {self.describe()} is a {self.kind} model: "
            f"{_WHY_NOT.get(self.kind, '')}. What applies to it: {', '.join(self.capabilities)} "
            f"(e.g. recipes fp16, dynamic, int8)"
        )

    def describe(self) -> str:
        """A short human name for the input."""
        return str(self.path) if self.path else "the in-memory model"

    @property
    def is_tf_keras(self) -> bool:
        """True when tfmot and the trainers can use this model directly."""
        return self.kind == KIND_TF_KERAS

    @property
    def input_names(self) -> List[str]:
        """Input names in the model's order."""
        return [spec.name for spec in self.inputs]

    def count_params(self) -> Optional[int]:
        """Number of parameters, when the model has layers."""
        if self.kind == KIND_SAVEDMODEL:
            return int(sum(np.prod(v.shape) for v in self.model.variables))
        return int(self.model.count_params())

    def saved_model_dir(self) -> Path:
        """A SavedModel directory for this model (exported once on demand)."""
        if self._saved_model_dir is None:
            from converters.export import export_savedmodel

            self._tmp = tempfile.TemporaryDirectory(prefix="edge-sdk-sm-")
            target = Path(self._tmp.name) / "saved_model"
            export_savedmodel(self, target)
            self._saved_model_dir = target
        return self._saved_model_dir

    def predict(self, inputs: Dict[str, np.ndarray], batch_size: int = 256) -> np.ndarray:
        """Run the float model on ``{input name: array}`` and return the (single) output."""
        from converters._tf import tf

        n = len(next(iter(inputs.values())))
        outs = []
        for start in range(0, n, batch_size):
            batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
            if self.kind == KIND_SAVEDMODEL:
                signature = self.model.signatures["serving_default"]
                result = signature(**{k: tf.constant(v) for k, v in batch.items()})
                out = result[sorted(result)[0]]
            elif self.kind == KIND_KERAS3:
                out = self.model(batch if len(batch) > 1 else next(iter(batch.values())), training=False)
            else:
                out = self.model(batch if len(batch) > 1 else next(iter(batch.values())), training=False)
            outs.append(np.asarray(out))
        return np.concatenate(outs, axis=0)


def _keras_specs(model: Any) -> List[InputSpec]:
    specs = []
    for tensor in model.inputs:
        name = getattr(tensor, "name", "input").split(":")[0]
        shape = tuple(None if d is None else int(d) for d in tensor.shape)
        dtype = getattr(tensor.dtype, "name", str(tensor.dtype))
        specs.append(InputSpec(name, shape, dtype))
    return specs


def from_keras(model: Any, path: Optional[Path] = None) -> LoadedModel:
    """Wrap an in-memory tf_keras (or Keras 3) model."""
    from converters._tf import tf_keras

    kind = KIND_TF_KERAS if isinstance(model, tf_keras.Model) else KIND_KERAS3
    return LoadedModel(kind=kind, path=path, model=model, inputs=_keras_specs(model))


def _keras_file_version(path: Path) -> Optional[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("metadata.json"))
        return str(meta.get("keras_version", ""))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ModelLoadError(
            f"{path}: expected a .keras archive (a zip with metadata.json and config.json), "
            f"but it is not one ({type(exc).__name__}: {exc})"
        ) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def load(path_or_model: Any) -> LoadedModel:
    """Load a .keras / .h5 file or a SavedModel directory (or wrap a Keras model)."""
    if not isinstance(path_or_model, (str, Path)):
        return from_keras(path_or_model)
    path = Path(path_or_model)
    if not path.exists():
        raise ModelLoadError(f"model {path}: no such file or directory (expected a .keras/.h5 file or a SavedModel directory)")
    from converters._tf import tf, tf_keras

    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ModelLoadError(f"{path}: a directory, but not a SavedModel (expected saved_model.pb inside)")
        if (path / "keras_metadata.pb").is_file():
            try:
                model = tf_keras.models.load_model(path, compile=False)
                return LoadedModel(KIND_TF_KERAS, path, model, _keras_specs(model), _saved_model_dir=path)
            except Exception:  # noqa: BLE001 - fall back to the serving signature
                pass
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"{path}: SavedModel would not load: {_short(exc)}") from None
        if "serving_default" not in getattr(loaded, "signatures", {}):
            raise ModelLoadError(
                f"{path}: expected a 'serving_default' signature, got {sorted(getattr(loaded, 'signatures', {}))}"
            )
        _, kwargs = loaded.signatures["serving_default"].structured_input_signature
        specs = [
            InputSpec(name, tuple(None if d is None else int(d) for d in spec.shape), spec.dtype.name)
            for name, spec in sorted(kwargs.items())
        ]
        return LoadedModel(KIND_SAVEDMODEL, path, loaded, specs, _saved_model_dir=path)

    suffix = path.suffix.lower()
    if suffix == ".keras":
        version = _keras_file_version(path)
        if version.startswith("3"):
            import keras

            try:
                model = keras.saving.load_model(path, compile=False)
            except Exception as exc:  # noqa: BLE001
                raise ModelLoadError(f"{path}: Keras {version} file would not load: {_short(exc)}") from None
            return LoadedModel(KIND_KERAS3, path, model, _keras_specs(model))
        try:
            model = tf_keras.models.load_model(path, compile=False)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"{path}: tf_keras {version} file would not load: {_short(exc)}") from None
        return LoadedModel(KIND_TF_KERAS, path, model, _keras_specs(model))
    if suffix in (".h5", ".hdf5"):
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89HDF\r\n\x1a\n":
                raise ModelLoadError(f"{path}: expected an HDF5 file (Keras 2 .h5), but the header is not HDF5")
        try:
            model = tf_keras.models.load_model(path, compile=False)
            return LoadedModel(KIND_TF_KERAS, path, model, _keras_specs(model))
        except Exception as first:  # noqa: BLE001 - maybe Keras 3 wrote it
            try:
                import keras

                model = keras.saving.load_model(path, compile=False)
                return LoadedModel(KIND_KERAS3, path, model, _keras_specs(model))
            except Exception:  # noqa: BLE001
                raise ModelLoadError(f"{path}: HDF5 model would not load: {_short(first)}") from None
    raise ModelLoadError(
        f"{path}: expected a .keras or .h5 file or a SavedModel directory, got a {suffix or 'suffix-less'} file"
    )
