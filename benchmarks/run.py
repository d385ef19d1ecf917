"""Run the model comparison suite and write a results JSON and a markdown table of ratios.

    .venv/bin/python benchmarks/run.py                  # threads 1 and 2, results in benchmarks/results/
    .venv/bin/python benchmarks/run.py --threads 1 --max-time 0.2 --out /tmp/quick

Steps: build the suite models with the real converter pipeline when they are
missing (benchmarks/suite_models.py, about 2 minutes), then one pytest-benchmark
session of benchmarks/test_bench_models.py per thread count (TensorFlow's
thread pools are sized once per process), then an interleaved cross-check of
the TFLite variants with edge_sdk.bench, then merge everything into
``results.json`` and ``results.md``. Exit code 1 when a goal ratio is missed.

Goals (issue #6), as ratios of medians measured in the same run:
  * int8 TFLite <= 0.5x float32 TFLite on the CNN at batch 1;
  * int8 TFLite <= 0.1x the TensorFlow SavedModel serving call at batch 1.
ONNX Runtime's ratio against float32 TFLite is reported as measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import suite_models  # noqa: E402 - importable only after the sys.path insert above

RESULTS_FORMAT = "edge-sdk-benchmarks/1"
BASELINE = "tflite-float32"
GOALS = (
    # (model, batch, numerator, denominator, max ratio)
    ("cnn", 1, "tflite-int8", "tflite-float32", 0.5),
    ("cnn", 1, "tflite-int8", "tf-savedmodel", 0.1),
    ("wide-deep", 1, "tflite-int8", "tf-savedmodel", 0.1),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="thread counts, one pytest session each (default 1,2)")
    parser.add_argument("--out", default=str(HERE / "results"), help="directory for results.json and results.md")
    parser.add_argument("--models-dir", default=str(suite_models.DEFAULT_DIR), help="where the suite models are built")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the suite models even if present")
    parser.add_argument("--max-time", type=float, default=0.5, help="pytest-benchmark --benchmark-max-time per test")
    parser.add_argument("--min-rounds", type=int, default=25, help="pytest-benchmark --benchmark-min-rounds")
    return parser.parse_args(argv)


def run_session(threads: int, args, json_path: Path) -> None:
    env = dict(
        os.environ,
        EDGE_BENCH_THREADS=str(threads),
        EDGE_BENCH_MODELS=str(args.models_dir),
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="-1",
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE / "test_bench_models.py"),
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--benchmark-only",
        f"--benchmark-json={json_path}",
        f"--benchmark-max-time={args.max_time}",
        f"--benchmark-min-rounds={args.min_rounds}",
        "--benchmark-warmup=on",
        "--benchmark-disable-gc",
        "--benchmark-columns=median,mean,min,max,rounds",
        "--rootdir",
        str(ROOT),
        "-o",
        "testpaths=benchmarks",
    ]
    print(f"== threads {threads}: {' '.join(cmd[2:])}", file=sys.stderr)
    proc = subprocess.run(cmd, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"pytest-benchmark session for threads={threads} failed (exit {proc.returncode})")


def rows_from(bench_json: dict) -> list:
    rows = []
    for b in bench_json["benchmarks"]:
        info = b["extra_info"]
        stats = b["stats"]
        rows.append(
            {
                "model": info["model"],
                "variant": info["variant"],
                "batch": info["batch"],
                "threads": info["threads"],
                "median_us": stats["median"] * 1e6,
                "mean_us": stats["mean"] * 1e6,
                "min_us": stats["min"] * 1e6,
                "max_us": stats["max"] * 1e6,
                "stddev_us": stats["stddev"] * 1e6,
                "iqr_us": stats["iqr"] * 1e6,
                "rounds": stats["rounds"],
                "iterations": stats.get("iterations", 1),
                "size_bytes": info.get("size_bytes"),
                "gzip_size_bytes": info.get("gzip_size_bytes"),
                "accuracy": info.get("accuracy"),
            }
        )
    return rows


def add_ratios(rows: list) -> None:
    base = {(r["model"], r["batch"], r["threads"]): r["median_us"] for r in rows if r["variant"] == BASELINE}
    for r in rows:
        b = base.get((r["model"], r["batch"], r["threads"]))
        r["ratio_vs_tflite_float32"] = r["median_us"] / b if b else None


def check_goals(rows: list) -> list:
    index = {(r["model"], r["variant"], r["batch"], r["threads"]): r["median_us"] for r in rows}
    threads = sorted({r["threads"] for r in rows})
    out = []
    for model, batch, num, den, limit in GOALS:
        for t in threads:
            a, b = index.get((model, num, batch, t)), index.get((model, den, batch, t))
            ratio = a / b if a and b else None
            out.append(
                {
                    "model": model,
                    "batch": batch,
                    "threads": t,
                    "numerator": num,
                    "denominator": den,
                    "limit": limit,
                    "ratio": ratio,
                    "met": ratio is not None and ratio <= limit,
                }
            )
    return out


INTERLEAVED_VARIANTS = ("tflite-float32", "tflite-int8", "tflite-pruned-int8")


def interleaved_check(models_dir: Path, threads: tuple, batches=(1, 32)) -> list:
    """The TFLite variants again with ``edge_sdk.bench``: interleaved, so load changes hit all alike.

    pytest-benchmark times one test after another; on a shared machine a burst
    of other work can land on one variant only. These ratios come from rounds of
    10 calls on each variant in turn, on the same real test rows.
    """
    from edge_sdk.bench import BenchOptions, run_benchmark

    rows = []
    for model in suite_models.SUITE:
        directory = suite_models.model_dir(model, models_dir)
        paths = [directory / suite_models.VARIANTS[v] for v in INTERLEAVED_VARIANTS]
        for batch in batches:
            options = BenchOptions(
                duration=1.0,
                warmup=20,
                threads=tuple(threads),
                batch=batch,
                input_path=str(directory / suite_models.INPUTS_FILE),
                keep_samples=False,
                progress=False,
            )
            doc = run_benchmark(paths, options)
            for res in doc["results"]:
                variant = INTERLEAVED_VARIANTS[[str(p) for p in paths].index(res["path"])]
                rows.append(
                    {
                        "model": model,
                        "variant": variant,
                        "batch": batch,
                        "threads": res["threads"],
                        "status": res["status"],
                        "error": res.get("error"),
                        "median_us": (res.get("latency_us") or {}).get("median"),
                        "ratio_vs_tflite_float32": res.get("ratio_vs_first"),
                    }
                )
    return rows


def _us(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def markdown(doc: dict) -> str:
    rows = doc["rows"]
    lines = [f"Device: {doc['device_summary']}. Created {doc['created']} by `{doc['command']}`.", ""]
    combos = sorted({(r["batch"], r["threads"]) for r in rows})
    for model in suite_models.SUITE:
        lines.append(
            f"**{model}** ({suite_models.SUITE[model]}): median latency per call in us, "
            "and its ratio to float32 TFLite at the same batch and threads"
        )
        lines.append("")
        header = ["variant", "size KB", "gzip KB", "accuracy"] + [f"b{b} t{t}" for b, t in combos]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for variant in suite_models.VARIANTS:
            cells = [variant]
            sample = next((r for r in rows if r["model"] == model and r["variant"] == variant), None)
            size = sample.get("size_bytes") if sample else None
            acc = sample.get("accuracy") if sample else None
            cells.append(f"{size / 1024:,.0f}" if size else "-")
            gz = sample.get("gzip_size_bytes") if sample else None
            cells.append(f"{gz / 1024:,.0f}" if gz else "-")
            cells.append(f"{100 * acc:.1f}%" if acc is not None else "-")
            for b, t in combos:
                r = next(
                    (r for r in rows if (r["model"], r["variant"], r["batch"], r["threads"]) == (model, variant, b, t)),
                    None,
                )
                cells.append(f"{_us(r['median_us'])} ({r['ratio_vs_tflite_float32']:.2f}x)" if r else "-")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    inter = doc.get("interleaved") or []
    if inter:
        lines.append(
            "Cross-check, TFLite variants interleaved with `edge_sdk.bench` (same inputs, rounds of 10 calls "
            "on each in turn): median us (ratio to float32)"
        )
        lines.append("")
        header = ["model", "variant"] + [f"b{b} t{t}" for b, t in combos]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * len(combos)) + "|")
        for model in suite_models.SUITE:
            for variant in INTERLEAVED_VARIANTS:
                cells = [model, variant]
                for b, t in combos:
                    r = next(
                        (
                            r
                            for r in inter
                            if (r["model"], r["variant"], r["batch"], r["threads"]) == (model, variant, b, t)
                        ),
                        None,
                    )
                    if r is None:
                        cells.append("-")
                    elif r["status"] != "ok":
                        cells.append(f"failed: {r['error']}")
                    else:
                        cells.append(f"{_us(r['median_us'])} ({r['ratio_vs_tflite_float32']:.2f}x)")
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Goals (ratios of medians in this run; pytest-benchmark rows):")
    lines.append("")
    lines.append("| goal | threads | ratio | limit | met |")
    lines.append("|---|---:|---:|---:|---|")
    for g in doc["goals"]:
        ratio = f"{g['ratio']:.3f}" if g["ratio"] is not None else "-"
        lines.append(
            f"| {g['model']} b{g['batch']}: {g['numerator']} / {g['denominator']} | {g['threads']} | "
            f"{ratio} | {g['limit']} | {'yes' if g['met'] else 'NO'} |"
        )
    lines.append("")
    onnx = [r for r in rows if r["variant"] == "onnxruntime-float32"]
    if onnx:
        lines.append(
            "ONNX Runtime vs float32 TFLite (ratio of medians): "
            + ", ".join(f"{r['model']} b{r['batch']} t{r['threads']} {r['ratio_vs_tflite_float32']:.2f}x" for r in onnx)
            + "."
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    from edge_sdk import sysinfo
    from edge_sdk.bench import parse_threads
    from edge_sdk.fileio import atomic_write_text

    threads = parse_threads(args.threads)
    started = time.time()
    suite_models.ensure_built(Path(args.models_dir), rebuild=args.rebuild)
    sessions = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in threads:
            path = Path(tmp) / f"threads{t}.json"
            run_session(t, args, path)
            sessions[str(t)] = json.loads(path.read_text())
            rows += rows_from(sessions[str(t)])
    add_ratios(rows)
    print("== interleaved cross-check of the TFLite variants with edge_sdk.bench", file=sys.stderr)
    interleaved = interleaved_check(Path(args.models_dir), threads)
    device = sysinfo.describe()
    command = "python benchmarks/run.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    doc = {
        "format": RESULTS_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "command": command.strip(),
        "wall_time_s": round(time.time() - started, 1),
        "device": device,
        "device_summary": sysinfo.summary_line(device),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "rows": rows,
        "goals": check_goals(rows),
        "interleaved": interleaved,
        "pytest_benchmark": {
            t: {"machine_info": s.get("machine_info"), "commit_info": s.get("commit_info"), "version": s.get("version")}
            for t, s in sessions.items()
        },
    }
    out = Path(args.out)
    atomic_write_text(out / "results.json", json.dumps(doc, indent=2) + "\n")
    text = markdown(doc)
    atomic_write_text(out / "results.md", text)
    print(text)
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}", file=sys.stderr)
    return 0 if all(g["met"] for g in doc["goals"]) else 1


if __name__ == "__main__":
    sys.exit(main())
