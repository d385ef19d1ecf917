"""``edge-sdk convert``: run a conversion recipe (distill, prune, quantize, export).

    edge-sdk convert model.keras --recipe int8 --dataset mnist --out out/
    edge-sdk convert --model cnn --dataset mnist --recipe distill-prune-int8 --out out/
    edge-sdk convert saved_model/ --recipe int8 --calibration calib.npz --eval eval.npz --out out/

TensorFlow is imported inside :func:`run` only (the ``convert`` extra).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_sdk.cli._common import refuse_ambiguous, require_convert_stack, training_names
from edge_sdk.console import first_line, print_json, require_extra
from edge_sdk.outputs import mark_output_dir


def _recipe_flags() -> list[Any]:
    """The recipe keys with a dedicated flag (declared in ``converters.recipe``, imported lazily)."""
    try:
        from converters.recipe import cli_flags
    except ModuleNotFoundError as exc:
        # Only a runtime-only install without the converters package goes on without recipe flags (convert
        # then names the extra to install). Anything else missing, such as tomllib on an unsupported Python,
        # is a broken install: hiding it would silently drop every recipe flag.
        if exc.name not in ("converters", "converters.recipe"):
            raise
        return []
    return cli_flags()


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``convert`` subcommand."""
    names = training_names()
    DATASETS_TEXT, ZOO_MODELS_TEXT = names.DATASETS_TEXT, names.ZOO_MODELS_TEXT

    parser = subparsers.add_parser(
        "convert",
        help="distill, prune, quantize and export a model with a recipe; one artifact + manifest per stage",
        description="Run a conversion recipe on a model (.keras/.h5 file, SavedModel directory, float .tflite, "
        ".onnx file, or a "
        "built-in zoo name trained on the fly with --dataset). Every stage writes its model and a "
        "manifest JSON into --out, which is replaced atomically only when the whole run succeeded. "
        "Built-in recipes: fp16, dynamic, int8, prune-int8, distill-prune-int8, auto (builds the candidate "
        "quantizations, measures them side by side and ships the best within --max-drop as model.tflite). "
        "Exit codes: 0 ok, 1 a gate failed, 2 could not run.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        help="a .keras/.h5 file, a SavedModel directory, a float .tflite, "
        f"an .onnx file (through onnx2tf; docs/converters.md), or a zoo name ({ZOO_MODELS_TEXT})",
    )
    parser.add_argument("--model", dest="model_opt", metavar="MODEL", help="same as the positional MODEL")
    parser.add_argument("--recipe", required=False, help="built-in recipe name or a recipe .toml file")
    parser.add_argument(
        "--out",
        "-o",
        help="output directory (replaced atomically on success; an existing one "
        "only if edge-sdk wrote it, or with --force)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace --out even if it is a non-empty directory edge-sdk did not write (never one that holds an input)",
    )
    parser.add_argument(
        "--dataset",
        help=f"built-in dataset ({DATASETS_TEXT}) or a dataset path: "
        "training data for zoo models, distillation, pruning, QAT; its train split "
        "calibrates int8 and its test split is the eval data",
    )
    parser.add_argument(
        "--calibration",
        metavar="DATA",
        help="calibration data: .npy (one input) or .npz (one array per input name, or 'x')",
    )
    parser.add_argument(
        "--eval",
        dest="eval_data",
        metavar="DATA",
        help="eval data: .npz with inputs (one array per input name, or 'x') and optional "
        "labels 'y' (class ids, anomaly flags, masks ... as the task takes them); checked before any "
        "conversion starts",
    )
    parser.add_argument(
        "--train",
        dest="train_data",
        metavar="DATA",
        help="training data for fine-tuning stages: .npz with inputs and labels 'y'",
    )
    parser.add_argument(
        "--train-stats",
        metavar="FILE",
        help="the training data's statistics (edge-sdk data stats); "
        "default: those the model's manifest points to, or a zoo model's training split. The "
        "calibration and eval data are checked against them before any work",
    )
    parser.add_argument(
        "--allow-drift",
        action="store_true",
        help="continue when the data lies far outside the "
        "training statistics (wrong scale, unseen categories), recording the finding in every manifest",
    )
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON instead of a table")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--list-recipes", action="store_true", help="list the built-in recipes and exit")
    parser.add_argument(
        "--trust-model-code",
        action="store_true",
        help="allow Python code stored in the model (Keras Lambda layers) to run while loading; "
        "only for files from a source you trust (docs/reliability.md)",
    )
    parser.add_argument(
        "--describe",
        action="store_true",
        help="list every recipe option with its type, default, allowed range and flag, and exit",
    )
    gate = parser.add_argument_group("quality gate (converters.gate; nothing is promoted into --out if it fails)")
    gate.add_argument(
        "--max-drop",
        type=float,
        default=None,
        metavar="POINTS",
        help="fail if the shipped model's accuracy is more than POINTS below the input float model's "
        "(--recipe auto: the budget it chooses within, default 1)",
    )
    gate.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fail if top-1 agreement with the input float model is below FRACTION",
    )
    gate.add_argument(
        "--accuracy-budget",
        type=float,
        default=None,
        metavar="POINTS",
        help="if int8 loses more than POINTS, keep the layers the debugger ranks most harmful in "
        "float, one at a time, and add <artifact>-autotuned.tflite; fail if no mix meets it",
    )
    group = parser.add_argument_group(
        "recipe overrides (each flag overrides one recipe value; "
        "--describe lists every value with its default and range)"
    )
    for spec in _recipe_flags():
        if spec.flag_const is not None:
            value = str(spec.flag_const).lower()
            group.add_argument(
                spec.flag,
                dest=_dest(spec.flag),
                action="store_const",
                const=spec.flag_const,
                default=None,
                help=f"{spec.dotted}={value}: {spec.flag_help or spec.help}",
            )
            continue
        kwargs: dict[str, Any] = {
            "dest": _dest(spec.flag),
            "metavar": spec.metavar,
            "help": f"{spec.dotted}: {spec.help} (default {spec.default_text()}; {spec.allowed()})",
        }
        if spec.dotted == "import.input_shapes":  # one flag per input: --input-shape x=1,3,48,192 (repeatable)
            kwargs["action"] = "append"
        if spec.type_name in ("int", "float"):
            kwargs["type"] = spec.type
        elif spec.choices and spec.type_name == "str":
            kwargs["choices"] = spec.choices
        group.add_argument(spec.flag, **kwargs)
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any recipe value, e.g. --set prune.frequency=50 (repeatable)",
    )
    parser.set_defaults(func=run)


def gate_hooks(args: argparse.Namespace) -> list[Callable[[Any], None]]:
    """Checks run on the finished artifacts before they are promoted into --out.

    Each hook takes the ``PipelineResult`` and raises an ``EdgeSdkError`` to stop
    promotion. The quality checks (``converters.quality``: auto-tune, parity, gate) register here.
    """
    from converters.quality import convert_hooks

    budgets = {
        spec.key: getattr(args, _dest(spec.flag), None)
        for spec in _recipe_flags()
        if spec.section == "task" and spec.key.startswith("min_")
    }
    if "auto" in (getattr(args, "recipe_stages", None) or ()):
        budgets = {}  # --recipe auto chooses within them already
    return convert_hooks(
        max_drop=args.max_drop,
        min_agreement=args.min_agreement,
        accuracy_budget=args.accuracy_budget,
        dataset=args.dataset,
        eval_data=args.eval_data,
        calibration=args.calibration,
        progress=not args.quiet,
        budgets=budgets,
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from converters.recipe_options import parse_override

    overrides: dict[str, Any] = {}
    for spec in _recipe_flags():
        value = getattr(args, _dest(spec.flag), None)
        if value is not None:
            overrides[spec.dotted] = value
    for text in args.set:
        section, key, value = parse_override(text)
        overrides[f"{section}.{key}"] = value
    return overrides


def check_convert_paths(args: argparse.Namespace, model: str) -> Path:
    """Refuse, before any work, an --out that is, holds or lies inside an input, a non-empty directory
    edge-sdk did not write (without --force), or a name that is both a built-in and a local path."""
    from converters.distill import is_transfer_name
    from edge_sdk.arrays import check_array_file
    from edge_sdk.outputs import check_dir_output, model_inputs, path_inputs
    from training.names import DATASETS
    from training.names import ZOO_MODELS as models

    refuse_ambiguous(model, models, "MODEL", "zoo model")
    refuse_ambiguous(args.student, models, "--student", "zoo model")
    refuse_ambiguous(args.dataset, DATASETS, "--dataset", "dataset")
    transfer_is_name = bool(args.transfer) and is_transfer_name(args.transfer)
    refuse_ambiguous(args.transfer, [args.transfer] if transfer_is_name else [], "--transfer", "transfer set")
    protected = model_inputs(model, "input model") if os.path.lexists(model) else []
    for flag, value in (
        ("--dataset", args.dataset),
        ("--calibration", args.calibration),
        ("--eval", args.eval_data),
        ("--train", args.train_data),
        ("--transfer", None if transfer_is_name else args.transfer),
        ("--student", args.student),
        ("--recipe", args.recipe),
        ("--train-stats", getattr(args, "train_stats", None)),
    ):
        protected += path_inputs(value, f"{flag} input")
    for flag, value in (
        ("--calibration", args.calibration),
        ("--eval", args.eval_data),
        ("--train", args.train_data),
        ("--transfer", None if transfer_is_name else args.transfer),
    ):
        if value:  # a wrong file here should not cost a training run first
            check_array_file(value, flag)
    if getattr(args, "train_stats", None):
        from converters.datacheck import load_stats

        load_stats(args.train_stats)
    return check_dir_output(args.out, "--out", protected, force=args.force, replace=True)


def run(args: argparse.Namespace) -> int:
    """Run the recipe, print the table (or JSON), return the exit code."""
    from converters.errors import ConversionError, RecipeError
    from edge_sdk.errors import EdgeSdkError

    if not (args.list_recipes or args.describe):  # paths first: a refusal must not wait for TensorFlow to import
        model = args.model_opt or args.model
        if args.model_opt and args.model and args.model_opt != args.model:
            raise RecipeError(f"MODEL given twice: positional {args.model!r} and --model {args.model_opt!r}")
        missing = [
            flag for flag, value in (("MODEL", model), ("--recipe", args.recipe), ("--out", args.out)) if not value
        ]
        if missing:
            raise RecipeError(
                f"convert needs {', '.join(missing)}; e.g. edge-sdk convert model.keras --recipe int8 "
                f"--dataset mnist --out out/"
            )
        out = check_convert_paths(args, model)
    if not (args.list_recipes or args.describe) and _is_tflite(model):
        require_extra("quantize", "convert MODEL.tflite")  # the LiteRT quantizer: no TensorFlow needed
    else:
        require_convert_stack("convert")
    from converters import recipe as recipes

    if args.list_recipes:
        from edge_sdk.report import format_table

        rows = []
        for name in recipes.builtin_names():
            r = recipes.load(name)
            rows.append([name, " -> ".join(r.stages), r.description])
        print(format_table(rows, ["recipe", "stages", "description"]))
        return 0
    if args.describe:
        from edge_sdk.report import format_table

        print(format_table(recipes.describe_rows(), ["option", "type", "default", "allowed", "flag", "help"]))
        print("\nset any option with --set SECTION.KEY=VALUE (repeatable), or in a recipe .toml under [SECTION]")
        return 0
    recipe = recipes.with_overrides(recipes.load(args.recipe), _overrides(args))
    args.recipe_stages = tuple(recipe.stages)
    if "auto" in recipe.stages and args.max_drop is not None:
        # --recipe auto: --max-drop is the budget auto chooses within (it ships float32 rather than break it)
        recipe = recipes.with_overrides(recipe, {"auto.max_drop": args.max_drop})
        args.max_drop = None

    from converters import pipeline
    from converters.gate import GateFailedError
    from converters.model_files import trusted_model_code

    try:
        with trusted_model_code(args.trust_model_code):
            result = pipeline.run(
                recipe,
                model,
                args.out,
                dataset=args.dataset,
                calibration=args.calibration,
                eval_data=args.eval_data,
                train_data=args.train_data,
                progress=not args.quiet,
                before_promote=gate_hooks(args),
                seed=args.seed,
                train_stats=args.train_stats,
                allow_drift=args.allow_drift,
                force=args.force,
            )
    except GateFailedError as exc:
        print(exc.verdict)
        return 1
    except EdgeSdkError:
        raise
    except MemoryError:
        raise ConversionError(
            "conversion ran out of memory; try a smaller model or fewer calibration samples"
        ) from None
    except OSError as exc:  # a file read or written, not TensorFlow's maths: say which file and why
        where = f" {exc.filename}" if exc.filename else ""
        reason = exc.strerror or first_line(exc, 400)
        raise ConversionError(f"conversion could not read or write{where}: {reason}") from None
    except Exception as exc:  # noqa: BLE001 - never let a TensorFlow traceback reach the user
        engine = _failing_engine(exc)
        if engine is None:  # raised by edge-sdk's own code: main() reports it as an edge-sdk bug, not a library's
            raise
        raise ConversionError(f"conversion failed in {engine}: {type(exc).__name__}: {first_line(exc, 400)}") from None
    mark_output_dir(out, "convert", record_entries=True)
    if args.json:
        print_json(result.summary())
    else:
        print(result.table())
        for line in [""] + result.lines if result.lines else []:  # each stage's record says its own lines
            print(line)
        if result.warnings:  # each was printed as it happened; repeating them would bury the table
            print(f"{len(result.warnings)} warning(s), printed above (also in summary.json)", file=sys.stderr)
        print(
            f"\nwrote {len(result.artifacts)} artifacts with manifests to {result.out} "
            f"in {result.seconds:.0f}s (summary.json)"
        )
        if result.verdict:
            print(result.verdict)
    return 0


#: The folder holding edge-sdk's packages (frames under it are edge-sdk's own code).
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).replace("\\", "/")
#: Where an exception was raised -> the library to name.
_ENGINES = (
    ("/onnxruntime/", "ONNX Runtime"),
    ("/litert_quantizer/", "the LiteRT quantizer"),
    ("/ai_edge_litert/", "LiteRT"),
    ("/tensorflow/", "TensorFlow"),
    ("/tf_keras/", "TensorFlow"),
    ("/keras/", "TensorFlow"),
    ("/tensorflow_model_optimization/", "TensorFlow"),
    ("/tf2onnx/", "tf2onnx"),
    ("/onnx/", "onnx"),
)


def _failing_engine(exc: BaseException) -> str | None:
    """The library whose code raised ``exc``, or None when edge-sdk's own code did.

    The frames are read from the innermost out: the first that belongs to a known library names it, the
    first in edge-sdk's own packages makes it our bug (numpy or the standard library in between decide
    nothing). Naming the library by the input kind alone blamed the LiteRT quantizer for a KeyError in
    edge-sdk's own statistics reader; a bug of ours must read as one.
    """
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename.replace("\\", "/"))
        tb = tb.tb_next
    ours = tuple(f"{_PROJECT_ROOT}/{package}/" for package in ("edge_sdk", "converters", "training"))
    for where in reversed(frames):
        for marker, engine in _ENGINES:
            if marker in where:
                return engine
        if where.startswith(ours):
            return None
    return None


def _is_tflite(model: str) -> bool:
    """A .tflite input: quantized by the LiteRT quantizer, so the run needs the 'quantize' extra, not TensorFlow."""
    from converters.inputs import InputKind, input_kind  # stdlib only: the one place the input kind is decided

    return input_kind(model) is InputKind.TFLITE
