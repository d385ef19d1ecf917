"""Every quantization scheme edge-sdk writes, in one table: what the recipe calls it, the manifest ``kind`` of
the file, the artifact name suffix, whether it needs calibration data, and which engine makes it.

Two engines make quantized files: TensorFlow's TFLiteConverter (``quantize.mode``, a Keras or SavedModel
input: :mod:`converters.tflite_convert`) and Google's LiteRT quantizer (``quantize.scheme``, or any float
``.tflite`` input: :mod:`converters.litert_quant`). ``int8`` and ``dynamic`` are the same scheme in both;
the TFLiteConverter's ``float16`` is the LiteRT quantizer's ``fp16``. Stdlib only: the recipe's choices,
``--describe`` and ``--recipe auto``'s candidates are read from here before anything heavy imports.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Scheme:
    """One quantization scheme (see module docs)."""

    name: str  # as a recipe names it (quantize.mode or quantize.scheme)
    manifest_kind: str  # the manifest ``kind`` of the file it makes (edge_sdk.manifest)
    suffix: str  # artifact names end with it: ``int8.tflite``, ``student-pruned-float16.tflite``
    needs_calibration: bool  # needs representative data (--calibration or --dataset)
    converter_mode: str | None  # the TFLiteConverter mode that makes it, if that engine can
    litert: str | None  # the LiteRT quantizer scheme that makes it, if that engine can
    help: str = ""


_TABLE = (
    Scheme("float32", "float32", "float32", False, "float32", None, "plain float32 conversion"),
    Scheme(
        "dynamic",
        "dynamic-range",
        "dynamic",
        False,
        "dynamic",
        "dynamic",
        "dynamic-range int8: int8 weights, activations quantized on the fly; no data needed",
    ),
    Scheme("float16", "float16", "float16", False, "float16", "fp16", "float16 weights; no data needed"),
    Scheme(
        "int8",
        "int8",
        "int8",
        True,
        "int8",
        "int8",
        "static int8: int8 weights and activations, calibrated on your data",
    ),
    Scheme(
        "weight-only-int8",
        "weight-only-int8",
        "weight-only-int8",
        False,
        None,
        "weight-only-int8",
        "int8 weights dequantized to float before each op (float compute); no data needed",
    ),
    Scheme(
        "weight-only-int4",
        "weight-only-int4",
        "weight-only-int4",
        False,
        None,
        "weight-only-int4",
        "int4 weights dequantized to float before each op (float compute); no data needed",
    ),
    Scheme(
        "int16x8",
        "int16x8",
        "int16x8",
        True,
        None,
        "int16x8",
        "int16 activations, int8 weights, calibrated (more precise than int8, slower on x86)",
    ),
    Scheme(
        "fp16",
        "float16",
        "float16",
        False,
        None,
        "fp16",
        "float16 weights dequantized to float before each op; no data needed",
    ),
)
SCHEMES: dict[str, Scheme] = {s.name: s for s in _TABLE}

# the TFLiteConverter's modes (recipe ``quantize.mode``), in the recipe's order
CONVERTER_MODES: tuple[str, ...] = tuple(s.name for s in _TABLE if s.converter_mode is not None)
# the LiteRT quantizer's schemes (recipe ``quantize.scheme``), in the order --describe lists them
LITERT_SCHEMES: tuple[str, ...] = ("int8", "dynamic", "weight-only-int8", "weight-only-int4", "int16x8", "fp16")
# --recipe auto's candidates made by the LiteRT quantizer alone: candidate name -> scheme
AUTO_LITERT_CANDIDATES: dict[str, str] = {
    f"litert-{name}": name for name in ("weight-only-int8", "weight-only-int4", "int16x8")
}


def manifest_kind(name: str) -> str:
    """The manifest ``kind`` of a file made with scheme or mode ``name``."""
    return SCHEMES[name].manifest_kind


def suffix(name: str) -> str:
    """The artifact name suffix for scheme or mode ``name``."""
    return SCHEMES[name].suffix


def needs_calibration(name: str) -> bool:
    """True when scheme or mode ``name`` needs representative data."""
    return SCHEMES[name].needs_calibration


def litert_for_mode(mode: str) -> str:
    """The LiteRT quantizer scheme a ``quantize.mode`` becomes for a ``.tflite`` input."""
    scheme = SCHEMES[mode].litert
    if scheme is None:
        raise KeyError(mode)
    return scheme


assert set(LITERT_SCHEMES) == {s.litert for s in _TABLE if s.litert}, "LITERT_SCHEMES lists every LiteRT scheme"
