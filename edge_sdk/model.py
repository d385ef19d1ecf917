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
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import clipcheck, limits, quant
from edge_sdk.backends import Backend, CompiledRunner
from edge_sdk.console import first_line as _first_line
from edge_sdk.errors import (
    ArgumentError,
    BackendUnavailableError,
    CorruptModelError,
    InputNameError,
    ModelTooLargeError,
    check_argument,
    kind_of,
)
from edge_sdk.fileio import sha256_bytes
from edge_sdk.flatbuffer import check_root_has_subgraphs
from edge_sdk.limits import DEFAULT_MAX_TENSOR_BYTES
from edge_sdk.tensors import (
    _ARRAY,
    _CLIP_CHECK_EVERY,
    _CLIP_CHECK_FIRST_CALLS,
    _CLIP_MIN_VALUES,
    _FLOAT32,
    _NDARRAY,
    _ONE_VALUE,
    _ROUND_FAST,
    TensorSpec,
    _clipped_one_value,
    _dequantize,
    _fast_constants,
    _judge_one_value_inputs,
    _large_one_value,
    _note_clip,
    _NotFast,
    _one_value_exact,
    _Port,
    _port_mode,
    _Signature,
    _single_array_constants,
    _spec_from_details,
    _unknown_name_message,
    bind_inputs,
    prepare_inputs,
)

#: Internal name of the entry point of a file with no SignatureDef (its subgraph 0); never listed in
#: ``Model.signatures``.
MAIN_SUBGRAPH = "main"

_divide, _add, _isfinite = np.divide, np.add, math.isfinite
_clip = quant._clip_ufunc  # noqa: SLF001 - the raw ufunc: np.clip's wrapper costs microseconds per call here


def _unresolved_custom_op(message: str) -> str | None:
    """The custom op name in LiteRT's "Encountered unresolved custom op: NAME." message, else None."""
    marker = "unresolved custom op:"
    at = message.find(marker)
    if at < 0:
        return None
    name = message[at + len(marker) :].strip().split()[0].rstrip(".") if message[at + len(marker) :].strip() else ""
    return name or "(unnamed)"


class Model:
    """A loaded TFLite model. Create it with :func:`edge_sdk.load`.

    ``predict`` is thread-safe: calls on one ``Model`` are serialized by a lock,
    and each gets exactly the outputs a serial call would. For parallel
    throughput give each thread its own ``Model`` (see :class:`ModelPool`).
    """

    def __init__(
        self,
        data: bytes,
        backend: Backend,
        *,
        path: Path | None = None,
        num_threads: int | None = None,
        manifest: dict[str, Any] | None = None,
        max_tensor_bytes: int | None = DEFAULT_MAX_TENSOR_BYTES,
        accelerator: str | None = None,
    ):
        self._data = data
        self._backend = backend
        self.path = path
        self.num_threads = num_threads
        self.manifest = manifest
        self._max_tensor_bytes = max_tensor_bytes
        self._lock = threading.Lock()
        #: Bumped on every tensor allocation: input views taken before it are stale.
        self._generation = 0
        self._sha256: str | None = manifest.get("sha256") if manifest else None
        self._accelerator = accelerator
        self._compiled: CompiledRunner | None = None
        #: Everything the one-array shortcut of ``predict`` needs (see _single_array_constants), or None.
        self._single: tuple[Any, ...] | None = None
        self._dynamic_cache: dict[int, limits.DynamicTensors] = {}
        self._build_interpreter()

    def _clone(self) -> Model:
        """A new, independent interpreter over the same (already verified) bytes and settings."""
        return Model(
            self._data,
            self._backend,
            path=self.path,
            num_threads=self.num_threads,
            manifest=self.manifest,
            max_tensor_bytes=self._max_tensor_bytes,
            accelerator=self._accelerator,
        )

    # -- construction -------------------------------------------------------------------------
    def _build_interpreter(self) -> None:
        where = str(self.path) if self.path else "model bytes"
        check_root_has_subgraphs(self._data, where)
        try:
            self._interpreter = self._backend.interpreter_class(model_content=self._data, num_threads=self.num_threads)
        except (ValueError, RuntimeError, TypeError, IndexError, OverflowError, SystemError) as exc:
            reason = _first_line(exc)
            if "Didn't find op for builtin opcode" in reason:  # a valid model, newer than this interpreter
                raise CorruptModelError(
                    f"{where} uses an op version {self._backend.name} {self._backend.version} cannot run "
                    f"({reason.split('. ')[0]}); ai-edge-litert runs it: pip install ai-edge-litert"
                ) from None
            raise CorruptModelError(f"{where} could not be loaded by {self._backend.name}: {reason}") from None
        self._wrapper = self._interpreter._interpreter  # noqa: SLF001 - LiteRT's C++ wrapper: subgraph-aware calls
        try:
            self._signatures = self._read_signatures()
            self._apply_calibration()
            limits.check_tensor_sizes(self._wrapper, self._data, self._max_tensor_bytes)
        except (ValueError, RuntimeError, KeyError, IndexError, TypeError, OverflowError) as exc:
            # TypeError: a corrupt signature can name tensor index 2**31, which the wrapper rejects as a type.
            raise CorruptModelError(f"{where} has unreadable tensors or signatures: {_first_line(exc)}") from None
        main = self._main
        self._default = self._signatures[self._default_key()] if self._signatures or main is None else main
        self._allocate(self._default)
        if self._accelerator is not None:
            # The interpreter above still reads and checks the model (specs, sizes, the verifier);
            # the default signature then runs through LiteRT's CompiledModel on the accelerator.
            if self._backend.name != "litert":
                raise BackendUnavailableError(
                    f"accelerator={self._accelerator!r} needs the litert backend (LiteRT's CompiledModel API); "
                    f"got backend {self._backend.name!r}"
                )
            self._compiled = CompiledRunner(
                self._data, self._accelerator, self.num_threads, self.inputs, self._default.key
            )

    def _read_signatures(self) -> dict[str, _Signature]:
        interp = self._interpreter
        # LiteRT has no public call for the tensor indices behind each signature
        has_list = hasattr(interp, "_get_full_signature_list")
        full = interp._get_full_signature_list() if has_list else {}  # noqa: SLF001 - see the line above
        signatures: dict[str, _Signature] = {}
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
            self._main: _Signature | None = _Signature(MAIN_SUBGRAPH, 0, inputs, outputs)
        else:
            self._main = None
        return signatures

    def _port(self, name: str, index: int, subgraph: int) -> _Port:
        details = self._interpreter._get_tensor_details(index, subgraph)  # noqa: SLF001 - per-subgraph details: no public call
        spec = _spec_from_details(name, details)
        return _Port(spec, int(index), tuple(int(d) for d in details["shape"]))

    def _apply_calibration(self) -> None:
        """Give each quantized input the calibration range its manifest records (for the clip warning)."""
        calibration = (self.manifest or {}).get("calibration") if isinstance(self.manifest, dict) else None
        if calibration:
            self.set_calibration(calibration)

    def set_calibration(self, calibration: dict[str, Any] | None) -> None:
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

    def _allocate(self, sig: _Signature) -> None:
        self._generation += 1
        self._single = None
        try:
            self._wrapper.AllocateTensors(sig.subgraph)
        except (ValueError, RuntimeError) as exc:
            custom = _unresolved_custom_op(str(exc))
            if custom:  # e.g. MediaPipe's face_landmark_with_attention (Landmarks2TransformMatrix, ...)
                raise CorruptModelError(
                    f"could not allocate tensors for signature {sig.key!r}: expected ops this LiteRT runtime "
                    f"has, got custom op {custom} (registered by the framework that wrote the file, e.g. "
                    "MediaPipe, not by LiteRT); run it in that framework, or use a variant without custom ops"
                ) from None
            raise CorruptModelError(
                f"could not allocate tensors for signature {sig.key!r}: {_first_line(exc)}"
            ) from None
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
    def accelerator(self) -> str | None:
        """The CompiledModel accelerator(s) running the default signature (``"cpu"``, ``"gpu+cpu"``, ...),
        or ``None`` for the interpreter."""
        return self._compiled.accelerator if self._compiled is not None else None

    @property
    def backend_version(self) -> str:
        """Version of the backend package."""
        return self._backend.version

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Inputs of the default signature."""
        return tuple(p.spec for p in self._default.inputs)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Outputs of the default signature."""
        return tuple(p.spec for p in self._default.outputs)

    @property
    def signatures(self) -> dict[str, dict[str, tuple[TensorSpec, ...]]]:
        """Every SignatureDef in the file: ``{key: {"inputs": (...), "outputs": (...)}}``.

        Empty for a file with no SignatureDef (older converters wrote none); ``predict`` then runs
        the main subgraph's inputs and outputs (:attr:`inputs`, :attr:`outputs`).
        """
        return {
            key: {"inputs": tuple(p.spec for p in s.inputs), "outputs": tuple(p.spec for p in s.outputs)}
            for key, s in self._signatures.items()
        }

    @property
    def default_signature(self) -> str | None:
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

    def input_spec(self, name: str, signature: str | None = None) -> TensorSpec:
        """The spec of the input ``name``."""
        check_argument("Model.input_spec", "name", name, "an input name (str)", isinstance(name, str))
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
    def predict(self, x: Any, *, raw: bool = False, signature: str | None = None) -> Any:  # array or dict
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
            (
                shape,
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
                lut,
                out_view,
                sig,
            ) = single
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
        return results[0] if sig.single_output else dict(zip(sig.output_names, results, strict=False))

    def predict_all(self, x: Any, *, raw: bool = False, signature: str | None = None) -> dict[str, np.ndarray]:
        """Like :meth:`predict` but always returns a dict ``{output name: array}``."""
        sig = self._default if signature is None else self._signature(signature)
        return dict(zip(sig.output_names, self._call(sig, x, raw), strict=False))

    def _call(self, sig: _Signature, x: Any, raw: bool) -> list[np.ndarray]:
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
            raise ArgumentError(f"Model.predict: raw must be True or False, got {kind_of(raw)}")
        if self._compiled is not None and sig is self._default:
            return self._call_compiled(sig, x, raw)
        if type(x) is np.ndarray and sig.n_inputs == 1:
            feeds: Any = (x,)
            by_name = False
        elif type(x) is dict and len(x) == sig.n_inputs:
            feeds = x
            by_name = True
        else:
            return self._call_general(sig, bind_inputs(x, sig), raw)
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
                                raise _NotFast  # without building a shape tuple (0.1 us per input)
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
                                        # mode _ARRAY: the port has a quantizer (see _port_mode); no check in the hot loop
                                        port.quantizer.scale_into(arr, scratch, flat, port.name)  # type: ignore[union-attr]
                                    if not port.clip_warned and (
                                        calls <= _CLIP_CHECK_FIRST_CALLS or not calls % _CLIP_CHECK_EVERY
                                    ):
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
                            # a new array: the view is never handed out. out_view is set only beside a lut
                            return [port.lut.take(port.out_view)]  # type: ignore[union-attr]  # (_refresh_views)
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
                    return [
                        _dequantize(port, get_tensor(port.index, subgraph))
                        if port.q_scale is not None
                        else get_tensor(port.index, subgraph)
                        for port in sig.outputs
                    ]
        if by_name:
            feeds = bind_inputs(feeds, sig)
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
            port.scratch_low = port.scratch_flat.view(quantizer.unsigned)[:: quantizer.stride]
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
        one_values = [
            (port.name, port.rank) + const[:4] + (const[4], port, port.staging)
            for port, _, mode, const in sig.mixed
            if mode == _ONE_VALUE
        ]
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
                return False  # view of one crashes LiteRT's tensor())
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
        moved = any(
            wrapper.tensor(wrapper, index, sig.subgraph).ctypes.data != address for index, address in sig.view_addresses
        )
        sig.view_addresses = ()
        if moved:
            sig.direct = False
            self._refresh_views(sig)
        elif sig is self._default and self._compiled is None:
            self._single = _single_array_constants(sig)

    def _call_compiled(self, sig: _Signature, x: Any, raw: bool) -> list[np.ndarray]:
        """The default signature through LiteRT's CompiledModel: same checks and conversions, other engine."""
        prepared, batch, loop = prepare_inputs(bind_inputs(x, sig), sig)
        names = [p.name for p in sig.inputs]
        runner = self._compiled
        assert runner is not None  # _call takes this path only with a CompiledModel
        with self._lock:
            if not loop:
                outputs = runner.run(dict(zip(names, prepared, strict=False)))
                results = [outputs[name] for name in sig.output_names]
            else:
                rows = [
                    runner.run({n: a[i : i + 1] for n, a in zip(names, prepared, strict=False)}) for i in range(batch)
                ]
                results = [np.concatenate([r[name] for r in rows], axis=0) for name in sig.output_names]
        if raw:
            return results
        return [
            _dequantize(port, value) if port.q_scale is not None else value
            for port, value in zip(sig.outputs, results, strict=False)
        ]

    def _call_general(self, sig: _Signature, arrays: Sequence[Any], raw: bool) -> list[np.ndarray]:
        """Any input the fast path does not take: conversion, resizing, row loops and clear errors."""
        prepared, batch, loop = prepare_inputs(arrays, sig)
        with self._lock:
            if not loop:
                results = self._run(sig, prepared)
            else:
                rows = [self._run(sig, [a[i : i + 1] for a in prepared]) for i in range(batch)]
                results = [np.concatenate([r[k] for r in rows], axis=0) for k in range(len(sig.outputs))]
        if raw:
            return results
        return [
            _dequantize(port, value) if port.q_scale is not None else value
            for port, value in zip(sig.outputs, results, strict=False)
        ]

    __call__ = predict

    def reset(self) -> None:
        """Reset the model's state variables (for stateful models) to their initial values.

        The interpreter is rebuilt from the model bytes, which restores every
        kind of state (variable tensors and resource variables alike).
        """
        with self._lock:
            self._build_interpreter()

    def _signature(self, key: str | None) -> _Signature:
        if key is None:
            return self._default
        check_argument("Model", "signature", key, "a signature key (str) or None", isinstance(key, str))
        sig = self._signatures.get(key)
        if sig is None:
            if not self._signatures:
                raise InputNameError(
                    f"unknown signature {key!r}; the model has no SignatureDef (call without signature= to "
                    "run its main subgraph)"
                )
            raise InputNameError(f"unknown signature {key!r}; the model has: {', '.join(self._signatures)}")
        return sig

    def _dynamic_tensors(self, subgraph: int) -> limits.DynamicTensors:
        """``subgraph``'s tensors with a dynamic dimension (read once per subgraph: the bytes never change)."""
        return limits.dynamic_tensors(self._wrapper, subgraph, self._dynamic_cache)

    def _check_resize_fits(self, sig: _Signature, arrays: Sequence[np.ndarray]) -> None:
        """Before a resize: refuse inputs or estimated tensors beyond max_tensor_bytes (see edge_sdk.limits)."""
        limits.check_resize_fits(
            self._wrapper, sig, arrays, self._max_tensor_bytes, self._dynamic_tensors(sig.subgraph)
        )

    def _check_allocated_fits(self, sig: _Signature) -> None:
        """After a resize's allocation: the real sizes of the dynamic tensors (see edge_sdk.limits)."""
        limits.check_allocated_fits(self._wrapper, sig, self._max_tensor_bytes, self._dynamic_tensors(sig.subgraph))

    def _run(self, sig: _Signature, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        wrapper = self._wrapper
        subgraph = sig.subgraph
        if any(arr.shape != port.current_shape for port, arr in zip(sig.inputs, arrays, strict=False)):
            self._check_resize_fits(sig, arrays)
        try:
            resized = False
            for port, arr in zip(sig.inputs, arrays, strict=False):
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
            for port, arr in zip(sig.inputs, arrays, strict=False):
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
