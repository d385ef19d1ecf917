"""``edge-sdk demo``: the whole workflow on the built-in default, with the real commands.

It runs, in order and in this process, the same subcommands a user would type
(each is printed before it runs, so the demo doubles as a tutorial):

1. ``convert cnn --dataset mnist --recipe distill-prune-int8`` trains the teacher
   CNN on the 5,000 bundled MNIST images, distills it into a student (and trains
   the same student without distillation for comparison), prunes the student,
   int8-quantizes both, exports TFLite/SavedModel/ONNX, and gates promotion on
   accuracy against the float model;
2. ``parity`` compares the float SavedModel (TensorFlow) with the int8 .tflite
   (edge_sdk runtime) and writes JSON and HTML reports;
3. ``parity --write-reference`` / ``--reference`` stores golden outputs and
   checks the int8 model against them with the light runtime only;
4. ``bench`` times float32, int8 and pruned int8 side by side, interleaved.

It ends with one table: size, accuracy and median latency per model.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from edge_sdk.cli._common import require_convert_stack
from edge_sdk.console import print_json
from edge_sdk.errors import EdgeSdkError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole workflow on the built-in default: train, distill, prune, int8, parity, bench",
        description="Train the mnist CNN teacher, distill and prune a student, int8-quantize, validate parity "
        "against the float SavedModel, write golden references, and benchmark float32 vs int8 vs pruned int8. "
        "Prints each command it runs, then a summary table. Needs the 'convert' extra.",
    )
    parser.add_argument("--out", default="out/demo", help="output directory (default out/demo)")
    parser.add_argument(
        "--dataset", default="mnist", choices=("mnist", "digits"), help="built-in image dataset (default mnist)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="teacher training epochs (default: the recipe's)")
    parser.add_argument("--distill-epochs", type=int, default=None, help="distillation epochs (default: the recipe's)")
    parser.add_argument("--bench-runs", type=int, default=300, help="timed runs per model and thread count")
    parser.add_argument("--threads", default="1,2", help="thread counts for the benchmark (default 1,2)")
    parser.add_argument(
        "--max-drop",
        type=float,
        default=1.0,
        help="accuracy gate of parity (the teacher's int8 against its float SavedModel), in points (default 1.0)",
    )
    parser.add_argument(
        "--student-max-drop",
        type=float,
        default=1.5,
        help="accuracy gate of convert, where the pruned int8 student is compared with the float teacher, in points "
        "(default 1.5: the distillation target, a student within 1.5 points of its teacher)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into --out even if it is a non-empty directory edge-sdk did not write",
    )
    parser.set_defaults(func=run)


def _step(title: str, argv: list[str]) -> int:
    from edge_sdk.cli import main

    print(f"\n=== {title}\n$ edge-sdk {' '.join(shlex.quote(a) for a in argv)}", flush=True)
    started = time.perf_counter()
    code = main(argv)
    print(f"(exit {code}, {time.perf_counter() - started:.1f} s)", flush=True)
    return code


def run(args: argparse.Namespace) -> int:
    """Run the workflow; exit 0 when every step passed, 1 when a gate failed, 2 on errors."""
    from edge_sdk.bench import parse_threads
    from edge_sdk.outputs import check_dir_output, mark_output_dir

    # every option checked before minutes of training, not after
    if args.bench_runs < 1:
        raise EdgeSdkError(f"--bench-runs must be at least 1, got {args.bench_runs}")
    parse_threads(args.threads)
    for flag, value in (("--epochs", args.epochs), ("--distill-epochs", args.distill_epochs)):
        if value is not None and value < 1:
            raise EdgeSdkError(f"{flag} must be at least 1, got {value}")
    for flag, value in (("--max-drop", args.max_drop), ("--student-max-drop", args.student_max_drop)):
        if not value >= 0:
            raise EdgeSdkError(f"{flag} is in accuracy points: expected a number >= 0, got {value}")
    out = check_dir_output(args.out, "--out", force=args.force, replace=False)
    require_convert_stack("demo")
    mark_output_dir(out, "demo")
    out = Path(args.out)
    convert_dir = out / "convert"
    started = time.perf_counter()

    convert = [
        "convert",
        "cnn",
        "--dataset",
        args.dataset,
        "--recipe",
        "distill-prune-int8",
        "--out",
        str(convert_dir),
        "--max-drop",
        str(args.student_max_drop),
    ]
    if args.force:
        convert.append("--force")
    if args.epochs is not None:
        convert += ["--epochs", str(args.epochs)]
    if args.distill_epochs is not None:
        convert += ["--distill-epochs", str(args.distill_epochs)]
    code = _step("1/5 train the teacher, distill, prune, int8-quantize, export (gated)", convert)
    if code != 0:
        print(f"convert did not promote its artifacts (exit {code}); stopping", file=sys.stderr)
        return code

    savedmodel = convert_dir / "teacher_savedmodel"
    int8 = convert_dir / "int8.tflite"
    pruned_int8 = convert_dir / "student-pruned-int8.tflite"
    float32 = convert_dir / "float32.tflite"
    for needed in (savedmodel, int8, pruned_int8, float32):
        if not needed.exists():
            raise EdgeSdkError(f"convert finished but {needed} is missing; expected the distill-prune-int8 artifacts")

    parity_json = out / "parity.json"
    codes = {"convert": code}
    codes["parity"] = _step(
        "2/5 parity: float SavedModel (TensorFlow) vs int8 .tflite (edge_sdk runtime)",
        [
            "parity",
            str(savedmodel),
            str(int8),
            "--data",
            args.dataset,
            "--max-drop",
            str(args.max_drop),
            "--json",
            str(parity_json),
            "--html",
            str(out / "parity.html"),
        ],
    )
    golden = out / "golden.npz"
    codes["write-reference"] = _step(
        "3/5 golden reference for the device",
        ["parity", "--write-reference", str(golden), str(savedmodel), str(int8), "--data", args.dataset],
    )
    codes["reference"] = _step(
        "4/5 check the int8 model against the golden reference (light runtime only)",
        ["parity", "--reference", str(golden), str(int8)],
    )
    bench_json = out / "bench.json"
    codes["bench"] = _step(
        "5/5 latency: float32 vs int8 vs distilled+pruned int8, interleaved",
        [
            "bench",
            str(float32),
            str(int8),
            str(pruned_int8),
            "--threads",
            args.threads,
            "--runs",
            str(args.bench_runs),
            "--json",
            str(bench_json),
            "--png",
            str(out / "bench.png"),
            "--quiet",
        ],
    )

    summary = _summary(convert_dir, parity_json, bench_json, codes, time.perf_counter() - started)
    from edge_sdk.fileio import atomic_write_text

    atomic_write_text(out / "demo.json", json.dumps(summary, indent=2) + "\n")
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary, out)
    return 0 if all(c == 0 for c in codes.values()) else (1 if all(c in (0, 1) for c in codes.values()) else 2)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())  # a summary.json this demo wrote
        return doc
    except (OSError, ValueError):
        return None


def _summary(
    convert_dir: Path, parity_json: Path, bench_json: Path, codes: dict[str, int], seconds: float
) -> dict[str, Any]:
    converted = _load(convert_dir / "summary.json") or {}
    bench = _load(bench_json) or {}
    parity = _load(parity_json) or {}
    latency: dict[str, dict[int, float]] = {}
    for res in bench.get("results", []):
        if res.get("status") == "ok":
            latency.setdefault(Path(res["path"]).name, {})[res["threads"]] = res["latency_us"]["median"]
    rows = []
    for art in converted.get("artifacts", []):
        if not art["file"].endswith(".tflite"):
            continue
        rows.append(
            {
                "model": art["file"],
                "kind": art["kind"],
                "size_bytes": art["size_bytes"],
                "gzip_size_bytes": art["gzip_size_bytes"],
                "accuracy": art["accuracy"],
                "sparsity": art.get("sparsity"),
                "median_latency_us": latency.get(art["file"], {}),
            }
        )
    return {
        "exit_codes": codes,
        "seconds": round(seconds, 1),
        "models": rows,
        "comparisons": converted.get("comparisons", {}),
        "parity": (parity.get("parity") or {}).get("summary"),
        "device": bench.get("device"),
    }


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    from edge_sdk.report import format_table

    models = summary["models"]
    base = next((m for m in models if m["model"] == "float32.tflite"), None)
    threads = sorted({t for m in models for t in m["median_latency_us"]}, key=int)
    rows = []
    for m in models:
        ratio = m["size_bytes"] / base["size_bytes"] if base else None
        gz = m["gzip_size_bytes"] / base["gzip_size_bytes"] if base else None
        row = [
            m["model"],
            m["kind"],
            m["size_bytes"],
            f"{ratio:.3f}" if ratio else None,
            f"{gz:.3f}" if gz else None,
            f"{100 * m['accuracy']:.2f}%" if m["accuracy"] is not None else None,
        ]
        row += [f"{m['median_latency_us'][t]:.0f}" if t in m["median_latency_us"] else None for t in threads]
        rows.append(row)
    headers = ["model", "kind", "bytes", "x float32", "gzip x float32", "test accuracy"]
    headers += [f"median us ({t} thr)" for t in threads]
    print("\n=== summary")
    print(format_table(rows, headers))
    distill = summary["comparisons"].get("distill") or {}
    if distill:
        print(
            f"\ndistillation: student has {distill.get('param_ratio', 0):.1%} of the teacher's parameters; "
            f"accuracy {_pct(distill.get('student_accuracy'))} distilled vs {_pct(distill.get('baseline_accuracy'))} "
            f"trained alone (teacher {_pct(distill.get('teacher_accuracy'))})"
        )
    parity = summary.get("parity") or {}
    if parity:
        print(
            f"parity (float SavedModel vs int8.tflite, {parity.get('samples')} test images): accuracy "
            f"{_pct(parity.get('float_accuracy'))} -> {_pct(parity.get('quantized_accuracy'))} "
            f"(drop {parity.get('accuracy_drop_points', 0):.2f} points), top-1 agreement "
            f"{_pct(parity.get('top1_agreement'))}"
        )
    print(
        f"\nreports: {out / 'parity.html'}, {out / 'bench.png'}, {out / 'demo.json'}; "
        f"artifacts and manifests in {out / 'convert'}"
    )
    print(
        "steps: "
        + ", ".join(f"{k} {'ok' if v == 0 else f'exit {v}'}" for k, v in summary["exit_codes"].items())
        + f"; {summary['seconds']:.0f} s in all"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
