"""Tensor specs and the bound inputs/outputs ``predict`` runs through: :class:`TensorSpec`, the ports of a
signature, and everything done per input (binding, shape and dtype checks, quantization, the clip warning).

:class:`edge_sdk.model.Model` owns the interpreter and the fast path; this module holds the per-tensor
state that path reads and the general path's conversions, so both give the same results bit for bit.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, cast

import numpy as np

from edge_sdk import clipcheck, quant
from edge_sdk.errors import InputCountError, InputDtypeError, InputNameError, InputShapeError

_QUANTIZED_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
_FLOAT32 = np.dtype(np.float32)
_SATURATED = 2.0**33  # a quotient beyond this clips whatever the dtype and zero point
#: One-value inputs whose quotient is below this in magnitude round in float64 (see _one_value_exact).
_ROUND_FAST = 2.0**17

#: The clip warning (issue #12): an input's values are checked for clipping on its first calls and
#: then on one call in this many, so the check costs nothing measurable once an app runs steadily.
_CLIP_CHECK_FIRST_CALLS = 100
_CLIP_CHECK_EVERY = 1024
#: Warn when more than this fraction of the values checked so far clipped ...
CLIP_WARN_FRACTION = 0.01
#: ... judged once at least this many values were checked (one call of any image input; the first
#: 100 calls of a one-value input, so one outlier row of a table does not warn by itself).
_CLIP_MIN_VALUES = 100

_NDARRAY = np.ndarray
#: The value of a _Port field that has no meaning for that port (see _Port's annotations); typed Any so
#: each field keeps the type it has wherever it is read.
_UNSET: Any = None
#: How the fast path writes an input: as given (SetTensor), or quantized as one value or as an array.
_PLAIN, _ONE_VALUE, _ARRAY = 0, 1, 2


def _port_mode(port: _Port) -> int:
    if port.quantizer is None or port.view is None:
        return _PLAIN
    return _ONE_VALUE if port.size == 1 else _ARRAY


class _NotFast(Exception):
    """An input the fast path of ``predict`` does not take; the general path handles it."""


@dataclass(frozen=True)
class Quantization:
    """Affine quantization parameters of a tensor (per-tensor, or per-axis with ``axis``)."""

    scale: float | tuple[float, ...]
    zero_point: int | tuple[int, ...]
    axis: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used in manifests."""
        out: dict[str, Any] = {"scale": self.scale, "zero_point": self.zero_point}
        if self.axis is not None:
            out["axis"] = self.axis
        return out


@dataclass(frozen=True)
class TensorSpec:
    """An input or output of a model: name, shape (``None`` marks a dynamic dim), dtype, quantization."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    quantization: Quantization | None = None

    @property
    def dynamic_dims(self) -> tuple[int, ...]:
        """Indices of dimensions whose size is set at run time."""
        return tuple(i for i, d in enumerate(self.shape) if d is None)

    @property
    def is_quantized(self) -> bool:
        """True when the tensor stores integers that stand for real numbers."""
        return self.quantization is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used in manifests and ``--json`` output."""
        return {
            "name": self.name,
            "shape": [(-1 if d is None else d) for d in self.shape],
            "dtype": self.dtype.name,
            "quantization": self.quantization.to_dict() if self.quantization else None,
        }

    def describe(self) -> str:
        """Short human form, e.g. ``input_1 int8[?,28,28,1] q(0.0039, -128)``."""
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        text = f"{self.name} {self.dtype.name}[{dims}]"
        if self.quantization is not None and self.quantization.axis is None:
            text += f" q({self.quantization.scale:.6g}, {self.quantization.zero_point})"
        return text


class _Port:
    """A signature input or output bound to a tensor index, with everything ``predict`` needs precomputed.

    ``view`` (quantized inputs only) is the flat destination the fast path quantizes into: the
    interpreter's own input buffer where :meth:`Model._views_stay_put` shows LiteRT will not move
    it before the next allocation, else ``staging``, a buffer this port owns, handed to
    ``SetTensor`` (a copy) on every call. LiteRT re-plans its arena inside ``Invoke`` for graphs
    with dynamic tensors, and a view taken before that points at freed memory.
    :meth:`Model._refresh_views` renews the views after every allocation.
    """

    __slots__ = (
        "spec",
        "name",
        "index",
        "current_shape",
        "fast_dtype",
        "rank",
        "q_scale",
        "q_zero",
        "q_axis",
        "per_tensor",
        "scale32",
        "zero32",
        "lo",
        "hi",
        "quantizer",
        "scale_f",
        "zero_i",
        "lut",
        "is_string",
        "staging",
        "view",
        "view_u",
        "size",
        "clip_lo",
        "clip_hi",
        "clipped",
        "checked",
        "clip_warned",
        "scratch",
        "scratch_flat",
        "scratch_low",
        "clip_bounds",
        "beyond_data",
        "calls",
        "signature",
        "out_view",
    )

    spec: TensorSpec
    name: str
    index: int
    current_shape: tuple[int, ...]
    fast_dtype: np.dtype
    rank: int
    size: int
    is_string: bool
    q_scale: float | tuple[float, ...] | None
    q_zero: int | tuple[int, ...] | None
    q_axis: int | None
    per_tensor: bool
    # Set for a per-tensor quantized port (the next four) or an integer dtype (lo, hi); _UNSET elsewhere,
    # where nothing reads them: every use is behind per_tensor, the quantizer or the port's fast-path mode.
    scale32: np.float32
    zero32: np.float32
    scale_f: float
    zero_i: int
    lo: int
    hi: int
    quantizer: quant.PerTensorQuantizer | None
    lut: np.ndarray | None
    clip_lo: float | None
    clip_hi: float | None
    # Set with the quantizer (clip_bounds) or by Model._refresh_views for quantized inputs (the buffers).
    clip_bounds: clipcheck.ClipBounds
    staging: np.ndarray | None
    view: np.ndarray | None
    view_u: np.ndarray | None
    scratch: np.ndarray
    scratch_flat: np.ndarray
    scratch_low: np.ndarray
    out_view: np.ndarray | None
    clipped: int
    checked: int
    beyond_data: int
    calls: int
    clip_warned: bool
    signature: Callable[[], Any] | None

    def __init__(self, spec: TensorSpec, index: int, current_shape: tuple[int, ...]):
        self.spec = spec
        self.name = spec.name
        self.index = index
        self.fast_dtype = spec.dtype
        self.rank = len(spec.shape)
        self.is_string = spec.dtype.kind in "SUO"
        q = spec.quantization
        self.q_scale = q.scale if q else None
        self.q_zero = q.zero_point if q else None
        self.q_axis = q.axis if q else None
        # Hot-path constants: per-tensor parameters as float32 scalars, and the dtype's range.
        self.per_tensor = q is not None and q.axis is None
        # per-tensor: a scalar scale and zero point (Quantization holds tuples only with an axis)
        scale = cast(float, q.scale) if q is not None and self.per_tensor else 0.0
        zero = cast(int, q.zero_point) if q is not None and self.per_tensor else 0
        self.scale32 = np.float32(scale) if self.per_tensor else _UNSET
        self.zero32 = np.float32(zero) if self.per_tensor else _UNSET
        if spec.dtype.kind in "iu":
            info = np.iinfo(spec.dtype)
            self.lo, self.hi = int(info.min), int(info.max)
        else:
            self.lo = self.hi = _UNSET
        quantizer = None
        self.lut = None
        if self.per_tensor and spec.dtype in _QUANTIZED_DTYPES:
            quantizer = quant.PerTensorQuantizer(scale, zero, spec.dtype)
            self.lut = quant.dequantize_table(spec.dtype, scale, zero)
        self.quantizer = quantizer if quantizer is not None and quantizer.usable else None
        # One-value inputs are quantized with Python scalar maths (see Model._write_one_value).
        self.scale_f = float(self.scale32) if self.per_tensor else _UNSET
        self.zero_i = int(zero) if self.per_tensor else _UNSET
        # Real values beyond these clip by more than half a step (checked on sampled calls; see _note_clip).
        if self.quantizer is not None:
            self.clip_lo = float(self.quantizer.lo) - 0.5
            self.clip_hi = float(self.quantizer.hi) + 0.5
        else:
            self.clip_lo = self.clip_hi = None
        #: What the clip warning counts (edge_sdk.clipcheck); the calibration range comes with the manifest.
        self.clip_bounds = _UNSET
        self.set_calibration(None)
        self.beyond_data = 0
        self.clipped = 0
        self.checked = 0
        self.calls = 0
        self.clip_warned = False
        self.signature: Callable[[], Any] | None = None  # weak reference to the owning _Signature
        self.staging = self.view = self.view_u = None
        self.scratch = self.scratch_flat = self.scratch_low = _UNSET
        #: 8-bit quantized outputs: a view of the interpreter's output buffer where it stays put (see
        #: Model._views_stay_put), dequantized by one table lookup straight from LiteRT's memory.
        self.out_view = None
        self.set_shape(current_shape)

    def set_calibration(self, calibration: tuple[float, float] | None) -> None:
        """The clip warning's bounds for this input, given the calibration data's (min, max) or None."""
        if self.quantizer is not None:
            self.clip_bounds = clipcheck.clip_bounds(
                float(self.quantizer.lo), float(self.quantizer.hi), self.scale_f, calibration
            )

    def set_shape(self, shape: tuple[int, ...]) -> None:
        """Record the tensor's allocated shape (and its element count)."""
        self.current_shape = tuple(shape)
        size = 1
        for d in self.current_shape:
            size *= d
        self.size = size


class _Signature:
    """One runnable entry point of the model (a TFLite SignatureDef, or the main subgraph)."""

    def __init__(self, key: str, subgraph: int, inputs: list[_Port], outputs: list[_Port]):
        self.key = key
        self.subgraph = subgraph
        self.inputs = inputs
        self.outputs = outputs
        self.by_name = {p.spec.name: p for p in inputs}
        self.n_inputs = len(inputs)
        self.output_names = tuple(p.spec.name for p in outputs)
        self.single_output = len(outputs) == 1
        self.allocated = False
        #: Model._generation when this signature's input views were taken (-1: never).
        self.generation = -1
        self.positioned = [(p, i) for i, p in enumerate(inputs)]
        #: (port, position, mode, one-value constants) per input, set with the buffer views.
        self.mixed: list[tuple[_Port, int, int, Any]] = []
        #: (name, rank, scale, zero, qmin, qmax, buffer, port, staging) per input when every input is one
        #: quantized value (the tabular case), else None; set with the buffer views. ``staging`` is None
        #: when ``buffer`` is the interpreter's own input buffer (nothing to hand over).
        self.one_values: tuple[tuple[Any, ...], ...] | None = None
        self.name_index = [(p.name, p.index) for p in inputs]
        self.position_index = [(i, p.index) for i, p in enumerate(inputs)]
        #: No input is quantized: the fast path is one SetTensor per input.
        self.plain = not any(p.quantizer is not None for p in inputs)
        #: Some one-value input is quantized: calls are counted for its clip check.
        self.counts_calls = any(p.quantizer is not None and p.size == 1 for p in inputs)
        for port in inputs:
            port.signature = weakref.ref(self)
        #: predict calls so far (the values a one-value input has seen, for its clip check).
        self.calls = 0
        #: Whether quantized inputs may be written straight into the interpreter's input buffers (see
        #: Model._views_stay_put); cleared for good if a buffer is ever seen to move.
        self.direct = True
        #: (tensor index, address) of the direct views taken at the last allocation, checked once after the
        #: next Invoke; empty when there is nothing left to check.
        self.view_addresses: tuple[tuple[int, int], ...] = ()


def _quantization_from_details(details: Mapping[str, Any]) -> Quantization | None:
    params = details.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), dtype=np.float32)
    zeros = np.asarray(params.get("zero_points", []), dtype=np.int64)
    if scales.size == 0:
        scale, zero = details.get("quantization", (0.0, 0))
        if not scale:
            return None
        return Quantization(float(scale), int(zero))
    if scales.size == 1:
        return Quantization(float(scales[0]), int(zeros[0]) if zeros.size else 0)
    return Quantization(
        tuple(float(s) for s in scales),
        tuple(int(z) for z in zeros),
        int(params.get("quantized_dimension", 0)),
    )


def _spec_from_details(name: str, details: Mapping[str, Any]) -> TensorSpec:
    signature = details.get("shape_signature")
    shape = details["shape"] if signature is None or len(signature) == 0 else signature
    # A corrupt file can declare a shape_signature that disagrees with the tensor's real shape
    # (found by tools/fuzz_tflite.py: [?,8,8,268435456] over a [1,8,8,1] tensor); callers size
    # their inputs from the spec, so refuse it here rather than advertise an absurd shape.
    if shape is not details["shape"] and (
        len(shape) != len(details["shape"])
        or any(int(s) >= 0 and int(s) != int(d) for s, d in zip(shape, details["shape"], strict=False))
    ):
        raise ValueError(
            f"tensor {name!r} declares shape_signature {[int(d) for d in shape]}, inconsistent with "
            f"its shape {[int(d) for d in details['shape']]}"
        )
    dims = tuple(None if int(d) < 0 else int(d) for d in shape)
    return TensorSpec(name, dims, np.dtype(details["dtype"]), _quantization_from_details(details))


def _unknown_name_message(name: str, sig: _Signature) -> str:
    return f"unknown input name {name!r}; expected one of: {', '.join(sig.by_name)}"


def _as_array(value: Any, port: _Port) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InputDtypeError(f"input {port.spec.name!r}: cannot make an array of the data given ({exc})") from None
    if arr.dtype == object and not port.is_string:
        raise InputDtypeError(
            f"input {port.spec.name!r} expects {port.fast_dtype.name} numbers; got ragged or non-numeric data"
        )
    return arr


def _string_array(arr: np.ndarray, port: _Port) -> np.ndarray:
    """``arr`` for a string input: bytes or str arrays pass (str is encoded as UTF-8 by the interpreter)."""
    kind = arr.dtype.kind
    if kind in "SU":
        return arr
    if kind == "O" and all(isinstance(v, (bytes, str)) for v in arr.flat):
        return arr
    got = (
        f"{arr.dtype} array"
        if kind != "O"
        else "an object array holding "
        + ", ".join(sorted({type(v).__name__ for v in arr.flat if not isinstance(v, (bytes, str))}))
    )
    raise InputDtypeError(f"input {port.spec.name!r} is a string tensor; expected an array of bytes or str, got {got}")


def _dequantize(port: _Port, value: np.ndarray) -> np.ndarray:
    """Float32 values of a quantized output (one table lookup for 8-bit per-tensor outputs)."""
    lut = port.lut
    if lut is not None and value.dtype is port.fast_dtype:
        return lut.take(value)  # int8 indices wrap like Python's: -1 reads entry 255, the same byte
    if value.dtype in _QUANTIZED_DTYPES:
        if port.per_tensor:
            return quant.dequantize_per_tensor(value, port.scale32, port.zero32)
        if port.q_scale is not None and port.q_zero is not None:
            return quant.dequantize(value, port.q_scale, port.q_zero, port.q_axis)
    return value


def _clipped_one_value(port: _Port, q: int, beyond: bool = False) -> int:
    """A one-value input's quantized value ``q`` lies beyond its dtype: maybe count it, maybe warn, clamp it.

    Counted when beyond the clip warning's bounds (edge_sdk.clipcheck), or ``beyond`` (saturated)."""
    bounds = port.clip_bounds
    t = q - port.zero_i
    if beyond or bounds is None or t < bounds.lo or t > bounds.hi:
        port.clipped += 1
        if bounds is not None and (beyond or t < bounds.data_lo or t > bounds.data_hi):
            port.beyond_data += 1
        _maybe_warn_clip(port)
    return port.lo if q <= port.lo else port.hi


def _one_value_exact(t: float) -> int:
    """round(float32(t)), half to even: the quantized value of a one-value input whose quotient ``t``
    (a float64) lies within 0.01 of a half, where rounding it to float32 first may change the result.

    ``float32(t)`` is the float32 quotient of the two float32 operands (53 >= 2*24 + 2 bits: rounding
    the float64 quotient again is innocuous), and ``round()`` is half to even, so this is
    :func:`quant.quantize`'s rounding. Elsewhere ``round(t)`` is the same integer, one step cheaper:
    for ``|t| < 2**17`` float32 rounding moves ``t`` by at most ``|t| * 2**-24 < 2**-7``, so a
    quotient more than 0.49 from a half stays on its side of it.
    """
    return round(float(np.float32(t)))


def _large_one_value(port: _Port, arr: np.ndarray, t: float) -> int:
    """The quotient of a one-value input is NaN, inf or at least 2**17 in magnitude: refuse, round or saturate."""
    if t != t or not math.isfinite(arr.item()):
        quant.quantize(arr, port.scale32, port.zero32, port.fast_dtype, name=port.name)  # raises
    if -_SATURATED < t < _SATURATED:
        q = _one_value_exact(t) + port.zero_i
        if port.lo <= q <= port.hi:
            return q
        return _clipped_one_value(port, q)
    return _clipped_one_value(port, port.hi if t > 0 else port.lo, beyond=True)


def _fast_constants(port: _Port) -> Any:
    """What the fast path of ``predict`` needs per quantized input, as one tuple (None for the others).

    One value: (scale, zero point, qmin, qmax, a memoryview of the port's destination: the
    interpreter's input buffer or the staging buffer); an item assignment through a memoryview costs
    half a numpy item assignment. An array: the scratch buffers, the destination and
    :class:`quant.PerTensorQuantizer`'s constants.
    """
    mode, q, view = _port_mode(port), port.quantizer, port.view
    if q is None or view is None:  # the _PLAIN mode
        return None
    if mode == _ONE_VALUE:
        return port.scale_f, port.zero_i, port.lo, port.hi, memoryview(view)  # type: ignore[arg-type]  # an ndarray is a buffer; numpy declares __buffer__ for 3.12+ only
    if mode == _ARRAY:
        ones = np.ones(port.size, np.float32)
        return (
            port.scratch,
            port.scratch_flat,
            port.scratch_low,
            port.view_u,
            q.scale,
            q.lo,
            q.hi,
            q.magic,
            q.byte_add,
            ones,
        )
    return None


def _single_array_constants(sig: _Signature) -> tuple[Any, ...] | None:
    """The one-array shortcut's constants for ``sig`` (views checked to stay put), or None where it does not apply:
    one input quantized as an array straight into LiteRT's buffer, one output read through a view."""
    if sig.n_inputs != 1 or not sig.single_output or sig.counts_calls:
        return None
    port, _, mode, const = sig.mixed[0]
    out_port = sig.outputs[0]
    if mode != _ARRAY or port.staging is not None or out_port.out_view is None:
        return None
    scratch, flat, low, out, scale, clip_lo, clip_hi, magic, byte_add, ones = const
    return (
        port.current_shape,
        scratch,
        flat,
        low,
        out,
        scale,
        clip_lo,
        clip_hi,
        magic,
        byte_add,
        ones,
        port,
        out_port.lut,
        out_port.out_view,
        sig,
    )


def _judge_one_value_inputs(sig: _Signature) -> None:
    """At the 100th call: warn for one-value inputs that clipped more than the threshold so far."""
    for port in sig.inputs:
        if port.quantizer is not None and port.size == 1 and port.clipped:
            _maybe_warn_clip(port)


def _note_clip(port: _Port, scaled: np.ndarray) -> None:
    """Count the values of ``scaled`` (input / scale) beyond the clip warning's bounds; maybe warn."""
    bounds = port.clip_bounds
    inside = np.count_nonzero((scaled >= bounds.lo) & (scaled <= bounds.hi))
    outside = scaled.size - inside
    if outside and bounds.mode == clipcheck.QUANTIZER_CUT:
        port.beyond_data += scaled.size - int(np.count_nonzero((scaled >= bounds.data_lo) & (scaled <= bounds.data_hi)))
    port.clipped += int(outside)
    port.checked += scaled.size
    _maybe_warn_clip(port)


def _maybe_warn_clip(port: _Port) -> None:
    """Warn once per input when more than CLIP_WARN_FRACTION of its checked values clipped."""
    if port.clip_warned:
        return
    checked = port.checked
    if port.size == 1 and port.quantizer is not None:
        sig = port.signature() if port.signature is not None else None
        checked = max(checked, sig.calls if sig is not None else 0, port.clipped)
    if checked < _CLIP_MIN_VALUES or port.clipped <= CLIP_WARN_FRACTION * checked:
        return
    port.checked = checked
    port.clip_warned = True
    warnings.warn(
        quant.QuantizationClipWarning(
            clipcheck.clip_message(
                port.name, port.fast_dtype.name, port.clip_bounds, port.clipped, port.checked, port.beyond_data
            )
        ),
        stacklevel=_caller_stacklevel(),
    )


#: The files whose frames a clip warning skips to name the app's predict call: this one and edge_sdk/model.py.
_RUNTIME_FILES = frozenset((__file__, os.path.join(os.path.dirname(__file__), "model.py")))


def _caller_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the first frame outside the runtime (the app's predict call)."""
    frame: FrameType | None = sys._getframe(1)  # noqa: SLF001 - the cheap stack walk warnings need
    level = 1
    while frame is not None and frame.f_code.co_filename in _RUNTIME_FILES:
        frame = frame.f_back
        level += 1
    return level


def _check_shape(arr: np.ndarray, port: _Port) -> tuple[int, bool]:
    """Validate ``arr`` against ``port``; return (batch size, whether rows must be looped)."""
    spec = port.spec
    shape = arr.shape
    if shape == port.current_shape:
        return (shape[0] if shape else 1), False
    expected = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
    if len(shape) != port.rank:
        hint = " (add a batch dimension: x[None])" if len(shape) == port.rank - 1 else ""
        raise InputShapeError(
            f"input {spec.name!r} expects rank {port.rank} with shape {expected}; "
            f"got shape {tuple(shape)} of rank {len(shape)}{hint}"
        )
    if port.rank == 0:
        return 1, False
    for axis in range(1, port.rank):
        want = spec.shape[axis]
        if want is not None and shape[axis] != want:
            raise InputShapeError(
                f"input {spec.name!r} expects shape {expected}; got {tuple(shape)} (dimension {axis} is "
                f"{shape[axis]}, expected {want})"
            )
    batch = shape[0]
    if batch == 0:
        raise InputShapeError(
            f"input {spec.name!r} got an empty batch (shape {tuple(shape)}); expected at least one row"
        )
    fixed = spec.shape[0]
    if fixed is None or fixed == batch:
        return batch, False
    if fixed == 1:
        return batch, True
    raise InputShapeError(
        f"input {spec.name!r} has a fixed batch of {fixed} (shape {expected}); got a batch of {batch}"
    )


def bind_inputs(x: Any, sig: _Signature) -> list[np.ndarray]:
    """``x`` (an array, a sequence or a dict by name) as one value per input of ``sig``, in order."""
    ports = sig.inputs
    if type(x) is np.ndarray and len(ports) == 1:  # the common case, before the slower ABC checks
        return [x]
    names = [p.spec.name for p in ports]
    if isinstance(x, Mapping):
        unknown = [k for k in x if k not in sig.by_name]
        if unknown:
            raise InputNameError(_unknown_name_message(unknown[0], sig))
        missing = [n for n in names if n not in x]
        if missing:
            raise InputCountError(
                f"expected {len(names)} input(s) ({', '.join(names)}), got {len(x)}; missing: {', '.join(missing)}"
            )
        return [x[n] for n in names]
    if isinstance(x, (list, tuple)) and (len(ports) > 1 or all(isinstance(a, np.ndarray) for a in x) and len(x) != 0):
        if len(x) != len(ports):
            raise InputCountError(f"expected {len(ports)} input(s) ({', '.join(names)}), got a sequence of {len(x)}")
        return list(x)
    if len(ports) != 1:
        raise InputCountError(
            f"the model has {len(ports)} inputs ({', '.join(names)}); pass a dict by name or a list "
            f"of {len(ports)} arrays, got a single {type(x).__name__}"
        )
    return [x]


def prepare_inputs(arrays: Sequence[Any], sig: _Signature) -> tuple[list[np.ndarray], int, bool]:
    """Each input converted and checked: (arrays, batch size, whether rows must be looped)."""
    prepared = []
    batches = set()
    loop = False
    for port, value in zip(sig.inputs, arrays, strict=False):
        arr = value if isinstance(value, np.ndarray) else _as_array(value, port)
        arr = convert_dtype(arr, port)
        batch, needs_loop = _check_shape(arr, port)
        batches.add(batch)
        loop = loop or needs_loop
        prepared.append(arr)
    if len(batches) > 1:
        raise InputShapeError(
            "all inputs must have the same batch size; got "
            + ", ".join(f"{p.spec.name}: {a.shape[0]}" for p, a in zip(sig.inputs, prepared, strict=False))
        )
    return prepared, batches.pop() if batches else 1, loop


def convert_dtype(arr: np.ndarray, port: _Port) -> np.ndarray:
    """``arr`` in ``port``'s storage dtype: quantized, cast or refused with a clear error."""
    target = port.fast_dtype
    kind = arr.dtype.kind
    name = port.spec.name
    if port.is_string:
        return _string_array(arr, port)
    if arr.dtype == target:
        return arr
    if kind in "bc" and target.kind != "b":  # one rule for every numeric input, float or quantized
        what = (
            f"is quantized {target.name}; expected float data (it is quantized for you) or {target.name} data as stored"
            if port.q_scale is not None and target in _QUANTIZED_DTYPES
            else f"expects {target.name}; expected float or integer data"
        )
        raise InputDtypeError(
            f"input {name!r} {what}, got {arr.dtype}: numeric inputs take real numbers, never bool or "
            "complex (bool data is only for a bool input)"
        )
    if port.q_scale is not None and target in _QUANTIZED_DTYPES:
        if kind in "fiu":
            quantizer = port.quantizer
            if quantizer is not None and arr.size:
                x32 = arr if arr.dtype == _FLOAT32 else arr.astype(np.float32)
                port.calls = calls = port.calls + 1
                scaled = quantizer.scaled(x32, name)
                if not port.clip_warned and (calls <= _CLIP_CHECK_FIRST_CALLS or not calls % _CLIP_CHECK_EVERY):
                    _note_clip(port, scaled)
                out = np.empty(x32.shape, target)
                quantizer.store(
                    scaled,
                    scaled.view(quantizer.unsigned)[:: quantizer.stride],
                    out.reshape(-1).view(quantizer.unsigned),
                )
                return out
            if port.per_tensor:
                return quant.quantize_per_tensor(arr, port.scale32, port.zero32, target, port.lo, port.hi, name)
            zero = cast(int | tuple[int, ...], port.q_zero)  # set whenever q_scale is (one Quantization)
            return quant.quantize(arr, port.q_scale, zero, target, port.q_axis, name=name)
        raise InputDtypeError(
            f"input {name!r} is quantized {target.name}; expected float data (it is quantized for you) "
            f"or {target.name} data as stored, got {arr.dtype}"
        )
    if target.kind == "f":
        if kind in "fiu":
            return arr.astype(target)
    elif target.kind in "iu":
        if kind in "iu":
            if np.can_cast(arr.dtype, target, casting="safe") or arr.size == 0:
                return arr.astype(target)
            info = np.iinfo(target)
            lo, hi = arr.min(), arr.max()
            if lo >= info.min and hi <= info.max:
                return arr.astype(target)
            raise InputDtypeError(
                f"input {name!r} expects {target.name}; got {arr.dtype} values in [{lo}, {hi}], "
                f"outside {target.name}'s range [{info.min}, {info.max}]"
            )
    elif target.kind == "b" and kind == "b":
        return arr.astype(target)
    raise InputDtypeError(f"input {name!r} expects {target.name}; got {arr.dtype}, which cannot be cast safely")
