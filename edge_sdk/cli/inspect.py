"""``edge-sdk inspect MODEL``: what is inside a .tflite file, read without an interpreter."""

from __future__ import annotations

import argparse

from edge_sdk.cli._common import require_model_file
from edge_sdk.console import clean_text, print_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``inspect`` subcommand."""
    parser = subparsers.add_parser(
        "inspect",
        help="show operators, tensors, weights, signatures and quantization of a .tflite model",
        description="Read a .tflite flatbuffer (no interpreter, no TensorFlow) and report its operators "
        "with versions and counts, weight bytes per dtype, inputs/outputs with quantization, "
        "subgraphs, signatures, metadata, and whether it is float, float16-weight, dynamic-range "
        "or full-integer.",
    )
    parser.add_argument("model", help="path to a .tflite file")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--tensors", action="store_true", help="also list every tensor")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the inspection report."""
    from edge_sdk.inspect_model import inspect_model
    from edge_sdk.report import format_table

    require_model_file(args.model)
    info = inspect_model(args.model)
    if args.json:
        print_json(info)
        return 0
    print(f"model      {clean_text(info['file'])}")
    print(f"size       {info['size_bytes']:,} bytes   sha256 {info['sha256'][:16]}...")
    io = "float I/O" if info["io"] == "float" else "integer I/O"
    activations = info.get("integer_activations") or []
    if info["kind"] in ("full-integer", "mixed") and activations not in ([], ["int8"], ["uint8"]):
        io += f", {'/'.join(activations)} activations"  # int16x8 runs far slower than int8 on most CPUs
    print(f"kind       {info['kind']} ({io})")
    if info["float_ops"] and info["kind"] != "float":
        stayed = ", ".join(f"{name} x{n}" for name, n in info["float_ops"].items())
        print(f"float ops  {clean_text(stayed)}")
    print()
    main = {t["index"]: t for t in info["tensors"] if t["subgraph"] == 0}
    rows = []
    for sg in info["subgraphs"][:1]:
        for role, indices in (("input", sg["inputs"]), ("output", sg["outputs"])):
            for idx in indices:
                t = main.get(idx, {})
                q = t.get("quantization")
                rows.append(
                    [
                        role,
                        t.get("name"),
                        str(t.get("shape")),
                        t.get("dtype"),
                        f"scale={q['scale']:.6g} zp={q['zero_point']}"
                        if q and "axis" not in q
                        else ("per-axis" if q else "-"),
                    ]
                )
    print(format_table(rows, ["io", "name", "shape", "dtype", "quantization"]))
    print()
    print(
        format_table(
            [[o["name"], o["version"], o["count"]] for o in info["operators"]], ["operator", "version", "count"]
        )
    )
    print()
    print(format_table([[k, v] for k, v in info["weight_bytes"].items()], ["weights dtype", "bytes"]))
    print()
    sigs = [[s["key"], s["subgraph"], ", ".join(s["inputs"]), ", ".join(s["outputs"])] for s in info["signatures"]]
    if sigs:
        print(format_table(sigs, ["signature", "subgraph", "inputs", "outputs"]))
        print()
    print(
        format_table(
            [[s["index"], s["name"], s["tensors"], s["operators"]] for s in info["subgraphs"]],
            ["subgraph", "name", "tensors", "operators"],
        )
    )
    if info["metadata"]:
        print()
        print(
            format_table(
                [[m["name"], m["bytes"], m.get("value", "")] for m in info["metadata"]], ["metadata", "bytes", "value"]
            )
        )
    if args.tensors:
        print()
        rows = [
            [
                t["subgraph"],
                t["index"],
                t["name"],
                str(t["shape"]),
                t["dtype"],
                "const" if t["constant"] else "",
                (f"{t['quantization']['scale']}" if t["quantization"] else ""),
            ]
            for t in info["tensors"]
        ]
        print(format_table(rows, ["sg", "idx", "tensor", "shape", "dtype", "", "scale"]))
    return 0
