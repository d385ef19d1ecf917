"""Does distillation beat the same student trained alone? A paired trial over several seeds.

    .venv/bin/python benchmarks/distill_trial.py                        # the recipe as it is, seeds 0-4
    .venv/bin/python benchmarks/distill_trial.py --seeds 10-14 --set distill.mixup=0.4 --set distill.alpha=0
    .venv/bin/python benchmarks/distill_trial.py --json --out benchmarks/results/distill_trial.json
    .venv/bin/python benchmarks/distill_trial.py --dataset fashion-mnist:5000 --split val --seeds 0-2 \
        --grid distill.temperature=1,4 --grid distill.alpha=0.1,0.5 --students cnn-student,cnn:8-16-32
    .venv/bin/python benchmarks/distill_trial.py --dataset fashion-mnist:2000 --teacher-dataset fashion-mnist:10000

Each seed runs the recipe's distill stage exactly as ``edge-sdk convert`` does: the zoo
teacher trained from the recipe's [train] section, the student distilled from it, and
the baseline, which is the same student from the same initial weights trained on the
same batches and views with cross-entropy only. All three are scored on the dataset's
test split. One seed says little (CPU training is not bit-repeatable and seeds move
accuracy by about 0.4 points), so the answer is the mean paired difference
(distilled - baseline) with a 95% t interval: "better" only when the whole interval
is above zero. About 2-4 minutes per seed on 2 cores with the built-in recipe on mnist.

Screening several settings (``--grid``, ``--students``): each seed trains its teacher
once and every (student, setting) pair distils from that same teacher; the baseline
runs once per seed and student (it does not depend on alpha or the temperature),
so every setting of a seed is compared against the very same baseline. ``--split val``
scores on the validation split (screening), ``test`` (default) on the test split
(confirmation on fresh seeds). ``cnn:C1-C2-U`` is a student CNN of the zoo's shape with
conv widths C1, C2 and U dense units (``cnn-student`` is ``cnn:16-32-32``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` or ``"0,3,7"`` -> a list of seeds."""
    seeds: list[int] = []
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
    parser.add_argument(
        "--teacher-dataset",
        default="",
        help="train the teacher on this built-in dataset's training split instead (a teacher that "
        "knows more than the student's labels, e.g. fashion-mnist:10000 over --dataset "
        "fashion-mnist:2000); it must share the dataset's validation and test splits",
    )
    parser.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 or 0,1,2 (default 0-4)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe value, e.g. distill.alpha=0.5 (repeatable)",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2",
        help="try every value (every combination over repeated --grid), e.g. distill.temperature=1,4",
    )
    parser.add_argument(
        "--students",
        default="",
        help="comma-separated students to try: zoo names, tf_keras files or cnn:C1-C2-U widths "
        "(default: the recipe's distill.student)",
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=("val", "test"),
        help="score on the validation split (screening) or the test split (default)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument("--out", help="also write the JSON result to this file")
    parser.add_argument("--quiet", action="store_true", help="no per-seed progress on stderr")
    return parser.parse_args(argv)


def t_interval(differences: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and two-sided t interval of paired differences (None bounds with fewer than 2)."""
    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    from scipy import stats

    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "sd": sd}


def verdict(interval: dict[str, Any]) -> str:
    """``better`` / ``worse`` when the interval excludes 0, else ``no difference shown``."""
    if interval["low"] is None:
        return "too few seeds"
    if interval["low"] > 0:
        return "better"
    if interval["high"] < 0:
        return "worse"
    return "no difference shown"


def parse_grid(texts: list[str]) -> list[dict[str, Any]]:
    """``["distill.alpha=0.1,0.5", "distill.temperature=1,4"]`` -> every combination as override dicts."""
    from converters.recipe_options import parse_override

    axes = []
    for text in texts:
        key, sep, values = text.partition("=")
        if not sep or not values:
            raise SystemExit(f"--grid: expected SECTION.KEY=V1,V2, got {text!r}")
        axes.append(
            [
                (f"{section}.{name}", value)
                for section, name, value in (parse_override(f"{key}={v.strip()}") for v in values.split(","))
            ]
        )
    return [dict(combo) for combo in itertools.product(*axes)] or [{}]


def parse_widths(spec: str) -> Any:
    """``cnn:16-32-32`` -> (16, 32, 32); anything else -> None."""
    if not spec.startswith("cnn:"):
        return None
    parts = spec[4:].split("-")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SystemExit(f"--students: expected cnn:C1-C2-U (three positive widths), got {spec!r}")
    return tuple(int(p) for p in parts)


def build_cnn(widths: tuple, input_shape: tuple, num_classes: int, seed: int) -> Any:
    """The zoo CNN's shape (conv, pool, conv, pool, dense) at the given widths, seeded initial weights."""
    from converters._tf import tf_keras
    from training import zoo

    c1, c2, units = widths
    tf_keras.utils.set_random_seed(seed)
    layers = tf_keras.layers
    padding = "same" if min(input_shape[:2]) < 16 else "valid"
    inputs = tf_keras.Input(shape=input_shape, name=zoo.IMAGE_INPUT_NAME)
    x = layers.Conv2D(c1, 3, padding=padding, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(c2, 3, padding=padding, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.2, name="dropout1")(x)
    x = layers.Dense(units, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2, name="dropout2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=zoo.IMAGE_OUTPUT_NAME)(x)
    return tf_keras.Model(inputs, outputs, name=f"cnn_{c1}_{c2}_{units}")


def train_teacher(recipe: Any, model_name: str, dataset: Any, seed: int) -> Any:
    """The zoo teacher trained from the recipe's [train] section, as ``edge-sdk convert`` trains it."""
    import numpy as np

    from converters.context import dataset_inputs
    from converters.finetune import augment_shift, compile_and_fit
    from converters.model_files import _keras_specs
    from training import zoo

    train = recipe.section("train")
    model = zoo.build(model_name, dataset, seed=seed)
    shift = 0
    if train["augment"] and dataset.task == "image":
        shift = augment_shift(*np.asarray(dataset.x_train).shape[1:3])
    compile_and_fit(
        model,
        dataset_inputs(dataset.x_train, _keras_specs(model), "training"),
        dataset.y_train,
        epochs=train["epochs"],
        batch_size=train["batch_size"],
        learning_rate=train["learning_rate"],
        seed=seed,
        shift=shift,
    )
    return model


def scored_on(dataset: Any, split: str) -> Any:
    """``dataset`` with ``split`` in place of its test split (the pipeline scores on the test split)."""
    import dataclasses

    if split == "test":
        return dataset
    return dataclasses.replace(dataset, x_test=dataset.x_val, y_test=dataset.y_val)


def run_seed(
    recipe: Any, args: argparse.Namespace, dataset: Any, seed: int, teacher: Any = None, baseline: Any = None
) -> dict[str, Any]:
    """One recipe run with only the distill stage; the three accuracies on the scored split.

    ``teacher``: an already trained teacher (default: the zoo model trained on the fly);
    ``baseline``: an accuracy already measured for this seed's student trained alone (then it is not retrained).
    """
    from converters import pipeline
    from converters import recipe as recipes

    trial = recipes.with_overrides(
        recipe,
        {
            "stages": ["distill"],
            "distill.baseline": baseline is None,
            "export.formats": ["tflite"],
            "export.latency_runs": 0,
        },
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="distill-trial-") as tmp:
        result = pipeline.run(
            trial, args.model if teacher is None else teacher, Path(tmp) / "out", dataset=dataset, seed=seed
        )
        d = result.summary()["comparisons"]["distill"]
    base = d["baseline_accuracy"] if baseline is None else baseline
    return {
        "seed": seed,
        "teacher": d["teacher_accuracy"],
        "distilled": d["student_accuracy"],
        "baseline": base,
        "difference": d["student_accuracy"] - base,
        "student_params": d["student_params"],
        "param_ratio": d["param_ratio"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def setting_name(overrides: dict[str, Any]) -> str:
    """``{"distill.alpha": 0.5}`` -> ``alpha=0.5`` (the recipe as it is: ``recipe``)."""
    return (
        " ".join(
            f"{k.split('.', 1)[1] if k.startswith('distill.') else k}={'none' if v == '' else v}"
            for k, v in overrides.items()
        )
        or "recipe"
    )


def teacher_data(args: argparse.Namespace, dataset: Any) -> Any:
    """The dataset the teacher trains on: ``--teacher-dataset`` (checked against ``dataset``) or ``dataset``."""
    import numpy as np

    from converters.errors import DataError
    from training import datasets

    if not args.teacher_dataset:
        return dataset
    other = datasets.load(args.teacher_dataset, seed=0)
    for split in ("val", "test"):
        if not np.array_equal(getattr(other, f"y_{split}"), getattr(dataset, f"y_{split}")):
            raise DataError(
                f"--teacher-dataset {args.teacher_dataset}: expected the same {split} split as "
                f"--dataset {args.dataset} (so the teacher never trains on scored images), got another"
            )
    return other


def run_grid(
    recipe: Any,
    args: argparse.Namespace,
    dataset: Any,
    seeds: list[int],
    settings: list[dict[str, Any]],
    students: list[str],
) -> list[dict[str, Any]]:
    """Every seed x student x setting; one teacher per seed, one baseline per seed and student."""
    from converters import recipe as recipes

    rows = []
    scored = scored_on(dataset, args.split)
    taught_on = teacher_data(args, dataset)
    total = len(seeds) * len(students) * len(settings)
    with tempfile.TemporaryDirectory(prefix="distill-students-") as tmp:
        for seed in seeds:
            shared = len(settings) * len(students) > 1 or taught_on is not dataset
            teacher = train_teacher(recipe, args.model, taught_on, seed) if shared else None
            for student in students:
                widths = parse_widths(student)
                spec = student
                if widths:
                    spec = str(Path(tmp) / f"{student.replace(':', '-')}-seed{seed}.keras")
                    build_cnn(widths, tuple(dataset.x_train.shape[1:]), dataset.num_classes, seed).save(spec)
                baseline = None
                for overrides in settings:
                    run_recipe = recipes.with_overrides(recipe, {**overrides, "distill.student": spec})
                    row = run_seed(run_recipe, args, scored, seed, teacher=teacher, baseline=baseline)
                    baseline = row["baseline"]
                    row.update(student=student, setting=setting_name(overrides), split=args.split)
                    rows.append(row)
                    if not args.quiet:
                        print(
                            f"[trial {len(rows)}/{total}] seed {seed} {student} {row['setting']}: teacher "
                            f"{row['teacher']:.2%}, distilled {row['distilled']:.2%}, baseline {row['baseline']:.2%} "
                            f"({row['seconds']:.0f} s)",
                            file=sys.stderr,
                            flush=True,
                        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (student, setting): mean accuracies and the paired-difference interval."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["student"], row["setting"]), []).append(row)
    out = []
    for (student, setting), group in groups.items():
        interval = t_interval([r["difference"] for r in group])
        out.append(
            {
                "student": student,
                "setting": setting,
                "param_ratio": group[0]["param_ratio"],
                "seeds": [r["seed"] for r in group],
                **{k: sum(r[k] for r in group) / len(group) for k in ("teacher", "distilled", "baseline")},
                "difference": interval,
                "verdict": verdict(interval),
            }
        )
    return out


def _points(interval: dict[str, Any]) -> str:
    if interval["low"] is None:
        return f"{100 * interval['mean']:+.2f}"
    return f"{100 * interval['mean']:+.2f} [{100 * interval['low']:+.2f}, {100 * interval['high']:+.2f}]"


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from converters import recipe as recipes
    from converters.errors import ConversionError
    from converters.recipe_options import parse_override
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.report import format_table
    from training import datasets

    try:
        overrides = {}
        for text in args.set:
            section, key, value = parse_override(text)
            overrides[f"{section}.{key}"] = value
        recipe = recipes.with_overrides(recipes.load(args.recipe), overrides)
        if "distill" not in recipe.stages:
            raise ConversionError(f"recipe {recipe.name!r} has no distill stage (stages: {recipe.stages})")
        seeds = parse_seeds(args.seeds)
        settings = parse_grid(args.grid)
        students = [s.strip() for s in args.students.split(",") if s.strip()] or [recipe.section("distill")["student"]]
        for student in students:
            parse_widths(student)
        dataset = datasets.load(args.dataset, seed=0)
        rows = run_grid(recipe, args, dataset, seeds, settings, students)
    except EdgeSdkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarise(rows)
    interval = t_interval([r["difference"] for r in rows]) if len(summary) == 1 else summary[0]["difference"]
    means = {k: sum(r[k] for r in rows) / len(rows) for k in ("teacher", "distilled", "baseline")}
    result = {
        "recipe": recipe.name,
        "model": args.model,
        "dataset": args.dataset,
        "split": args.split,
        "teacher_dataset": args.teacher_dataset or args.dataset,
        "distill": recipe.section("distill"),
        "train": recipe.section("train"),
        "grid": args.grid,
        "students": students,
        "seeds": rows,
        "settings": summary,
        "mean": means,
        "difference": interval,
        "verdict": verdict(interval),
    }
    if args.out:
        from edge_sdk.fileio import atomic_write_text

        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if len(summary) == 1:
        table = [
            [
                r["seed"],
                f"{r['teacher']:.2%}",
                f"{r['distilled']:.2%}",
                f"{r['baseline']:.2%}",
                f"{100 * r['difference']:+.2f}",
            ]
            for r in rows
        ]
        table.append(
            [
                "mean",
                f"{means['teacher']:.2%}",
                f"{means['distilled']:.2%}",
                f"{means['baseline']:.2%}",
                f"{100 * interval['mean']:+.2f}",
            ]
        )
        print(format_table(table, ["seed", "teacher", "distilled", "baseline", "distilled - baseline (pt)"]))
        if interval["low"] is not None:
            print(
                f"\ndistilled - baseline: {100 * interval['mean']:+.2f} points, 95% interval "
                f"[{100 * interval['low']:+.2f}, {100 * interval['high']:+.2f}] over {len(rows)} seeds: "
                f"{verdict(interval)}"
            )
        return 0
    table = [
        [
            r["seed"],
            r["student"],
            r["setting"],
            f"{r['teacher']:.2%}",
            f"{r['distilled']:.2%}",
            f"{r['baseline']:.2%}",
            f"{100 * r['difference']:+.2f}",
        ]
        for r in rows
    ]
    print(format_table(table, ["seed", "student", "setting", "teacher", "distilled", "baseline", "diff (pt)"]))
    print()
    table = [
        [
            s["student"],
            f"{s['param_ratio']:.3f}",
            s["setting"],
            len(s["seeds"]),
            f"{s['teacher']:.2%}",
            f"{s['distilled']:.2%}",
            f"{s['baseline']:.2%}",
            _points(s["difference"]),
            s["verdict"],
        ]
        for s in summary
    ]
    print(
        format_table(
            table,
            [
                "student",
                "x teacher params",
                "setting",
                "seeds",
                "teacher",
                "distilled",
                "baseline",
                f"distilled - baseline (pt, 95% interval, {args.split})",
                "verdict",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
