"""Give a ``.tflite`` with no SignatureDef one, so the LiteRT quantizer and ``edge_sdk`` agree on it.

    from converters.tflite_signature import ensure_signature
    flatbuffer, added = ensure_signature(data)   # added: None when the file already had one

Older converters (every MLPerf Tiny float model, many files on model hubs) wrote no
SignatureDef. ``edge_sdk.load`` still runs such a file (its main subgraph), but the LiteRT
quantizer calibrates through a signature key and fails with ``Invalid signature_key``.
:func:`ensure_signature` adds one SignatureDef, key ``serving_default``, over subgraph 0: its
inputs and outputs are the subgraph's, each named after its tensor (``input_1``,
``Identity``), which are the names ``edge_sdk`` already showed for the file. Nothing else
changes: the operators, tensors and weight buffers are written back as they were, and the
outputs are bit-identical. The edit goes through ai-edge-litert's flatbuffer object API
(``schema_py_generated`` + ``tools.flatbuffer_utils``): no TensorFlow.

The returned record (``{"key", "subgraph", "inputs", "outputs", "reason"}``) goes into the
manifest of the float32 parent as ``signature_added``.
"""

from __future__ import annotations

from typing import Any

from converters.errors import ConversionError, first_line
from converters.tflite_graph import set_builtin_codes

SIGNATURE_KEY = "serving_default"
REASON = "the input file has no SignatureDef; edge-sdk added one over subgraph 0, named after its tensors"


def _object_api():
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    return schema, flatbuffer_utils


def has_signature(tflite: bytes) -> bool:
    """True when the flatbuffer ``tflite`` declares at least one SignatureDef."""
    schema, _ = _object_api()
    return schema.Model.GetRootAs(bytearray(tflite), 0).SignatureDefsLength() > 0


def _names(tensors: list[Any], indices: list[int], fallback: str) -> list[str]:
    """A unique, non-empty name per tensor index: the tensor's own name when it is one."""
    names: list[str] = []
    for position, index in enumerate(indices):
        raw = tensors[index].name
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
        if not name or name in names:
            name = f"{fallback}_{position}"
        names.append(name)
    return names


def add_signature(tflite: bytes, key: str = SIGNATURE_KEY) -> tuple[bytes, dict[str, Any]]:
    """``tflite`` with one SignatureDef ``key`` over subgraph 0 (inputs/outputs named after their tensors).

    Returns the new flatbuffer and the record of what was added. A :class:`ConversionError` when
    the file already has a SignatureDef or cannot be read as a TFLite model.
    """
    schema, flatbuffer_utils = _object_api()
    try:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
    except Exception as exc:  # noqa: BLE001 - the flatbuffers reader raises struct/Index/TypeErrors alike
        raise ConversionError(
            f"adding a SignatureDef: expected a readable TFLite flatbuffer, got one that "
            f"fails to parse ({type(exc).__name__}: {first_line(exc, 200)})"
        ) from None
    if model.signatureDefs:
        raise ConversionError(f"adding a SignatureDef: expected a file with none, got {len(model.signatureDefs)}")
    if not model.subgraphs:
        raise ConversionError("adding a SignatureDef: expected a model with a subgraph, got none")
    graph = model.subgraphs[0]
    inputs = [int(i) for i in (graph.inputs if graph.inputs is not None else [])]
    outputs = [int(i) for i in (graph.outputs if graph.outputs is not None else [])]
    if not inputs or not outputs:
        raise ConversionError(
            f"adding a SignatureDef: expected subgraph 0 to declare inputs and outputs, got "
            f"{len(inputs)} input(s) and {len(outputs)} output(s)"
        )
    signature = schema.SignatureDefT()
    signature.signatureKey = key
    signature.subgraphIndex = 0
    record: dict[str, Any] = {"key": key, "subgraph": 0, "inputs": {}, "outputs": {}, "reason": REASON}
    for side, indices, fallback in (("inputs", inputs, "input"), ("outputs", outputs, "output")):
        maps = []
        for name, index in zip(_names(graph.tensors, indices, fallback), indices, strict=False):
            entry = schema.TensorMapT()
            entry.name = name
            entry.tensorIndex = index
            maps.append(entry)
            record[side][name] = index
        setattr(signature, side, maps)
    model.signatureDefs = [signature]
    set_builtin_codes(model)  # a file with no signature is from an older converter: it may lack builtin_code
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), record


def ensure_signature(tflite: bytes, key: str = SIGNATURE_KEY) -> tuple[bytes, dict[str, Any] | None]:
    """``(tflite, None)`` when it has a SignatureDef, else :func:`add_signature`'s ``(new bytes, record)``."""
    if has_signature(tflite):
        return tflite, None
    return add_signature(tflite, key)


__all__ = ["SIGNATURE_KEY", "add_signature", "ensure_signature", "has_signature"]
