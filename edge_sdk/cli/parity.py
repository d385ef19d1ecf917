"""``edge-sdk parity``: prove a quantized model still does the float model's job.

Three modes:

    edge-sdk parity FLOAT QUANTIZED --data DATA [--max-drop P] [--min-agreement F] [--html R.html]
    edge-sdk parity --write-reference golden.npz FLOAT [QUANTIZED] --data DATA
    edge-sdk parity --reference golden.npz MODEL.tflite          # light runtime only, no TensorFlow

Exit codes: 0 the gate passed (or none was set), 1 it failed, 2 the check could not run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edge_sdk.cli._common import add_json_option, refuse_ambiguous, require_convert_stack, training_names
from edge_sdk.console import emit_report
from edge_sdk.errors import EdgeSdkError
from edge_sdk.report import format_table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``parity`` subcommand."""
    DATASETS_TEXT = training_names().DATASETS_TEXT

    parser = subparsers.add_parser(
        "parity",
        help="compare a quantized .tflite with its float model, gate on the result, or check golden references",
        description="Compare FLOAT (a SavedModel directory with serving_default, or a .keras/.h5 file, run "
        "through TensorFlow; a float .tflite, run through LiteRT; or an .onnx, run through ONNX Runtime) with QUANTIZED (a .tflite run through the edge_sdk runtime) on DATA. DATA is a "
        ".npz (one array per input name, or 'x'; labels under 'y'), a .npy of inputs, or a built-in dataset "
        f"name ({DATASETS_TEXT}: its test split). --reference checks a .tflite against a golden .npz "
        "with only numpy and LiteRT installed.",
        epilog="exit codes: 0 pass (or no gate set), 1 gate failed, 2 could not run",
    )
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="FLOAT QUANTIZED; or FLOAT [QUANTIZED] with --write-reference; or MODEL.tflite with --reference",
    )
    parser.add_argument("--data", help=f".npz/.npy file or dataset name ({DATASETS_TEXT})")
    parser.add_argument("--labels", help=".npy of class ids, one per example (replaces 'y' in the data)")
    parser.add_argument(
        "--samples", type=int, default=None, help="use the first N examples (default: all; 100 for --write-reference)"
    )
    parser.add_argument(
        "--max-drop",
        type=float,
        default=None,
        metavar="POINTS",
        help="fail if accuracy drops by more than POINTS percentage points (needs labels)",
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fail if top-1 agreement with the float model is below FRACTION (default 0.99 with --reference)",
    )
    parser.add_argument(
        "--slice-by",
        action="append",
        default=[],
        metavar="FEATURE",
        help="report accuracy per slice (repeatable): 'class', a tabular input COLUMN (by value), "
        "COLUMN:WIDTH or COLUMN:decades (numeric buckets), COLUMN:E1,E2 (buckets cut at edges)",
    )
    parser.add_argument(
        "--max-slice-drop",
        type=float,
        default=None,
        metavar="POINTS",
        help="fail if the worst slice's accuracy drops by more than POINTS (needs --slice-by and "
        "labels; slices under --min-slice-count examples are reported, not gated)",
    )
    parser.add_argument(
        "--min-slice-count",
        type=int,
        default=None,
        metavar="N",
        help="slices with fewer examples are flagged tiny and not gated (default 30)",
    )
    add_json_option(parser, "the report")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with plots")
    parser.add_argument("--worst", type=int, default=10, help="how many worst examples to list (default 10)")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer QuantizationDebugger analysis")
    parser.add_argument(
        "--calibration",
        help="calibration data for the per-layer analysis and auto-tuning "
        "(default: the dataset's train split, or the first 200 examples of --data)",
    )
    parser.add_argument(
        "--accuracy-budget",
        type=float,
        default=None,
        metavar="POINTS",
        help="auto-tune: keep the layers the debugger ranks most harmful in float, one at a "
        "time, until int8 is within POINTS of the float accuracy",
    )
    parser.add_argument(
        "--autotune-out",
        metavar="FILE.tflite",
        help="with --accuracy-budget: write the chosen model (and its manifest) here",
    )
    parser.add_argument(
        "--write-reference",
        metavar="GOLDEN.npz",
        help="store fixed inputs and the float model's outputs (and QUANTIZED's, if given)",
    )
    parser.add_argument(
        "--reference", metavar="GOLDEN.npz", help="check MODEL.tflite against a golden reference (light runtime only)"
    )
    parser.add_argument(
        "--max-abs-error",
        type=float,
        default=None,
        help="with --reference: fail if any output differs from the float output by more",
    )
    parser.add_argument(
        "--max-steps",
        type=float,
        default=1.0,
        help="with --reference, when it stores this model's build-machine outputs: allowed "
        "difference in output quantization steps (default 1)",
    )
    parser.add_argument(
        "--train-stats",
        metavar="FILE",
        help="the training data's statistics (edge-sdk data stats; "
        "default: those the float model's manifest points to): --data is checked against them first, "
        "and the drift table goes into the report",
    )
    parser.add_argument(
        "--allow-drift",
        action="store_true",
        help="continue when --data lies far outside the training statistics, reporting the findings",
    )
    _add_task_flags(parser)
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads for the .tflite")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--trust-model-code",
        action="store_true",
        help="allow Python code stored in FLOAT (Keras Lambda layers) to run while loading; "
        "only for files from a source you trust (docs/reliability.md)",
    )
    parser.set_defaults(func=run)


def _task_flags() -> list[Any]:  # edge_sdk.task_options.TaskOption
    """The [task] keys with a flag, from their one home on the runtime side (no converters package needed)."""
    from edge_sdk.task_options import TASK_OPTIONS

    return [o for o in TASK_OPTIONS if o.flag]


def _add_task_flags(parser: argparse.ArgumentParser) -> None:
    """--task, --head and each task's budget (--min-iou, --min-snr-db ...), as convert has them."""
    group = parser.add_argument_group(
        "task (edge_sdk.tasks): what the model does and its budget; a budget flag "
        "adds a gate check, a wiped-out output always fails"
    )
    for spec in _task_flags():
        kwargs: dict[str, Any] = {
            "dest": spec.dest,
            "default": None,
            "metavar": spec.metavar,
            "help": f"{spec.help} (recipe default {spec.default}; {spec.allowed()})",
        }
        if spec.choices:
            kwargs["choices"] = spec.choices
        else:
            kwargs["type"] = type(spec.default)
        group.add_argument(spec.flag, **kwargs)


def task_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """``{"task", "budgets", "head"}`` from the task flags (budgets: only those given, range-checked)."""
    budgets = {}
    for spec in _task_flags():
        value = getattr(args, spec.dest, None)
        if spec.key.startswith("min_") and value is not None:
            budgets[spec.key] = spec.check(value)  # one line naming the flag and its range
    return {"task": getattr(args, "task", None), "budgets": budgets, "head": getattr(args, "head", None) or "auto"}


def run(args: argparse.Namespace) -> int:
    """Dispatch to the reference check, the reference writer or the parity comparison."""
    if args.reference and args.write_reference:
        raise EdgeSdkError("--reference and --write-reference are exclusive: check a model, or write a reference")
    if args.threads is not None and args.threads < 1:
        raise EdgeSdkError(f"--threads must be at least 1, got {args.threads}")
    _check_outputs(args)
    if args.reference:
        return _check_reference(args)
    if not _light_float(args):  # a float .tflite as FLOAT runs through LiteRT: no TensorFlow needed
        require_convert_stack("parity")
    if args.write_reference:
        return _write_reference(args)
    return _parity(args)


def _light_float(args: argparse.Namespace) -> bool:
    """True when FLOAT is a .tflite and nothing asked for TensorFlow's tools (auto-tuner, per-layer debugger)."""
    from converters.inputs import InputKind, input_kind  # stdlib only: the one place the input kind is decided

    return (
        bool(args.models)
        and input_kind(str(args.models[0])) is InputKind.TFLITE
        and args.accuracy_budget is None
        and not args.write_reference
    )


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output checked against every input and each other, before any model is loaded."""
    from edge_sdk.arrays import check_array_file
    from edge_sdk.manifest import manifest_path_for
    from edge_sdk.outputs import check_file_outputs, model_inputs, path_inputs

    DATASETS = training_names().DATASETS

    for flag, value in (("--data", args.data), ("--calibration", args.calibration)):
        refuse_ambiguous(value, DATASETS, flag, "dataset")
    for flag, value in (("--data", args.data), ("--labels", args.labels), ("--calibration", args.calibration)):
        if value and Path(value).suffix.lower() in (".npy", ".npz"):  # not a dataset name: say what came, now
            check_array_file(value, flag)
    protected = [
        item
        for i, model in enumerate(args.models)
        for item in model_inputs(model, "float model" if i == 0 and not args.reference else "model")
    ]
    protected += path_inputs(args.data, "--data") + path_inputs(args.labels, "--labels")
    protected += path_inputs(args.calibration, "--calibration") + path_inputs(args.reference, "reference")
    tuned_manifest = str(manifest_path_for(args.autotune_out)) if args.autotune_out else None
    check_file_outputs(
        [
            ("--json", args.json, "json"),
            ("--html", args.html, "html"),
            ("--write-reference", args.write_reference, "npz"),
            ("--autotune-out", args.autotune_out, "tflite"),
            ("--autotune-out manifest", tuned_manifest, "json"),
        ],
        protected,
        allow_stdout=("--json",),
    )


# -- light runtime ------------------------------------------------------------------------------


def _check_reference(args: argparse.Namespace) -> int:
    from edge_sdk.reference import check_reference

    if len(args.models) != 1:
        raise EdgeSdkError(f"--reference expects exactly one MODEL.tflite, got {len(args.models)}: {args.models}")
    min_agreement = 0.99 if args.min_agreement is None else args.min_agreement
    if not 0 <= min_agreement <= 1:
        raise EdgeSdkError(f"--min-agreement is a fraction: expected a number in [0, 1], got {min_agreement}")
    import functools

    from edge_sdk.tasks import judge_reference

    chosen = task_arguments(args)  # --task and the budgets given (none on a light install without converters)
    judge = functools.partial(judge_reference, task=chosen["task"], budgets=chosen["budgets"])
    result = check_reference(
        args.reference,
        args.models[0],
        min_agreement=min_agreement,
        max_abs_error=args.max_abs_error,
        max_steps=args.max_steps,
        num_threads=args.threads,
        judge=judge,
    )

    def print_human() -> None:
        print(f"reference: {result['reference']} (float model {result['float_model']}, {result['samples']} examples)")
        print(f"lineage:   {result['lineage']}")
        stored = (result.get("reference_kernels") or {}).get("quantized")
        print(
            f"kernels:   {result['kernels']} here"
            + (f"; the reference's quantized outputs came from {stored}" if stored else "")
        )
        rows = [
            [
                o["model"],
                o.get("top1_agreement"),
                o["max_abs_error"],
                o["mean_abs_error"],
                o["cosine_min"],
                o.get("build_max_steps"),
            ]
            for o in result["outputs"]
        ]
        print(
            format_table(
                rows, ["output", "top-1 agreement", "max abs err", "mean abs err", "cosine min", "steps vs build"]
            )
        )
        if result.get("accuracy") is not None:
            print(f"accuracy on the stored labels: {result['accuracy']:.4f}")
        if result.get("task_rows"):
            print(f"task:      {result['task']['name']} ({result['task']['why']})")
            print(format_table([list(r) for r in result["task_rows"][1:]], ["task metric", "value"]))
        _print_task_warnings(result)

    emit_report(result, args.json, print_human)
    print(result["verdict"], file=sys.stderr if args.json == "-" else sys.stdout)
    return result["exit_code"] if result["status"] != "none" else 0


# -- build machine (TensorFlow) -----------------------------------------------------------------


def _write_reference(args: argparse.Namespace) -> int:
    import edge_sdk
    from converters.parity import load_eval_data, load_float_model
    from edge_sdk.reference import kernels_of, match_tensors, write_reference

    if len(args.models) not in (1, 2):
        raise EdgeSdkError(f"--write-reference expects FLOAT [QUANTIZED], got {len(args.models)} models")
    if not args.data:
        raise EdgeSdkError("--write-reference needs --data (the inputs to store)")
    from converters.model_files import trusted_model_code

    with trusted_model_code(args.trust_model_code):
        fm = load_float_model(args.models[0])
    qm = edge_sdk.load(args.models[1], num_threads=args.threads) if len(args.models) == 2 else None
    in_pairs: list[tuple[str, str]] | None = None
    out_pairs: list[tuple[str, str]] | None = None
    quantized_inputs = None  # (quantized input name, its shape), in the float model's input order
    if qm is not None:
        q_inputs = [(s.name, tuple(s.shape)) for s in qm.inputs]
        in_pairs = match_tensors([(n, s) for n, s, _ in fm.inputs], q_inputs, "input")
        out_pairs = match_tensors(fm.outputs, [(s.name, tuple(s.shape)) for s in qm.outputs], "output")
        q_shapes = dict(q_inputs)
        quantized_inputs = [(q, q_shapes[q]) for _, q in in_pairs]
    ev = load_eval_data(
        args.data,
        fm.inputs,
        quantized_inputs,
        labels=args.labels,
        limit=args.samples or 100,
    )
    outputs = fm.predict_all(ev.inputs, progress=not args.quiet)
    if ev.labels is not None:  # stored labels the model has no class for would make every check's accuracy wrong
        from edge_sdk.metrics import label_classes

        label_classes(ev.labels, outputs[fm.outputs[0][0]], f"labels ({args.labels or ev.source})")
    quantized = None
    if qm is not None and in_pairs is not None and out_pairs is not None:
        produced = qm.predict_all({q: ev.inputs[f] for f, q in in_pairs})
        quantized = {f: produced[q] for f, q in out_pairs}
    path = write_reference(
        args.write_reference,
        ev.inputs,
        outputs,
        float_model=args.models[0],
        float_sha256s=fm.sha256s(),
        labels=ev.labels,
        quantized_outputs=quantized,
        quantized_sha256=qm.sha256 if qm else None,
        extra={"data_source": ev.source, "kernels": {"quantized": kernels_of(qm)} if qm else {}},
    )
    summary = {
        "reference": str(path),
        "samples": ev.samples,
        "float_model": args.models[0],
        "float_sha256": fm.sha256s()[0],
        "quantized_sha256": qm.sha256 if qm else None,
        "outputs": [n for n, _ in fm.outputs],
        "has_labels": ev.labels is not None,
    }
    emit_report(
        summary,
        args.json,
        lambda: print(
            f"wrote {path}: {ev.samples} examples from {ev.source}, float outputs {', '.join(summary['outputs'])}"
            + (f", and {args.models[1]}'s outputs" if qm else "")
        ),
    )
    return 0


def _parity(args: argparse.Namespace) -> int:
    from converters.autotune import VARIANT_HEADERS, variant_rows
    from converters.debugger import LAYER_HEADERS, layer_rows
    from converters.html_report import write_html_report
    from converters.parity import summary_rows
    from converters.quality import parity_check

    if len(args.models) != 2:
        raise EdgeSdkError(f"parity expects FLOAT QUANTIZED (two models), got {len(args.models)}: {args.models}")
    if not args.data:
        DATASETS_TEXT = training_names().DATASETS_TEXT

        raise EdgeSdkError(f"parity needs --data: a .npz/.npy file or a dataset name ({DATASETS_TEXT})")
    float_path, quant_path = args.models
    from converters.model_files import trusted_model_code

    with trusted_model_code(args.trust_model_code):  # the trust decision covers loading FLOAT, nothing else
        outcome = parity_check(
            float_path,
            quant_path,
            args.data,
            labels=args.labels,
            samples=args.samples,
            worst=args.worst,
            layers=not args.no_layers,
            calibration=args.calibration,
            max_drop=args.max_drop,
            min_agreement=args.min_agreement,
            accuracy_budget=args.accuracy_budget,
            autotune_out=args.autotune_out,
            num_threads=args.threads,
            progress=not args.quiet,
            train_stats=args.train_stats,
            allow_drift=args.allow_drift,
            **_slice_options(args),
            **task_arguments(args),
        )
    if args.html:
        write_html_report(args.html, outcome.report)

    def print_human() -> None:
        _print_human(
            outcome.result, outcome.tuned, layer_rows, LAYER_HEADERS, variant_rows, VARIANT_HEADERS, summary_rows
        )
        drift = outcome.report.get("data_drift")
        if drift:  # --data against the training statistics (converters.datacheck)
            from converters.datacheck import drift_table

            print(f"\ndata drift (training: {drift['training']}):")
            print(drift_table(drift["rows"]))
        if args.html:
            print(f"HTML report: {args.html}")

    emit_report(outcome.report, args.json, print_human)
    print(outcome.verdict, file=sys.stderr if args.json == "-" else sys.stdout)
    return outcome.exit_code


def _print_task_warnings(result: Mapping[str, Any]) -> None:
    """The task figures that could not be measured (e.g. every mask empty), one ``warning:`` line each."""
    for text in (result.get("task_metrics") or {}).get("warnings") or []:
        print(f"warning:   {text}")


def _slice_options(args: argparse.Namespace) -> dict[str, Any]:
    """The sliced-evaluation keywords of ``parity_check``, only when asked (``edge_sdk.slices``)."""
    if not args.slice_by and args.max_slice_drop is None and args.min_slice_count is None:
        return {}
    return {"slice_by": args.slice_by, "max_slice_drop": args.max_slice_drop, "min_slice_count": args.min_slice_count}


def _print_slices(slices: dict[str, Any]) -> None:
    from edge_sdk.slices import SLICE_HEADERS, table_rows

    for slicing in slices["slicings"]:
        source = "" if slicing["source"] == slicing["column"] else f"{slicing['source']}; "
        print(
            f"\nslices by {slicing['spec']} ({source}{slices['metric']}; under "
            f"{slices['min_count']} examples: tiny, not gated):"
        )
        print(format_table(table_rows(slicing), SLICE_HEADERS))
    worst = slices.get("worst")
    if worst is not None:
        print(
            f"worst slice: {worst['spec']}={worst['slice']}, drop {worst['drop_points']:.2f} points "
            f"({worst['count']} examples)"
        )


def _print_human(
    result: dict[str, Any],
    tuned: dict[str, Any] | None,
    layer_rows: Callable[[Sequence[Mapping[str, Any]], int], list[list[Any]]],
    layer_headers: list[str],
    variant_rows: Callable[[Mapping[str, Any]], list[list[Any]]],
    variant_headers: list[str],
    summary_rows: Callable[[Mapping[str, Any]], list[list[Any]]],
) -> None:
    fm, qm = result["float_model"], result["quantized_model"]
    print(f"float:     {fm['path']} ({fm['kind']})")
    print(f"quantized: {qm['path']} ({qm['kind']}, {qm['size_bytes']:,} bytes, backend {qm['backend']})")
    print(f"data:      {result['data']['source']} ({result['data']['samples']} examples)")
    if result.get("task"):
        print(f"task:      {result['task']['name']} ({result['task']['why']})")
    _print_task_warnings(result)
    print()
    print(format_table(summary_rows(result), ["metric", "value"]))
    print()
    print(
        format_table(
            [
                [
                    o["float"],
                    o["quantized"],
                    o["max_abs_error"],
                    o["mean_abs_error"],
                    o["relative_error"],
                    o["cosine_mean"],
                    o["cosine_min"],
                ]
                for o in result["outputs"]
            ],
            ["output", "tflite output", "max abs err", "mean abs err", "relative err", "cosine mean", "cosine min"],
        )
    )
    per_class = result.get("per_class") or []
    if per_class:
        print(f"\nper class (by {result['per_class_basis']}):")
        if "float_accuracy" in per_class[0]:
            rows = [
                [
                    r.get("name", r["class"]),
                    r["count"],
                    r["float_accuracy"],
                    r["quantized_accuracy"],
                    round(r["drop_points"], 2),
                    r["agreement"],
                ]
                for r in per_class
            ]
            print(format_table(rows, ["class", "count", "float acc", "quant acc", "drop (points)", "agreement"]))
        else:
            rows = [[r.get("name", r["class"]), r["count"], r["agreement"]] for r in per_class]
            print(format_table(rows, ["class", "count", "agreement"]))
    if result.get("slices"):
        _print_slices(result["slices"])
    worst = result.get("worst_examples") or []
    if worst:
        print("\nworst examples:")
        keys = [k for k in ("index", "label", "float_class", "quantized_class", "max_abs_error") if k in worst[0]]
        print(format_table([[r.get(k) for k in keys] for r in worst], keys))
    if result.get("layers"):
        print("\nper-layer error (fresh int8 conversion, worst first):")
        print(format_table(layer_rows(result["layers"], 10), layer_headers))
    if tuned:
        print("\nauto-tuning variants:")
        print(format_table(variant_rows(tuned), variant_headers))
        print(tuned["message"])
