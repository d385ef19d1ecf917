"""``edge-sdk data``: the training data's statistics, and checks and drift of other data against them.

    edge-sdk data stats DATA --out train_stats.json            # DATA: .npz/.npy, or a dataset name (train split)
    edge-sdk data check DATA --train-stats train_stats.json    # schema + anomalies; exit 1 when any
    edge-sdk data drift DATA --train-stats train_stats.json [--json [FILE]]

``--model MODEL`` instead of ``--train-stats`` takes the statistics the model's manifest points to.
The statistics and checks live in ``training.datastats`` / ``converters.datacheck`` (numpy only),
imported inside :func:`run`: nothing here loads TensorFlow.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge_sdk.cli._common import add_json_option
from edge_sdk.console import emit_report, print_json
from edge_sdk.errors import EdgeSdkError


class DataArgumentError(EdgeSdkError, ValueError):
    """A data command given something it cannot read."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``data`` subcommand (``stats``, ``check``, ``drift``)."""
    parser = subparsers.add_parser(
        "data",
        help="statistics of training data; check other data against them; per-feature drift table",
        description="stats: write the schema and statistics of DATA (per input dtype, shape, range; per channel "
        "mean/std/percentiles; categorical vocabulary with frequencies). check: refuse DATA whose inputs, dtypes "
        "or shapes differ from the statistics, or that lies far outside them (x255 / x16 scale, channel swap, "
        "unseen categories); exit 1 naming the input, what was expected, what came and a likely cause. drift: a "
        "per-feature distance table (PSI for numbers, Jensen-Shannon for categories, per-channel mean shift for "
        "images). DATA: a .npz (one array per input, labels 'y' ignored), a .npy, or a built-in dataset name.",
    )
    parser.add_argument("action", choices=("stats", "check", "drift"))
    parser.add_argument("data", metavar="DATA")
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default=None,
        help="for a dataset name: the split to read (default train for stats, test otherwise)",
    )
    parser.add_argument("--out", help="stats: the statistics JSON file to write")
    parser.add_argument("--train-stats", metavar="FILE", help="check/drift: the training statistics")
    parser.add_argument("--model", help="check/drift: take the statistics the model's manifest points to")
    parser.add_argument("--allow-drift", action="store_true", help="check: report anomalies but exit 0")
    add_json_option(parser, "the statistics, findings or drift report")
    parser.set_defaults(func=run)


def read_data(value: str, split: str) -> tuple[dict[str, Any], str, Any]:
    """(``{input name: array}``, a description, the preprocessing) of a .npz/.npy file or dataset split."""
    import numpy as np

    from edge_sdk.arrays import check_array_file

    path = Path(value)
    from training.names import DATASETS

    if value in DATASETS or value.startswith("fashion-mnist:"):
        from training import datasets

        ds = datasets.load(value)
        x = getattr(ds, f"x_{split}")
        inputs = dict(x) if isinstance(x, dict) else {"x": np.asarray(x)}
        return inputs, f"{ds.name} {split} split", ds.preprocessing
    check_array_file(path, "DATA", error=DataArgumentError)
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):
        return {"x": loaded}, str(path), None
    with loaded:
        inputs = {k: loaded[k] for k in loaded.files if k != "y"}
    if not inputs:
        raise DataArgumentError(f"DATA {path}: expected input arrays, got only {loaded.files}")
    _check_arrays(inputs, path)
    return inputs, str(path), None


def _check_arrays(inputs: dict[str, Any], path: Path) -> None:
    """Numeric (bool/int/float) arrays with one row per example, the same count in each, at least one."""
    rows = {}
    for name, array in inputs.items():
        if array.dtype.kind not in "biuf":
            raise DataArgumentError(
                f"DATA {path}: input {name!r}: expected a numeric array (bool, int or float), got dtype {array.dtype}"
            )
        if array.ndim == 0:
            raise DataArgumentError(f"DATA {path}: input {name!r}: expected one row per example, got a scalar")
        rows[name] = int(array.shape[0])
    if len(set(rows.values())) > 1:
        raise DataArgumentError(f"DATA {path}: expected the same number of examples in every input, got {rows}")
    if not any(rows.values()):
        raise DataArgumentError(f"DATA {path}: expected at least one example, got 0")


def _stats(args: argparse.Namespace) -> dict[str, Any]:
    from converters.datacheck import load_stats, stats_beside_model

    if args.train_stats:
        return load_stats(args.train_stats)
    if args.model:
        stats = stats_beside_model(args.model)
        if stats is None:
            raise DataArgumentError(
                f"--model {args.model}: expected a manifest beside it with data_stats, got none; "
                "pass --train-stats FILE (edge-sdk data stats TRAINING_DATA --out FILE)"
            )
        return stats
    raise DataArgumentError(f"data {args.action} needs --train-stats FILE or --model MODEL, got neither")


def run(args: argparse.Namespace) -> int:
    """Run one data action; return the exit code."""
    from edge_sdk.outputs import check_file_output, model_inputs, path_inputs

    if args.action != "stats":  # the report never lands on what it reads: DATA, the statistics, the model's files
        protected = path_inputs(args.data, "DATA") + path_inputs(args.train_stats, "--train-stats")
        protected += model_inputs(args.model, "--model")
        protected += path_inputs(_stats(args).get("_path"), "training statistics")  # the file --model points to
        if args.json not in (None, "-"):
            check_file_output(args.json, "--json", protected, kind="json")
    if args.action == "stats":
        if not args.out and args.json is None:
            raise DataArgumentError("data stats needs --out FILE.json (or --json to print the statistics)")
        protected = path_inputs(args.data, "DATA")
        out = check_file_output(args.out, "--out", protected, kind="json") if args.out else None
        if args.json not in (None, "-"):
            check_file_output(args.json, "--json", protected, kind="json")
        inputs, source, preprocessing = read_data(args.data, args.split or "train")
        from training.datastats import compute_stats, write_stats

        stats = compute_stats(inputs, source=source, preprocessing=preprocessing)
        empty = [n for n, f in stats["features"].items() if f["kind"] != "categorical" and f.get("mean") is None]
        if empty:
            raise DataArgumentError(
                f"DATA {source}: expected finite values to describe, got no finite values "
                f"(all NaN/inf) in {', '.join(map(repr, empty))}"
            )
        if out is not None:
            write_stats(stats, out)
        if args.json is not None:
            print_json(stats, args.json)
        if out is not None and args.json != "-":
            kinds = ", ".join(f"{n} ({f['kind']} {f['dtype']} {f['shape']})" for n, f in stats["features"].items())
            print(f"wrote {out}: {stats['samples']} examples from {source}; inputs {kinds}")
        return 0
    stats = _stats(args)
    inputs, source, _ = read_data(args.data, args.split or "test")
    from converters import datacheck

    if args.action == "check":
        try:
            findings = datacheck.check_data(stats, [("input", source, inputs)], allow_drift=True)
        except datacheck.DataSchemaError as exc:
            findings = None
            schema = str(exc)
        doc = {
            "training": stats.get("source"),
            "data": source,
            "schema_error": None if findings is not None else schema,
            "findings": [f.to_dict() for f in findings or []],
        }

        def human() -> None:
            if findings is None:
                print(f"schema: {schema}")
            for f in findings or []:
                print(f"anomaly: {f.line()}")
            if findings == []:
                print(f"ok: {source} matches the training statistics ({stats.get('source')})")

        emit_report(doc, args.json, human)
        failed = findings is None or (bool(findings) and not args.allow_drift)
        return 1 if failed else 0
    mismatches = datacheck.schema_findings(stats, inputs, "input", source)  # another schema has no distance to show
    if mismatches:
        extra = f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else ""
        raise datacheck.DataSchemaError(
            mismatches[0].line() + extra + f" [training statistics: {stats.get('source') or '?'}]"
        )
    report = datacheck.drift_report(stats, inputs, source)

    def human_drift() -> None:
        print(f"training: {report['training']}\ndata:     {source}\n")
        print(datacheck.drift_table(report["rows"]))
        print(
            f"\n{len(report['drifted'])} of {len(report['rows'])} rows drifted"
            + (f": {', '.join(report['drifted'])}" if report["drifted"] else "")
        )

    emit_report(report, args.json, human_drift)
    return 0
