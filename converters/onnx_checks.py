"""Checks of an ONNX graph before onnx2tf runs: its inputs, and refusals of what onnx2tf cannot convert.

Each refusal is an :class:`~converters.onnx2tf_run.OnnxConversionError` naming the node or input and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from converters.model_files import InputSpec
from converters.onnx2tf_run import ONNX2TF_VERSION, OnnxConversionError
from edge_sdk.reference import shape_text


def onnx_input_specs(model: Any) -> list[InputSpec]:
    """The graph's real inputs (not initializers): name, shape (None for a symbolic dim) and numpy dtype name."""
    from onnx import helper

    initializers = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
        specs.append(InputSpec(value.name, shape, dtype))
    return specs


def default_opset(model: Any) -> int:
    """The model's opset of the default ONNX domain."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


CONTROL_FLOW = ("If", "Loop", "Scan", "SequenceMap")
RECURRENT = ("LSTM", "GRU", "RNN")


def _subgraphs(node: Any) -> list[tuple[str, Any]]:
    """``[(attribute name, GraphProto)]`` of a node's subgraphs (If branches, Loop/Scan bodies)."""
    from onnx import AttributeProto

    found = []
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            found.append((attr.name, attr.g))
        elif attr.type == AttributeProto.GRAPHS:
            found.extend((attr.name, g) for g in attr.graphs)
    return found


def walk_nodes(graph: Any, where: str = "") -> list[tuple[Any, str]]:
    """Every node of ``graph`` and of its subgraphs, at any depth: ``[(node, where it is)]``.

    ``where`` is empty for the main graph, else e.g. ``" inside If 'cond_1' then_branch"``.
    """
    found = []
    for node in graph.node:
        found.append((node, where))
        for attr, sub in _subgraphs(node):
            found.extend(walk_nodes(sub, f"{where} inside {node.op_type} '{node.name or '(unnamed)'}' {attr}"))
    return found


def refuse_unsupported_ops(model: Any, supported: frozenset, source: str) -> None:
    """Raise :class:`OnnxConversionError` naming the ops onnx2tf has no converter for (custom domains too),
    anywhere in the graph, If/Loop/Scan subgraphs included."""
    unknown: dict[str, list[str]] = {}
    for node, where in walk_nodes(model.graph):
        custom = node.domain not in ("", "ai.onnx")
        if custom or node.op_type not in supported:
            label = f"{node.domain}::{node.op_type}" if custom else node.op_type
            unknown.setdefault(label, []).append((node.name or "(unnamed)") + where)
    if unknown:
        shown = ", ".join(
            f"{op} ({len(nodes)} node{'s' * (len(nodes) > 1)}, e.g. {nodes[0]})"
            for op, nodes in sorted(unknown.items())
        )
        raise OnnxConversionError(
            f"{source}: unsupported ONNX op(s) {shown}: onnx2tf {ONNX2TF_VERSION} has no "
            "converter for them, so the model cannot become a .tflite"
        )


def refuse_string_inputs(model: Any, source: str) -> None:
    """Refuse string (and other non-numeric) graph inputs, naming them: LiteRT's builtin ops take numbers."""
    from onnx import TensorProto

    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        if not value.type.HasField("tensor_type"):
            raise OnnxConversionError(
                f"{source}: input {value.name!r} is not a tensor (a sequence or map): onnx2tf "
                "converts tensor inputs only; export the model with tensor inputs"
            )
        if value.type.tensor_type.elem_type == TensorProto.STRING:
            raise OnnxConversionError(
                f"{source}: input {value.name!r} is a string tensor: a .tflite takes numbers "
                "only; export the model after its tokenizer (token ids as int32/int64 input)"
            )


def refuse_control_flow(model: Any, source: str) -> None:
    """Refuse If/Loop/Scan left after folding, naming the node and the input its condition comes from."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    inputs = {v.name for v in graph.input} - {t.name for t in graph.initializer}
    for node, where in walk_nodes(graph):
        if node.op_type not in CONTROL_FLOW:
            continue
        hint = ""
        if node.op_type == "If" and not where:
            roots = sorted(_input_ancestors(node.input[0], producer, inputs))
            if roots:
                hint = (
                    f"; its condition depends on input(s) {', '.join(roots)}: if one is always fed the same "
                    f"value (a sample rate), make it a constant with --set import.constant_inputs={roots[0]}=VALUE"
                    f", or fix shapes with --input-shape, and the If folds away"
                )
            else:
                hint = "; its condition is not constant after folding"
        raise OnnxConversionError(
            f"{source}: {node.op_type} node '{node.name or '(unnamed)'}'{where} is control flow onnx2tf "
            f"{ONNX2TF_VERSION} cannot convert{hint}"
        )


def _input_ancestors(name: str, producer: dict[str, Any], inputs: set) -> set:
    found, todo, seen = set(), [name], set()
    while todo:
        current = todo.pop()
        if current in seen or not current:
            continue
        seen.add(current)
        if current in inputs:
            found.add(current)
        node = producer.get(current)
        if node is not None:  # through Shape(x) too: x is named, though a fixed shape would fold it
            todo.extend(node.input)
    return found


def refuse_dynamic_dims(specs: Sequence[InputSpec], source: str) -> None:
    """A dynamic dimension other than the batch makes onnx2tf fail (``Dimension -1 must be >= 0``) or write a
    float32.tflite LiteRT cannot run: refuse it before conversion, naming ``--input-shape``."""
    for spec in specs:
        dynamic = [i for i, d in enumerate(spec.shape) if d is None and i > 0]
        if dynamic:
            example = ",".join(
                "1" if i == 0 and d is None else str(d) if d is not None else f"D{i}" for i, d in enumerate(spec.shape)
            )
            raise OnnxConversionError(
                f"{source}: input {spec.name!r} {shape_text(spec.shape)} has dynamic dimension(s) "
                f"{', '.join(map(str, dynamic))}: onnx2tf cannot make a float32.tflite LiteRT runs with them; fix "
                f"them with --input-shape {spec.name}={example} (numbers for {', '.join(f'D{i}' for i in dynamic)})"
            )


def recurrent_state_refusal(model: Any, source: str) -> str:
    """Why full int8 cannot be calibrated: an LSTM/GRU/RNN whose initial state comes from a graph input.

    TensorFlow 2.21's calibrator segfaults (the whole process, in ``_feed_tensors``) on the
    UNIDIRECTIONAL_SEQUENCE_LSTM onnx2tf makes of a PyTorch ``LSTM(x, (h0, c0))``; measured on
    ``tests/onnx_export_models.lstm_model``. Empty when there is no such node.
    """
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    inputs = {v.name for v in graph.input} - {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type not in RECURRENT:
            continue
        states = [name for name in list(node.input)[5:] if name]
        roots = sorted({r for name in states for r in _input_ancestors(name, producer, inputs)})
        if roots:
            return (
                f"{source}: {node.op_type} node '{node.name or '(unnamed)'}' takes its initial state from "
                f"input(s) {', '.join(roots)}: TensorFlow's int8 calibrator crashes on such a recurrent op, so "
                "full int8 is refused; use --recipe dynamic or fp16 (weights quantized, float activations)"
            )
    return ""
