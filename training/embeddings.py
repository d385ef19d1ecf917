"""Write a model's embedding tables for TensorBoard's embedding projector.

For every ``Embedding`` layer named ``embed_<input>`` (the Wide & Deep deep
part) this writes, under ``<logdir>/projector``: a TF checkpoint holding the
table, ``<input>.tsv`` with one label per row (the vocabulary, then ``[OOV]``),
and ``projector_config.pbtxt`` tying them together. Open it with
``tensorboard --logdir <logdir>/projector`` and pick the PROJECTOR tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_sdk.fileio import PathLike, atomic_write_text

OOV_LABEL = "[OOV]"
PROJECTOR_DIR = "projector"


def embedding_tables(model: Any, feature_spec: Any = None) -> dict[str, dict[str, Any]]:
    """``{input_name: {"weights": array [rows, dim], "labels": [str] * rows}}`` for each ``embed_*`` layer."""
    vocab_by_input: dict[str, list[str]] = {}
    if feature_spec is not None:
        for f in feature_spec.features:
            if getattr(f, "vocabulary", None) is not None:
                vocab_by_input[f.input_name] = list(f.vocabulary) + [OOV_LABEL]
    tables = {}
    for layer in model.layers:
        if layer.__class__.__name__ != "Embedding" or not layer.name.startswith("embed_"):
            continue
        name = layer.name[len("embed_") :]
        weights = layer.get_weights()[0]
        labels = vocab_by_input.get(name) or [str(i) for i in range(len(weights))]
        if len(labels) != len(weights):
            labels = [str(i) for i in range(len(weights))]
        tables[name] = {"weights": weights, "labels": labels}
    return tables


def write_projector(model: Any, logdir: PathLike, feature_spec: Any = None, *, force: bool = False) -> Path | None:
    """Write the projector files for ``model``'s embeddings; return the directory, or None if it has none.

    ``<logdir>/projector`` must be new, empty, or one edge-sdk wrote (the marker
    :data:`edge_sdk.outputs.MARKER_FILE` it leaves there); any other non-empty folder raises
    :class:`~edge_sdk.errors.OutputError` before anything is written unless ``force=True``
    (which writes into it: same-named files are replaced, others kept).
    """
    from edge_sdk.outputs import check_dir_output, mark_output_dir

    tables = embedding_tables(model, feature_spec)
    if not tables:
        return None
    out = Path(logdir) / PROJECTOR_DIR
    check_dir_output(out, "projector directory", force=force, replace=False, force_hint="force=True")
    import tensorflow as tf
    from tensorboard.plugins import projector

    mark_output_dir(out, "training.embeddings.write_projector")  # creates the folder
    variables = {}
    config = projector.ProjectorConfig()
    for name, table in tables.items():
        atomic_write_text(out / f"{name}.tsv", "".join(_tsv_safe(label) + "\n" for label in table["labels"]))
        variables[name] = tf.Variable(table["weights"], name=name)
        entry = config.embeddings.add()
        entry.tensor_name = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
        entry.metadata_path = f"{name}.tsv"
    tf.train.Checkpoint(**variables).save(str(out / "embeddings.ckpt"))
    projector.visualize_embeddings(str(out), config)
    return out


def _tsv_safe(label: str) -> str:
    # a single-column metadata file has no header; tabs or newlines would shift rows
    return label.replace("\t", " ").replace("\n", " ") or "(empty)"
