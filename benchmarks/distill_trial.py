"""Does distillation beat the same student trained alone? A paired trial over several seeds.

    .venv/bin/python benchmarks/distill_trial.py                        # the recipe as it is, seeds 0-4
    .venv/bin/python benchmarks/distill_trial.py --seeds 10-14 --set distill.mixup=0.4 --set distill.alpha=0
    .venv/bin/python benchmarks/distill_trial.py --json --out benchmarks/results/distill_trial.json

Each seed runs the recipe's distill stage exactly as ``edge-sdk convert`` does: the zoo
teacher trained from the recipe's [train] section, the student distilled from it, and
the baseline, which is the same student from the same initial weights trained on the
same batches and views with cross-entropy only. All three are scored on the dataset's
test split. One seed says little (CPU training is not bit-repeatable and seeds move
accuracy by about 0.4 points), so the answer is the mean paired difference
(distilled - baseline) with a 95% t interval: "better" only when the whole interval
is above zero. About 2-4 minutes per seed on 2 cores with the built-in recipe.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_seeds(text: str) -> List[int]:
    """``"0-4"`` or ``"0,3,7"`` -> a list of seeds."""
    seeds: List[int] = []
    for part in text.split(","):
        start, _, end = part.strip().partition("-")
        seeds += list(range(int(start), int(end) + 1)) if end else [int(start)]
    if not seeds:
        raise SystemExit(f"--seeds: expected e.g. 0-4 or 0,1,2, got {text!r}")
    return seeds


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="distill-prune-int8", help="a recipe with a distill stage (name or file)")
    parser.add_argument("--model", default="cnn", help="zoo teacher trained on the fly (default cnn)")
    parser.add_argument("--dataset", default="mnist", help="built-in dataset (default mnist)")
    parser.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 or 0,1,2 (default 0-4)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a recipe value, e.g. distill.alpha=0.5 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument("--out", help="also write the JSON result to this file")
    parser.add_argument("--quiet", action="store_true", help="no per-seed progress on stderr")
    return parser.parse_args(argv)


def t_interval(differences: List[float], confidence: float = 0.95) -> Dict[str, Any]:
    """Mean and two-sided t interval of paired differences (None bounds with fewer than 2)."""
    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    from scipy import stats

    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "sd": sd}


def verdict(interval: Dict[str, Any]) -> str:
    """``better`` / ``worse`` when the interval excludes 0, else ``no difference shown``."""
    if interval["low"] is None:
        return "too few seeds"
    if interval["low"] > 0:
        return "better"
    if interval["high"] < 0:
        return "worse"
    return "no difference shown"


def run_seed(recipe: Any, args: argparse.Namespace, dataset: Any, seed: int) -> Dict[str, Any]:
    """One recipe run with only the distill stage; the three accuracies on the test split."""
    from converters import pipeline, recipe as recipes

    trial = recipes.with_overrides(recipe, {"stages": ["distill"], "distill.baseline": True,
                                            "export.formats": ["tflite"], "export.latency_runs": 0})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="distill-trial-") as tmp:
        result = pipeline.run(trial, args.model, Path(tmp) / "out", dataset=dataset, seed=seed)
        d = result.summary()["comparisons"]["distill"]
    return {"seed": seed, "teacher": d["teacher_accuracy"], "distilled": d["student_accuracy"],
            "baseline": d["baseline_accuracy"], "difference": d["student_accuracy"] - d["baseline_accuracy"],
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from converters import recipe as recipes
    from converters.errors import ConversionError
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.report import format_table
    from training import datasets

    try:
        overrides = {}
        for text in args.set:
            section, key, value = recipes.parse_override(text)
            overrides[f"{section}.{key}"] = value
        recipe = recipes.with_overrides(recipes.load(args.recipe), overrides)
        if "distill" not in recipe.stages:
            raise ConversionError(f"recipe {recipe.name!r} has no distill stage (stages: {recipe.stages})")
        seeds = parse_seeds(args.seeds)
        dataset = datasets.load(args.dataset, seed=0)
        rows = []
        for i, seed in enumerate(seeds):
            row = run_seed(recipe, args, dataset, seed)
            rows.append(row)
            if not args.quiet:
                print(f"[trial {i + 1}/{len(seeds)}] seed {seed}: teacher {row['teacher']:.2%}, distilled "
                      f"{row['distilled']:.2%}, baseline {row['baseline']:.2%} ({row['seconds']:.0f} s)",
                      file=sys.stderr, flush=True)
    except EdgeSdkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    interval = t_interval([r["difference"] for r in rows])
    means = {k: sum(r[k] for r in rows) / len(rows) for k in ("teacher", "distilled", "baseline")}
    result = {
        "recipe": recipe.name, "model": args.model, "dataset": args.dataset, "split": "test",
        "distill": recipe.section("distill"), "train": recipe.section("train"),
        "seeds": rows, "mean": means, "difference": interval, "verdict": verdict(interval),
    }
    if args.out:
        from edge_sdk.fileio import atomic_write_text

        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = [[r["seed"], f"{r['teacher']:.2%}", f"{r['distilled']:.2%}", f"{r['baseline']:.2%}",
              f"{100 * r['difference']:+.2f}"] for r in rows]
    table.append(["mean", f"{means['teacher']:.2%}", f"{means['distilled']:.2%}", f"{means['baseline']:.2%}",
                  f"{100 * interval['mean']:+.2f}"])
    print(format_table(table, ["seed", "teacher", "distilled", "baseline", "distilled - baseline (pt)"]))
    if interval["low"] is not None:
        print(f"\ndistilled - baseline: {100 * interval['mean']:+.2f} points, 95% interval "
              f"[{100 * interval['low']:+.2f}, {100 * interval['high']:+.2f}] over {len(rows)} seeds: "
              f"{verdict(interval)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
