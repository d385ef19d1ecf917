"""Recipes: a TOML file naming the chain of stages and their options.

    name = "prune-int8"
    stages = ["prune", "quantize"]
    [prune]
    target_sparsity = 0.8
    [quantize]
    mode = "int8"

Built-ins live in ``converters/recipes/*.toml`` (fp16, dynamic, int8,
prune-int8, distill-prune-int8). Every section and key is checked against
:data:`SCHEMA`; an unknown one is an error that lists the valid ones, and
command-line overrides go through the same checks.
"""
from __future__ import annotations

import copy
import dataclasses
import tomllib
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from converters.errors import RecipeError

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
STAGES = ("distill", "prune", "quantize")
TOP_LEVEL_KEYS = ("name", "description", "stages")


def _fraction_open(value: float) -> Optional[str]:
    return None if 0.0 < value < 1.0 else "must be strictly between 0 and 1"


def _fraction_closed(value: float) -> Optional[str]:
    return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"


def _positive(value: float) -> Optional[str]:
    return None if value > 0 else "must be > 0"


def _non_negative(value: float) -> Optional[str]:
    return None if value >= 0 else "must be >= 0"


def _one_of(*choices: str) -> Callable[[Any], Optional[str]]:
    def check(value: Any) -> Optional[str]:
        return None if value in choices else f"must be one of {', '.join(map(repr, choices))}"

    return check


def _formats(value: List[str]) -> Optional[str]:
    valid = ("tflite", "savedmodel", "keras", "onnx")
    bad = [v for v in value if v not in valid]
    return f"unknown format(s) {bad}; valid: {', '.join(valid)}" if bad else None


def _opset(value: int) -> Optional[str]:
    return None if 17 <= value <= 21 else "must be an ONNX opset between 17 and 21"


# section -> key -> (python type, default, validator or None)
SCHEMA: Dict[str, Dict[str, Tuple[type, Any, Optional[Callable[[Any], Optional[str]]]]]] = {
    "train": {  # used when MODEL is a zoo name trained on the fly
        "epochs": (int, 15, _positive),
        "batch_size": (int, 64, _positive),
        "learning_rate": (float, 1e-3, _positive),
        "augment": (bool, True, None),  # images: random shifts each epoch, 1/14 of the side (2 px on mnist, 1 on digits)
    },
    "distill": {
        "student": (str, "cnn-student", None),
        "alpha": (float, 0.1, _fraction_closed),
        "temperature": (float, 4.0, _positive),
        "epochs": (int, 6, _positive),
        "batch_size": (int, 64, _positive),
        "learning_rate": (float, 2e-3, _positive),
        "baseline": (bool, True, None),
        # fresh training views each epoch, for one image input (else skipped with a warning):
        "shift": (int, 0, _non_negative),  # random shifts of up to this many pixels
        "mixup": (float, 0.0, _non_negative),  # Beta(mixup, mixup) pairwise mixing; 0 = off
        # unlabelled inputs the teacher labels for the student: "" (none) or a .npy/.npz path
        "transfer": (str, "", None),
    },
    "prune": {
        "target_sparsity": (float, 0.8, _fraction_open),
        "initial_sparsity": (float, 0.0, _fraction_closed),
        "structured": (str, "none", _one_of("none", "2:4")),
        "epochs": (int, 3, _positive),
        "batch_size": (int, 64, _positive),
        "learning_rate": (float, 5e-4, _positive),
        "frequency": (int, 20, _positive),
        # kernels under this share of the prunable weights stay dense (first conv, classifier)
        "min_share": (float, 0.02, _fraction_closed),
    },
    "quantize": {
        "mode": (str, "int8", _one_of("dynamic", "float16", "int8")),
        "io": (str, "int8", _one_of("int8", "float32")),
        "calibration_samples": (int, 300, _positive),
        "qat": (bool, False, None),
        "qat_epochs": (int, 1, _positive),
        "include_input": (bool, False, None),
    },
    "export": {
        "formats": (list, ["tflite"], _formats),
        "onnx_opset": (int, 17, _opset),
        "onnx_atol": (float, 1e-4, _positive),
        "latency_runs": (int, 20, _non_negative),
    },
}


@dataclasses.dataclass
class Recipe:
    """A validated recipe: the stage chain and every option with defaults filled in."""

    name: str
    stages: List[str]
    options: Dict[str, Dict[str, Any]]
    description: str = ""
    source: str = ""

    def section(self, name: str) -> Dict[str, Any]:
        """The options of section ``name`` (defaults included)."""
        return self.options[name]

    def to_dict(self) -> Dict[str, Any]:
        """The recipe as JSON-able data, as recorded in every manifest."""
        out: Dict[str, Any] = {"name": self.name, "description": self.description, "stages": list(self.stages)}
        for section in SCHEMA:
            if section == "train" or section in self.stages or section == "export":
                out[section] = copy.deepcopy(self.options[section])
        return out


def builtin_names() -> List[str]:
    """Names of the recipes shipped in ``converters/recipes``."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def _coerce(section: str, key: str, value: Any) -> Any:
    expected, _default, check = SCHEMA[section][key]
    where = f"recipe option {section}.{key}"
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if expected is list and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise RecipeError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    if check is not None:
        problem = check(value)
        if problem:
            raise RecipeError(f"{where}: {problem}, got {value!r}")
    return value


def from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Recipe:
    """Validate raw recipe data (as parsed from TOML) into a :class:`Recipe`."""
    valid_top = list(TOP_LEVEL_KEYS) + list(SCHEMA)
    unknown = [k for k in data if k not in valid_top]
    if unknown:
        raise RecipeError(
            f"{source}: unknown recipe key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid_top)}"
        )
    stages = data.get("stages", [])
    if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
        raise RecipeError(f"{source}: 'stages' must be a list of stage names, got {stages!r}")
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise RecipeError(f"{source}: unknown stage(s) {bad}; valid stages: {', '.join(STAGES)}")
    if len(set(stages)) != len(stages):
        raise RecipeError(f"{source}: a stage appears twice in {stages}")
    order = [s for s in STAGES if s in stages]
    if stages != order:
        raise RecipeError(f"{source}: stages must run in the order {', '.join(STAGES)}; got {stages}")
    options: Dict[str, Dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        given = data.get(section, {})
        if not isinstance(given, Mapping):
            raise RecipeError(f"{source}: [{section}] must be a table, got {type(given).__name__}")
        unknown = [k for k in given if k not in keys]
        if unknown:
            raise RecipeError(
                f"{source}: unknown key(s) {', '.join(map(repr, unknown))} in [{section}]; "
                f"valid keys: {', '.join(keys)}"
            )
        options[section] = {k: copy.deepcopy(default) for k, (_t, default, _c) in keys.items()}
        for key, value in given.items():
            options[section][key] = _coerce(section, key, value)
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise RecipeError(f"{source}: 'name' must be a string, got {name!r}")
    return Recipe(name=name, stages=stages, options=options, description=str(data.get("description", "")), source=source)


def load(name_or_path: str) -> Recipe:
    """Load a built-in recipe by name, or a recipe TOML file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        builtin = RECIPE_DIR / f"{name_or_path}.toml"
        if builtin.is_file() and "/" not in str(name_or_path):
            path = builtin
        else:
            raise RecipeError(
                f"recipe {name_or_path!r}: expected a built-in name ({', '.join(builtin_names())}) "
                f"or a path to a .toml file; neither exists"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"recipe {path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"recipe {path}: cannot read it: {exc}") from None
    return from_dict(data, source=str(path))


def parse_override(text: str) -> Tuple[str, str, Any]:
    """Parse ``section.key=value`` (value in TOML syntax, or a bare string)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise RecipeError(f"override {text!r}: expected SECTION.KEY=VALUE, e.g. prune.target_sparsity=0.8")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key, value


def with_overrides(recipe: Recipe, overrides: Mapping[str, Any]) -> Recipe:
    """A copy of ``recipe`` with ``{"section.key": value}`` overrides applied and validated."""
    out = copy.deepcopy(recipe)
    for dotted, value in overrides.items():
        if value is None:
            continue
        if dotted == "stages":
            out = from_dict({**_raw(out), "stages": list(value)}, source=out.source)
            continue
        section, _, key = dotted.partition(".")
        if section not in SCHEMA:
            raise RecipeError(f"override {dotted!r}: unknown section {section!r}; valid sections: {', '.join(SCHEMA)}")
        if key not in SCHEMA[section]:
            raise RecipeError(
                f"override {dotted!r}: unknown key {key!r} in [{section}]; valid keys: {', '.join(SCHEMA[section])}"
            )
        out.options[section][key] = _coerce(section, key, value)
    return out


def _raw(recipe: Recipe) -> Dict[str, Any]:
    data: Dict[str, Any] = {"name": recipe.name, "description": recipe.description, "stages": recipe.stages}
    data.update(copy.deepcopy(recipe.options))
    return data
