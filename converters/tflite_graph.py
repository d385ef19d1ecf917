"""Small, lossless fix-ups of a float ``.tflite`` graph before the LiteRT quantizer sees it, and lookups
the quantizer's fallback needs (which op a LiteRT "Node number N" is). No TensorFlow: ai-edge-litert's
flatbuffer object API.

    from converters.tflite_graph import drop_unused_tensors, runtime_parameter_ops, node_scope
    data, dropped = drop_unused_tensors(data)

* :func:`drop_unused_tensors`: tensors no operator, subgraph input/output or signature refers to
  (left behind by tools that rewrite graphs, e.g. a DEQUANTIZE(float16 constant) folded into a float32
  constant) are removed; the quantizer's calibrator reads every tensor and fails on such a tensor
  ("Tensor data is null"). Outputs are bit-identical.
* :func:`runtime_parameter_ops`: the CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV ops
  whose bias is computed at run time instead of stored (a RESHAPE or DEQUANTIZE in front of it): LiteRT's
  int8 kernels need an int32 bias quantized from a constant, and the quantizer fails on these.
* :func:`node_scope`: the quantizer's scope (``"out1;out2;"``) and op name of operator N of a subgraph.
"""

from __future__ import annotations

from typing import Any

# op name -> (weights input, bias input): the ops LiteRT's int8 kernels give per-channel int8 weights and int32 bias
PARAMETER_INPUTS: dict[str, tuple[int, int]] = {
    "CONV_2D": (1, 2),
    "DEPTHWISE_CONV_2D": (1, 2),
    "FULLY_CONNECTED": (1, 2),
    "TRANSPOSE_CONV": (1, 3),
    "CONV_3D": (1, 2),
}


def _utils():
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils


def _read(data: bytes) -> Any:
    return _utils().read_model_from_bytearray(bytearray(data))


def _name(tensor: Any) -> str:
    raw = tensor.name
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")


def _indices(values: Any) -> list[int]:
    return [] if values is None else [int(i) for i in values]


def drop_unused_tensors(data: bytes) -> tuple[bytes, int]:
    """``data`` without tensors nothing refers to, and how many were dropped (``data`` itself when none)."""
    model = _read(data)
    dropped = 0
    for index, graph in enumerate(model.subgraphs or []):
        used = set(_indices(graph.inputs)) | set(_indices(graph.outputs))
        for op in graph.operators or []:
            for group in (op.inputs, op.outputs, op.intermediates):
                used.update(i for i in _indices(group) if i >= 0)
        signature_maps = [
            m
            for s in (model.signatureDefs or [])
            if s.subgraphIndex == index
            for m in list(s.inputs or []) + list(s.outputs or [])
        ]
        used.update(int(m.tensorIndex) for m in signature_maps)
        tensors = graph.tensors or []
        if len(used) >= len(tensors):
            continue
        keep = sorted(used)
        new = {old: position for position, old in enumerate(keep)}
        dropped += len(tensors) - len(keep)
        graph.tensors = [tensors[i] for i in keep]

        def remap(values: Any, new: Any = new) -> Any:  # binds this graph's map, not the loop's last
            return None if values is None else [new[i] if i >= 0 else i for i in _indices(values)]

        graph.inputs, graph.outputs = remap(graph.inputs), remap(graph.outputs)
        for op in graph.operators or []:
            op.inputs, op.outputs, op.intermediates = remap(op.inputs), remap(op.outputs), remap(op.intermediates)
        for entry in signature_maps:
            entry.tensorIndex = new[int(entry.tensorIndex)]
    if not dropped:
        return data, 0
    return bytes(_utils().convert_object_to_bytearray(model)), dropped


def set_builtin_codes(model: Any) -> None:
    """Give every operator code of a flatbuffer object model its ``builtinCode``.

    Files from older converters set only ``deprecated_builtin_code`` (``builtin_code`` stays 0, ADD):
    readers must take the larger of the two, and the LiteRT quantizer reads ``builtin_code`` alone, so on
    such a file it saw every op as ADD and quantized nothing. Every rewrite edge-sdk makes sets both.
    """
    for code in model.operatorCodes or []:
        code.builtinCode = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))


def _op_name(model: Any, op: Any) -> str:
    return _utils().opcode_to_name(model, op.opcodeIndex) or "CUSTOM"


def _scope(graph: Any, op: Any) -> str:
    """The quantizer's scope of ``op``: its output tensor names, each followed by ``;``."""
    names = [_name(graph.tensors[i]) for i in _indices(op.outputs) if i >= 0]
    names = [n for n in names if n]
    return "".join(f"{n};" for n in names)


def _is_constant(model: Any, tensor: Any) -> bool:
    buffer = model.buffers[tensor.buffer] if 0 < tensor.buffer < len(model.buffers) else None
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def runtime_parameter_ops(data: bytes) -> list[dict[str, Any]]:
    """Ops of subgraph 0 whose bias is not a stored constant: ``[{"op", "scope", "output", "why"}]``."""
    model = _read(data)
    if not model.subgraphs:
        return []
    graph = model.subgraphs[0]
    found = []
    for op in graph.operators or []:
        name = _op_name(model, op)
        if name not in PARAMETER_INPUTS:
            continue
        inputs = _indices(op.inputs)
        _, bias = PARAMETER_INPUTS[name]
        if bias < len(inputs) and inputs[bias] >= 0 and not _is_constant(model, graph.tensors[inputs[bias]]):
            scope = _scope(graph, op)
            if scope:
                found.append(
                    {
                        "op": name,
                        "scope": scope,
                        "output": scope.split(";")[0],
                        "why": "its bias is computed at run time, not stored",
                    }
                )
    return found


def node_scope(data: bytes, node: int, subgraph: int = 0) -> tuple[str, str]:
    """``(op name, quantizer scope)`` of operator ``node`` of ``subgraph`` (``("", "")`` when out of range)."""
    model = _read(data)
    if subgraph >= len(model.subgraphs or []):
        return "", ""
    graph = model.subgraphs[subgraph]
    ops = graph.operators or []
    if not 0 <= node < len(ops):
        return "", ""
    return _op_name(model, ops[node]), _scope(graph, ops[node])


def op_scopes(data: bytes) -> list[str]:
    """The quantizer's scope of every op of every subgraph (what a ``keep_float`` pattern is matched against)."""
    model = _read(data)
    return [_scope(graph, op) for graph in model.subgraphs or [] for op in graph.operators or []]


__all__ = ["drop_unused_tensors", "node_scope", "op_scopes", "runtime_parameter_ops"]
