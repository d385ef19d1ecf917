"""A float model as a SavedModel directory: the one writer (``export_savedmodel``) and the cached export
the TFLite converter reads (``saved_model_dir``). Below the stages: ``export`` writes the user's SavedModel
artifact with it, ``tflite_convert`` converts from it, ``source`` fixes its input shapes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from converters.errors import ExportError, first_line
from converters.model_files import KIND_KERAS3, KIND_TF_KERAS, LoadedModel
from edge_sdk.errors import EdgeSdkError


def saved_model_dir(model: LoadedModel) -> Path:
    """A SavedModel directory for ``model``: its own when it has one, else exported once into a temp dir.

    The export is kept on the model (and removed with it), so converting it twice exports once.
    """
    if model.saved_model_path is None:
        owner = tempfile.TemporaryDirectory(prefix="edge-sdk-sm-")
        target = Path(owner.name) / "saved_model"
        export_savedmodel(model, target)
        model.use_saved_model(target, owner)
    assert model.saved_model_path is not None
    return model.saved_model_path


def export_savedmodel(model: LoadedModel, path: Path, *, force: bool = False) -> Path:
    """Write ``model`` as a SavedModel directory at ``path`` with a ``serving_default`` signature, atomically.

    ``path`` must be new, empty, or a folder edge-sdk wrote (the marker
    :data:`edge_sdk.outputs.MARKER_FILE`, written inside the staging directory); any other
    non-empty folder raises :class:`~edge_sdk.errors.OutputError` before any work unless
    ``force=True``. The model's own file or SavedModel directory is never written over.
    """
    from edge_sdk.fileio import atomic_output_dir
    from edge_sdk.outputs import check_dir_output, mark_output_dir, model_inputs

    path = Path(path)
    protected = model_inputs(model.path, "model") + model_inputs(model.saved_model_path, "model's SavedModel")
    check_dir_output(path, "SavedModel path", protected, force=force, replace=True, force_hint="force=True")
    try:
        if model.kind == KIND_TF_KERAS:
            from training.saving import save_savedmodel  # named inputs/outputs, the project's format

            save_savedmodel(model.model, path, force=True, protected=protected)  # checked above
            return path
        if model.kind != KIND_KERAS3 and model.path is None:
            raise ExportError("a SavedModel input without a path cannot be re-exported")
        with atomic_output_dir(path) as tmp:
            if model.kind == KIND_KERAS3:
                model.model.export(str(tmp), format="tf_saved_model", verbose=False)
            else:
                source = model.saved_model_path or model.path
                assert source is not None
                shutil.copytree(source, tmp, dirs_exist_ok=True)  # an ONNX input's is onnx2tf's
            mark_output_dir(tmp, "converters.savedmodel.export_savedmodel", record_entries=True)
    except EdgeSdkError:
        raise
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
        raise ExportError(f"SavedModel export of {model.describe()} to {path} failed: {first_line(exc, 400)}") from None
    return path
