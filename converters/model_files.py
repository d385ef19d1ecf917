"""Read a model file given to the converter into a :class:`LoadedModel` (its kind is decided by
:mod:`converters.inputs`), and say which stages it can take.

Accepted inputs:

* tf_keras ``.keras`` files and ``.h5`` files (including ones saved by Keras 2
  releases): every stage applies;
* Keras 3 ``.keras`` files: post-training quantization and export apply (through a
  SavedModel export), and the model can be a distillation teacher; tfmot pruning
  and QAT do not, because tfmot only accepts tf_keras models;
* SavedModel directories: if Keras wrote them (``keras_metadata.pb``) they load as
  tf_keras models; otherwise the serving signature is used, which allows
  post-training quantization, export and use as a teacher;
* float ``.tflite`` files: post-training quantization only, with the LiteRT quantizer
  (:mod:`converters.litert_quant`); loading one imports no TensorFlow, so it works with
  only the runtime and the ``quantize`` extra. Stages that need the model's layers
  (distill, prune, QAT) and the SavedModel/Keras/ONNX exports are refused.

Loading never runs Python code stored in the file unless the caller trusts it
(``trust_model_code=True``, or the CLI's ``--trust-model-code``). A Keras
``Lambda`` layer keeps its Python function in the file (marshalled bytecode,
or a function named by module); tf_keras 2.21 runs that code while it loads an
``.h5`` file or a Keras SavedModel even with ``safe_mode=True``, so the model's
config is read and checked here before any Keras loader sees the file. A Keras
SavedModel whose layers hold code still loads, through its serving signature
(a traced TensorFlow graph: no Python from the file runs), which allows
post-training quantization, export and use as a teacher.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from converters.errors import ModelLoadError, StageNotApplicableError
from converters.inputs import InputKind, input_kind
from edge_sdk.console import first_line

TRUST_FLAG = "--trust-model-code"
_TRUST_MODEL_CODE: contextvars.ContextVar[bool] = contextvars.ContextVar("edge_sdk_trust_model_code", default=False)

KIND_TF_KERAS = "tf_keras"
KIND_KERAS3 = "keras3"
KIND_SAVEDMODEL = "savedmodel"
KIND_TFLITE = "tflite"

# what each input kind can take; the CLI prints these when a stage does not apply
CAPABILITIES = {
    KIND_TF_KERAS: ("quantize", "qat", "prune", "distill-student", "distill-teacher", "export"),
    KIND_KERAS3: ("quantize", "distill-teacher", "export"),
    KIND_SAVEDMODEL: ("quantize", "distill-teacher", "export"),
    KIND_TFLITE: ("quantize",),
}
# what a capability needs, for the refusal a .tflite input gets ("prune needs a Keras model or SavedModel")
_NEEDS = {
    "prune": "prune",
    "qat": "quantization-aware training (qat)",
    "distill-student": "distill",
    "distill-teacher": "distill",
    "export": "export",
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
    shape: tuple[int | None, ...]
    dtype: str


@dataclasses.dataclass
class LoadedModel:
    """A model ready for the converter stages, with what it is and what it can take."""

    kind: str
    path: Path | None
    model: Any  # tf_keras.Model | keras.Model | loaded SavedModel
    inputs: list[InputSpec]
    _saved_model_dir: Path | None = None  # read through saved_model_path, set through use_saved_model
    _tmp: Any = None  # a TemporaryDirectory holding it, removed with the model
    # why a Keras-written SavedModel was loaded through its serving signature instead (stored code)
    not_keras_because: str | None = None
    # a .tflite with float16 / int8 weights: how its float32 parent (``model``) was made
    # (:mod:`converters.tflite_float_parent`); None when the file was float already
    float_parent: dict[str, Any] | None = None
    # a .tflite input with no SignatureDef: what edge-sdk added (converters.tflite_signature), for the manifest
    signature_added: dict | None = None
    _owned: list[Any] = dataclasses.field(default_factory=list, repr=False)  # temp dirs of use_saved_model

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Stages this input can take (see :data:`CAPABILITIES`)."""
        return CAPABILITIES[self.kind]

    def require(self, capability: str, stage: str) -> None:
        """Raise :class:`StageNotApplicableError` if this input cannot take ``capability``."""
        if capability in self.capabilities:
            return
        if self.kind == KIND_TFLITE:
            raise StageNotApplicableError(
                f"stage '{stage}': {_NEEDS.get(capability, capability)} needs a Keras model or SavedModel; got a "
                f".tflite file ({self.describe()}). A float .tflite can take post-training quantization only "
                f"(recipes int8, dynamic, fp16, or --scheme)"
            )
        why = self.not_keras_because or _WHY_NOT.get(self.kind, "")
        raise StageNotApplicableError(
            f"stage '{stage}' needs a tf_keras model, but {self.describe()} is a {self.kind} model: "
            f"{why}. What applies to it: {', '.join(self.capabilities)} "
            f"(e.g. recipes fp16, dynamic, int8)"
        )

    def describe(self) -> str:
        """A short human name for the input."""
        return str(self.path) if self.path else "the in-memory model"

    @property
    def saved_model_path(self) -> Path | None:
        """The SavedModel directory the converter reads for this model (its own, or one made for it), if any."""
        return self._saved_model_dir

    def use_saved_model(self, directory: Path, owner: Any = None) -> None:
        """Make ``directory`` the SavedModel the converter reads for this model.

        ``owner``: a ``tempfile.TemporaryDirectory`` holding it, kept (and removed) with the model.
        """
        self._saved_model_dir = Path(directory)
        if owner is not None:
            self._owned.append(owner)

    @property
    def is_tf_keras(self) -> bool:
        """True when tfmot and the trainers can use this model directly."""
        return self.kind == KIND_TF_KERAS

    @property
    def input_names(self) -> list[str]:
        """Input names in the model's order."""
        return [spec.name for spec in self.inputs]

    @property
    def tflite_bytes(self) -> bytes:
        """The flatbuffer of a ``.tflite`` input (a :class:`ModelLoadError` for any other kind)."""
        if self.kind != KIND_TFLITE:
            raise ModelLoadError(f"{self.describe()} is a {self.kind} model, not a .tflite file")
        return self.model

    def count_params(self) -> int | None:
        """Number of parameters, when the model has layers (a .tflite: the elements of its float weights)."""
        if self.kind == KIND_TFLITE:
            return _tflite_weight_elements(self.model)
        if self.kind == KIND_SAVEDMODEL:
            return int(sum(np.prod(v.shape) for v in self.model.variables))
        return int(self.model.count_params())

    def predict(self, inputs: dict[str, np.ndarray], batch_size: int = 256) -> np.ndarray:
        """Run the float model on ``{input name: array}`` and return the (single) output."""
        if self.kind == KIND_TFLITE:
            from converters.evaluation import primary, tflite_outputs

            return primary(tflite_outputs(self.model, inputs, batch_size))
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
            if isinstance(out, dict):  # a multi-output model: its first output, as for the .tflite (primary)
                out = out[next((n for n in getattr(self.model, "output_names", []) if n in out), next(iter(out)))]
            elif isinstance(out, (list, tuple)):
                out = out[0]
            outs.append(np.asarray(out))
        return np.concatenate(outs, axis=0)


def _tflite_weight_elements(tflite: bytes) -> int | None:
    from edge_sdk.inspect_model import inspect_model

    total = sum(t["bytes"] // 4 for t in inspect_model(tflite)["tensors"] if t["constant"] and t["dtype"] == "float32")
    return int(total) or None


def load_tflite(path: Path) -> LoadedModel:
    """A float ``.tflite`` file as a :class:`LoadedModel` (kind ``tflite``; no TensorFlow involved).

    A file with float16 or int8 weights and float activations (float16-weight, weight-only
    int8, dynamic-range) loads as its float32 parent (:mod:`converters.tflite_float_parent`;
    ``float_parent`` says how it was made). Refuses, with one line, a file that is not a
    TFLite flatbuffer or one that is already integer (quantize the float original instead).
    """
    import edge_sdk
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.inspect_model import inspect_model

    data = path.read_bytes()
    try:
        info = inspect_model(data)
        runtime = edge_sdk.load(data)
    except EdgeSdkError as exc:
        raise ModelLoadError(f"{path}: expected a float .tflite model: {first_line(exc, 300)}") from None
    check_tflite_structure(data, runtime, path)  # what the verifier lets through but the quantizer chokes on
    record = None
    if info["kind"] != "float":  # float16 / int8 weights: their float32 parent; full-integer: refused
        from converters.tflite_float_parent import float_parent

        parent = float_parent(data, str(path))
        assert parent is not None  # None only for float weights, which took the other branch
        data, record = parent.tflite, parent.record()
    specs = [InputSpec(s.name, tuple(s.shape), np.dtype(s.dtype).name) for s in runtime.inputs]
    from converters.tflite_signature import ensure_signature

    data, added = ensure_signature(data)  # one signature the LiteRT quantizer and edge_sdk both use
    return LoadedModel(KIND_TFLITE, path, data, specs, float_parent=record, signature_added=added)


def check_tflite_structure(data: bytes, runtime: Any, path: Path) -> None:
    """Refuse, in one line naming ``path``, a .tflite that LiteRT's verifier loads but the rest of convert
    cannot read: a signature without inputs or outputs, or names (tensors, signatures) that are not UTF-8
    text without NUL bytes (truncated or damaged files: the LiteRT quantizer reads the same flatbuffer
    with Python and fails with StopIteration, UnicodeDecodeError or a KeyError on a garbled name).
    """
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.inspect_model import _schema

    if not runtime.inputs or not runtime.outputs:
        raise ModelLoadError(
            f"{path}: expected a .tflite model with at least one input and one output, got "
            f"{len(runtime.inputs)} input(s) and {len(runtime.outputs)} output(s) (a damaged "
            "or truncated file?)"
        )

    def name_ok(raw: Any) -> bool:
        if raw is None:
            return True
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return False
        return "\x00" not in text

    try:
        root = _schema().Model.GetRootAsModel(data, 0)
        bad = None
        for g in range(root.SubgraphsLength()):
            subgraph = root.Subgraphs(g)
            for t in range(subgraph.TensorsLength()):
                if not name_ok(subgraph.Tensors(t).Name()):
                    bad = f"tensor {t} of subgraph {g}"
                    break
            if bad:
                break
        for i in range(root.SignatureDefsLength() if not bad else 0):
            signature = root.SignatureDefs(i)
            names = (
                [signature.SignatureKey()]
                + [signature.Inputs(j).Name() for j in range(signature.InputsLength())]
                + [signature.Outputs(j).Name() for j in range(signature.OutputsLength())]
            )
            if not all(name_ok(n) for n in names):
                bad = f"signature {i}"
                break
    except EdgeSdkError:  # the schema module missing: its own message
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the Python flatbuffer reader: a damaged file
        raise ModelLoadError(
            f"{path}: the .tflite flatbuffer cannot be read ({type(exc).__name__}: "
            f"{first_line(exc, 200)}); a damaged or truncated file?"
        ) from None
    if bad:
        raise ModelLoadError(
            f"{path}: the name of {bad} is not UTF-8 text without NUL bytes; expected an "
            "undamaged .tflite file (truncated or corrupted?)"
        )


def _keras_specs(model: Any) -> list[InputSpec]:
    specs = []
    for tensor in model.inputs:
        name = getattr(tensor, "name", "input").split(":")[0]
        shape = tuple(None if d is None else int(d) for d in tensor.shape)
        dtype = getattr(tensor.dtype, "name", str(tensor.dtype))
        specs.append(InputSpec(name, shape, dtype))
    return specs


def from_keras(model: Any, path: Path | None = None) -> LoadedModel:
    """Wrap an in-memory tf_keras (or Keras 3) model."""
    from converters._tf import tf_keras

    kind = KIND_TF_KERAS if isinstance(model, tf_keras.Model) else KIND_KERAS3
    return LoadedModel(kind=kind, path=path, model=model, inputs=_keras_specs(model))


def _keras_file_version(path: Path) -> str:
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
    return first_line(exc, 300)


class UntrustedModelCodeError(ModelLoadError):
    """The model holds Python code (e.g. a Keras ``Lambda`` layer) and the caller did not trust it."""


@contextlib.contextmanager
def trusted_model_code(trust: bool = True) -> Iterator[None]:
    """Within the block, :func:`load` calls that do not pass ``trust_model_code`` use ``trust``.

    The CLI's ``--trust-model-code`` sets this around a whole run, so every model
    the run loads (input, student file) follows the one decision.
    """
    token = _TRUST_MODEL_CODE.set(bool(trust))
    try:
        yield
    finally:
        _TRUST_MODEL_CODE.reset(token)


def _is_stored_bytecode(value: Any) -> bool:
    """A function serialized as code: tf_keras' marshalled (base64, defaults, closure) triple or Keras 3's ``__lambda__``."""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return True
    return isinstance(value, dict) and value.get("class_name") == "__lambda__"


def _function_name(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        name = value.get("config")
        module = value.get("module")
        if isinstance(name, str):
            return f"{module}.{name}" if isinstance(module, str) and module != "builtins" else name
    return "?"


def stored_code(config: Any) -> list[str]:
    """Where a Keras model config (tf_keras or Keras 3 JSON, parsed) holds Python code, one phrase each.

    Every ``Lambda`` layer counts: its function is either bytecode (runs on load) or
    a Python function looked up by the name written in the file. Anywhere else, a
    function serialized as bytecode (Keras 3's ``__lambda__``, e.g. as an activation)
    counts too. The walk covers nested models and wrappers.
    """
    found: list[str] = []

    def layer_name(node: dict[str, Any]) -> str:
        inner = node.get("config")
        name = inner.get("name") if isinstance(inner, dict) else None
        return str(name or node.get("name") or "?")

    def walk(node: Any, owner: str) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda" and isinstance(node.get("config"), dict):
                inner = node["config"]
                function = inner.get("function")
                lambda_typed = inner.get("function_type") == "lambda" or inner.get("output_shape_type") == "lambda"
                if _is_stored_bytecode(function) or lambda_typed or _is_stored_bytecode(inner.get("output_shape")):
                    found.append(f"Lambda layer '{layer_name(node)}' holds Python bytecode")
                else:
                    found.append(
                        f"Lambda layer '{layer_name(node)}' calls the Python function "
                        f"'{_function_name(function)}' the file names"
                    )
                return
            if node.get("class_name") == "__lambda__":
                found.append(f"'{owner}' holds a Python lambda's bytecode")
                return
            if isinstance(node.get("config"), dict) and "class_name" in node:
                owner = layer_name(node)
            for value in node.values():
                walk(value, owner)
        elif isinstance(node, list):
            for value in node:
                walk(value, owner)

    walk(config, "the model")
    return list(dict.fromkeys(found))


def _json_or_none(text: Any) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _h5_config(path: Path) -> Any:
    """The ``model_config`` JSON of a Keras .h5 file, read with h5py (no Keras involved), or None."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: HDF5 file would not open: {_short(exc)}") from None
    return None if raw is None else _json_or_none(raw)


def _keras_zip_config(path: Path) -> Any:
    """The ``config.json`` of a .keras archive (both tf_keras and Keras 3 write one), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _json_or_none(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError):
        return None  # _keras_file_version has already said what is wrong with the archive


def _keras_metadata_configs(directory: Path) -> list[Any]:
    """Each node's metadata JSON from a Keras SavedModel's ``keras_metadata.pb`` (the layer configs)."""
    from tf_keras.protobuf import saved_metadata_pb2

    metadata = saved_metadata_pb2.SavedMetadata()
    try:
        metadata.ParseFromString((directory / "keras_metadata.pb").read_bytes())
    except Exception:  # noqa: BLE001 - a damaged file: tf_keras will not load it either, the signature path decides
        return []
    return [_json_or_none(node.metadata) for node in metadata.nodes]


def _refuse_stored_code(path: Path, found: list[str]) -> None:
    shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
    raise UntrustedModelCodeError(
        f"{path}: refusing to load: the model holds Python code that would run while loading: {shown}. "
        f"Load it only if you trust where the file came from: pass {TRUST_FLAG} "
        f"(Python: trust_model_code=True)"
    )


def load(path_or_model: Any, trust_model_code: bool | None = None) -> LoadedModel:
    """Load a .keras / .h5 file or a SavedModel directory (or wrap a Keras model).

    ``trust_model_code``: allow Python code stored in the model (Keras ``Lambda``
    layers) to be deserialized and run. ``None`` (default) follows
    :func:`trusted_model_code`, which is off unless a caller turned it on.
    Untrusted, such a file is refused with :class:`UntrustedModelCodeError`
    naming the layers; a Keras SavedModel is loaded through its serving signature instead.
    """
    if isinstance(path_or_model, LoadedModel):  # already loaded (e.g. an ONNX input reused across runs)
        return path_or_model
    if not isinstance(path_or_model, (str, Path)):
        return from_keras(path_or_model)
    trust = _TRUST_MODEL_CODE.get() if trust_model_code is None else bool(trust_model_code)
    path = Path(path_or_model)
    if not path.exists():
        raise ModelLoadError(
            f"model {path}: no such file or directory (expected a .keras/.h5/.tflite file or a SavedModel directory)"
        )
    if not path.is_dir() and not path.is_file():  # a FIFO would block the reader forever, a device never end
        from edge_sdk.fileio import not_a_regular_file

        raise ModelLoadError(
            f"model {path} {not_a_regular_file(path)}; expected a .keras/.h5/.tflite file or a SavedModel directory"
        )
    kind = input_kind(path)
    if kind is InputKind.TFLITE:
        return load_tflite(path)  # before TensorFlow: a .tflite input runs without it
    from converters._tf import tf, tf_keras

    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ModelLoadError(f"{path}: a directory, but not a SavedModel (expected saved_model.pb inside)")
        not_keras_because = None
        if (path / "keras_metadata.pb").is_file():
            found = [] if trust else [p for c in _keras_metadata_configs(path) for p in stored_code(c)]
            if found:
                not_keras_because = (
                    f"it was loaded through its serving signature because its Keras layers hold "
                    f"Python code ({found[0]}); pass {TRUST_FLAG} to load the layers if you "
                    f"trust where it came from"
                )
            else:
                try:
                    model = tf_keras.models.load_model(path, compile=False, safe_mode=not trust)
                    return LoadedModel(KIND_TF_KERAS, path, model, _keras_specs(model), _saved_model_dir=path)
                except Exception:  # noqa: BLE001 - fall back to the serving signature
                    pass
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
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
        return LoadedModel(
            KIND_SAVEDMODEL, path, loaded, specs, _saved_model_dir=path, not_keras_because=not_keras_because
        )

    suffix = path.suffix.lower()
    if kind is InputKind.ONNX:  # the convert pipeline's load stage takes it through converters.onnx_import.load_onnx
        raise ModelLoadError(
            f"{path}: an ONNX model is converted through onnx2tf: load it with "
            "converters.onnx_import.load_onnx, or give it to edge-sdk convert"
        )
    if kind is InputKind.KERAS:
        version = _keras_file_version(path)
        if not trust:
            found = stored_code(_keras_zip_config(path))
            if found:
                _refuse_stored_code(path, found)
        if version.startswith("3"):
            import keras

            try:
                model = keras.saving.load_model(path, compile=False, safe_mode=not trust)
            except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
                raise ModelLoadError(f"{path}: Keras {version} file would not load: {_short(exc)}") from None
            return LoadedModel(KIND_KERAS3, path, model, _keras_specs(model))
        try:
            model = tf_keras.models.load_model(path, compile=False, safe_mode=not trust)
        except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
            raise ModelLoadError(f"{path}: tf_keras {version} file would not load: {_short(exc)}") from None
        return LoadedModel(KIND_TF_KERAS, path, model, _keras_specs(model))
    if kind is InputKind.H5:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89HDF\r\n\x1a\n":
                raise ModelLoadError(f"{path}: expected an HDF5 file (Keras 2 .h5), but the header is not HDF5")
        if not trust:
            # tf_keras runs a Lambda's bytecode while rebuilding an .h5 model whatever safe_mode says
            found = stored_code(_h5_config(path))
            if found:
                _refuse_stored_code(path, found)
        try:
            model = tf_keras.models.load_model(path, compile=False, safe_mode=not trust)
            return LoadedModel(KIND_TF_KERAS, path, model, _keras_specs(model))
        except Exception as first:  # noqa: BLE001 - maybe Keras 3 wrote it
            try:
                import keras

                model = keras.saving.load_model(path, compile=False, safe_mode=not trust)
                return LoadedModel(KIND_KERAS3, path, model, _keras_specs(model))
            except Exception:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
                raise ModelLoadError(f"{path}: HDF5 model would not load: {_short(first)}") from None
    raise ModelLoadError(
        f"{path}: expected a .keras, .h5 or float .tflite file or a SavedModel directory, got a "
        f"{suffix or 'suffix-less'} file"
    )
