"""Train a zoo model on a dataset with the callbacks a team needs, and export it.

``fit("cnn", "mnist", epochs=15, out_dir="runs/cnn-mnist")`` writes::

    runs/cnn-mnist/
      model.keras, model.json          tf_keras model and its manifest
      savedmodel/, savedmodel.json     SavedModel (serving_default, named inputs/outputs) and manifest
      metrics.json                     test-split metrics, validation metrics, params, timing, history
      training_log.csv                 one row per epoch (appended across resumes)
      logs/                            TensorBoard: train/ and validation/ scalars + weight histograms,
                                       gradients/ gradient histograms, projector/ (Wide & Deep embeddings)
      checkpoints/best.h5              weights of the best epoch by validation loss
      backup/                          BackupAndRestore state and run.json (model, dataset, settings);
                                       present only while a run is unfinished

A run killed mid-way and started again with the same ``out_dir`` resumes at the
last finished epoch (``TrainResult.resumed_from_epoch``). Started with another
model, dataset, batch size, learning rate, seed or strategy, it is refused
(:class:`ResumeMismatchError`, naming both) instead of restoring weights into the
wrong model; more epochs than before are allowed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.console import first_line, progress_bar
from edge_sdk.fileio import atomic_write_text
from edge_sdk.outputs import mark_output_dir
from training import datasets as datasets_mod
from training import distributed, zoo
from training.errors import TrainingError

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# Per-model defaults found to reach the targets (docs/training.md has the runs).
DEFAULTS = {
    "cnn": {"batch_size": 32, "learning_rate": 1e-3},
    "cnn-student": {"batch_size": 32, "learning_rate": 2e-3},
    "wide-deep": {"batch_size": 256, "learning_rate": 1e-3},
}
EARLY_STOPPING_PATIENCE = 8
# written into backup/ while a run is unfinished: what a resumed run must match
RUN_IDENTITY_FILE = "run.json"


class ResumeMismatchError(TrainingError):
    """An unfinished run in ``out_dir`` was started with another model or other settings than this one."""


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` produced: the trained model, its history, test metrics and written paths."""

    model: Any
    history: dict[str, list[float]]
    metrics: dict[str, float]
    paths: dict[str, str | None]
    dataset: Any = None
    resumed_from_epoch: int = 0
    epochs_run: int = 0
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)


def fit(
    model_name: str,
    dataset: str | Any,
    epochs: int,
    out_dir: str | Path | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    strategy: Any = None,
    callbacks: Sequence[Any] = (),
    verbose: int = 0,
    learning_rate: float | None = None,
    early_stopping: bool = True,
    histograms: bool = True,
    progress: bool = True,
    deterministic: bool = True,
    steps_per_epoch: int | None = None,
    force: bool = False,
) -> TrainResult:
    """Train ``model_name`` on ``dataset`` (a name, path or Dataset) for up to ``epochs`` epochs.

    With ``out_dir``: TensorBoard logs (scalars, weight and gradient histograms),
    best-epoch checkpoint, BackupAndRestore (resume after a kill), a CSV log,
    SavedModel + .keras export with manifests, and ``metrics.json``.
    Without it: nothing is written and only early stopping runs.
    ``strategy``: None, "mirrored", "multiworker" (TF_CONFIG) or a tf.distribute.Strategy.

    ``out_dir`` must be new, empty, or a folder edge-sdk wrote (the marker
    :data:`edge_sdk.outputs.MARKER_FILE`, written before training starts, or the
    ``metrics.json`` / ``backup/run.json`` a run leaves); any other non-empty folder raises
    :class:`~edge_sdk.errors.OutputError` before any work unless ``force=True`` (which writes
    into it). An ``out_dir`` that is, holds or lies inside the dataset's file or directory is
    refused even then.
    """
    if model_name not in zoo.MODELS:
        from training.errors import UnknownNameError

        raise UnknownNameError(f"unknown model {model_name!r}: expected one of {list(zoo.MODELS)}")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise TrainingError(f"epochs must be a positive integer, got {epochs!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise TrainingError(f"batch_size must be a positive integer, got {batch_size!r}")

    # A multi-worker strategy has to exist before TensorFlow runs any op.
    strategy = distributed.make_strategy(strategy)
    multiworker = distributed.strategy_name(strategy) == "multiworker"
    chief = distributed.is_chief() if multiworker else True
    out = _check_out_dir(out_dir, dataset, force, chief) if out_dir is not None else None
    import tensorflow as tf
    import tf_keras

    if deterministic:
        tf.config.experimental.enable_op_determinism()
    tf_keras.utils.set_random_seed(int(seed))

    data = dataset if not isinstance(dataset, (str, Path)) else datasets_mod.load(dataset, seed=seed)
    defaults = DEFAULTS[model_name]
    batch_size = batch_size or int(defaults["batch_size"])
    learning_rate = learning_rate or defaults["learning_rate"]

    paths: dict[str, str | None] = {
        k: None
        for k in ("out_dir", "savedmodel", "keras", "metrics_json", "logdir", "checkpoints", "projector", "csv_log")
    }
    backup_dir: Path | None = None
    resuming = False
    if out_dir is not None and out is not None:
        # Every worker restores from the same backup (tf_keras lets only the chief write it there),
        # so a restarted cluster resumes in step; the other outputs are per worker.
        backup_dir = Path(out_dir) / "backup"
        out.mkdir(parents=True, exist_ok=True)
        paths.update(
            out_dir=str(out),
            logdir=str(out / "logs"),
            checkpoints=str(out / "checkpoints"),
            csv_log=str(out / "training_log.csv"),
        )
        identity = _run_identity(model_name, data, batch_size, learning_rate, seed, strategy)
        resuming = _has_backup(backup_dir)
        if resuming:
            _check_resume(out_dir, backup_dir, identity)
        else:
            _clear_previous_run(out)
        # marked before training starts, so a killed run's folder is recognised as edge-sdk's when resumed
        mark_output_dir(out, "train", model=model_name, dataset=str(data.name))
        if chief:
            backup_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(backup_dir / RUN_IDENTITY_FILE, json.dumps(identity, indent=2) + "\n")

    scope = strategy.scope() if strategy is not None else _null_scope()
    with scope:
        model = zoo.build(model_name, data, seed=seed)
        _compile(model, data, learning_rate)

    train_ds = data.as_tf_dataset("train", batch_size=batch_size, shuffle=True, seed=seed)
    val_ds = data.as_tf_dataset("val", batch_size=max(batch_size, 256), shuffle=False)
    test_ds = data.as_tf_dataset("test", batch_size=max(batch_size, 256), shuffle=False)
    if strategy is not None:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds, val_ds, test_ds = (d.with_options(options) for d in (train_ds, val_ds, test_ds))

    tracker = EpochTracker()
    cbs: list[Any] = [tracker]
    if early_stopping:
        cbs.append(
            tf_keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=EARLY_STOPPING_PATIENCE, restore_best_weights=True
            )
        )
    if out is not None:
        cbs += [
            tf_keras.callbacks.BackupAndRestore(backup_dir=str(backup_dir)),
            tf_keras.callbacks.ModelCheckpoint(
                str(out / "checkpoints" / "best.h5"), monitor="val_loss", save_best_only=True, save_weights_only=True
            ),
            tf_keras.callbacks.CSVLogger(str(out / "training_log.csv"), append=True),
            tf_keras.callbacks.TensorBoard(
                log_dir=str(out / "logs"),
                histogram_freq=1 if histograms else 0,
                write_graph=False,
                update_freq="epoch",
                profile_batch=0,
            ),
        ]
        if histograms and strategy is None:
            cbs.append(GradientHistograms(out / "logs" / "gradients", data, batch_size=min(256, data.size("train"))))
    if progress:
        cbs.append(TqdmProgress(epochs, desc=f"train {model_name} on {data.name}"))
    cbs += list(callbacks)

    started = time.time()
    try:
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            callbacks=cbs,
            verbose=verbose,
            steps_per_epoch=steps_per_epoch,
        )
    except tf.errors.OpError as exc:
        if out_dir is not None and backup_dir is not None and resuming and not tracker.seen:
            raise _restore_failed(out_dir, backup_dir, exc.message) from None
        raise TrainingError(f"training {model_name} on {data.name} failed in TensorFlow: {exc.message}") from None
    except (ValueError, AssertionError, KeyError) as exc:
        # BackupAndRestore restores before the first epoch: a backup of another model fails there
        if out_dir is not None and backup_dir is not None and resuming and not tracker.seen:
            raise _restore_failed(out_dir, backup_dir, str(exc)) from None
        raise
    seconds = time.time() - started
    if backup_dir is not None and chief:
        (backup_dir / RUN_IDENTITY_FILE).unlink(missing_ok=True)  # finished: nothing left to resume

    test_metrics = evaluate(model, data, "test", test_ds=test_ds, exact=not multiworker)
    val_metrics = evaluate(model, data, "val", test_ds=val_ds, exact=not multiworker)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    summary = {
        "model": model_name,
        "dataset": data.name,
        "task": data.task,
        "params": zoo.count_params(model),
        "epochs_requested": epochs,
        "epochs_run": len(hist.get("loss", [])) + tracker.first_epoch,
        "resumed_from_epoch": tracker.first_epoch,
        "stopped_early": bool(early_stopping and len(hist.get("loss", [])) + tracker.first_epoch < epochs),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "strategy": distributed.strategy_name(strategy),
        "replicas": int(strategy.num_replicas_in_sync) if strategy is not None else 1,
        "train_seconds": round(seconds, 2),
        "split_sizes": {s: data.size(s) for s in datasets_mod.SPLITS},
        "test": test_metrics,
        "val": val_metrics,
        "output": "softmax probabilities [batch, num_classes]"
        if data.task == "image"
        else f"sigmoid probability of {data.labels[1]!r} [batch, 1]",
        "history": hist,
    }

    if out is not None:
        from training import saving

        keras_path = saving.save_keras(model, out / "model.keras")
        # out_dir was checked before training: its savedmodel/ is this function's to replace
        saved = saving.save_savedmodel(model, out / "savedmodel", force=True)
        recipe = {
            "train": {
                k: summary[k]
                for k in ("model", "dataset", "epochs_run", "batch_size", "learning_rate", "seed", "strategy")
            }
        }
        stats_path = _write_train_stats(model, data, out)  # the training data's statistics, beside the model
        saving.write_model_manifest(model, keras_path, "keras", data, test_metrics, recipe, data_stats=stats_path)
        saving.write_model_manifest(model, saved, "savedmodel", data, test_metrics, recipe, data_stats=stats_path)
        paths["train_stats"] = str(stats_path)
        if data.task == "tabular" and chief:
            from training.embeddings import write_projector

            # out_dir was checked before training, and a fresh run cleared its logs/projector
            projector = write_projector(model, out / "logs", data.feature_spec, force=True)
            paths["projector"] = str(projector) if projector else None
        metrics_path = out / "metrics.json"
        atomic_write_text(metrics_path, json.dumps(summary, indent=2) + "\n")
        paths.update(keras=str(keras_path), savedmodel=str(saved), metrics_json=str(metrics_path))

    return TrainResult(
        model=model,
        history=hist,
        metrics=test_metrics,
        paths=paths,
        dataset=data,
        resumed_from_epoch=tracker.first_epoch,
        epochs_run=summary["epochs_run"],
        summary=summary,
    )


def _check_out_dir(out_dir: str | Path, dataset: Any, force: bool, chief: bool) -> Path:
    """Check ``out_dir`` by :mod:`edge_sdk.outputs`' rules before any work; return the folder this process writes.

    A multi-worker run's other workers write into ``out_dir/workers/worker-N`` (the chief checks
    ``out_dir`` itself), so each checks only its own folder and no two race on one check.
    """
    from edge_sdk.outputs import check_dir_output, check_file_output, path_inputs

    out = Path(out_dir)
    if isinstance(dataset, (str, Path)):
        protected = path_inputs(dataset, "dataset")
        if Path(dataset).suffix:  # a table's feature spec beside it
            table = Path(dataset)
            protected += path_inputs(table.with_name(table.name.split(".")[0] + ".features.json"), "feature spec")
    else:
        protected = path_inputs(getattr(dataset, "source_path", None), "dataset's source")
    if not chief:
        _, index, _ = distributed.task_info()
        out = out / "workers" / f"worker-{index}"
    check_dir_output(out, "out_dir", protected, force=force, replace=False, force_hint="force=True")
    check_file_output(out / "model.keras", "out_dir", protected, kind="keras")  # before training, not after
    return out


def _write_train_stats(model: Any, data: Any, out: Path) -> Path:
    """``train_stats.json``: the schema and statistics of the training split (:mod:`training.datastats`),
    by model input name; ``edge-sdk convert``/``parity`` check later data against them."""
    from training.datastats import STATS_FILE, compute_stats, write_stats

    x = data.x_train
    if not isinstance(x, dict):
        names = list(getattr(model, "input_names", None) or [])
        x = {(names[0] if len(names) == 1 else "x"): x}
    stats = compute_stats(x, source=f"{data.name} train split", preprocessing=data.preprocessing)
    return write_stats(stats, out / STATS_FILE)


def _has_backup(backup_dir: Path) -> bool:
    """True when an unfinished run left BackupAndRestore state (so this run resumes)."""
    return backup_dir.is_dir() and any(p.is_file() and p.name != RUN_IDENTITY_FILE for p in backup_dir.rglob("*"))


# What must match for a run to continue another one's backup (the epoch count may grow: "train longer").
_IDENTITY_FLAGS = {
    "model": "--model",
    "dataset": "--dataset",
    "inputs": "--dataset",
    "num_classes": "--dataset",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "seed": "--seed",
    "strategy": "--strategy",
}


def _run_identity(
    model_name: str, data: Any, batch_size: int, learning_rate: float, seed: int, strategy: Any
) -> dict[str, Any]:
    shape = data.input_shape
    inputs = {k: list(v) for k, v in shape.items()} if isinstance(shape, dict) else list(shape)
    return {
        "model": model_name,
        "dataset": data.name,
        "inputs": inputs,
        "num_classes": int(data.num_classes),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "seed": int(seed),
        "strategy": distributed.strategy_name(strategy),
    }


def _check_resume(out_dir: str | Path, backup_dir: Path, identity: dict[str, Any]) -> None:
    """Refuse to continue an unfinished run that was started with other settings, naming both."""
    path = backup_dir / RUN_IDENTITY_FILE
    if not path.is_file():
        return  # a backup from before identities were recorded: a failed restore still gets a clear error
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return
    differ = [key for key in _IDENTITY_FLAGS if key in saved and saved[key] != identity.get(key)]
    if not differ:
        return
    before = ", ".join(f"{_IDENTITY_FLAGS[k]} {saved[k]}" for k in differ if k not in ("inputs", "num_classes"))
    now = ", ".join(f"{_IDENTITY_FLAGS[k]} {identity[k]}" for k in differ if k not in ("inputs", "num_classes"))
    if not before:  # same dataset name, other data (a re-written file or TFRecord directory)
        before = f"inputs {saved.get('inputs')} with {saved.get('num_classes')} classes"
        now = f"inputs {identity['inputs']} with {identity['num_classes']} classes"
    raise ResumeMismatchError(
        f"{out_dir} holds an unfinished run of {saved.get('model')!r} on {saved.get('dataset')!r} ({before}), "
        f"but this run asks for {now}: run again with the same settings to resume it, or choose another --out "
        f"(or delete {backup_dir} to start over there)"
    )


def _restore_failed(out_dir: str | Path, backup_dir: Path, detail: str) -> TrainingError:
    first = first_line(detail, 200) if str(detail).strip() else ""
    return ResumeMismatchError(
        f"{out_dir} holds an unfinished run that this model cannot continue (restoring {backup_dir} failed: "
        f"{first}); run again with the settings it was started with, or choose another --out "
        f"(or delete {backup_dir} to start over there)"
    )


def _clear_previous_run(out: Path) -> None:
    """A fresh run into a used directory: drop the old epoch log and TensorBoard runs so they do not mix.

    Only what :func:`fit` itself writes is removed; exports are replaced atomically at the end.
    """
    import shutil

    (out / "training_log.csv").unlink(missing_ok=True)
    for sub in ("train", "validation", "gradients", "projector"):
        shutil.rmtree(out / "logs" / sub, ignore_errors=True)


def _compile(model: Any, data: Any, learning_rate: float) -> None:
    import tf_keras

    optimizer = tf_keras.optimizers.Adam(learning_rate)
    if data.task == "tabular":
        model.compile(
            optimizer,
            loss=tf_keras.losses.BinaryCrossentropy(),
            metrics=[
                tf_keras.metrics.BinaryAccuracy(name="accuracy"),
                tf_keras.metrics.AUC(name="auc", num_thresholds=1000),
            ],
        )
    else:
        model.compile(
            optimizer,
            loss=tf_keras.losses.SparseCategoricalCrossentropy(),
            metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )


def evaluate(model: Any, data: Any, split: str = "test", test_ds: Any = None, exact: bool = True) -> dict[str, float]:
    """Loss, accuracy (and ROC AUC for binary tables) of ``model`` on ``split``.

    ``exact`` computes accuracy and AUC from the predictions with scikit-learn;
    otherwise Keras' streaming metrics are used (AUC over 1000 thresholds).
    """
    ds = test_ds if test_ds is not None else data.as_tf_dataset(split, batch_size=256, shuffle=False)
    values = model.evaluate(ds, verbose=0, return_dict=True)
    metrics = {k: float(v) for k, v in values.items()}
    if exact:
        x, y = data.split(split)
        probs = model.predict(x, batch_size=512, verbose=0)
        metrics.update(prediction_metrics(probs, y))
    metrics["examples"] = int(data.size(split))
    return metrics


def prediction_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy from probabilities (argmax, or > 0.5 for one sigmoid unit), plus ROC AUC for binary tasks."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if probs.ndim == 2 and probs.shape[1] == 1:
        scores = probs[:, 0]
        out = {"accuracy": float(((scores > 0.5).astype(np.int64) == labels).mean())}
        from sklearn.metrics import roc_auc_score

        out["auc"] = float(roc_auc_score(labels, scores))
        return out
    return {"accuracy": float((probs.argmax(axis=1) == labels).mean())}


class _null_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _keras_callback_base():
    import tf_keras

    return tf_keras.callbacks.Callback


class EpochTracker(_keras_callback_base()):  # type: ignore[misc]  # tf_keras is imported only when training runs
    """Records the first epoch this run trained: > 0 when BackupAndRestore resumed a killed run."""

    def __init__(self):
        super().__init__()
        self.first_epoch = 0
        self.seen = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self.seen:
            self.first_epoch = int(epoch)
            self.seen = True


class GradientHistograms(_keras_callback_base()):  # type: ignore[misc]  # tf_keras is imported only when training runs
    """After each epoch, writes a histogram of each trainable variable's gradient on a fixed training batch.

    Keras' TensorBoard callback writes weight histograms only; gradients show
    vanishing or exploding layers, so they are computed here on the same batch
    every epoch to make epochs comparable.
    """

    def __init__(self, logdir: str | Path, data: Any, batch_size: int = 256):
        super().__init__()
        self.logdir = str(logdir)
        self.data = data
        self.batch_size = batch_size
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.logdir)
        x = tf.nest.map_structure(tf.convert_to_tensor, self.data.take("train", self.batch_size))
        y = tf.convert_to_tensor(self.data.y_train[: self.batch_size])
        with tf.GradientTape() as tape:
            pred = self.model(x, training=False)
            loss = self.model.compute_loss(x=x, y=y, y_pred=pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
        with self._writer.as_default():
            for var, grad in zip(self.model.trainable_variables, grads, strict=False):
                if grad is None:
                    continue
                if isinstance(grad, tf.IndexedSlices):
                    grad = tf.convert_to_tensor(grad)
                tf.summary.histogram(f"gradients/{var.name.replace(':', '_')}", grad, step=epoch)
            tf.summary.scalar(
                "gradients/global_norm", tf.linalg.global_norm([g for g in grads if g is not None]), step=epoch
            )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class TqdmProgress(_keras_callback_base()):  # type: ignore[misc]  # tf_keras is imported only when training runs
    """One tqdm bar over epochs on stderr with the latest loss/accuracy as postfix.

    Without tqdm, or when stderr is not a terminal, one plain line per epoch instead.
    """

    def __init__(self, epochs: int, desc: str = "train"):
        super().__init__()
        self.epochs = epochs
        self.desc = desc
        self._bar = None

    def on_train_begin(self, logs=None):
        # None when stderr is not a terminal (a log file gets plain epoch lines instead) or tqdm is missing
        self._bar = progress_bar(self.epochs, self.desc, unit="epoch", leave=True)

    def on_epoch_begin(self, epoch, logs=None):
        if self._bar is not None and self._bar.n < epoch:
            self._bar.update(epoch - self._bar.n)  # resumed run: skip the epochs already done

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = {
            k: f"{v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy", "val_auc")
        }
        if self._bar is not None:
            self._bar.set_postfix(shown)
            self._bar.update(1)
        else:
            print(
                f"{self.desc}: epoch {epoch + 1}/{self.epochs} " + " ".join(f"{k}={v}" for k, v in shown.items()),
                file=sys.stderr,
            )

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
