"""Declaring a recipe option: ``option(...)`` on a section dataclass field, its ``Range``, the ``_Section`` base
that checks and coerces every value, and ``OptionSpec`` (one declared key as the schema, the flags and
``convert --describe`` read it).

``--set SECTION.KEY=VALUE`` is parsed here too (:func:`parse_override`, TOML depth checked).

The sections themselves, the derived schema and recipe loading are in :mod:`converters.recipe`.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from converters.errors import RecipeError


# ------------------------------------------------------------------------------------------------
# declaring an option
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Range:
    """An allowed numeric interval; ``None`` leaves a side unbounded. Numbers must also be finite."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    what: str = ""  # e.g. "an ONNX opset": says what the number is in the message

    def contains(self, value: float) -> bool:
        """True when ``value`` is finite and inside the interval."""
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def text(self) -> str:
        """The interval in words: ``strictly between 0 and 1``, ``> 0``, ``between 17 and 21`` ..."""

        def num(x: float) -> str:
            return f"{x:g}"

        if self.low is not None and self.high is not None:
            if self.low_open and self.high_open:
                return f"strictly between {num(self.low)} and {num(self.high)}"
            if not self.low_open and not self.high_open:
                return f"between {num(self.low)} and {num(self.high)}"
            return (
                f"in {'(' if self.low_open else '['}{num(self.low)}, {num(self.high)}{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {num(self.high)}"
        return "any finite number"


def option(
    default: Any,
    help: str,
    *,
    range: Range | None = None,
    choices: Sequence[str] = (),
    flag: str | None = None,
    flag_const: Any = None,
    flag_help: str = "",
    metavar: str | None = None,
) -> Any:
    """Declare one recipe key: its default, help text, range or choices and optional CLI flag.

    ``default``: the value when neither the recipe nor the command line sets it.
    ``help``: one line for ``--help`` and ``--describe``.
    ``range``: allowed numeric interval (numbers must be finite whatever the range).
    ``choices``: allowed strings (for a tuple-typed key: allowed elements).
    ``flag``: a dedicated ``edge-sdk convert`` flag (every key also takes ``--set``).
    ``flag_const``: for a flag taking no value, the value it sets (``--qat``, ``--no-baseline``).
    ``flag_help``: what such a flag does, when ``help`` (which describes the key) reads wrong for it.
    ``metavar``: the flag's value placeholder in ``--help``.
    """
    meta = {
        "help": help,
        "range": range,
        "choices": tuple(choices),
        "flag": flag,
        "flag_const": flag_const,
        "flag_help": flag_help,
        "metavar": metavar,
    }
    return dataclasses.field(default=default, metadata=meta)


def _section_name(cls: type[_Section]) -> str:
    return cls.SECTION


class _Section:
    """Shared behaviour of the option sections: validation on construction, dict view."""

    SECTION: typing.ClassVar[str] = ""
    if typing.TYPE_CHECKING:  # every section is a dataclass: dataclasses.fields/replace accept it
        __dataclass_fields__: typing.ClassVar[dict[str, dataclasses.Field[Any]]]

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _coerce(self.SECTION, f.name, hints[f.name], f.metadata, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        problem = self.cross_check()
        if problem:
            raise RecipeError(problem)

    def cross_check(self) -> str | None:
        """A rule tying two keys together, as an error message (None when it holds)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """The section as JSON-able data (tuples as lists), as recorded in manifests."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in dataclasses.fields(self)
        }


def _coerce(section: str, key: str, expected: Any, meta: Mapping[str, Any], value: Any) -> Any:
    """``value`` converted to the declared type and checked against the declared range/choices."""
    where = f"recipe option {section}.{key}"
    is_tuple = typing.get_origin(expected) is tuple
    base = str if is_tuple else expected
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if is_tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            raise RecipeError(f"{where}: expected a list of strings, got {type(value).__name__} {value!r}")
    elif not isinstance(value, base) or (base is not bool and isinstance(value, bool)):
        rng_text = f" {meta['range'].text()}" if meta.get("range") is not None else ""
        raise RecipeError(f"{where}: expected {base.__name__}{rng_text}, got {type(value).__name__} {value!r}")
    choices = meta.get("choices") or ()
    if choices:
        if is_tuple:
            bad = [v for v in value if v not in choices]
            if bad:
                raise RecipeError(f"{where}: unknown format(s) {bad}; valid: {', '.join(choices)}, got {list(value)!r}")
        elif value not in choices:
            raise RecipeError(f"{where}: must be one of {', '.join(map(repr, choices))}, got {value!r}")
    rng: Range | None = meta.get("range")
    if base in (int, float) and not is_tuple:
        if not math.isfinite(value):
            wanted = f"a finite number {rng.text()}" if rng else "a finite number"
            raise RecipeError(f"{where}: must be {wanted}, got {value!r}")
        if rng is not None and not rng.contains(value):
            what = f"{rng.what} " if rng.what else ""
            raise RecipeError(f"{where}: must be {what}{rng.text()}, got {value!r}")
    return value


POSITIVE = Range(0, None, low_open=True)
NON_NEGATIVE = Range(0, None)
AT_LEAST_ONE = Range(1, None)
UNIT_CLOSED = Range(0, 1)
UNIT_OPEN = Range(0, 1, low_open=True, high_open=True)


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One declared recipe key, as read from its section dataclass."""

    section: str
    key: str
    type: Any
    default: Any
    help: str
    range: Range | None
    choices: tuple[str, ...]
    flag: str | None
    flag_const: Any
    flag_help: str
    metavar: str | None

    @property
    def dotted(self) -> str:
        """``section.key``, as ``--set`` takes it."""
        return f"{self.section}.{self.key}"

    @property
    def type_name(self) -> str:
        """``int``, ``float``, ``bool``, ``str`` or ``list``."""
        return "list" if typing.get_origin(self.type) is tuple else self.type.__name__

    def default_text(self) -> str:
        """The default as a user would type it (lists comma separated, "" for an empty string)."""
        if isinstance(self.default, tuple):
            return ",".join(self.default)
        if isinstance(self.default, bool):
            return str(self.default).lower()
        return str(self.default) if self.default != "" else '""'

    def allowed(self) -> str:
        """The allowed values in words (range, choices, or the type alone)."""
        if self.choices:
            return ("any of " if self.type_name == "list" else "one of ") + ", ".join(self.choices)
        if self.range is not None:
            return self.range.text()
        return {"bool": "true or false", "str": "any string"}.get(self.type_name, "any")


#: The deepest nesting a recipe (or an override value) may have; real recipes use 2.
MAX_TOML_DEPTH = 16


def _check_toml_depth(data: Any, what: str) -> None:
    """Refuse TOML nesting beyond :data:`MAX_TOML_DEPTH` (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_TOML_DEPTH:
            raise RecipeError(
                f"{what} nests deeper than {MAX_TOML_DEPTH} levels; expected a flat recipe (sections of keys)"
            )
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value`` (value in TOML syntax, or a bare string)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise RecipeError(f"override {text!r}: expected SECTION.KEY=VALUE, e.g. prune.target_sparsity=0.8")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise RecipeError(
            f"override {dotted.strip()}: the value nests too deeply; expected at most {MAX_TOML_DEPTH} levels"
        ) from None
    _check_toml_depth({"v": value}, f"override {dotted.strip()}")
    return section, key, value
