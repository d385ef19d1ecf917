"""``edge-sdk train``: train a zoo model on a built-in or user dataset and export it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edge_sdk.cli._common import refuse_ambiguous, require_convert_stack, training_names
from edge_sdk.console import print_json
from edge_sdk.errors import EdgeSdkError
from edge_sdk.outputs import mark_output_dir

# Kept here (not imported from training.datasets) so --help and name checks need no TensorFlow.
STRATEGIES = ("mirrored", "multiworker")


class UnknownDatasetError(EdgeSdkError, ValueError):
    """A --dataset that is neither a built-in name nor an existing file or directory."""


class TrainArgumentError(EdgeSdkError, ValueError):
    """A numeric option out of range."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` subcommand."""
    names = training_names()
    DATASETS, DATASETS_TEXT, models = names.DATASETS, names.DATASETS_TEXT, names.ZOO_MODELS
    parser = subparsers.add_parser(
        "train",
        help=f"train a model ({', '.join(models) or 'a zoo model'}) and export SavedModel + .keras + metrics",
        description=f"Train a model from the zoo on {DATASETS_TEXT}[:N], a CSV/parquet table with a "
        "feature spec, or a TFRecord dataset directory. Writes model.keras, savedmodel/ (serving_default "
        "with named inputs/outputs), manifests, metrics.json and TensorBoard logs into --out. A run "
        "killed mid-way resumes from its last finished epoch when started again with the same --out.",
    )
    parser.add_argument("--model", required=True, choices=models or None, help="model to train")
    parser.add_argument(
        "--dataset",
        required=True,
        metavar="NAME|PATH",
        help=f"one of {', '.join(DATASETS)}, a .csv/.parquet file (with <stem>.features.json or "
        "--feature-spec), or a TFRecord dataset directory",
    )
    parser.add_argument(
        "--epochs", required=True, type=int, help="maximum number of epochs (early stopping may end sooner)"
    )
    parser.add_argument("--out", required=True, help="output directory (new, empty, or one edge-sdk train wrote)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into --out even if it is a non-empty directory edge-sdk did not write (nothing in it is deleted)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (default per model)")
    parser.add_argument("--learning-rate", type=float, default=None, help="Adam learning rate (default per model)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, initialisation and shuffling")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help="tf.distribute strategy; multiworker reads the cluster from TF_CONFIG",
    )
    parser.add_argument("--feature-spec", default=None, help="feature spec JSON for a CSV/parquet dataset")
    parser.add_argument("--no-early-stopping", action="store_true", help="always run --epochs epochs")
    parser.add_argument("--no-histograms", action="store_true", help="skip weight/gradient histograms")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")
    parser.set_defaults(func=run)


def _check_dataset(value: str) -> None:
    from training.names import DATASETS

    if value in DATASETS or value.startswith("fashion-mnist:"):  # fashion-mnist:N, N training images
        return
    path = Path(value)
    if path.is_dir() or (path.is_file() and path.suffix.lower() in (".csv", ".parquet", ".pq", ".brotli")):
        return
    what = "is not a .csv/.parquet file" if path.is_file() else "does not exist"
    raise UnknownDatasetError(
        f"unknown dataset {value!r} ({what}): expected one of {', '.join(DATASETS)}, "
        "a .csv/.parquet file, or a TFRecord dataset directory"
    )


def _check_out(args: argparse.Namespace) -> Path:
    """Refuse an --out that is or holds an input or is someone else's folder; return the directory to write.

    (Resuming a killed run with other settings is refused by ``training.train`` itself, from backup/run.json.)
    """
    from edge_sdk.outputs import check_dir_output, path_inputs

    protected = path_inputs(args.dataset, "--dataset") + path_inputs(args.feature_spec, "--feature-spec")
    if Path(args.dataset).suffix:
        data = Path(args.dataset)
        protected += path_inputs(data.with_name(data.name.split(".")[0] + ".features.json"), "feature spec")
    return check_dir_output(args.out, "--out", protected, force=args.force, replace=False)


def run(args: argparse.Namespace) -> int:
    """Train, export, and print the summary table (or JSON)."""
    if args.epochs < 1:
        raise TrainArgumentError(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size is not None and args.batch_size < 1:
        raise TrainArgumentError(f"--batch-size must be at least 1, got {args.batch_size}")
    from training.names import DATASETS

    refuse_ambiguous(args.dataset, DATASETS, "--dataset", "dataset")
    _check_dataset(args.dataset)
    out = _check_out(args)
    # Before TensorFlow loads: its C++ start-up chatter (no GPU, op
    # attribute notices) is not for users of this command; failures still surface as exceptions.
    # TF_CPP_MIN_LOG_LEVEL=0 in the environment brings the logs back.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    require_convert_stack("train")  # TensorFlow imported in the one working order, start-up lines filtered
    # marked before training starts, so a killed run's folder is recognised as edge-sdk's when resumed
    mark_output_dir(out, "train", model=args.model, dataset=str(args.dataset))

    from edge_sdk.report import format_table
    from training import datasets, train

    strategy = None
    if args.strategy:
        # the multi-worker strategy must exist before any TensorFlow op runs (dataset loading is numpy only)
        from training.distributed import make_strategy

        strategy = make_strategy(args.strategy)
    dataset = datasets.load(args.dataset, seed=args.seed, feature_spec=args.feature_spec)
    result = train.fit(
        args.model,
        dataset,
        epochs=args.epochs,
        out_dir=args.out,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        strategy=strategy,
        early_stopping=not args.no_early_stopping,
        histograms=not args.no_histograms,
        progress=not args.quiet,
        force=args.force,  # checked above already (with the feature spec among the inputs); fit checks again
    )
    summary = dict(result.summary)
    summary["paths"] = result.paths
    if args.json:
        print_json(summary)
        return 0
    test = summary["test"]
    rows = [
        ["model", summary["model"]],
        [
            "dataset",
            f"{summary['dataset']} (train {summary['split_sizes']['train']}, val "
            f"{summary['split_sizes']['val']}, test {summary['split_sizes']['test']})",
        ],
        ["parameters", summary["params"]],
        [
            "epochs run",
            f"{summary['epochs_run']} of {summary['epochs_requested']}"
            + (f" (resumed at epoch {summary['resumed_from_epoch']})" if summary["resumed_from_epoch"] else "")
            + (" (early stop)" if summary["stopped_early"] else ""),
        ],
        ["strategy", f"{summary['strategy']} x{summary['replicas']}"],
        ["train time s", summary["train_seconds"]],
        ["test accuracy", round(test["accuracy"], 4)],
    ]
    if "auc" in test:
        rows.append(["test AUC", round(test["auc"], 4)])
    rows.append(["test loss", round(test["loss"], 4)])
    for key in ("savedmodel", "keras", "metrics_json", "train_stats", "logdir"):
        if result.paths.get(key):
            rows.append([key, result.paths[key]])
    print(format_table(rows, ["", "value"]))
    return 0
