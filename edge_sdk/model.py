"""``edge_sdk.load`` and :class:`Model`: a checked, thread-safe wrapper over the TFLite interpreter.

    model = edge_sdk.load("model.tflite", num_threads=2)
    probabilities = model.predict(images)          # float in, float out, even for int8 models

What the wrapper adds to a bare interpreter (``benchmarks/overhead.py`` measures
each case as a ratio to the bare ``set_tensor``/``invoke``/``get_tensor`` call;
docs/benchmarks.md has the figures):

* input checks (names, count, rank, shape, dtype) with errors that say what was
  expected and what came, instead of interpreter tracebacks;
* float <-> int8/uint8 quantization with the tensor's own scale and zero point;
* batches: a resizable batch dimension is resized, a model fixed at batch 1 is
  run row by row;
* thread safety: one lock per model serializes ``predict`` (a TFLite interpreter
  must not be entered twice at once); use one ``Model`` per thread, or
  :class:`ModelPool`, to run in parallel;
* integrity: the model's sha256 is checked against its manifest when one is present;
* a clip warning when float data falls far outside an int8 input's range, string inputs,
  and ``accelerator=`` to run on LiteRT's CompiledModel (cpu, gpu, npu).

The common calls take a fast path that quantizes straight into LiteRT's input
buffers and dequantizes straight from its output buffer where those provably stay
in place until the next allocation (a graph without dynamic tensors; checked at
every allocation and after the next ``invoke``), and elsewhere into buffers the
model owns, handed over with one ``SetTensor`` each; every other call takes the
general path, which converts, resizes, loops rows and explains errors. Both give
the same results, bit for bit.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from edge_sdk import clipcheck, quant
from edge_sdk.backends import Backend, CompiledRunner, get_backend, parse_accelerator
from edge_sdk.console import first_line as _first_line
from edge_sdk.errors import (
    ArgumentError,
    BackendUnavailableError,
    CorruptModelError,
    InputCountError,
    InputDtypeError,
    InputError,
    InputNameError,
    InputShapeError,
    IntegrityError,
    ModelNotFoundError,
    ModelTooLargeError,
    NotTFLiteError,
)
from edge_sdk.fileio import sha256_bytes
from edge_sdk.limits import check_thread_count
from edge_sdk.manifest import check_manifest_matches_model, find_manifest, read_manifest

TFLITE_IDENTIFIER = b"TFL3"
#: Internal name of the entry point of a file with no SignatureDef (its subgraph 0); never listed in
#: ``Model.signatures``.
MAIN_SUBGRAPH = "main"
#: Default cap on any single tensor the model declares (guards against absurd shapes).
DEFAULT_MAX_TENSOR_BYTES = 1 << 30

_QUANTIZED_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
_FLOAT32 = np.dtype(np.float32)
_SATURATED = 2.0**33  # a quotient beyond this clips whatever the dtype and zero point
#: One-value inputs whose quotient is below this in magnitude round in float64 (see _one_value_exact).
_ROUND_FAST = 2.0**17
_divide, _add, _isfinite = np.divide, np.add, math.isfinite
_clip = quant._clip_ufunc

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
#: How the fast path writes an input: as given (SetTensor), or quantized as one value or as an array.
_PLAIN, _ONE_VALUE, _ARRAY = 0, 1, 2


def _port_mode(port: "_Port") -> int:
    if port.quantizer is None or port.view is None:
        return _PLAIN
    return _ONE_VALUE if port.size == 1 else _ARRAY


class _NotFast(Exception):
    """An input the fast path of ``predict`` does not take; the general path handles it."""


@dataclass(frozen=True)
class Quantization:
    """Affine quantization parameters of a tensor (per-tensor, or per-axis with ``axis``)."""

    scale: Union[float, Tuple[float, ...]]
    zero_point: Union[int, Tuple[int, ...]]
    axis: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form used in manifests."""
        out: Dict[str, Any] = {"scale": self.scale, "zero_point": self.zero_point}
        if self.axis is not None:
            out["axis"] = self.axis
        return out


@dataclass(frozen=True)
class TensorSpec:
    """An input or output of a model: name, shape (``None`` marks a dynamic dim), dtype, quantization."""

    name: str
    shape: Tuple[Optional[int], ...]
    dtype: np.dtype
    quantization: Optional[Quantization] = None

    @property
    def dynamic_dims(self) -> Tuple[int, ...]:
        """Indices of dimensions whose size is set at run time."""
        return tuple(i for i, d in enumerate(self.shape) if d is None)

    @property
    def is_quantized(self) -> bool:
        """True when the tensor stores integers that stand for real numbers."""
        return self.quantization is not None

    def to_dict(self) -> Dict[str, Any]:
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

    __slots__ = ("spec", "name", "index", "current_shape", "fast_dtype", "rank", "q_scale", "q_zero", "q_axis",
                 "per_tensor", "scale32", "zero32", "lo", "hi", "quantizer", "scale_f", "zero_i", "lut",
                 "is_string", "staging", "view", "view_u", "size", "clip_lo", "clip_hi", "clipped", "checked",
                 "clip_warned", "scratch", "scratch_flat", "scratch_low", "clip_bounds", "beyond_data",
                 "calls", "signature", "out_view")

    def __init__(self, spec: TensorSpec, index: int, current_shape: Tuple[int, ...]):
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
        self.scale32 = np.float32(q.scale) if self.per_tensor else None
        self.zero32 = np.float32(q.zero_point) if self.per_tensor else None
        if spec.dtype.kind in "iu":
            info = np.iinfo(spec.dtype)
            self.lo, self.hi = int(info.min), int(info.max)
        else:
            self.lo = self.hi = None
        quantizer = None
        self.lut = None
        if self.per_tensor and spec.dtype in _QUANTIZED_DTYPES:
            quantizer = quant.PerTensorQuantizer(q.scale, q.zero_point, spec.dtype)
            self.lut = quant.dequantize_table(spec.dtype, q.scale, q.zero_point)
        self.quantizer = quantizer if quantizer is not None and quantizer.usable else None
        # One-value inputs are quantized with Python scalar maths (see Model._write_one_value).
        self.scale_f = float(self.scale32) if self.per_tensor else None
        self.zero_i = int(q.zero_point) if self.per_tensor else None
        # Real values beyond these clip by more than half a step (checked on sampled calls; see _note_clip).
        if self.quantizer is not None:
            self.clip_lo = float(self.quantizer.lo) - 0.5
            self.clip_hi = float(self.quantizer.hi) + 0.5
        else:
            self.clip_lo = self.clip_hi = None
        #: What the clip warning counts (edge_sdk.clipcheck); the calibration range comes with the manifest.
        self.clip_bounds = None
        self.set_calibration(None)
        self.beyond_data = 0
        self.clipped = 0
        self.checked = 0
        self.calls = 0
        self.clip_warned = False
        self.signature: Optional[Callable[[], Any]] = None  # weak reference to the owning _Signature
        self.staging = self.view = self.view_u = None
        self.scratch = self.scratch_flat = self.scratch_low = None
        #: 8-bit quantized outputs: a view of the interpreter's output buffer where it stays put (see
        #: Model._views_stay_put), dequantized by one table lookup straight from LiteRT's memory.
        self.out_view = None
        self.set_shape(current_shape)

    def set_calibration(self, calibration: Optional[Tuple[float, float]]) -> None:
        """The clip warning's bounds for this input, given the calibration data's (min, max) or None."""
        if self.quantizer is not None:
            self.clip_bounds = clipcheck.clip_bounds(float(self.quantizer.lo), float(self.quantizer.hi),
                                                     self.scale_f, calibration)

    def set_shape(self, shape: Tuple[int, ...]) -> None:
        """Record the tensor's allocated shape (and its element count)."""
        self.current_shape = tuple(shape)
        size = 1
        for d in self.current_shape:
            size *= d
        self.size = size


class _Signature:
    """One runnable entry point of the model (a TFLite SignatureDef, or the main subgraph)."""

    def __init__(self, key: str, subgraph: int, inputs: List[_Port], outputs: List[_Port]):
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
        self.mixed: List[Tuple[_Port, int, int, Any]] = []
        #: (name, rank, scale, zero, qmin, qmax, buffer, port, staging) per input when every input is one
        #: quantized value (the tabular case), else None; set with the buffer views. ``staging`` is None
        #: when ``buffer`` is the interpreter's own input buffer (nothing to hand over).
        self.one_values: Optional[Tuple[Tuple[Any, ...], ...]] = None
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
        self.view_addresses: Tuple[Tuple[int, int], ...] = ()


def _quantization_from_details(details: Mapping[str, Any]) -> Optional[Quantization]:
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
            or any(int(s) >= 0 and int(s) != int(d) for s, d in zip(shape, details["shape"]))):
        raise ValueError(
            f"tensor {name!r} declares shape_signature {[int(d) for d in shape]}, inconsistent with "
            f"its shape {[int(d) for d in details['shape']]}"
        )
    dims = tuple(None if int(d) < 0 else int(d) for d in shape)
    return TensorSpec(name, dims, np.dtype(details["dtype"]), _quantization_from_details(details))


def _describe_bytes(head: bytes) -> str:
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (a Keras .keras file?)"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (a Keras .h5 file?)"
    if head.startswith(b"\x08") and b"onnx" in head[:64].lower():
        return "an ONNX model"
    if head[:1] in (b"{", b"["):
        return "a JSON document"
    return f"bytes {head[:8]!r}"


def _read_model_source(model: Union[str, os.PathLike, bytes, bytearray, memoryview],
                       max_model_bytes: Optional[int]) -> Tuple[bytes, Optional[Path]]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        path = None
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.exists():
            raise ModelNotFoundError(f"model file not found: {path} (expected a .tflite file)")
        if path.is_dir():
            raise NotTFLiteError(
                f"{path} is a directory; expected a .tflite file "
                "(a SavedModel? convert it first: edge-sdk convert DIR --recipe int8 --out OUT)"
            )
        if not path.is_file():  # a device such as /dev/zero would be read without end
            raise NotTFLiteError(f"{path} is not a regular file (a device or a pipe); expected a .tflite file")
        size = path.stat().st_size
        if max_model_bytes is not None and size > max_model_bytes:
            raise ModelTooLargeError(
                f"{path} is {size:,} bytes; the limit (max_model_bytes) is {max_model_bytes:,} bytes"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelNotFoundError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    else:
        raise ArgumentError(
            f"edge_sdk.load: model must be a path or the model's bytes, got {_kind_of(model)}"
        )
    if max_model_bytes is not None and len(data) > max_model_bytes:
        raise ModelTooLargeError(
            f"model is {len(data):,} bytes; the limit (max_model_bytes) is {max_model_bytes:,} bytes"
        )
    where = str(path) if path else "model bytes"
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise NotTFLiteError(
            f"{where} is not a TFLite flatbuffer: expected the file identifier 'TFL3' at bytes 4..8, "
            f"got {_describe_bytes(data[:16])} ({len(data)} bytes)"
        )
    return data, path


def _check_integrity(data: bytes, path: Optional[Path], manifest: Any) -> Optional[Dict[str, Any]]:
    """Return the manifest used (if any) after checking the model's sha256 against it."""
    if manifest is None and path is not None:
        found = find_manifest(path)
        if found is None:
            return None
        manifest = found
    if manifest is None:
        return None
    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    expected = manifest.get("sha256")
    actual = sha256_bytes(data)
    if expected != actual:
        where = path if path else "model bytes"
        raise IntegrityError(
            f"{where} does not match its manifest: expected sha256 {expected}, got {actual}. "
            "The file is corrupt or was altered; pass verify=False only if you know why."
        )
    return manifest


class Model:
    """A loaded TFLite model. Create it with :func:`edge_sdk.load`.

    ``predict`` is thread-safe: calls on one ``Model`` are serialized by a lock,
    and each gets exactly the outputs a serial call would. For parallel
    throughput give each thread its own ``Model`` (see :class:`ModelPool`).
    """

    def __init__(self, data: bytes, backend: Backend, *, path: Optional[Path] = None,
                 num_threads: Optional[int] = None, manifest: Optional[Dict[str, Any]] = None,
                 max_tensor_bytes: Optional[int] = DEFAULT_MAX_TENSOR_BYTES, accelerator: Optional[str] = None):
        self._data = data
        self._backend = backend
        self.path = path
        self.num_threads = num_threads
        self.manifest = manifest
        self._max_tensor_bytes = max_tensor_bytes
        self._lock = threading.Lock()
        #: Bumped on every tensor allocation: input views taken before it are stale.
        self._generation = 0
        self._sha256: Optional[str] = manifest.get("sha256") if manifest else None
        self._accelerator = accelerator
        self._compiled: Optional[CompiledRunner] = None
        #: Everything the one-array shortcut of ``predict`` needs (see _single_array_constants), or None.
        self._single: Optional[Tuple[Any, ...]] = None
        self._build_interpreter()

    def _clone(self) -> "Model":
        """A new, independent interpreter over the same (already verified) bytes and settings."""
        return Model(self._data, self._backend, path=self.path, num_threads=self.num_threads,
                     manifest=self.manifest, max_tensor_bytes=self._max_tensor_bytes,
                     accelerator=self._accelerator)

    # -- construction -------------------------------------------------------------------------
    def _build_interpreter(self) -> None:
        where = str(self.path) if self.path else "model bytes"
        _check_root_has_subgraphs(self._data, where)
        try:
            self._interpreter = self._backend.interpreter_class(
                model_content=self._data, num_threads=self.num_threads
            )
        except (ValueError, RuntimeError, TypeError, IndexError, OverflowError, SystemError) as exc:
            reason = _first_line(exc)
            if "Didn't find op for builtin opcode" in reason:  # a valid model, newer than this interpreter
                raise CorruptModelError(
                    f"{where} uses an op version {self._backend.name} {self._backend.version} cannot run "
                    f"({reason.split('. ')[0]}); ai-edge-litert runs it: pip install ai-edge-litert"
                ) from None
            raise CorruptModelError(f"{where} could not be loaded by {self._backend.name}: {reason}") from None
        self._wrapper = self._interpreter._interpreter  # the C++ wrapper: subgraph-aware calls
        try:
            self._signatures = self._read_signatures()
            self._apply_calibration()
            self._check_tensor_sizes()
        except (ValueError, RuntimeError, KeyError, IndexError, TypeError, OverflowError) as exc:
            # TypeError: a corrupt signature can name tensor index 2**31, which the wrapper rejects as a type.
            raise CorruptModelError(f"{where} has unreadable tensors or signatures: {_first_line(exc)}") from None
        self._default = self._signatures[self._default_key()] if self._signatures else self._main
        self._allocate(self._default)
        if self._accelerator is not None:
            # The interpreter above still reads and checks the model (specs, sizes, the verifier);
            # the default signature then runs through LiteRT's CompiledModel on the accelerator.
            if self._backend.name != "litert":
                raise BackendUnavailableError(
                    f"accelerator={self._accelerator!r} needs the litert backend (LiteRT's CompiledModel API); "
                    f"got backend {self._backend.name!r}"
                )
            self._compiled = CompiledRunner(self._data, self._accelerator, self.num_threads, self.inputs,
                                            self._default.key)

    def _read_signatures(self) -> Dict[str, _Signature]:
        interp = self._interpreter
        full = interp._get_full_signature_list() if hasattr(interp, "_get_full_signature_list") else {}
        signatures: Dict[str, _Signature] = {}
        for key, sig in full.items():
            subgraph = int(self._wrapper.GetSubgraphIndexFromSignature(key))
            inputs = [self._port(name, idx, subgraph) for name, idx in sig["inputs"].items()]
            outputs = [self._port(name, idx, subgraph) for name, idx in sig["outputs"].items()]
            signatures[key] = _Signature(key, subgraph, inputs, outputs)
        if not signatures:
            # No SignatureDef in the file (older converters wrote none): ``predict`` runs the main
            # subgraph's inputs and outputs, but ``signatures`` reports none rather than inventing a key
            # other tools (the LiteRT quantizer) would then look for and not find.
            inputs = [self._port(d["name"], d["index"], 0) for d in interp.get_input_details()]
            outputs = [self._port(d["name"], d["index"], 0) for d in interp.get_output_details()]
            self._main = _Signature(MAIN_SUBGRAPH, 0, inputs, outputs)
        else:
            self._main = None
        return signatures

    def _port(self, name: str, index: int, subgraph: int) -> _Port:
        details = self._interpreter._get_tensor_details(index, subgraph)
        spec = _spec_from_details(name, details)
        return _Port(spec, int(index), tuple(int(d) for d in details["shape"]))

    def _apply_calibration(self) -> None:
        """Give each quantized input the calibration range its manifest records (for the clip warning)."""
        calibration = (self.manifest or {}).get("calibration") if isinstance(self.manifest, dict) else None
        if calibration:
            self.set_calibration(calibration)

    def set_calibration(self, calibration: Optional[Dict[str, Any]]) -> None:
        """The calibration ranges the clip warning judges against: a manifest's ``calibration`` block,
        ``{input name: {"min": m, "max": M, ...}}`` (``load`` takes it from the model's manifest).

        Inputs not named, or with no finite min/max, keep the judgement without a calibration range;
        ``None`` forgets every range given. See :mod:`edge_sdk.clipcheck`.
        """
        for sig in self._signatures.values():
            for port in sig.inputs:
                port.set_calibration(clipcheck.calibration_range(calibration, port.name) if calibration else None)

    def _default_key(self) -> str:
        if "serving_default" in self._signatures:
            return "serving_default"
        return next(iter(self._signatures))

    def _check_tensor_sizes(self) -> None:
        if self._max_tensor_bytes is None:
            return
        wrapper = self._wrapper
        # tflite-runtime 2.14's wrapper has no NumSubgraphs(): count them in the flatbuffer instead.
        count = wrapper.NumSubgraphs() if hasattr(wrapper, "NumSubgraphs") else _subgraph_count(self._data)
        for subgraph in range(int(count)):
            for index in range(int(wrapper.NumTensors(subgraph))):
                try:
                    shape = wrapper.TensorSize(index, subgraph)
                    dtype = wrapper.TensorType(index, subgraph)
                except ValueError:  # tflite-runtime raises "Tensor with no shape found" where LiteRT says None
                    continue
                if shape is None or dtype is None:
                    continue
                try:
                    itemsize = np.dtype(dtype).itemsize
                except TypeError:
                    itemsize = 8
                elements = 1
                for d in shape:
                    elements *= max(int(d), 1)
                nbytes = elements * itemsize
                if nbytes > self._max_tensor_bytes:
                    name = wrapper.TensorName(index, subgraph)
                    raise ModelTooLargeError(
                        f"tensor {name!r} declares shape {list(map(int, shape))} ({nbytes:,} bytes); "
                        f"the limit (max_tensor_bytes) is {self._max_tensor_bytes:,} bytes"
                    )

    def _allocate(self, sig: _Signature) -> None:
        self._generation += 1
        self._single = None
        try:
            self._wrapper.AllocateTensors(sig.subgraph)
        except (ValueError, RuntimeError) as exc:
            raise CorruptModelError(f"could not allocate tensors for signature {sig.key!r}: {_first_line(exc)}") from None
        except MemoryError:  # std::bad_alloc from the arena: the (possibly corrupt) model asks for too much
            raise ModelTooLargeError(
                f"could not allocate tensors for signature {sig.key!r}: the model asks for more memory "
                "than this process can get (std::bad_alloc)"
            ) from None
        sig.allocated = True

    # -- public description --------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """Name of the interpreter backend running this model (``litert``, ``tflite-runtime``, ``tf``)."""
        return self._backend.name

    @property
    def accelerator(self) -> Optional[str]:
        """The CompiledModel accelerator(s) running the default signature (``"cpu"``, ``"gpu+cpu"``, ...),
        or ``None`` for the interpreter."""
        return self._compiled.accelerator if self._compiled is not None else None

    @property
    def backend_version(self) -> str:
        """Version of the backend package."""
        return self._backend.version

    @property
    def inputs(self) -> Tuple[TensorSpec, ...]:
        """Inputs of the default signature."""
        return tuple(p.spec for p in self._default.inputs)

    @property
    def outputs(self) -> Tuple[TensorSpec, ...]:
        """Outputs of the default signature."""
        return tuple(p.spec for p in self._default.outputs)

    @property
    def signatures(self) -> Dict[str, Dict[str, Tuple[TensorSpec, ...]]]:
        """Every SignatureDef in the file: ``{key: {"inputs": (...), "outputs": (...)}}``.

        Empty for a file with no SignatureDef (older converters wrote none); ``predict`` then runs
        the main subgraph's inputs and outputs (:attr:`inputs`, :attr:`outputs`).
        """
        return {
            key: {"inputs": tuple(p.spec for p in s.inputs), "outputs": tuple(p.spec for p in s.outputs)}
            for key, s in self._signatures.items()
        }

    @property
    def default_signature(self) -> Optional[str]:
        """The signature ``predict`` runs when none is named; None when the file has no SignatureDef."""
        return self._default.key if self._signatures else None

    @property
    def sha256(self) -> str:
        """sha256 of the model bytes."""
        if self._sha256 is None:
            self._sha256 = sha256_bytes(self._data)
        return self._sha256

    @property
    def size_bytes(self) -> int:
        """Size of the model file in bytes."""
        return len(self._data)

    @property
    def model_bytes(self) -> bytes:
        """The model file's bytes, as loaded."""
        return self._data

    def input_spec(self, name: str, signature: Optional[str] = None) -> TensorSpec:
        """The spec of the input ``name``."""
        _check_argument("Model.input_spec", "name", name, "an input name (str)", isinstance(name, str))
        sig = self._signature(signature)
        port = sig.by_name.get(name)
        if port is None:
            raise InputNameError(_unknown_name_message(name, sig))
        return port.spec

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.inputs)
        outs = ", ".join(s.describe() for s in self.outputs)
        where = self.path.name if self.path else f"{len(self._data)} bytes"
        return f"<edge_sdk.Model {where} backend={self.backend} inputs=[{ins}] outputs=[{outs}]>"

    # -- running ---------------------------------------------------------------------------------
    def predict(self, x: Any, *, raw: bool = False, signature: Optional[str] = None):
        """Run the model and return its output.

        ``x`` is a numpy array (one-input models), a list of arrays in input
        order, or a dict by input name. Float data for an int8/uint8 input is
        quantized with that tensor's scale and zero point (round, then clip);
        data already in the tensor's integer dtype is passed as stored. When
        more than 1% of an input's values fall outside what its quantization
        can represent (data far outside the calibrated range, e.g. raw pixels
        for a model calibrated on [0, 1]), a :class:`QuantizationClipWarning`
        says so once per input; the results are computed as usual. String
        inputs take arrays of ``bytes`` or ``str``.

        Batches: where the model's batch dimension is dynamic it is resized to
        the batch given; where the model fixes batch 1, rows are run one by
        one in a loop and the outputs stacked.

        Returns one array for a one-output model, else a dict by output name.
        Integer outputs are dequantized to float32 unless ``raw=True``.
        """
        single = self._single
        if single is not None and type(x) is _NDARRAY and raw is False and signature is None and x.dtype is _FLOAT32:
            # The commonest call (one float32 array into an 8-bit input, one 8-bit output, the buffers
            # LiteRT's own): _call's mixed-input loop, inlined with its constants in one tuple.
            (shape, scratch, flat, low, out, scale, clip_lo, clip_hi, magic, byte_add, ones, port, lut, out_view,
             sig) = single
            if x.shape == shape:
                with self._lock:
                    if sig.generation == self._generation and self._single is single:
                        port.calls = calls = port.calls + 1
                        _divide(x, scale, scratch)
                        if not _isfinite(flat.dot(ones)):
                            port.quantizer.scale_into(x, scratch, flat, port.name)  # raises for NaN/inf
                        if not port.clip_warned and (calls <= _CLIP_CHECK_FIRST_CALLS or not calls % _CLIP_CHECK_EVERY):
                            _note_clip(port, scratch)
                        _clip(scratch, clip_lo, clip_hi, scratch)
                        _add(scratch, magic, scratch)
                        if byte_add is None:
                            out[...] = low
                        else:
                            _add(low, byte_add, out)
                        try:
                            self._wrapper.Invoke(sig.subgraph)
                        except (ValueError, RuntimeError) as exc:
                            raise CorruptModelError(
                                f"the interpreter failed to run signature {sig.key!r}: {_first_line(exc)}"
                            ) from None
                        return lut.take(out_view)
        sig = self._default if signature is None else self._signature(signature)
        results = self._call(sig, x, raw)
        return results[0] if sig.single_output else dict(zip(sig.output_names, results))

    def predict_all(self, x: Any, *, raw: bool = False, signature: Optional[str] = None) -> Dict[str, np.ndarray]:
        """Like :meth:`predict` but always returns a dict ``{output name: array}``."""
        sig = self._default if signature is None else self._signature(signature)
        return dict(zip(sig.output_names, self._call(sig, x, raw)))

    def _call(self, sig: _Signature, x: Any, raw: bool) -> List[np.ndarray]:
        """Run ``sig`` on ``x`` and return its outputs in order.

        The fast path gives each input to the interpreter with one ``SetTensor`` (which itself
        refuses a wrong dtype or shape): arrays in the storage dtype as they are; float32 for a
        per-tensor quantized input is quantized into the interpreter's own buffer where it stays
        put (see _views_stay_put), else into the port's staging buffer handed to ``SetTensor``.
        Anything else - other containers, dtypes or shapes (resizing, row loops) and every
        error - goes to :meth:`_call_general`, which rewrites all inputs and says clearly
        what is wrong. The fast path is inline on purpose: each Python call costs ~0.1 us.
        """
        if raw is not False and raw is not True:
            raise ArgumentError(f"Model.predict: raw must be True or False, got {_kind_of(raw)}")
        if self._compiled is not None and sig is self._default:
            return self._call_compiled(sig, x, raw)
        if type(x) is np.ndarray and sig.n_inputs == 1:
            feeds: Any = (x,)
            by_name = False
        elif type(x) is dict and len(x) == sig.n_inputs:
            feeds = x
            by_name = True
        else:
            return self._call_general(sig, self._bind_inputs(x, sig), raw)
        wrapper = self._wrapper
        subgraph = sig.subgraph
        with self._lock:
            if sig.generation == self._generation or self._refresh_views(sig):
                set_tensor = wrapper.SetTensor
                if sig.counts_calls:
                    sig.calls = calls = sig.calls + 1
                    if calls == _CLIP_MIN_VALUES:
                        _judge_one_value_inputs(sig)
                try:
                    if sig.plain:  # nothing to quantize: the tightest loop; SetTensor checks dtype and shape
                        if by_name:
                            for name, index in sig.name_index:
                                set_tensor(index, feeds[name], subgraph)
                        else:
                            for position, index in sig.position_index:
                                set_tensor(index, feeds[position], subgraph)
                    elif by_name and sig.one_values is not None:
                        # Every input is one quantized value (a tabular model): Python scalar maths,
                        # inline (a call costs ~0.1 us, 13 features add up), written by item assignment
                        # through a memoryview of the tensor's buffer. Same result as quant.quantize:
                        # see _one_value_exact for why round() of the float64 quotient is the float32
                        # rounding whenever the quotient is not within 0.01 of a half.
                        for name, rank, scale, zero, lo, hi, buffer, port, staging in sig.one_values:
                            arr = feeds[name]
                            if type(arr) is not _NDARRAY or arr.dtype is not _FLOAT32:
                                set_tensor(port.index, arr, subgraph)  # ValueError on a wrong dtype or shape
                                continue
                            if arr.ndim != rank:  # with item() refusing any size but 1: the shape check,
                                raise _NotFast    # without building a shape tuple (0.1 us per input)
                            t = arr.item() / scale
                            if -_ROUND_FAST < t < _ROUND_FAST:  # False for NaN too
                                q = round(t)
                                if not -0.49 < t - q < 0.49:
                                    q = _one_value_exact(t)
                                q += zero
                                if q < lo or q > hi:
                                    q = _clipped_one_value(port, q)
                            else:
                                q = _large_one_value(port, arr, t)
                            buffer[0] = q
                            if staging is not None:
                                set_tensor(port.index, staging, subgraph)
                    else:
                        for port, position, mode, const in sig.mixed:
                            arr = feeds[port.name] if by_name else feeds[position]
                            if mode and type(arr) is _NDARRAY and arr.dtype is _FLOAT32:
                                if arr.shape != port.current_shape:
                                    raise _NotFast
                                if mode == _ARRAY:
                                    # Quantized into the port's staging buffer in four numpy calls and a dot
                                    # (quant.PerTensorQuantizer, inlined: each Python call costs ~0.1 us).
                                    scratch, flat, low, out, scale, clip_lo, clip_hi, magic, byte_add, ones = const
                                    port.calls = calls = port.calls + 1
                                    _divide(arr, scale, scratch)  # out positional: no keyword parsing
                                    if not _isfinite(flat.dot(ones)):
                                        # NaN/inf make the sum non-finite; a finite sum that overflowed is
                                        # a false alarm, settled by the exact check (which raises).
                                        port.quantizer.scale_into(arr, scratch, flat, port.name)
                                    if not port.clip_warned and (calls <= _CLIP_CHECK_FIRST_CALLS
                                                                 or not calls % _CLIP_CHECK_EVERY):
                                        _note_clip(port, scratch)
                                    _clip(scratch, clip_lo, clip_hi, scratch)
                                    _add(scratch, magic, scratch)
                                    if byte_add is None:
                                        out[...] = low  # np.copyto adds a Python dispatch layer: 0.3 us
                                    else:
                                        _add(low, byte_add, out)
                                    if port.staging is not None:
                                        set_tensor(port.index, port.staging, subgraph)
                                    continue
                                scale, zero, lo, hi, buffer = const
                                t = arr.item() / scale
                                if -_ROUND_FAST < t < _ROUND_FAST:  # False for NaN too
                                    q = round(t)
                                    if not -0.49 < t - q < 0.49:
                                        q = _one_value_exact(t)
                                    q += zero
                                    if q < lo or q > hi:
                                        q = _clipped_one_value(port, q)
                                else:
                                    q = _large_one_value(port, arr, t)
                                buffer[0] = q
                                if port.staging is not None:
                                    set_tensor(port.index, port.staging, subgraph)
                            else:
                                set_tensor(port.index, arr, subgraph)  # ValueError on a wrong dtype or shape
                except (_NotFast, ValueError, TypeError, KeyError):
                    pass  # the general path below converts, resizes or explains
                else:
                    try:
                        wrapper.Invoke(subgraph)
                    except (ValueError, RuntimeError) as exc:
                        raise CorruptModelError(
                            f"the interpreter failed to run signature {sig.key!r}: {_first_line(exc)}"
                        ) from None
                    if sig.view_addresses:
                        self._check_views_stayed(sig)
                    get_tensor = wrapper.GetTensor
                    if sig.single_output:
                        port = sig.outputs[0]
                        if not raw and port.out_view is not None:
                            return [port.lut.take(port.out_view)]  # a new array: the view is never handed out
                        value = get_tensor(port.index, subgraph)
                        if raw or port.q_scale is None:
                            return [value]
                        lut = port.lut
                        if lut is not None and value.dtype is port.fast_dtype:
                            # take() wraps negative int8 indices like Python, so -1 reads entry 255: the
                            # uint8 view of the same byte. Half the cost of taking with a uint8 view.
                            return [lut.take(value)]
                        return [_dequantize(port, value)]
                    if raw:
                        return [get_tensor(port.index, subgraph) for port in sig.outputs]
                    return [_dequantize(port, get_tensor(port.index, subgraph)) if port.q_scale is not None
                            else get_tensor(port.index, subgraph) for port in sig.outputs]
        if by_name:
            feeds = self._bind_inputs(feeds, sig)
        return self._call_general(sig, feeds, raw)

    def _refresh_views(self, sig: _Signature) -> bool:
        """Point the fast path's quantized inputs at ``sig``'s allocated buffers; False if not allocated.

        Where :meth:`_views_stay_put` holds, a quantized input is written straight into the
        interpreter's own input buffer (a numpy view of it, taken now, right after the allocation):
        no ``SetTensor`` per input. Elsewhere each input gets a staging buffer of its own, handed
        over with one ``SetTensor`` (a copy) per call.
        """
        if not sig.allocated:
            return False
        wrapper = self._wrapper
        direct = sig.direct and self._views_stay_put(sig)
        addresses = []
        for port in sig.inputs:
            quantizer = port.quantizer
            if port.is_string or quantizer is None:
                port.staging = port.view = port.view_u = None
                continue
            if direct:
                port.staging = None
                view = wrapper.tensor(wrapper, port.index, sig.subgraph).reshape(-1)
                addresses.append((port.index, view.ctypes.data))
            else:
                port.staging = np.zeros(port.current_shape, port.fast_dtype)
                view = port.staging.reshape(-1)
            port.view = view
            port.view_u = view.view(quantizer.unsigned)
            port.scratch = np.empty(port.current_shape, np.float32)
            port.scratch_flat = port.scratch.reshape(-1)
            port.scratch_low = port.scratch_flat.view(quantizer.unsigned)[::quantizer.stride]
        for port in sig.outputs:
            port.out_view = None
            if direct and port.lut is not None:
                try:
                    port.out_view = wrapper.tensor(wrapper, port.index, sig.subgraph)
                except ValueError:  # no memory before Invoke (the load check rules that out; be safe anyway)
                    continue
                addresses.append((port.index, port.out_view.ctypes.data))
        sig.view_addresses = tuple(addresses)
        sig.mixed = [(port, position, _port_mode(port), _fast_constants(port)) for port, position in sig.positioned]
        one_values = [(port.name, port.rank) + const[:4] + (const[4], port, port.staging)
                      for port, _, mode, const in sig.mixed if mode == _ONE_VALUE]
        sig.one_values = tuple(one_values) if len(one_values) == sig.n_inputs else None
        sig.generation = self._generation
        return True

    def _views_stay_put(self, sig: _Signature) -> bool:
        """Whether ``sig``'s input buffers keep their address from this allocation until the next one.

        LiteRT moves tensors only when it plans memory: ``AllocateTensors`` (after a resize, or
        when a delegate is applied), and inside ``Invoke`` for a graph with a dynamic tensor (an
        op whose output shape is known only at run time, e.g. a Keras 3 Flatten's
        Shape/StridedSlice/Pack/Reshape): allocation stops preparing ops at the first such op,
        and ``Invoke`` prepares the rest and re-plans the arena, which may grow it and so move
        every tensor in it, inputs included. The tensors of the ops left unprepared, and the
        dynamic tensor itself, have no memory yet, so such a graph shows up as a signature input
        or output without data right after allocation (string tensors are always allocated at run
        time, so any string input or output rules views out). Only LiteRT is trusted with views (its
        ``tensor()`` is what this relies on); other backends always take staging buffers.
        """
        if self._backend.name != "litert":
            return False
        wrapper = self._wrapper
        for port in sig.inputs + sig.outputs:
            if port.fast_dtype.kind not in "biufc":  # string tensors live outside the arena (and a numpy
                return False                         # view of one crashes LiteRT's tensor())
            try:
                wrapper.tensor(wrapper, port.index, sig.subgraph)
            except (ValueError, RuntimeError, TypeError):  # "Tensor data is null": planned at run time
                return False
        return True

    def _check_views_stayed(self, sig: _Signature) -> None:
        """After the first Invoke on fresh direct views: if any buffer moved, use staging buffers for good.

        A belt to :meth:`_views_stay_put`'s braces: the first Invoke is where a re-planned arena
        would move, and the views are used again only after this check.
        """
        wrapper = self._wrapper
        moved = any(wrapper.tensor(wrapper, index, sig.subgraph).ctypes.data != address
                    for index, address in sig.view_addresses)
        sig.view_addresses = ()
        if moved:
            sig.direct = False
            self._refresh_views(sig)
        elif sig is self._default and self._compiled is None:
            self._single = _single_array_constants(sig)

    def _call_compiled(self, sig: _Signature, x: Any, raw: bool) -> List[np.ndarray]:
        """The default signature through LiteRT's CompiledModel: same checks and conversions, other engine."""
        prepared, batch, loop = self._prepare(self._bind_inputs(x, sig), sig)
        names = [p.name for p in sig.inputs]
        runner = self._compiled
        with self._lock:
            if not loop:
                outputs = runner.run(dict(zip(names, prepared)))
                results = [outputs[name] for name in sig.output_names]
            else:
                rows = [runner.run({n: a[i:i + 1] for n, a in zip(names, prepared)}) for i in range(batch)]
                results = [np.concatenate([r[name] for r in rows], axis=0) for name in sig.output_names]
        if raw:
            return results
        return [_dequantize(port, value) if port.q_scale is not None else value
                for port, value in zip(sig.outputs, results)]

    def _call_general(self, sig: _Signature, arrays: Sequence[Any], raw: bool) -> List[np.ndarray]:
        """Any input the fast path does not take: conversion, resizing, row loops and clear errors."""
        prepared, batch, loop = self._prepare(arrays, sig)
        with self._lock:
            if not loop:
                results = self._run(sig, prepared)
            else:
                rows = [self._run(sig, [a[i:i + 1] for a in prepared]) for i in range(batch)]
                results = [np.concatenate([r[k] for r in rows], axis=0) for k in range(len(sig.outputs))]
        if raw:
            return results
        return [_dequantize(port, value) if port.q_scale is not None else value
                for port, value in zip(sig.outputs, results)]

    __call__ = predict

    def reset(self) -> None:
        """Reset the model's state variables (for stateful models) to their initial values.

        The interpreter is rebuilt from the model bytes, which restores every
        kind of state (variable tensors and resource variables alike).
        """
        with self._lock:
            self._build_interpreter()

    def _signature(self, key: Optional[str]) -> _Signature:
        if key is None:
            return self._default
        _check_argument("Model", "signature", key, "a signature key (str) or None", isinstance(key, str))
        sig = self._signatures.get(key)
        if sig is None:
            if not self._signatures:
                raise InputNameError(
                    f"unknown signature {key!r}; the model has no SignatureDef (call without signature= to "
                    "run its main subgraph)"
                )
            raise InputNameError(
                f"unknown signature {key!r}; the model has: {', '.join(self._signatures)}"
            )
        return sig

    def _bind_inputs(self, x: Any, sig: _Signature) -> List[np.ndarray]:
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
                    f"expected {len(names)} input(s) ({', '.join(names)}), got {len(x)}; "
                    f"missing: {', '.join(missing)}"
                )
            return [x[n] for n in names]
        if isinstance(x, (list, tuple)) and (len(ports) > 1 or all(isinstance(a, np.ndarray) for a in x) and len(x) != 0):
            if len(x) != len(ports):
                raise InputCountError(
                    f"expected {len(ports)} input(s) ({', '.join(names)}), got a sequence of {len(x)}"
                )
            return list(x)
        if len(ports) != 1:
            raise InputCountError(
                f"the model has {len(ports)} inputs ({', '.join(names)}); pass a dict by name or a list "
                f"of {len(ports)} arrays, got a single {type(x).__name__}"
            )
        return [x]

    def _prepare(self, arrays: Sequence[Any], sig: _Signature) -> Tuple[List[np.ndarray], int, bool]:
        prepared = []
        batches = set()
        loop = False
        for port, value in zip(sig.inputs, arrays):
            arr = value if isinstance(value, np.ndarray) else _as_array(value, port)
            arr = self._convert_dtype(arr, port)
            batch, needs_loop = _check_shape(arr, port)
            batches.add(batch)
            loop = loop or needs_loop
            prepared.append(arr)
        if len(batches) > 1:
            raise InputShapeError(
                "all inputs must have the same batch size; got "
                + ", ".join(f"{p.spec.name}: {a.shape[0]}" for p, a in zip(sig.inputs, prepared))
            )
        return prepared, batches.pop() if batches else 1, loop

    @staticmethod
    def _convert_dtype(arr: np.ndarray, port: _Port) -> np.ndarray:
        target = port.fast_dtype
        kind = arr.dtype.kind
        name = port.spec.name
        if port.is_string:
            return _string_array(arr, port)
        if arr.dtype == target:
            return arr
        if kind in "bc" and target.kind != "b":  # one rule for every numeric input, float or quantized
            what = (f"is quantized {target.name}; expected float data (it is quantized for you) or {target.name} "
                    f"data as stored" if port.q_scale is not None and target in _QUANTIZED_DTYPES
                    else f"expects {target.name}; expected float or integer data")
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
                    quantizer.store(scaled, scaled.view(quantizer.unsigned)[::quantizer.stride],
                                    out.reshape(-1).view(quantizer.unsigned))
                    return out
                if port.per_tensor:
                    return quant.quantize_per_tensor(arr, port.scale32, port.zero32, target, port.lo, port.hi, name)
                return quant.quantize(arr, port.q_scale, port.q_zero, target, port.q_axis, name=name)
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
        raise InputDtypeError(
            f"input {name!r} expects {target.name}; got {arr.dtype}, which cannot be cast safely"
        )

    def _dynamic_tensors(self, subgraph: int) -> List[Tuple[int, Tuple[int, ...], int]]:
        """``(index, shape signature, itemsize)`` of ``subgraph``'s tensors with a dynamic (-1) dimension:
        the ones whose size follows the input shapes (cached: read once per subgraph)."""
        cache = self.__dict__.setdefault("_dynamic_cache", {})
        if subgraph in cache:
            return cache[subgraph]
        wrapper = self._wrapper
        found = []
        for index in range(int(wrapper.NumTensors(subgraph))):
            try:
                # TensorSize first: it raises for a tensor without dims, where tflite-runtime 2.14's
                # TensorSizeSignature dereferences the null dims and crashes (SIGSEGV)
                if wrapper.TensorSize(index, subgraph) is None:
                    continue
                shape = wrapper.TensorSizeSignature(index, subgraph)
                dtype = wrapper.TensorType(index, subgraph)
            except (ValueError, TypeError, AttributeError):
                continue
            if shape is None or dtype is None or not any(int(d) < 0 for d in shape):
                continue
            try:
                itemsize = np.dtype(dtype).itemsize
            except TypeError:
                itemsize = 8
            found.append((index, tuple(int(d) for d in shape), itemsize))
        cache[subgraph] = found
        return found

    def _check_resize_fits(self, sig: _Signature, arrays: Sequence[np.ndarray]) -> None:
        """Refuse, before any allocation, a resize whose inputs or estimated tensors exceed max_tensor_bytes.

        Each input is measured exactly. Every tensor with a dynamic dimension is estimated from its
        shape signature, each -1 at position i taking the size the inputs' dynamic dimension i now has
        (the batch, for the usual model), so a 2,000,000-row batch is refused in microseconds instead of
        allocating gigabytes and running for minutes (issue 26). After allocation the real sizes are
        checked again (:meth:`_check_allocated_fits`).
        """
        limit = self._max_tensor_bytes
        if limit is None:
            return
        for port, arr in zip(sig.inputs, arrays):
            if arr.nbytes > limit:
                raise ModelTooLargeError(
                    f"input {port.name!r} of shape {list(arr.shape)} is {arr.nbytes:,} bytes; the limit "
                    f"(max_tensor_bytes) is {limit:,} bytes: send a smaller batch"
                )
        dims: Dict[int, int] = {}
        dynamic = {index: shape for index, shape, _ in self._dynamic_tensors(sig.subgraph)}
        for port, arr in zip(sig.inputs, arrays):
            for position, declared in enumerate(dynamic.get(port.index, ())):
                if declared < 0 and position < arr.ndim:
                    dims[position] = max(dims.get(position, 1), int(arr.shape[position]))
        if not dims:
            return
        fallback = max(dims.values())
        for index, shape, itemsize in self._dynamic_tensors(sig.subgraph):
            nbytes = itemsize
            for position, d in enumerate(shape):
                nbytes *= d if d >= 0 else dims.get(position, fallback)
            if nbytes > limit:
                name = self._wrapper.TensorName(index, sig.subgraph)
                raise ModelTooLargeError(
                    f"input shapes {[list(a.shape) for a in arrays]} would make tensor {name!r} about "
                    f"{nbytes:,} bytes; the limit (max_tensor_bytes) is {limit:,} bytes: send a smaller batch"
                )

    def _check_allocated_fits(self, sig: _Signature) -> None:
        """After a resize's allocation (reserved, not yet written): the real sizes of the dynamic tensors."""
        limit = self._max_tensor_bytes
        if limit is None:
            return
        for index, _, itemsize in self._dynamic_tensors(sig.subgraph):
            try:
                shape = self._wrapper.TensorSize(index, sig.subgraph)
            except ValueError:
                continue
            nbytes = itemsize
            for d in shape if shape is not None else ():
                nbytes *= max(int(d), 1)
            if nbytes > limit:
                name = self._wrapper.TensorName(index, sig.subgraph)
                raise ModelTooLargeError(
                    f"tensor {name!r} has shape {list(map(int, shape))} ({nbytes:,} bytes) for this batch; "
                    f"the limit (max_tensor_bytes) is {limit:,} bytes: send a smaller batch"
                )

    def _run(self, sig: _Signature, arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
        wrapper = self._wrapper
        subgraph = sig.subgraph
        if any(arr.shape != port.current_shape for port, arr in zip(sig.inputs, arrays)):
            self._check_resize_fits(sig, arrays)
        try:
            resized = False
            for port, arr in zip(sig.inputs, arrays):
                if arr.shape != port.current_shape:
                    wrapper.ResizeInputTensor(port.index, np.array(arr.shape, dtype=np.int32), False, subgraph)
                    port.set_shape(arr.shape)
                    resized = True
            if resized or not sig.allocated:
                self._generation += 1  # input views taken before this are stale
                self._single = None
                wrapper.AllocateTensors(subgraph)
                sig.allocated = True
                if resized:
                    try:
                        self._check_allocated_fits(sig)
                    except ModelTooLargeError:
                        sig.allocated = False  # the next call resizes and allocates again (freeing this)
                        raise
            for port, arr in zip(sig.inputs, arrays):
                wrapper.SetTensor(port.index, arr, subgraph)
            wrapper.Invoke(subgraph)
            return [wrapper.GetTensor(port.index, subgraph) for port in sig.outputs]
        except (ValueError, RuntimeError) as exc:
            sig.allocated = False
            raise CorruptModelError(
                f"the interpreter failed to run signature {sig.key!r}: {_first_line(exc)}"
            ) from None
        except MemoryError:
            sig.allocated = False
            raise ModelTooLargeError(
                f"running signature {sig.key!r} needs more memory than this process can get "
                f"(std::bad_alloc; input shapes {[tuple(a.shape) for a in arrays]})"
            ) from None


def _check_root_has_subgraphs(data: bytes, where: str) -> None:
    """Refuse a flatbuffer whose root Model table lacks the ``subgraphs`` field.

    The flatbuffer verifier accepts such a file and LiteRT 2.3.0's InterpreterBuilder then
    dereferences the missing vector and dies with SIGSEGV (found by tools/fuzz_tflite.py).
    Read by hand, without the schema module, so it costs microseconds.
    """
    n = len(data)
    root = int.from_bytes(data[0:4], "little")
    vtable = root - int.from_bytes(data[root:root + 4], "little", signed=True) if root + 4 <= n else -1
    if not 0 <= vtable <= n - 4:
        raise CorruptModelError(f"{where} is not a valid TFLite flatbuffer: its root table offset points outside the file")
    vtable_size = int.from_bytes(data[vtable:vtable + 2], "little")
    field = vtable + 8  # vtable header (4 bytes) + 2 bytes per field; subgraphs is field 2 of Model
    if vtable_size < 10 or field + 2 > n or int.from_bytes(data[field:field + 2], "little") == 0:
        raise CorruptModelError(
            f"{where} has no subgraphs: expected a TFLite model with at least one subgraph "
            "(the root table lacks the field; a corrupt or truncated file)"
        )


def _subgraph_count(data: bytes) -> int:
    """Length of the root Model table's ``subgraphs`` vector (after :func:`_check_root_has_subgraphs`)."""
    root = int.from_bytes(data[0:4], "little")
    vtable = root - int.from_bytes(data[root:root + 4], "little", signed=True)
    field = root + int.from_bytes(data[vtable + 8:vtable + 10], "little")
    vector = field + int.from_bytes(data[field:field + 4], "little")
    if not 0 <= vector <= len(data) - 4:
        raise CorruptModelError("the model's subgraphs vector points outside the file (a corrupt or truncated file)")
    return int.from_bytes(data[vector:vector + 4], "little")


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
    got = f"{arr.dtype} array" if kind != "O" else "an object array holding " + ", ".join(
        sorted({type(v).__name__ for v in arr.flat if not isinstance(v, (bytes, str))}))
    raise InputDtypeError(f"input {port.spec.name!r} is a string tensor; expected an array of bytes or str, got {got}")


def _dequantize(port: _Port, value: np.ndarray) -> np.ndarray:
    """Float32 values of a quantized output (one table lookup for 8-bit per-tensor outputs)."""
    lut = port.lut
    if lut is not None and value.dtype is port.fast_dtype:
        return lut.take(value)  # int8 indices wrap like Python's: -1 reads entry 255, the same byte
    if value.dtype in _QUANTIZED_DTYPES:
        if port.per_tensor:
            return quant.dequantize_per_tensor(value, port.scale32, port.zero32)
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
    mode = _port_mode(port)
    if mode == _ONE_VALUE:
        return port.scale_f, port.zero_i, port.lo, port.hi, memoryview(port.view)
    if mode == _ARRAY:
        q = port.quantizer
        ones = np.ones(port.size, np.float32)
        return (port.scratch, port.scratch_flat, port.scratch_low, port.view_u, q.scale, q.lo, q.hi, q.magic,
                q.byte_add, ones)
    return None


def _single_array_constants(sig: _Signature) -> Optional[Tuple[Any, ...]]:
    """The one-array shortcut's constants for ``sig`` (views checked to stay put), or None where it does not apply:
    one input quantized as an array straight into LiteRT's buffer, one output read through a view."""
    if sig.n_inputs != 1 or not sig.single_output or sig.counts_calls:
        return None
    port, _, mode, const = sig.mixed[0]
    out_port = sig.outputs[0]
    if mode != _ARRAY or port.staging is not None or out_port.out_view is None:
        return None
    scratch, flat, low, out, scale, clip_lo, clip_hi, magic, byte_add, ones = const
    return (port.current_shape, scratch, flat, low, out, scale, clip_lo, clip_hi, magic, byte_add, ones, port,
            out_port.lut, out_port.out_view, sig)


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
        port.beyond_data += scaled.size - np.count_nonzero((scaled >= bounds.data_lo) & (scaled <= bounds.data_hi))
    port.clipped += outside
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
    warnings.warn(quant.QuantizationClipWarning(clipcheck.clip_message(
        port.name, port.fast_dtype.name, port.clip_bounds, port.clipped, port.checked, port.beyond_data)),
        stacklevel=_caller_stacklevel())


def _caller_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the first frame outside this module (the app's predict call)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
        level += 1
    return level


def _check_shape(arr: np.ndarray, port: _Port) -> Tuple[int, bool]:
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
        raise InputShapeError(f"input {spec.name!r} got an empty batch (shape {tuple(shape)}); expected at least one row")
    fixed = spec.shape[0]
    if fixed is None or fixed == batch:
        return batch, False
    if fixed == 1:
        return batch, True
    raise InputShapeError(
        f"input {spec.name!r} has a fixed batch of {fixed} (shape {expected}); got a batch of {batch}"
    )


def load(
    model: Union[str, os.PathLike, bytes],
    *,
    backend: Optional[str] = None,
    num_threads: Optional[int] = None,
    verify: bool = True,
    manifest: Any = None,
    public_key: Any = None,
    signature: Any = None,
    isolate: Optional[bool] = None,
    max_model_bytes: Optional[int] = None,
    max_tensor_bytes: Optional[int] = DEFAULT_MAX_TENSOR_BYTES,
    accelerator: Optional[str] = None,
) -> Model:
    """Load a TFLite model from a path or bytes and return a :class:`Model`.

    - ``backend``: ``"litert"`` (default when installed), ``"tflite-runtime"``,
      ``"tf"``, or ``None``/``"auto"`` for the first one installed.
    - ``num_threads``: interpreter threads (default 1).
    - ``verify``: check the model's sha256 against its manifest (``manifest=``,
      a dict or path, or ``model.json`` beside ``model.tflite``), and that the
      manifest's inputs, outputs, quantization, size and labels are the
      model's; a mismatch raises :class:`IntegrityError` (a contradiction:
      ``edge_sdk.manifest.ManifestMismatchError``). ``verify=False`` skips both.
    - ``public_key``: an Ed25519 public key (path, PEM or raw bytes); the model
      must carry a valid signature (see ``edge-sdk sign``) or
      :class:`SignatureError` is raised. ``signature`` is the envelope (dict,
      JSON bytes or path) when it is not ``MODEL.sig`` beside the model, e.g.
      for a model downloaded into memory.
    - ``isolate``: first load and run the model in a child process so a file
      that crashes the interpreter costs an exception, not the app. Defaults
      to on for the crash-prone tflite-runtime and tf backends.
    - ``max_model_bytes`` / ``max_tensor_bytes``: refuse oversized files and
      tensors with :class:`ModelTooLargeError`.
    - ``accelerator``: run the default signature through LiteRT's
      CompiledModel API on ``"cpu"``, ``"gpu"`` or ``"npu"``, or a fallback
      chain such as ``"gpu+cpu"``; ``None`` (default) runs the classic
      interpreter. An accelerator this machine or model cannot use raises
      :class:`BackendUnavailableError` saying why. Inputs are checked and
      converted exactly as on the interpreter path.

    The bytes are always handed to the interpreter as content, so LiteRT's
    flatbuffer verifier runs on every load.
    """
    if num_threads is not None:
        check_thread_count(num_threads, "num_threads")  # a huge count crashes the interpreter (SIGSEGV)
    if accelerator is not None:
        _check_argument("edge_sdk.load", "accelerator", accelerator, "a string such as 'gpu+cpu' or None",
                        isinstance(accelerator, str))
        parse_accelerator(accelerator)  # a misspelt name fails before any file is read
    _check_load_arguments(model, backend=backend, verify=verify, manifest=manifest, public_key=public_key,
                          signature=signature, isolate=isolate, max_model_bytes=max_model_bytes,
                          max_tensor_bytes=max_tensor_bytes)
    data, path = _read_model_source(model, max_model_bytes)
    used_manifest = _check_integrity(data, path, manifest) if verify else None
    if public_key is not None:
        from edge_sdk import signing

        signing.verify_model(data, path, used_manifest if used_manifest is not None else manifest, public_key,
                             signature=signature)
    chosen = get_backend(backend)
    if isolate or (isolate is None and chosen.crash_prone):
        from edge_sdk import isolate as isolation

        isolation.check_in_child(data, chosen.name, num_threads)
    loaded = Model(data, chosen, path=path, num_threads=num_threads, manifest=used_manifest,
                   max_tensor_bytes=max_tensor_bytes, accelerator=accelerator)
    if used_manifest is not None:  # the interpreter already read the I/O: comparing costs microseconds
        check_manifest_matches_model(used_manifest, loaded.inputs, loaded.outputs, len(data),
                                     where=str(path) if path else "the model bytes")
    return loaded


def _kind_of(value: Any) -> str:
    """``int 3``, ``str '3'``, ``list``: what a wrong argument was, for the message."""
    name = type(value).__name__
    if isinstance(value, (bool, int, float, str)) and len(repr(value)) <= 40:
        return f"{name} {value!r}"
    return name


def _check_argument(function: str, name: str, value: Any, expected: str, ok: bool) -> None:
    """Raise :class:`ArgumentError` ``FUNCTION: NAME must be EXPECTED, got TYPE VALUE`` unless ``ok``."""
    if not ok:
        raise ArgumentError(f"{function}: {name} must be {expected}, got {_kind_of(value)}")


_PATH_TYPES = (str, os.PathLike)
_BYTES_TYPES = (bytes, bytearray, memoryview)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_load_arguments(model: Any, **kwargs: Any) -> None:
    """The argument types of :func:`load` (``num_threads`` and ``accelerator`` are checked beside it)."""
    fn = "edge_sdk.load"
    _check_argument(fn, "model", model, "a path or the model's bytes", isinstance(model, _PATH_TYPES + _BYTES_TYPES))
    backend = kwargs["backend"]
    _check_argument(fn, "backend", backend, "a backend name such as 'litert' or None",
                    backend is None or isinstance(backend, str))
    _check_argument(fn, "verify", kwargs["verify"], "True or False", isinstance(kwargs["verify"], bool))
    _check_argument(fn, "isolate", kwargs["isolate"], "True, False or None",
                    kwargs["isolate"] is None or isinstance(kwargs["isolate"], bool))
    manifest = kwargs["manifest"]
    _check_argument(fn, "manifest", manifest, "a dict or the path of a manifest file, or None",
                    manifest is None or isinstance(manifest, (dict,) + _PATH_TYPES))
    signature = kwargs["signature"]
    _check_argument(fn, "signature", signature, "a signature envelope (dict, JSON bytes or a path) or None",
                    signature is None or isinstance(signature, (dict,) + _PATH_TYPES + _BYTES_TYPES))
    key = kwargs["public_key"]
    # a key object from the cryptography package is accepted too (edge_sdk.signing checks what it is)
    _check_argument(fn, "public_key", key, "an Ed25519 public key (path, PEM or raw bytes, or a key object) or None",
                    key is None or not isinstance(key, (bool, int, float, complex, list, tuple, dict, set)))
    for name in ("max_model_bytes", "max_tensor_bytes"):
        value = kwargs[name]
        _check_argument(fn, name, value, "a positive integer number of bytes or None",
                        value is None or _is_positive_int(value))


_LOAD_OPTIONS = frozenset(("backend", "num_threads", "verify", "manifest", "public_key", "signature", "isolate",
                           "max_model_bytes", "max_tensor_bytes", "accelerator"))


class ModelPool:
    """A fixed set of independent :class:`Model` instances for parallel ``predict``.

    Each call borrows one interpreter, so up to ``size`` calls run at once
    (``invoke`` releases the GIL). Outputs equal those of a single model.
    """

    def __init__(self, model: Union[str, os.PathLike, bytes], size: int = 2, **load_kwargs: Any):
        import queue

        _check_argument("ModelPool", "size", size, "an integer >= 1", _is_positive_int(size))
        unknown = sorted(set(load_kwargs) - _LOAD_OPTIONS)
        if unknown:
            raise ArgumentError(f"ModelPool: unknown argument {unknown[0]!r}; expected edge_sdk.load's: "
                                f"{', '.join(sorted(_LOAD_OPTIONS))}")
        first = load(model, **load_kwargs)
        # The first load did the checks (integrity, signature, isolation); the others reuse its
        # verified bytes with every setting that shapes the interpreter (threads, limits, accelerator).
        self._models = [first] + [first._clone() for _ in range(size - 1)]
        self._free: "queue.Queue[Model]" = queue.Queue()
        for m in self._models:
            self._free.put(m)

    @property
    def inputs(self) -> Tuple[TensorSpec, ...]:
        """Inputs of the default signature."""
        return self._models[0].inputs

    @property
    def outputs(self) -> Tuple[TensorSpec, ...]:
        """Outputs of the default signature."""
        return self._models[0].outputs

    def predict(self, x: Any, **kwargs: Any):
        """:meth:`Model.predict` on whichever interpreter is free."""
        model = self._free.get()
        try:
            return model.predict(x, **kwargs)
        finally:
            self._free.put(model)
