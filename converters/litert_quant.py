"""Quantize an existing float ``.tflite`` with Google's LiteRT quantizer, without TensorFlow.

    from converters.litert_quant import SCHEMES, available, quantize_tflite
    int8 = quantize_tflite(float_bytes, "int8", {"image": calibration_images})

``litert-quantizer`` (import name ``litert_quantizer``, formerly ai-edge-quantizer)
works on the flatbuffer itself: it needs numpy, scipy, ml_dtypes, absl-py and
ai-edge-litert, not TensorFlow, so this module imports nothing heavier and the
``quantize`` extra (``pip install 'edge-sdk[quantize]'``) is enough to run it.

Schemes (:data:`SCHEMES`) map onto the quantizer's recipe builders: static int8
(``add_static_config`` 8/8, needs calibration), int16 activations with int8
weights (16/8), dynamic-range int8 (``add_dynamic_config``), weight-only int8 and
int4 (``add_weight_only_config``: weights stored small, dequantized to float
before the op) and float16 weights (the ``float_casting`` algorithm). Only the
static schemes change the model's inputs and outputs: by default (``io="int8"``)
they become int8 (int16 for ``int16x8``) with their scales in the file, as the
quantizer writes them and as ``edge_sdk.load(...).predict`` handles; ``io="float32"``
keeps float edges (the quantizer's INPUT/OUTPUT ops are left unquantized, so it
inserts one QUANTIZE after the input and one DEQUANTIZE before the output).

``keep_float`` is a list of regular expressions matched (``re.search``) against
each op's output tensor name, the quantizer's "scope"; a matching op is left
unquantized (``no_quantize``), which is how one keeps a sensitive layer float.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from converters import schemes
from converters.errors import CalibrationError, ConversionError, first_line

EXTRA = "quantize"
PACKAGE = "litert_quantizer"
SIGNATURE = "serving_default"

# the quantizer's schemes and what each does (the one table: converters.schemes)
SCHEMES: dict[str, str] = {name: schemes.SCHEMES[name].help for name in schemes.LITERT_SCHEMES}
IO_TYPES = ("int8", "float32")


def available() -> bool:
    """True when the quantizer package imports (the ``quantize`` extra is installed)."""
    try:
        _import()
    except ImportError:
        return False
    return True


def _import():
    with _quiet():
        from litert_quantizer import qtyping, quantizer
        from litert_quantizer.algorithm_manager import AlgorithmName
    return quantizer, qtyping, AlgorithmName


def require():
    from edge_sdk.console import require_extra

    require_extra(EXTRA, "convert MODEL.tflite")
    try:
        return _import()
    except ImportError as exc:  # installed but broken (a missing dependency): one line naming the extra
        from edge_sdk.errors import MissingExtraError

        raise MissingExtraError(
            f"litert-quantizer is installed but failed to import ({first_line(exc, 200)}); "
            f"reinstall it with: pip install --force-reinstall 'edge-sdk[{EXTRA}]'"
        ) from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the quantizer's absl INFO chatter, its size report, its calibration bar and LiteRT's
    warning about ``experimental_preserve_all_tensors`` (the calibrator needs every tensor)."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        absl_logger.setLevel(level)


def check_scheme(scheme: str) -> str:
    """``scheme`` if it is one of :data:`SCHEMES`, else a :class:`ConversionError` listing them."""
    if scheme not in SCHEMES:
        raise ConversionError(f"quantization scheme: expected one of {', '.join(SCHEMES)}, got {scheme!r}")
    return scheme


def check_keep_float(patterns: Sequence[str]) -> list[str]:
    """The ``keep_float`` regular expressions, each compiled once to refuse a bad one with a clear line."""
    if isinstance(patterns, str):
        patterns = [patterns]
    out = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ConversionError(f"keep_float: expected non-empty regular expressions, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConversionError(f"keep_float: {pattern!r} is not a valid regular expression ({exc})") from None
        out.append(pattern)
    return out


def _recipe(quantizer_module, qtyping, algorithms, scheme: str, keep_float: Sequence[str], io_type: str):
    """The quantizer's ``RecipeManager`` for ``scheme`` (its ``get_quantization_recipe()`` is the recipe).

    Weights: symmetric (zero point 0) per-channel for the integer schemes, the quantizer's default and what
    LiteRT's int8 kernels take; biases of CONV/FC become int32 from those scales.
    """
    manager = quantizer_module.recipe_manager.RecipeManager()
    all_ops = qtyping.TFLOperationName.ALL_SUPPORTED
    if scheme == "int8":
        manager.add_static_config(".*", all_ops, activation_num_bits=8, weight_num_bits=8)
    elif scheme == "int16x8":
        manager.add_static_config(".*", all_ops, activation_num_bits=16, weight_num_bits=8)
    elif scheme == "dynamic":
        manager.add_dynamic_config(".*", all_ops, num_bits=8)
    elif scheme == "weight-only-int8":
        manager.add_weight_only_config(".*", all_ops, num_bits=8)
    elif scheme == "weight-only-int4":
        manager.add_weight_only_config(".*", all_ops, num_bits=4)
    elif scheme == "fp16":
        manager.add_weight_only_config(".*", all_ops, num_bits=16, algorithm_key=algorithms.FLOAT_CASTING)
    if schemes.needs_calibration(scheme) and io_type == "float32":
        for edge in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
            manager.add_quantization_config(".*", edge, algorithm_key=algorithms.NO_QUANTIZE)
    for pattern in keep_float:
        # the latest matching entry wins in the quantizer's recipe manager: these come after the scheme's
        manager.add_quantization_config(pattern, all_ops, algorithm_key=algorithms.NO_QUANTIZE)
    return manager


def signature_inputs(float_model: bytes) -> dict[str, tuple]:
    """``{input name: (shape, dtype)}`` of the model's first signature (what calibration feeds)."""
    import edge_sdk

    model = edge_sdk.load(float_model, verify=False)
    return {spec.name: (spec.shape, spec.dtype) for spec in model.inputs}


def _calibration_samples(float_model: bytes, calibration: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """One ``{input: array with a batch of 1}`` per calibration row, checked against the model's inputs."""
    specs = signature_inputs(float_model)
    if set(calibration) != set(specs):
        if len(specs) == 1 and len(calibration) == 1:
            calibration = {next(iter(specs)): next(iter(calibration.values()))}
        else:
            raise CalibrationError(
                f"calibration data: expected arrays for the model's inputs {sorted(specs)}, got {sorted(calibration)}"
            )
    counts = {len(np.asarray(v)) for v in calibration.values()}
    if len(counts) != 1 or not counts.pop():
        raise CalibrationError(
            "calibration data: expected the same number (> 0) of rows for every input, got "
            + ", ".join(f"{k}: {len(np.asarray(v))}" for k, v in calibration.items())
        )
    arrays = {}
    for name, (shape, dtype) in specs.items():
        array = np.asarray(calibration[name])
        want = tuple(shape[1:])
        got = tuple(array.shape[1:])
        if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got, strict=False)):
            raise CalibrationError(f"calibration input {name!r}: expected rows of shape {want}, got {got}")
        arrays[name] = array.astype(dtype, copy=False)
    n = len(next(iter(arrays.values())))
    return [{name: array[i : i + 1] for name, array in arrays.items()} for i in range(n)]


def quantize_tflite(
    float_model: bytes,
    scheme: str,
    calibration: dict[str, np.ndarray] | None = None,
    *,
    keep_float: Sequence[str] = (),
    io: str = "int8",
) -> bytes:
    """Quantize the float ``.tflite`` bytes ``float_model`` with ``scheme`` (a key of :data:`SCHEMES`).

    ``calibration``: ``{input name: array of rows}`` (needed by ``int8`` and ``int16x8``;
    a single-input model may use any key); ``keep_float``: regular expressions of op
    output-tensor names to leave unquantized; ``io``: ``"int8"`` (integer inputs and
    outputs for the static schemes, the quantizer's own choice) or ``"float32"``
    (float edges); the other schemes always keep float edges. Returns the quantized flatbuffer,
    which LiteRT has prepared; an op LiteRT's kernels refuse in the scheme stays float, and a
    :class:`FallbackWarning` says so in one line (:func:`quantize_tflite_report` returns that
    line instead). Every failure is a :class:`converters.errors.ConversionError` (or its
    :class:`CalibrationError`) with one line saying what was expected and what came.
    """
    quantized, report = quantize_tflite_report(float_model, scheme, calibration, keep_float=keep_float, io=io)
    if report["fallback"]:
        warnings.warn(report["fallback"], FallbackWarning, stacklevel=2)
    return quantized


class FallbackWarning(UserWarning):
    """Some ops were kept float because LiteRT's kernels cannot take them in the asked scheme."""


def quantize_tflite_report(
    float_model: bytes,
    scheme: str,
    calibration: dict[str, np.ndarray] | None = None,
    *,
    keep_float: Sequence[str] = (),
    io: str = "int8",
) -> tuple[bytes, dict[str, Any]]:
    """:func:`quantize_tflite`, returning ``(flatbuffer, report)``.

    ``report``: ``{"kept_float": [{"op", "output", "why"}], "fallback": one line or None,
    "signature_added": bool, "unused_tensors_dropped": int}``. Before quantizing, a file with no
    SignatureDef gets one (:mod:`converters.tflite_signature`) and tensors nothing uses are dropped
    (:mod:`converters.tflite_graph`); ops whose bias is computed at run time are kept float (the
    quantizer cannot give them the int32 bias LiteRT's int8 kernels need). The result is prepared
    by LiteRT; an op it refuses ("Node number N (CONV_2D) failed to prepare") is kept float and the
    file quantized again, up to :data:`MAX_FALLBACK_OPS` ops.
    """
    check_scheme(scheme)
    if io not in IO_TYPES:
        raise ConversionError(f"quantize io: expected one of {', '.join(IO_TYPES)}, got {io!r}")
    patterns = check_keep_float(keep_float)
    float_model = bytes(float_model)
    if len(float_model) < 8 or float_model[4:8] != b"TFL3":
        raise ConversionError(
            f"quantize_tflite: expected TFLite flatbuffer bytes (identifier 'TFL3'), got {float_model[4:8]!r}"
        )
    quantizer_module, qtyping, algorithms = require()
    from converters.tflite_graph import drop_unused_tensors, runtime_parameter_ops
    from converters.tflite_signature import ensure_signature
    from edge_sdk.inspect_model import inspect_model

    kind = inspect_model(float_model)["kind"]
    if kind != "float":
        raise ConversionError(
            f"quantize_tflite: expected a float model, got one that is already {kind}; "
            "quantize the float original instead"
        )
    float_model, added = ensure_signature(float_model)  # the quantizer calibrates through a signature key
    float_model, dropped = drop_unused_tensors(float_model)  # its calibrator reads every tensor
    from converters.tflite_graph import op_scopes

    scopes = op_scopes(float_model)
    report: dict[str, Any] = {
        "kept_float": [],
        "fallback": None,
        "signature_added": added is not None,
        "unused_tensors_dropped": dropped,
        "keep_float_unmatched": [p for p in patterns if not any(re.search(p, s) for s in scopes)],
    }
    samples = None
    if schemes.needs_calibration(scheme):
        if not calibration:
            raise CalibrationError(
                f"scheme {scheme!r} needs calibration data: expected {{input name: array}} "
                f"(--calibration FILE.npz), got none; schemes that need no data: "
                f"{', '.join(s for s in SCHEMES if not schemes.needs_calibration(s))}"
            )
        samples = _calibration_samples(float_model, calibration)
    if scheme in INTEGER_KERNEL_SCHEMES:
        for entry in runtime_parameter_ops(float_model):
            report["kept_float"].append({"op": entry["op"], "output": entry["output"], "why": entry["why"]})
    result = None
    while True:
        auto = [_scope_pattern(entry["output"]) for entry in report["kept_float"]]
        try:
            with _quiet():
                manager = _recipe(quantizer_module, qtyping, algorithms, scheme, [*patterns, *auto], io)
                q = quantizer_module.Quantizer(bytearray(float_model), manager.get_quantization_recipe())
                if samples is not None and result is None:
                    result = _calibrate(q, manager, float_model, samples)
                quantized = q.quantize(result, enable_progress_report=False).quantized_model
        except (ConversionError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - the quantizer raises ValueError/RuntimeError/KeyError alike
            raise ConversionError(
                f"LiteRT quantizer ({scheme}) failed: {type(exc).__name__}: {first_line(exc, 400)}"
            ) from None
        if not quantized:
            raise ConversionError(f"LiteRT quantizer ({scheme}) returned no model")
        quantized = bytes(quantized)
        refused = _refused_node(quantized, scheme)
        if refused is None:
            break
        known = {entry["output"] for entry in report["kept_float"]}
        if not refused["output"] or refused["output"] in known or len(report["kept_float"]) >= MAX_FALLBACK_OPS:
            where = f"{refused['op']} {refused['output']!r}" if refused["output"] else "an op"
            raise ConversionError(
                f"LiteRT cannot prepare the {scheme} model the LiteRT quantizer wrote: {where} has {refused['why']}"
                f"{' even with ' + str(len(known)) + ' op(s) kept float' if known else ''}; "
                f"keep it float (--keep-float) or use another --scheme (dynamic, fp16)"
            )
        report["kept_float"].append(refused)
    if report["kept_float"]:
        ops = ", ".join(f"{e['op']} {e['output']!r} ({e['why']})" for e in report["kept_float"][:3])
        more = len(report["kept_float"]) - 3
        report["fallback"] = (
            f"{scheme} with {len(report['kept_float'])} op(s) kept float, which LiteRT's "
            f"{scheme} kernels cannot take: {ops}" + (f" and {more} more" if more > 0 else "")
        )
    return quantized, report


def _calibrate(q: Any, manager: Any, float_model: bytes, samples: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Every tensor's range over all calibration samples: the smallest min and largest max.

    The quantizer's own ``calibrate`` keeps a moving average (smoothing 0.95) of each sample's min and max,
    which ends near 0.9 of the true range on real data: the input of MLPerf's ResNet-8 got [0, 213] for
    raw 0-255 pixels, clipping 23% of the pixels, and top-1 agreement with float fell to 65% against 82%
    for TFLiteConverter on the same crops. TFLiteConverter records the absolute min and max; so does this
    (the quantizer's ``qsv_utils.min_max_update``), which brings the two within a point
    (benchmarks/litert_vs_keras_int8.py).
    """
    signature = _signature_key(float_model)
    threads = min(4, os.cpu_count() or 1)
    if RANGES == "moving-average":
        return q.calibrate({signature: samples}, num_threads=threads)
    try:
        from litert_quantizer import calibrator
        from litert_quantizer.utils import qsv_utils

        calib = calibrator.Calibrator(float_model, num_threads=threads, qsv_update_func=qsv_utils.min_max_update)
    except (ImportError, AttributeError, TypeError):  # a quantizer without these: its own (moving-average) ranges
        return q.calibrate({signature: samples}, num_threads=threads)
    calib.calibrate({signature: samples}, manager)
    return calib.get_model_qsvs()


#: how calibration turns each sample's min/max into a tensor's range: "min-max" (the absolute range, as
#: TFLiteConverter) or "moving-average" (the quantizer's own default; kept for benchmarks/litert_vs_keras_int8.py)
RANGES = "min-max"
# the schemes whose ops run LiteRT's integer kernels (per-channel int8 weights, int32 bias)
INTEGER_KERNEL_SCHEMES = frozenset({"int8", "int16x8"})
#: at most this many ops are kept float, one per round, before the quantized file is refused
MAX_FALLBACK_OPS = 16
_NODE = re.compile(r"Node number (\d+) \(([^)]*)\) failed to prepare")


def _scope_pattern(output: str) -> str:
    """A ``keep_float`` pattern matching exactly the op whose first output tensor is ``output``."""
    return f"(^|;){re.escape(output)};"


def _plain_reason(message: str) -> str:
    """What a LiteRT prepare failure means, in words (never the kernel's source line)."""
    if "zero_point" in message:
        return "int8 weights with a non-zero zero point (LiteRT's int8 kernels need symmetric weights)"
    if "bias" in message:
        return "a bias that is not int32 (LiteRT's int8 kernels need an int32 bias)"
    if "type" in message.lower():
        return "tensor types LiteRT's kernel for it does not accept in this scheme"
    return "quantization parameters LiteRT's kernel for it does not accept"


def _refused_node(quantized: bytes, scheme: str) -> dict[str, str] | None:
    """None when LiteRT prepares ``quantized``, else ``{"op", "output", "why"}`` of the op it refused."""
    import edge_sdk
    from converters.tflite_graph import node_scope
    from edge_sdk.errors import EdgeSdkError

    try:
        with _quiet():
            edge_sdk.load(quantized, verify=False, num_threads=1)
    except EdgeSdkError as exc:
        message = str(exc)
        match = _NODE.search(message)
        op, scope = node_scope(quantized, int(match.group(1))) if match else ("", "")
        return {
            "op": op or (match.group(2) if match else ""),
            "output": scope.split(";")[0] if scope else "",
            "why": _plain_reason(message),
        }
    return None


def _signature_key(float_model: bytes) -> str:
    """The model's first signature key; the quantizer's calibrator feeds data by signature."""
    import edge_sdk

    keys = list(edge_sdk.load(float_model, verify=False).signatures or [])
    if not keys:
        raise ConversionError(
            "the float .tflite has no signature; the LiteRT quantizer calibrates through one "
            "(convert the model with a serving signature)"
        )
    return SIGNATURE if SIGNATURE in keys else keys[0]


__all__ = [
    "SCHEMES",
    "FallbackWarning",
    "available",
    "check_keep_float",
    "check_scheme",
    "quantize_tflite",
    "quantize_tflite_report",
]
