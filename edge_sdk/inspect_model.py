"""Read a .tflite flatbuffer without an interpreter or TensorFlow.

Uses the schema module that ai-edge-litert ships (``schema_py_generated``), so
``edge-sdk inspect`` works on a device with only the light runtime, and on files
no interpreter will load.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from edge_sdk.errors import CorruptModelError, MissingExtraError, ModelNotFoundError, NotTFLiteError
from edge_sdk.fileio import sha256_bytes

# TensorType enum value -> (name, bytes per element); INT4/INT2 are packed, counted by buffer size.
_TENSOR_TYPES = {
    0: ("float32", 4),
    1: ("float16", 2),
    2: ("int32", 4),
    3: ("uint8", 1),
    4: ("int64", 8),
    5: ("string", 1),
    6: ("bool", 1),
    7: ("int16", 2),
    8: ("complex64", 8),
    9: ("int8", 1),
    10: ("float64", 8),
    11: ("complex128", 16),
    12: ("uint64", 8),
    13: ("resource", 0),
    14: ("variant", 0),
    15: ("uint32", 4),
    16: ("uint16", 2),
    17: ("int4", 1),
    18: ("bfloat16", 2),
    19: ("int2", 1),
}
_FLOAT_TYPES = {"float32", "float16", "bfloat16", "float64"}
_INT_ACTIVATION_TYPES = {"int8", "uint8", "int16"}
# Ops that only move data between float and integer domains, or shuffle it.
_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}


def _schema() -> Any:  # ai_edge_litert.schema_py_generated: generated, untyped
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:  # a device with only tflite-runtime (which ships no schema module)
        raise MissingExtraError(
            "edge-sdk inspect reads the model with ai-edge-litert's flatbuffer schema, which is not installed "
            "(tflite-runtime has none): pip install ai-edge-litert"
        ) from None
    return schema_py_generated


def _operator_names(schema: Any) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    try:
        return [v.item() if hasattr(v, "item") else v for v in value]
    except TypeError:
        return []


def _read(model: str | os.PathLike[str] | bytes) -> tuple[bytes, Path | None]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), None
    path = Path(model)
    if not path.is_file():
        raise ModelNotFoundError(f"model file not found: {path} (expected a .tflite file)")
    return path.read_bytes(), path


def inspect_model(model: str | os.PathLike[str] | bytes) -> dict[str, Any]:
    """Describe a .tflite model: operators, tensors, weights, subgraphs, signatures, metadata, kind.

    The result is JSON-ready. ``kind`` is one of ``float``, ``float16-weight``,
    ``weight-only-int8`` / ``weight-only-int4`` (integer weights expanded to float by
    DEQUANTIZE, float maths), ``dynamic-range`` (integer weights fed to float-activation
    ops), ``full-integer`` (every compute op on integer activations; ``integer_activations``
    says int8 or int16), or ``mixed`` (integer ops and float ops side by side, e.g. a
    partly quantized model); ``io`` says whether inputs/outputs are float or integer,
    and ``float_ops`` lists operators that still compute in float.
    """
    data, path = _read(model)
    where = str(path) if path else "model bytes"
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise NotTFLiteError(
            f"{where} is not a TFLite flatbuffer: expected the identifier 'TFL3' at bytes 4..8, got {data[4:8]!r}"
        )
    schema = _schema()
    try:
        root = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # noqa: BLE001 - any decode failure means a corrupt flatbuffer
        raise CorruptModelError(f"{where}: the flatbuffer cannot be decoded ({type(exc).__name__}: {exc})") from None
    try:
        return _describe(root, schema, data, path)
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptModelError(f"{where}: inconsistent flatbuffer ({type(exc).__name__}: {exc})") from None


# inspect kind -> the manifest ``kind`` (edge_sdk.manifest) of a file that is that kind
_MANIFEST_KINDS = {
    "float": "float32",
    "float16-weight": "float16",
    "dynamic-range": "dynamic-range",
    "weight-only-int8": "weight-only-int8",
    "weight-only-int4": "weight-only-int4",
}


def manifest_kind(info: dict[str, Any], intended: str | None = None) -> str:
    """The manifest ``kind`` of a file from what :func:`inspect_model` read in it (``info``).

    A full-integer file is ``int8`` (``int16x8`` with int16 activations); a ``mixed`` file (integer
    ops beside float ones, e.g. int8 with layers kept float) keeps the ``intended`` kind when that is
    an integer one, else ``mixed``. So a file in which nothing was quantized is ``float32`` whatever
    the recipe asked for.
    """
    kind = info.get("kind")
    if kind == "full-integer":
        return "int16x8" if "int16" in info.get("integer_activations", []) else "int8"
    if kind == "mixed":
        return intended if intended in ("int8", "int16x8") else "mixed"
    return _MANIFEST_KINDS.get(kind, str(kind)) if isinstance(kind, str) else str(kind)


def weight_buffer_ranges(data: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` byte offsets of every non-empty weight buffer stored inside a .tflite flatbuffer.

    ``data`` is the model's bytes. Used to damage weights on purpose (fuzzing, integrity tests): bytes
    there pass every flatbuffer verifier, so only a checksum or a signature can catch a change.
    """
    import flatbuffers  # ships with ai-edge-litert, like the schema module

    model = _schema().Model.GetRootAs(data, 0)
    ranges: list[tuple[int, int]] = []
    for i in range(model.BuffersLength()):
        table = model.Buffers(i)._tab  # noqa: SLF001 - flatbuffers' generated classes expose a buffer's table only here
        offset = flatbuffers.number_types.UOffsetTFlags.py_type(table.Offset(4))
        if offset and table.VectorLen(offset):
            start = table.Vector(offset)
            ranges.append((start, start + table.VectorLen(offset)))
    return ranges


def _buffer_size(buffer: Any) -> int:
    if buffer is None:
        return 0
    if getattr(buffer, "offset", 0) and getattr(buffer, "offset", 0) > 1:
        return int(buffer.size)
    data = getattr(buffer, "data", None)
    return 0 if data is None else len(data)


def _kind(
    int_ops: Counter[str],
    has_float_activations: bool,
    has_int_weights: bool,
    has_f16_weights: bool,
    dequantized_weights: set[str],
) -> str:
    """The model's kind from what its ops compute in (see :func:`inspect_model`)."""
    if int_ops and not has_float_activations:
        return "full-integer"
    if int_ops:
        return "mixed"  # some ops on integer kernels, others (kept or fallen back) in float
    if has_int_weights:
        return "dynamic-range"
    if "int4" in dequantized_weights:
        return "weight-only-int4"
    if dequantized_weights & {"int8", "uint8"}:
        return "weight-only-int8"
    if has_f16_weights:
        return "float16-weight"
    return "float"


def _describe(root: Any, schema: Any, data: bytes, path: Path | None) -> dict[str, Any]:
    op_names = _operator_names(schema)
    opcodes = []
    for code in root.operatorCodes or []:
        builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        name = (
            _text(code.customCode)
            if builtin == schema.BuiltinOperator.CUSTOM
            else op_names.get(builtin, f"BUILTIN_{builtin}")
        )
        opcodes.append((name or "CUSTOM", int(code.version or 1)))

    buffers = root.buffers or []
    op_counter: Counter[tuple[str, int]] = Counter()
    weight_bytes: dict[str, int] = defaultdict(int)
    subgraphs = []
    tensors_out = []
    float_ops: Counter[str] = Counter()
    int_ops: Counter[str] = Counter()
    has_int_weights = has_float_activations = False
    dequantized_weights: set[str] = set()
    int_activation_types: set[str] = set()

    for sg_index, sg in enumerate(root.subgraphs or []):
        tensors = sg.tensors or []
        constant = set()
        for t_index, t in enumerate(tensors):
            dtype = _TENSOR_TYPES.get(int(t.type), (f"type{t.type}", 0))[0]
            size = _buffer_size(buffers[t.buffer]) if 0 < t.buffer < len(buffers) else 0
            if size:
                constant.add(t_index)
                weight_bytes[dtype] += size
            q = t.quantization
            quant = None
            if q is not None and _list(q.scale):
                scales = _list(q.scale)
                zeros = _list(q.zeroPoint)
                quant = {
                    "scale": scales[0] if len(scales) == 1 else scales,
                    "zero_point": (zeros[0] if len(zeros) == 1 else zeros) if zeros else 0,
                }
                if len(scales) > 1:
                    quant["axis"] = int(q.quantizedDimension)
            tensors_out.append(
                {
                    "subgraph": sg_index,
                    "index": t_index,
                    "name": _text(t.name),
                    "shape": _list(t.shapeSignature) or _list(t.shape),
                    "dtype": dtype,
                    "quantization": quant,
                    "constant": bool(size),
                    "bytes": size,
                    "variable": bool(t.isVariable),
                }
            )
        for op in sg.operators or []:
            name, version = opcodes[op.opcodeIndex]
            op_counter[(name, version)] += 1
            if name == "DEQUANTIZE":
                # a constant fed to DEQUANTIZE is a weight stored small and expanded to float before
                # the op that uses it (weight-only quantization, float16 weights)
                for idx in _list(op.inputs):
                    if idx in constant and 0 <= idx < len(tensors):
                        dequantized_weights.add(_TENSOR_TYPES.get(int(tensors[idx].type), ("?", 0))[0])
            if name in _BOUNDARY_OPS:
                continue
            activation_types: set[str] = set()
            weight_types: set[str] = set()
            for idx in list(_list(op.inputs)) + list(_list(op.outputs)):
                if idx < 0 or idx >= len(tensors):
                    continue
                dtype = _TENSOR_TYPES.get(int(tensors[idx].type), ("?", 0))[0]
                (weight_types if idx in constant else activation_types).add(dtype)
            if activation_types & _FLOAT_TYPES:
                float_ops[name] += 1
                has_float_activations = True
                if weight_types & {"int8", "uint8", "int4"}:
                    has_int_weights = True
            elif activation_types & _INT_ACTIVATION_TYPES:
                int_ops[name] += 1
                int_activation_types |= activation_types & _INT_ACTIVATION_TYPES
        subgraphs.append(
            {
                "index": sg_index,
                "name": _text(sg.name),
                "tensors": len(tensors),
                "operators": len(sg.operators or []),
                "inputs": _list(sg.inputs),
                "outputs": _list(sg.outputs),
            }
        )

    signatures = []
    for sig in root.signatureDefs or []:
        signatures.append(
            {
                "key": _text(sig.signatureKey),
                "subgraph": int(sig.subgraphIndex),
                "inputs": [_text(m.name) for m in sig.inputs or []],
                "outputs": [_text(m.name) for m in sig.outputs or []],
            }
        )
    metadata = []
    for entry in root.metadata or []:
        buf = buffers[entry.buffer] if 0 <= entry.buffer < len(buffers) else None
        item: dict[str, Any] = {"name": _text(entry.name), "bytes": _buffer_size(buf)}
        raw = getattr(buf, "data", None)
        if raw is not None and item["bytes"] <= 64:
            text = bytes(bytearray(raw)).rstrip(b"\0")
            if text and all(32 <= c < 127 for c in text):
                item["value"] = text.decode("ascii")
        metadata.append(item)

    has_f16_weights = bool(weight_bytes.get("float16")) and any(n == "DEQUANTIZE" for n, _ in op_counter)
    main_tensors = [t for t in tensors_out if t["subgraph"] == 0]
    io_types = set()
    if root.subgraphs:
        sg0 = root.subgraphs[0]
        for idx in _list(sg0.inputs) + _list(sg0.outputs):
            if 0 <= idx < len(main_tensors):
                io_types.add(main_tensors[idx]["dtype"])
    kind = _kind(int_ops, has_float_activations, has_int_weights, has_f16_weights, dequantized_weights)

    return {
        "file": str(path) if path else None,
        "size_bytes": len(data),
        "sha256": sha256_bytes(data),
        "schema_version": int(root.version),
        "description": _text(root.description),
        "kind": kind,
        "io": "float" if io_types & _FLOAT_TYPES else "integer",
        "operators": [
            {"name": name, "version": version, "count": count}
            for (name, version), count in sorted(op_counter.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "float_ops": dict(float_ops),
        "integer_ops": dict(int_ops),
        # int8 / int16 (int16x8) / uint8: the integer types activations flow in, where ops run on integers
        "integer_activations": sorted(int_activation_types),
        "weight_bytes": dict(sorted(weight_bytes.items(), key=lambda kv: -kv[1])),
        "subgraphs": subgraphs,
        "signatures": signatures,
        "metadata": metadata,
        "tensors": tensors_out,
    }
