"""Recipes: a TOML file naming the chain of stages and their options.

    name = "prune-int8"
    stages = ["prune", "quantize"]
    [prune]
    target_sparsity = 0.8
    [quantize]
    mode = "int8"

Built-ins live in ``converters/recipes/*.toml`` (fp16, dynamic, int8,
prune-int8, distill-prune-int8, auto).

Each section is a frozen dataclass (:class:`TrainOptions`, :class:`DistillOptions`,
:class:`PruneOptions`, :class:`QuantizeOptions`, :class:`ExportOptions`, :class:`AutoOptions`) that
declares, once, every key's type, default, allowed range and command-line flag.
Everything else is derived from those declarations: the TOML schema
(:data:`SCHEMA`), the ``--set SECTION.KEY=VALUE`` overrides, the dedicated
``edge-sdk convert`` flags (:func:`cli_flags`) and ``edge-sdk convert
--describe`` (:func:`describe_rows`). Building a section validates it, so a
stage never sees an out-of-range value: an unknown key, a wrong type, a value
outside its range, NaN or infinity is a :class:`RecipeError` naming the key,
the range and the value.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converters.errors import RecipeError
from converters.recipe_options import (
    AT_LEAST_ONE,
    MAX_TOML_DEPTH,
    NON_NEGATIVE,
    POSITIVE,
    UNIT_CLOSED,
    UNIT_OPEN,
    OptionSpec,
    Range,
    _check_toml_depth,
    _Section,
    option,
)
from converters.schemes import (
    AUTO_LITERT_CANDIDATES,
    CONVERTER_MODES,
    LITERT_SCHEMES,
)  # "" = the TFLite converter's ``mode`` (Keras input)
from edge_sdk.task_options import DEFAULT_BUDGETS, HEAD_FORMATS, TASK_CHOICES, TASK_OPTION  # the [task] keys' home

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
STAGES = ("distill", "prune", "quantize", "auto")
TOP_LEVEL_KEYS = ("name", "description", "stages")
EXPORT_FORMATS = ("tflite", "savedmodel", "keras", "onnx")


# ------------------------------------------------------------------------------------------------
# the sections
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TrainOptions(_Section):
    """[train]: training a zoo model on the fly (MODEL is a zoo name)."""

    SECTION: typing.ClassVar[str] = "train"
    epochs: int = option(15, "epochs for a zoo model trained on the fly", range=AT_LEAST_ONE, flag="--epochs")
    batch_size: int = option(64, "training batch size", range=AT_LEAST_ONE)
    learning_rate: float = option(1e-3, "Adam learning rate", range=POSITIVE)
    augment: bool = option(True, "images: random shifts each epoch, 1/14 of the side (2 px on mnist, 1 on digits)")


@dataclasses.dataclass(frozen=True)
class DistillOptions(_Section):
    """[distill]: knowledge distillation into a smaller student."""

    SECTION: typing.ClassVar[str] = "distill"
    student: str = option("cnn-student", "zoo name or tf_keras file", flag="--student")
    alpha: float = option(0.1, "weight of the hard-label loss", range=UNIT_CLOSED, flag="--alpha")
    temperature: float = option(4.0, "softmax temperature of the soft targets", range=POSITIVE, flag="--temperature")
    epochs: int = option(6, "distillation epochs", range=AT_LEAST_ONE, flag="--distill-epochs")
    batch_size: int = option(64, "distillation batch size", range=AT_LEAST_ONE)
    learning_rate: float = option(2e-3, "Adam learning rate of the student", range=POSITIVE)
    baseline: bool = option(
        True,
        "also train the same student without distillation, for comparison",
        flag="--no-baseline",
        flag_const=False,
        flag_help="skip training the student without distillation",
    )
    shift: int = option(
        0,
        "fresh views shifted by up to PIXELS each epoch (image inputs; 0 = off)",
        range=NON_NEGATIVE,
        flag="--shift",
        metavar="PIXELS",
    )
    mixup: float = option(
        0.0,
        "views mixed pairwise with Beta(BETA, BETA) weights (image inputs; 0 = off)",
        range=NON_NEGATIVE,
        flag="--mixup",
        metavar="BETA",
    )
    transfer: str = option(
        "",
        "a .npy/.npz of unlabelled inputs the teacher labels for the student, or a built-in "
        "image dataset's training images (fashion-mnist[:N], mnist, digits) minus the labelled "
        'ones; "auto": those of the run\'s own built-in image dataset, if it leaves any unlabelled',
        flag="--transfer",
        metavar="FILE|DATASET|auto",
    )
    transfer_limit: float = option(
        4.0,
        'transfer = "auto" takes at most this many unlabelled images per labelled '
        "one (4: the fashion-mnist study's 8,000 for 2,000 labels)",
        range=POSITIVE,
    )


@dataclasses.dataclass(frozen=True)
class PruneOptions(_Section):
    """[prune]: magnitude pruning with fine-tuning (tfmot)."""

    SECTION: typing.ClassVar[str] = "prune"
    target_sparsity: float = option(
        0.8, "final share of zero weights, strictly between 0 and 1", range=UNIT_OPEN, flag="--sparsity"
    )
    initial_sparsity: float = option(
        0.0, "sparsity at the start of the schedule (below target_sparsity)", range=Range(0, 1, high_open=True)
    )
    structured: str = option(
        "none", "'2:4' keeps at most 2 non-zeros per 4 input channels", choices=("none", "2:4"), flag="--structured"
    )
    epochs: int = option(3, "fine-tuning epochs", range=AT_LEAST_ONE, flag="--prune-epochs")
    batch_size: int = option(64, "fine-tuning batch size", range=AT_LEAST_ONE)
    learning_rate: float = option(5e-4, "fine-tuning Adam learning rate", range=POSITIVE)
    frequency: int = option(20, "training steps between mask updates", range=AT_LEAST_ONE)
    min_share: float = option(
        0.02,
        "kernels under this share of the prunable weights stay dense (first conv, classifier)",
        range=Range(0, 1, high_open=True),
    )

    def cross_check(self) -> str | None:
        """``initial_sparsity`` must stay below ``target_sparsity``."""
        if self.initial_sparsity >= self.target_sparsity:
            return (
                f"recipe option prune.initial_sparsity: expected 0 <= initial_sparsity < target_sparsity "
                f"({self.target_sparsity}), got {self.initial_sparsity}"
            )
        return None


@dataclasses.dataclass(frozen=True)
class QuantizeOptions(_Section):
    """[quantize]: post-training quantization (and optional QAT)."""

    SECTION: typing.ClassVar[str] = "quantize"
    mode: str = option(
        "int8",
        "dynamic, float16 or full int8",
        choices=tuple(m for m in CONVERTER_MODES if m != "float32"),
        flag="--mode",
    )
    io: str = option("int8", "int8 or float input/output", choices=("int8", "float32"), flag="--io")
    calibration_samples: int = option(
        300, "representative samples for int8 calibration", range=AT_LEAST_ONE, flag="--calibration-samples"
    )
    qat: bool = option(False, "quantization-aware training before conversion", flag="--qat", flag_const=True)
    qat_epochs: int = option(1, "QAT epochs", range=AT_LEAST_ONE)
    include_input: bool = option(False, "also quantize the unpruned / undistilled input model")
    scheme: str = option(
        "",
        "LiteRT quantizer scheme (quantizes the float32 .tflite, no TensorFlow): int8, "
        "dynamic, weight-only-int8, weight-only-int4, int16x8, fp16; '' = follow mode (a .tflite "
        "input always uses the LiteRT quantizer)",
        choices=("",) + LITERT_SCHEMES,
        flag="--scheme",
    )
    keep_float: tuple[str, ...] = option(
        (),
        "LiteRT quantizer: regular expressions of op output-tensor names to leave float (comma separated)",
        flag="--keep-float",
        metavar="REGEX,...",
    )

    def cross_check(self) -> str | None:
        """Every ``keep_float`` entry is a valid regular expression."""
        import re

        for pattern in self.keep_float:
            try:
                re.compile(pattern)
            except re.error as exc:
                return f"recipe option quantize.keep_float: {pattern!r} is not a valid regular expression ({exc})"
        return None


@dataclasses.dataclass(frozen=True)
class ExportOptions(_Section):
    """[export]: extra formats and the quick latency column."""

    SECTION: typing.ClassVar[str] = "export"
    formats: tuple[str, ...] = option(
        ("tflite",), "comma separated: tflite,savedmodel,keras,onnx", choices=EXPORT_FORMATS, flag="--formats"
    )
    onnx_opset: int = option(17, "ONNX opset (17 or newer)", range=Range(17, 21, what="an ONNX opset"), flag="--opset")
    onnx_atol: float = option(
        1e-4,
        "largest allowed |ONNX - source| output difference (ONNX input: per unit of an "
        "output's largest magnitude when above 1, as float rounding grows)",
        range=POSITIVE,
    )
    latency_runs: int = option(
        20, "timed runs for the quick latency column (0 = skip)", range=NON_NEGATIVE, flag="--latency-runs"
    )


#: onnx2tf options a recipe's ``[import]`` may pass through (``import.onnx2tf_args``); the ones edge-sdk sets
#: itself (-i, -o, -osd, -k, -ois) or that would write elsewhere are not among them
ONNX2TF_PASS_THROUGH = (
    "-kat",
    "-kt",
    "-onwdt",
    "-b",
    "-nuo",
    "-nuonag",
    "-dgc",
    "-ebu",
    "-eru",
    "-rtpo",
    "-me",
    "-dsft",
    "-dsfs",
    "-dsm",
    "-ofgd",
    "-rari64",
    "-rarf32",
    "-rafi64",
    "-raff32",
    "-fasr",
    "-snms",
    "-sh",
    "-vh",
    "-nlt",
    "-eatfp16",
)


@dataclasses.dataclass(frozen=True)
class ImportOptions(_Section):
    """[import]: reading a model made elsewhere (ONNX through onnx2tf; fixed input shapes for any input)."""

    SECTION: typing.ClassVar[str] = "import"
    input_shapes: tuple[str, ...] = option(
        (),
        "NAME=D,D,...: fix an input's dynamic dimensions (ONNX, "
        "SavedModel, Keras 3), e.g. x=1,3,48,192; recorded in the manifest "
        "(the flag is repeatable)",
        flag="--input-shape",
        metavar="NAME=1,3,48,192",
    )
    constant_inputs: tuple[str, ...] = option(
        (),
        "NAME=VALUE: an ONNX input always fed one value (a sample rate) "
        "becomes a constant, so an If on it folds before onnx2tf; ONNX "
        "Runtime is fed that value",
        metavar="NAME=VALUE",
    )
    fold_constants: bool = option(
        True,
        "ONNX: fold If nodes whose condition is constant (after input_shapes and "
        "constant_inputs) into their branch before onnx2tf",
    )
    split_before_concat: bool = option(
        True,
        "ONNX: a Split of a Concat's output on another axis moves above the "
        "Concat (same values; YOLO heads whose concatenated rows are square made "
        "onnx2tf split the wrong axis)",
    )
    onnx2tf_args: tuple[str, ...] = option(
        (),
        "extra onnx2tf options passed through, one token per list item "
        '(e.g. ["-kat", "x"]); allowed: ' + " ".join(ONNX2TF_PASS_THROUGH),
    )
    find_divergence: float = option(
        600.0,
        "on a failed float32 gate, seconds one more onnx2tf run (-cotof, op by op "
        "against ONNX Runtime) may take to name the first op that diverges (0 = off)",
        range=NON_NEGATIVE,
    )
    max_relative_error: float = option(
        0.01,
        "float32.tflite must also match ONNX Runtime within this share of each "
        "output's largest magnitude, whatever export.onnx_atol allows (a file wrong "
        "by construction is never promoted; 1e9 = off)",
        range=POSITIVE,
    )
    keep_rejected: bool = option(
        False,
        "keep a float32.tflite that failed the ONNX gate, and its report, in <out>.rejected/",
        flag="--keep-rejected",
        flag_const=True,
    )

    def __post_init__(self) -> None:
        # "x=1,3,48,192" split on commas by --set (a comma-separated list): join the numbers back to their name
        for key in ("input_shapes", "constant_inputs"):
            value = getattr(self, key)
            if isinstance(value, str):
                value = (value,)
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                joined: list = []
                for item in value:
                    if joined and "=" not in item:
                        joined[-1] = f"{joined[-1]},{item.strip()}"
                    else:
                        joined.append(item.strip())
                object.__setattr__(self, key, tuple(joined))
        super().__post_init__()

    def cross_check(self) -> str | None:
        """Entries are NAME=D,D,... / NAME=VALUE; pass-through options are ones onnx2tf takes and edge-sdk allows."""
        for entry in self.input_shapes:
            name, _, dims = entry.partition("=")
            parts = [d.strip() for d in dims.split(",")]
            if not name or not dims or not all(d.isdigit() and int(d) > 0 for d in parts):
                return (
                    f"recipe option import.input_shapes: expected NAME=D,D,... with positive integer dimensions "
                    f"(e.g. --input-shape x=1,3,48,192), got {entry!r}"
                )
        for entry in self.constant_inputs:
            name, _, value = entry.partition("=")
            try:
                float(value)
            except ValueError:
                return f"recipe option import.constant_inputs: expected NAME=NUMBER (e.g. sr=16000), got {entry!r}"
            if not name:
                return f"recipe option import.constant_inputs: expected NAME=NUMBER (e.g. sr=16000), got {entry!r}"
        for token in self.onnx2tf_args:
            if token.startswith("-") and token not in ONNX2TF_PASS_THROUGH:
                return (
                    f"recipe option import.onnx2tf_args: {token!r} is not an onnx2tf option edge-sdk passes "
                    f"through; allowed: {' '.join(ONNX2TF_PASS_THROUGH)}"
                )
        if self.onnx2tf_args and not self.onnx2tf_args[0].startswith("-"):
            return (
                f'recipe option import.onnx2tf_args: expected an option first (e.g. ["-kat", "x"]), '
                f"got {list(self.onnx2tf_args)!r}"
            )
        return None

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """``{input name: fixed shape}`` from ``input_shapes``."""
        out: dict[str, tuple[int, ...]] = {}
        for entry in self.input_shapes:
            name, _, dims = entry.partition("=")
            out[name.strip()] = tuple(int(d) for d in dims.split(","))
        return out

    def constants(self) -> dict[str, float]:
        """``{input name: value}`` from ``constant_inputs``."""
        return {e.partition("=")[0].strip(): float(e.partition("=")[2]) for e in self.constant_inputs}


#: the candidates ``--recipe auto`` can build, in the order they are built and listed
AUTO_CANDIDATES = (
    "float32",
    "float16",
    "dynamic",
    "int8",
    "int8-float-io",
    "int8-float-head",
    "int8-keep-float",
    *AUTO_LITERT_CANDIDATES,
    "pruned-int8",
)
#: built unless the recipe says otherwise: pruned-int8 fine-tunes for epochs and, on LiteRT's dense kernels,
#: changes neither latency nor file size (only the gzip size), so it is added by choice
AUTO_DEFAULT_CANDIDATES = tuple(c for c in AUTO_CANDIDATES if c not in ("float32", "pruned-int8"))
AUTO_OBJECTIVES = ("latency", "size", "balanced")


@dataclasses.dataclass(frozen=True)
class AutoOptions(_Section):
    """[auto]: build the candidate quantizations, measure them side by side, ship the best within budget."""

    SECTION: typing.ClassVar[str] = "auto"
    candidates: tuple[str, ...] = option(
        AUTO_DEFAULT_CANDIDATES,
        "candidates to build and measure (float32, the reference, is always measured)",
        choices=AUTO_CANDIDATES,
    )
    max_drop: float = option(
        1.0,
        "accuracy points a candidate may lose against float32 (top-1 disagreement "
        "points without labels); convert's --max-drop sets it",
        range=Range(0, 100),
    )
    objective: str = option(
        "latency", "what 'best' means among the candidates within budget", choices=AUTO_OBJECTIVES, flag="--objective"
    )
    target: str = option(
        "local",
        "where latency is measured: local, or ssh://[USER@]HOST[:PORT] (the light "
        "runtime on the device, as bench --target)",
        flag="--target",
        metavar="local|ssh://HOST",
    )
    remote_command: str = option("edge-sdk", "the edge-sdk command on the --target device")
    ssh_config: str = option("", "an ssh client config file for --target (ssh -F; empty: ~/.ssh/config applies)")
    threads: int = option(1, "interpreter threads the latency is measured with", range=AT_LEAST_ONE, flag="--threads")
    batch: int = option(1, "batch size the latency is measured at", range=AT_LEAST_ONE, flag="--batch")
    bench_seconds: float = option(0.5, "seconds of interleaved timed runs per candidate", range=POSITIVE)
    latency_tie: float = option(
        0.03, "relative latency difference counted as a tie (then the smaller file wins)", range=Range(0, 1)
    )
    slower_margin: float = option(
        0.0,
        "objective latency: a candidate counts as slower than float32 when its "
        "median is above float32's by more than this share (0 = any amount)",
        range=Range(0, 1),
    )
    eval_samples: int = option(2000, "eval rows each candidate is measured on", range=AT_LEAST_ONE)
    keep_float_max: int = option(3, "int8-keep-float: most layers kept in float (debugger ranking)", range=AT_LEAST_ONE)

    def cross_check(self) -> str | None:
        """``target`` is ``local`` or an ``ssh://`` URL."""
        if self.target == "local":
            return None
        from edge_sdk.remote import RemoteError, parse_target

        try:
            parse_target(self.target)
        except RemoteError as exc:
            return f"recipe option auto.target: expected 'local' or ssh://[USER@]HOST[:PORT]; {exc}"
        return None


def _task_option(key: str) -> Any:
    """The ``option(...)`` of ``[task] key``, built from its declaration in :data:`edge_sdk.tasks.TASK_OPTIONS`.

    The runtime declares the task keys (``parity --reference`` needs their flags on a device without this
    package); the recipe reads them, so a default, range or flag has one home.
    """
    spec = TASK_OPTION[key]
    numeric = spec.low is not None or spec.high is not None
    return option(
        spec.default,
        spec.help,
        range=Range(spec.low, spec.high) if numeric else None,
        choices=spec.choices,
        flag=spec.flag,
        metavar=spec.metavar,
    )


@dataclasses.dataclass(frozen=True)
class TaskOptions(_Section):
    """[task]: what the model does, and each task's budget for the gate, the auto-tuner and auto.

    Classification keeps ``--max-drop`` (accuracy points) and ``--min-agreement``; every other
    task is judged by its own budget (edge_sdk.tasks.BUDGETS). The defaults are what ``--recipe auto``
    chooses within; the gate of ``convert``/``parity`` checks a budget when its flag is given. The keys,
    defaults, ranges and flags are declared in :data:`edge_sdk.tasks.TASK_OPTIONS`.
    """

    SECTION: typing.ClassVar[str] = "task"
    task: str = _task_option("task")
    min_correlation: float = _task_option("min_correlation")
    min_recall: float = _task_option("min_recall")
    min_iou: float = _task_option("min_iou")
    min_cosine: float = _task_option("min_cosine")
    min_snr_db: float = _task_option("min_snr_db")
    detection_head: str = _task_option("detection_head")
    score_threshold: float = _task_option("score_threshold")

    def budgets(self) -> dict[str, float]:
        """``{budget name: threshold}`` of every task budget (edge_sdk.tasks.budget_checks takes it)."""
        return {k: getattr(self, k) for k in DEFAULT_BUDGETS}


SECTIONS: dict[str, type[_Section]] = {
    cls.SECTION: cls
    for cls in (
        TrainOptions,
        DistillOptions,
        PruneOptions,
        QuantizeOptions,
        ExportOptions,
        AutoOptions,
        TaskOptions,
        ImportOptions,
    )
}


def _attr(section: str) -> str:
    """The :class:`Recipe` attribute holding ``section`` (``import`` is a Python keyword: ``import_``)."""
    return "import_" if section == "import" else section


def option_specs() -> list[OptionSpec]:
    """Every recipe key of every section, in declaration order."""
    specs = []
    for name, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            m = f.metadata
            specs.append(
                OptionSpec(
                    name,
                    f.name,
                    hints[f.name],
                    f.default,
                    m["help"],
                    m["range"],
                    m["choices"],
                    m["flag"],
                    m["flag_const"],
                    m["flag_help"],
                    m["metavar"],
                )
            )
    return specs


# the TOML schema, derived: section -> key -> (type, default)
SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    name: {s.key: (s.type, s.default) for s in option_specs() if s.section == name} for name in SECTIONS
}


def cli_flags() -> list[OptionSpec]:
    """The keys that have a dedicated ``edge-sdk convert`` flag."""
    return [s for s in option_specs() if s.flag]


def describe_rows() -> list[list[Any]]:
    """``[section.key, type, default, allowed, flag, help]`` per key, for ``convert --describe``."""
    rows = []
    for s in option_specs():
        rows.append([s.dotted, s.type_name, s.default_text(), s.allowed(), s.flag or "", s.help])
    return rows


# ------------------------------------------------------------------------------------------------
# the recipe
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Recipe:
    """A validated recipe: the stage chain and every section's options with defaults filled in."""

    name: str
    stages: list[str]
    train: TrainOptions = dataclasses.field(default_factory=TrainOptions)
    distill: DistillOptions = dataclasses.field(default_factory=DistillOptions)
    prune: PruneOptions = dataclasses.field(default_factory=PruneOptions)
    quantize: QuantizeOptions = dataclasses.field(default_factory=QuantizeOptions)
    export: ExportOptions = dataclasses.field(default_factory=ExportOptions)
    auto: AutoOptions = dataclasses.field(default_factory=AutoOptions)
    task: TaskOptions = dataclasses.field(default_factory=TaskOptions)
    import_: ImportOptions = dataclasses.field(default_factory=ImportOptions)  # the [import] section
    description: str = ""
    source: str = ""
    # export formats the user named (--formats, --set export.formats, or a recipe file of their own):
    # a failure there stops the run; other formats (a built-in recipe's ONNX) only warn when they fail
    requested_formats: tuple[str, ...] = ()

    def options(self, name: str) -> _Section:
        """The typed options of section ``name`` (a frozen dataclass)."""
        if name not in SECTIONS:
            raise RecipeError(f"unknown recipe section {name!r}; valid sections: {', '.join(SECTIONS)}")
        return getattr(self, _attr(name))

    def section(self, name: str) -> dict[str, Any]:
        """The options of section ``name`` as a plain dict (a copy; defaults included)."""
        return self.options(name).to_dict()

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON-able data, as recorded in every manifest."""
        out: dict[str, Any] = {"name": self.name, "description": self.description, "stages": list(self.stages)}
        for section in SECTIONS:
            if section in ("train", "export", "task") or section in self.stages:
                out[section] = self.section(section)
            elif section == "import" and self.import_ != ImportOptions():
                out[section] = self.section(section)
        return out


def build_options(cls: type[_Section], base: _Section | None = None, **values: Any) -> Any:
    """A validated ``cls`` section from ``base`` (or the defaults) with ``values`` replaced.

    The library entry points (``prune.prune``, ``distill.train_student`` ...) build
    their options through here, so they share the recipe's defaults and ranges.
    """
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in valid]
    if unknown:
        raise RecipeError(f"unknown {cls.SECTION} option(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")
    return dataclasses.replace(base, **values) if base is not None else cls(**values)


def builtin_names() -> list[str]:
    """Names of the recipes shipped in ``converters/recipes``."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def _check_stages(stages: Any, source: str) -> list[str]:
    if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
        raise RecipeError(f"{source}: 'stages' must be a list of stage names, got {stages!r}")
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise RecipeError(f"{source}: unknown stage(s) {bad}; valid stages: {', '.join(STAGES)}")
    if len(set(stages)) != len(stages):
        raise RecipeError(f"{source}: a stage appears twice in {stages}")
    if "auto" in stages and "quantize" in stages:
        raise RecipeError(f"{source}: stage 'auto' chooses the quantization itself; drop 'quantize' from {stages}")
    order = [s for s in STAGES if s in stages]
    if stages != order:
        raise RecipeError(f"{source}: stages must run in the order {', '.join(STAGES)}; got {stages}")
    return list(stages)


def _build_section(name: str, given: Any, source: str) -> _Section:
    cls = SECTIONS[name]
    if not isinstance(given, Mapping):
        raise RecipeError(f"{source}: [{name}] must be a table, got {type(given).__name__}")
    keys = list(SCHEMA[name])
    unknown = [k for k in given if k not in keys]
    if unknown:
        raise RecipeError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))} in [{name}]; valid keys: {', '.join(keys)}"
        )
    return cls(**dict(given))


def from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Recipe:
    """Validate raw recipe data (as parsed from TOML) into a :class:`Recipe`.

    ``data``: the parsed TOML (top-level keys and one table per section).
    ``source``: the file or origin, named in error messages.
    """
    valid_top = list(TOP_LEVEL_KEYS) + list(SECTIONS)
    unknown = [k for k in data if k not in valid_top]
    if unknown:
        raise RecipeError(
            f"{source}: unknown recipe key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid_top)}"
        )
    stages = _check_stages(data.get("stages", []), source)
    # each name its own section class (ExportOptions ...), as Recipe's fields declare them
    sections: dict[str, Any] = {name: _build_section(name, data.get(name, {}), source) for name in SECTIONS}
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise RecipeError(f"{source}: 'name' must be a string, got {name!r}")
    builtin = Path(source).resolve().parent == RECIPE_DIR
    requested = () if builtin or "formats" not in data.get("export", {}) else sections["export"].formats
    return Recipe(
        name=name,
        stages=stages,
        description=str(data.get("description", "")),
        source=source,
        requested_formats=tuple(requested),
        **{_attr(k): v for k, v in sections.items()},
    )


def load(name_or_path: str) -> Recipe:
    """Load a built-in recipe by name, or a recipe TOML file by path."""
    from edge_sdk.fileio import not_a_regular_file

    path = Path(name_or_path)
    problem = not_a_regular_file(path)
    if problem in ("does not exist", "is a directory"):  # a folder ./int8 does not hide the built-in int8
        builtin = RECIPE_DIR / f"{name_or_path}.toml"
        if builtin.is_file() and "/" not in str(name_or_path):
            path = builtin
            problem = None
        else:
            raise RecipeError(
                f"recipe {name_or_path!r}: expected a built-in name ({', '.join(builtin_names())}) "
                f"or a path to a .toml file; neither exists"
            )
    if problem:  # a FIFO would block for ever, a device be read until memory runs out
        raise RecipeError(f"recipe {path} {problem}; expected a .toml file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # duplicate keys and tables included ("Cannot overwrite a value")
        raise RecipeError(f"recipe {path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level
        raise RecipeError(f"recipe {path} nests too deeply to read; expected at most {MAX_TOML_DEPTH} levels") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"recipe {path}: cannot read it: {exc}") from None
    _check_toml_depth(data, f"recipe {path}")
    return from_dict(data, source=str(path))


def with_overrides(recipe: Recipe, overrides: Mapping[str, Any]) -> Recipe:
    """A copy of ``recipe`` with ``{"section.key": value}`` overrides applied and validated.

    ``overrides``: dotted keys to values (``None`` values are skipped); the key
    ``"stages"`` replaces the stage chain.
    """
    out = dataclasses.replace(recipe)
    changes: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        if dotted == "stages":
            out.stages = _check_stages(list(value), out.source)
            continue
        section, _, key = dotted.partition(".")
        if section not in SECTIONS:
            raise RecipeError(
                f"override {dotted!r}: unknown section {section!r}; valid sections: {', '.join(SECTIONS)}"
            )
        if key not in SCHEMA[section]:
            raise RecipeError(
                f"override {dotted!r}: unknown key {key!r} in [{section}]; valid keys: {', '.join(SCHEMA[section])}"
            )
        changes.setdefault(section, {})[key] = value
    for section, values in changes.items():
        setattr(out, _attr(section), dataclasses.replace(out.options(section), **values))
    if "formats" in changes.get("export", {}):
        out.requested_formats = tuple(out.export.formats)
    return out


__all__ = [
    "AUTO_CANDIDATES",
    "HEAD_FORMATS",
    "TASK_CHOICES",
    "AutoOptions",
    "TaskOptions",
    "DistillOptions",
    "ExportOptions",
    "ImportOptions",
    "OptionSpec",
    "PruneOptions",
    "QuantizeOptions",
    "Recipe",
    "RecipeError",
    "SCHEMA",
    "SECTIONS",
    "STAGES",
    "TrainOptions",
    "build_options",
    "builtin_names",
    "cli_flags",
    "describe_rows",
    "from_dict",
    "load",
    "option_specs",
    "with_overrides",
]
