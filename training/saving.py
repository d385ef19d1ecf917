"""Save trained tf_keras models: SavedModel (serving_default), .keras file, manifests.

Every write is atomic: the SavedModel is built in a temporary directory beside
the destination and renamed into place, so a reader (or a process killed mid-save)
never sees half a model. Every write follows :mod:`edge_sdk.outputs`' rules, checked
before any work: a SavedModel directory replaces only a new, empty or edge-sdk-written
folder unless ``force=True`` (its marker file is written inside the staging directory, so
a later save replaces it without force), and a ``.keras`` file replaces only a ``.keras``
(zip) file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_sdk.errors import EdgeSdkError
from edge_sdk.fileio import PathLike, atomic_output_dir, atomic_output_path
from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest
from edge_sdk.outputs import Protected, check_dir_output, check_file_output, mark_output_dir
from training.errors import TrainingError

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

SIGNATURE_KEY = "serving_default"


def io_specs(model: Any) -> dict[str, list[dict[str, Any]]]:
    """The model's named inputs and outputs as manifest entries (float models: no quantization)."""

    def spec(name: str, tensor: Any) -> dict[str, Any]:
        return {
            "name": name,
            "shape": [None if d is None else int(d) for d in tensor.shape],
            "dtype": tensor.dtype.name,
            "quantization": None,
        }

    return {
        "inputs": [spec(n, t) for n, t in zip(model.input_names, model.inputs, strict=False)],
        "outputs": [spec(n, t) for n, t in zip(model.output_names, model.outputs, strict=False)],
    }


def serving_function(model: Any):
    """A ``tf.function`` whose signature has the model's input names and returns ``{output_name: tensor}``."""
    import tensorflow as tf

    names = list(model.input_names)
    specs = {n: tf.TensorSpec(t.shape, t.dtype, name=n) for n, t in zip(names, model.inputs, strict=False)}
    out_names = list(model.output_names)

    def outputs(result):
        result = result if isinstance(result, (list, tuple)) else [result]
        return {n: r for n, r in zip(out_names, result, strict=False)}

    if len(names) == 1:

        @tf.function(input_signature=[specs[names[0]]])
        def serve(x):
            return outputs(model(x, training=False))

    else:

        @tf.function(input_signature=[specs])
        def serve(inputs):
            return outputs(model(inputs, training=False))

    return serve


def save_savedmodel(model: Any, path: PathLike, *, force: bool = False, protected: Sequence[Protected] = ()) -> Path:
    """Save ``model`` as a SavedModel with a ``serving_default`` signature (named inputs/outputs), atomically.

    Keras metadata is kept, so ``tf_keras.models.load_model(path)`` gives the
    Keras model back, and ``tf.saved_model.load(path).signatures["serving_default"]``
    takes keyword arguments named after the model inputs.

    ``path`` must be new, empty, or a folder edge-sdk wrote (the marker
    :data:`edge_sdk.outputs.MARKER_FILE` it leaves inside, which TensorFlow ignores);
    any other non-empty folder raises :class:`~edge_sdk.errors.OutputError` before any
    work unless ``force=True``. ``protected``: inputs the output must not be, hold or
    lie inside, even with ``force``.
    """
    path = Path(path)
    check_dir_output(path, "SavedModel path", protected, force=force, replace=True, force_hint="force=True")
    try:
        serve = serving_function(model)
        with atomic_output_dir(path) as tmp:
            model.save(str(tmp), save_format="tf", include_optimizer=False, signatures={SIGNATURE_KEY: serve})
            mark_output_dir(tmp, "training.saving.save_savedmodel", record_entries=True)  # promoted with it
    except EdgeSdkError:
        raise
    except Exception as exc:  # noqa: BLE001 - a TensorFlow error becomes one clear message
        raise TrainingError(f"could not save a SavedModel to {path}: {type(exc).__name__}: {exc}") from None
    return path


def save_keras(model: Any, path: PathLike, *, protected: Sequence[Protected] = ()) -> Path:
    """Save ``model`` as a tf_keras ``.keras`` file, atomically.

    An existing file at ``path`` is replaced only if it is a ``.keras`` (zip) archive; anything else,
    a directory, or an input in ``protected`` raises :class:`~edge_sdk.errors.OutputError` before any work.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise TrainingError(f"expected a path ending in .keras, got {path}")
    check_file_output(path, ".keras path", protected, kind="keras")
    try:
        with atomic_output_path(path) as tmp:
            model.save(str(tmp))
    except EdgeSdkError:
        raise
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
        raise TrainingError(f"could not save {path}: {type(exc).__name__}: {exc}") from None
    return path


def write_model_manifest(
    model: Any,
    artifact: PathLike,
    kind: str,
    dataset: Any,
    metrics: dict[str, Any] | None = None,
    recipe: dict[str, Any] | None = None,
    data_stats: PathLike | None = None,
) -> Path:
    """Write the manifest beside a ``.keras`` file or SavedModel directory.

    ``data_stats``: the training data's statistics file (``train_stats.json``, beside the artifact),
    which the manifest's ``data_stats`` field then points to.

    For a SavedModel the hashed bytes are its ``saved_model.pb`` (the graph and
    signatures); the variables are covered by the ``.keras`` file's hash.
    """
    artifact = Path(artifact)
    data = (artifact / "saved_model.pb").read_bytes() if artifact.is_dir() else artifact.read_bytes()
    io = io_specs(model)
    manifest = build_manifest(
        data,
        artifact.name,
        kind=kind,
        stage="train",
        inputs=io["inputs"],
        outputs=io["outputs"],
        labels=list(dataset.labels),
        preprocessing=dataset.preprocessing,
        metrics=metrics or {},
        recipe=recipe,
        extra_tool_modules=("tensorflow", "tf_keras"),
    )
    if data_stats is not None:
        from training.datastats import stats_pointer

        manifest["data_stats"] = stats_pointer(data_stats)
    return write_manifest(manifest, manifest_path_for(artifact))
