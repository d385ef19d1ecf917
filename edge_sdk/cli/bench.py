"""``edge-sdk bench MODEL [MODEL ...]`` and ``edge-sdk bench compare A.json B.json ...``.

Works with only the light runtime (numpy + ai-edge-litert); ``--png`` needs matplotlib.
"""

from __future__ import annotations

import argparse
import sys

from edge_sdk.cli._common import add_json_option, require_model_file
from edge_sdk.console import emit_report

_DESCRIPTION = """\
Benchmark .tflite models on this device with the light runtime.

  edge-sdk bench model.tflite
  edge-sdk bench float.tflite int8.tflite pruned_int8.tflite --threads 1,2 --runs 300 --json results.json
  edge-sdk bench compare pi5.json laptop.json
  edge-sdk bench int8.tflite --target ssh://pi@raspberrypi.local --json pi5.json

Several models run interleaved (blocks of calls on each in turn) so drift hits
all alike; ratios are against the first model. A model that fails to load or
run is reported as failed and the others still run. Exit code: 0 all ran,
1 some model failed, 2 nothing could run (bad options, every model failed).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench",
        help="latency benchmark of .tflite models (several side by side), or compare results files",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="one or more .tflite files; or 'compare' followed by results JSON files",
    )
    parser.add_argument("--warmup", type=int, default=None, help="warm-up runs per model (default 10)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--runs",
        type=int,
        default=None,
        help="exactly N timed runs per model and thread count (default: 1 s and at least 100 runs per model)",
    )
    how.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of timed runs per model and thread count (at least 10 runs)",
    )
    parser.add_argument("--threads", default="1", help="thread counts to sweep, e.g. 1,2,4 (default 1)")
    parser.add_argument(
        "--batch",
        default=None,
        help="batch size, or several to sweep (1,8,32); only for models whose batch dimension is dynamic",
    )
    parser.add_argument(
        "--accelerator",
        default=None,
        help="run through LiteRT's CompiledModel on cpu, gpu or npu (or gpu+cpu); a comma "
        "list compares them, e.g. interpreter,cpu (default: the interpreter)",
    )
    parser.add_argument(
        "--input",
        default=None,
        help="real input data: .npy (one-input models) or .npz keyed by input name "
        "(default: random data in each input's valid range)",
    )
    parser.add_argument("--backend", default=None, help="litert (default), tflite-runtime or tf")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--no-verify", action="store_true", help="skip the sha256 check against the manifest")
    add_json_option(parser, "the results (with the device description)")
    parser.add_argument(
        "--png", metavar="FILE", default=None, help="write a PNG of the latency distributions (needs matplotlib)"
    )
    parser.add_argument("--no-samples", action="store_true", help="leave the per-run latencies out of --json")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument(
        "--target",
        metavar="ssh://[USER@]HOST[:PORT]",
        default=None,
        help="run the benchmark on a device over SSH (edge-sdk installed there; keys or an agent, "
        "never passwords; ~/.ssh/config applies); the results describe that device",
    )
    parser.add_argument("--ssh-config", metavar="FILE", default=None, help="with --target: ssh -F FILE")
    parser.add_argument(
        "--remote-command",
        default="edge-sdk",
        help="with --target: the edge-sdk command on the device (default: edge-sdk on its PATH)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or ``compare``) and print a table, JSON, and optionally a PNG."""
    from edge_sdk import bench, bench_results
    from edge_sdk.fileio import file_kind
    from edge_sdk.outputs import check_file_outputs, model_inputs, path_inputs

    if args.models and args.models[0] == "compare":
        return _compare(args)
    protected = [item for model in args.models for item in model_inputs(model)]
    protected += path_inputs(args.input, "--input data")
    # before minutes of measuring: a results file that cannot be written must not cost the results
    check_file_outputs([("--json", args.json, "json"), ("--png", args.png, "png")], protected, allow_stdout=("--json",))
    for model in args.models:
        # a device or pipe would be read without end; a missing or broken model is reported in the results
        if file_kind(model) not in ("file", "directory", "missing"):
            require_model_file(model)
    if args.png:
        from edge_sdk import plots

        plots.require_matplotlib()  # fail before minutes of benchmarking, not after
    batches = bench.parse_batches(args.batch) if args.batch is not None else ()
    options = bench.BenchOptions(
        warmup=bench.DEFAULT_WARMUP if args.warmup is None else args.warmup,
        runs=args.runs,
        duration=args.duration,
        threads=bench.parse_threads(args.threads),
        batch=batches[0] if len(batches) == 1 else None,
        batches=batches if len(batches) > 1 else (),
        accelerators=bench.parse_accelerators(args.accelerator) if args.accelerator else (None,),
        input_path=args.input,
        backend=args.backend,
        seed=args.seed,
        verify=not args.no_verify,
        keep_samples=not args.no_samples or bool(args.png),
        progress=not args.quiet,
    )
    if args.target:
        from edge_sdk import remote

        doc = remote.run_remote_benchmark(
            args.models, args.target, options, ssh_config=args.ssh_config, remote_command=args.remote_command
        )
    else:
        doc = bench.run_benchmark(args.models, options)
    samples = [res.get("samples_us") for res in doc["results"]]
    if args.no_samples:
        for res in doc["results"]:
            res.pop("samples_us", None)
    emit_report(doc, args.json, lambda: print(bench_results.format_results(doc)))
    if args.png:  # after the results are out: a failed picture must not cost them
        from edge_sdk import plots

        for res, kept in zip(doc["results"], samples, strict=False):
            if kept is not None:
                res["samples_us"] = kept
        plots.latency_png(doc, args.png)
        print(f"wrote {args.png}", file=sys.stderr)
    failed = [r for r in doc["results"] if r.get("status") != "ok"]
    if not failed:
        return 0
    from edge_sdk.console import clean_text

    if args.json == "-":  # the table (which lists failures) was not printed
        for res in failed:
            print(
                f"error: {clean_text(res['label'])} (threads {res['threads']}) failed: {clean_text(res.get('error'))}",
                file=sys.stderr,
            )
    return 2 if len(failed) == len(doc["results"]) else 1


def _compare(args: argparse.Namespace) -> int:
    from edge_sdk import bench_results
    from edge_sdk.outputs import check_file_output, path_inputs

    results = [item for path in args.models[1:] for item in path_inputs(path, "results file")]
    check_file_output(args.json, "--json", results, kind="json", allow_stdout=True)
    report = bench_results.compare_results(args.models[1:])
    emit_report(report, args.json, lambda: print(bench_results.format_compare(report)))
    return 0
