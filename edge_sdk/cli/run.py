"""``edge-sdk run MODEL --input x.npy|x.npz``: run a model on saved arrays."""

from __future__ import annotations

import argparse
import sys

from edge_sdk.cli._common import require_model_file
from edge_sdk.console import clean_text, print_json
from edge_sdk.errors import EdgeSdkError, InputError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run a .tflite model on inputs from .npy/.npz and print or save the outputs",
        description="Load MODEL with the light runtime and run it. --input takes a .npy (one-input "
        "models) or a .npz keyed by input name (or arr_0, arr_1, ... in input order). Float data for "
        "int8 inputs is quantized for you; outputs are dequantized unless --raw.",
    )
    parser.add_argument("model", help="path to a .tflite file")
    parser.add_argument("--input", "-i", required=True, help=".npy or .npz file with the input(s)")
    parser.add_argument("--output", "-o", help="write the outputs to this .npz (keyed by output name)")
    parser.add_argument("--signature", help="signature to run (default: serving_default or the only one)")
    parser.add_argument("--raw", action="store_true", help="return integer outputs as stored, not dequantized")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads")
    parser.add_argument("--backend", default=None, help="litert (default), tflite-runtime or tf")
    parser.add_argument(
        "--accelerator",
        default=None,
        help="run through LiteRT's CompiledModel on cpu, gpu or npu (or gpu+cpu); default: the interpreter",
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the sha256 check against the manifest")
    parser.add_argument(
        "--top-k", type=int, default=None, metavar="K", help="also print the K most likely classes per row (K >= 1)"
    )
    parser.add_argument("--json", action="store_true", help="print the outputs as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the model and report its outputs."""
    import numpy as np

    import edge_sdk
    from edge_sdk.arrays import check_array_file, match_inputs, read_array_file
    from edge_sdk.fileio import atomic_output_path
    from edge_sdk.outputs import check_file_output, model_inputs, path_inputs

    if args.threads is not None:
        from edge_sdk.limits import check_thread_count

        check_thread_count(args.threads, "--threads")
    if args.top_k is not None and args.top_k < 1:
        raise InputError(f"--top-k must be at least 1 (the number of classes to list per row), got {args.top_k}")
    require_model_file(args.model)
    check_array_file(args.input, "--input")
    check_file_output(
        args.output, "--output", model_inputs(args.model) + path_inputs(args.input, "input data"), kind="npz"
    )
    model = edge_sdk.load(
        args.model,
        backend=args.backend,
        num_threads=args.threads,
        verify=not args.no_verify,
        accelerator=args.accelerator,
    )
    names = (
        [s.name for s in (model.signatures[args.signature]["inputs"] if args.signature else model.inputs)]
        if (args.signature is None or args.signature in model.signatures)
        else []
    )
    if args.signature and args.signature not in model.signatures:
        raise EdgeSdkError(
            f"unknown signature {args.signature!r}; the model has: {', '.join(model.signatures)}"
            if model.signatures
            else f"unknown signature {args.signature!r}; the model has no "
            "SignatureDef (leave out --signature to run its main subgraph)"
        )
    specs = [model.input_spec(n, args.signature) for n in names]
    x = match_inputs(read_array_file(args.input, "--input"), specs, args.input)
    for spec, arr in zip(specs, x, strict=False):
        # quantized inputs refuse NaN/inf in predict; a float model would pass them through quietly
        if spec.dtype.kind != "f" or arr.dtype.kind != "f":
            continue
        bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if bad:
            print(
                f"warning: input {clean_text(spec.name)!r} holds {bad} NaN/inf value(s) of {arr.size}; "
                "the outputs of those rows are unlikely to mean anything",
                file=sys.stderr,
            )
    outputs = model.predict_all(x, raw=args.raw, signature=args.signature)
    if args.output:
        with atomic_output_path(args.output) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **outputs)
    if args.json:
        print_json({name: value.tolist() for name, value in outputs.items()})
        return 0
    for name, value in outputs.items():
        print(f"{clean_text(name)}: {value.dtype}{list(value.shape)}")  # a name from the file: no escapes
        with np.printoptions(precision=4, suppress=True, threshold=200):
            print(value)
        if args.top_k and value.ndim == 2:
            k = min(args.top_k, value.shape[1])
            top = np.argsort(-value, axis=1)[:, :k]
            for row, classes in enumerate(top):
                pairs = ", ".join(f"{c}:{value[row, c]:.3f}" for c in classes)
                print(f"  row {row}: top-{k} {pairs}")
    if args.output:
        print(f"wrote {args.output}")
    return 0
