"""A float32 parent for a ``.tflite`` that stores its weights small, without TensorFlow.

    from converters.tflite_float_parent import float_parent
    parent = float_parent(data)        # None for a float file; a refusal for a full-integer one
    parent.tflite, parent.source_kind, parent.proxy

Two kinds of ``.tflite`` compute in float but keep their weights in a smaller type, and
often no float original exists for them (MediaPipe ships float16 files; MLPerf's KWS
"float32" model is dynamic-range):

* **float16 weights** (``inspect`` kind ``float16-weight``): each weight is a float16
  constant behind a DEQUANTIZE op. Each DEQUANTIZE(float16 constant) becomes a float32
  constant holding the same values: the graph then computes exactly what it did
  (``exact`` is True; outputs are bit-identical).
* **weight-only int8** (kind ``weight-only-int8``): DEQUANTIZE(int8 constant) becomes the
  float32 constant ``(q - zero_point) * scale`` the op computed at run time: exact too.
* **dynamic-range** (kind ``dynamic-range``): int8 weights fed straight to float ops
  (CONV_2D, FULLY_CONNECTED, ...), which quantize their activations on the fly. The
  weights are dequantized with their scales (per-channel along ``quantized_dimension``)
  into float32 constants. The result is a float *proxy*: its outputs differ from the
  file's (those kernels round the activations to int8), so ``proxy`` is True and the
  caller measures and records the agreement (:func:`agreement`).

The rewrite uses the flatbuffer object API of ai-edge-litert's schema module
(``schema_py_generated``) and its ``tools.flatbuffer_utils``; no TensorFlow.
A ``full-integer`` or ``mixed`` file is refused with one line naming what it is: its
float weights are gone and its activations were already calibrated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from converters.errors import ModelLoadError
from converters.tflite_graph import set_builtin_codes

# inspect kinds this module turns into a float32 parent, and whether the parent is exact
PARENT_KINDS = {"float16-weight": True, "weight-only-int8": True, "dynamic-range": False}
_TYPES = {1: np.float16, 9: np.int8, 3: np.uint8}
_FLOAT32 = 0


@dataclasses.dataclass
class FloatParent:
    """The float32 flatbuffer made from a small-weight ``.tflite`` and what was done."""

    tflite: bytes
    source_kind: str  # the input's inspect kind: float16-weight, weight-only-int8, dynamic-range
    exact: bool  # True when the parent computes exactly what the input computed
    rewritten: int  # weight tensors turned into float32 constants
    removed_ops: int  # DEQUANTIZE (and DENSIFY) ops removed
    densified: int = 0  # sparse weights behind DENSIFY made dense constants (by LiteRT's own kernel)

    @property
    def proxy(self) -> bool:
        """True when the parent only approximates the input (dynamic-range)."""
        return not self.exact

    def record(self) -> dict[str, Any]:
        """The manifest's ``float_parent`` entry (agreement is added by the caller that measured it)."""
        how = (
            "DEQUANTIZE(float16 constant) -> float32 constant"
            if self.source_kind == "float16-weight"
            else "DEQUANTIZE(int8 constant) -> float32 constant"
            if self.source_kind == "weight-only-int8"
            else "int8 weights dequantized with their scales (per-channel where the file has them)"
        )
        return {
            "from_kind": self.source_kind,
            "rewrite": how,
            "exact": self.exact,
            "proxy": self.proxy,
            "weights_rewritten": self.rewritten,
            "dequantize_ops_removed": self.removed_ops - self.densified,
            "densify_ops_removed": self.densified,
        }


def _array(buffer: Any, dtype: Any) -> np.ndarray:
    return np.frombuffer(bytes(bytearray(buffer.data)), dtype=dtype)


def _dequantized(tensor: Any, q: np.ndarray) -> np.ndarray:
    """``(q - zero_point) * scale`` in float32, per channel along the quantized dimension when there are several."""
    quant = tensor.quantization
    scales = np.asarray([] if quant is None or quant.scale is None else quant.scale, dtype=np.float32).ravel()
    zeros = np.asarray([] if quant is None or quant.zeroPoint is None else quant.zeroPoint, dtype=np.int64).ravel()
    if scales.size == 0:
        raise ModelLoadError(
            f"weight tensor {_name(tensor)!r} is {q.dtype} with no quantization scale: "
            "expected a scale to dequantize it"
        )
    if zeros.size == 0:
        zeros = np.zeros_like(scales, dtype=np.int64)
    shape = [int(d) for d in tensor.shape]
    values = q.reshape(shape) if shape else q
    if scales.size == 1:
        return ((values.astype(np.int64) - int(zeros[0])).astype(np.float32) * scales[0]).astype(np.float32)
    axis = int(quant.quantizedDimension or 0)
    if axis >= len(shape) or shape[axis] != scales.size:
        raise ModelLoadError(
            f"weight tensor {_name(tensor)!r}: {scales.size} scales do not match its shape "
            f"{shape} along dimension {axis}"
        )
    view = [1] * len(shape)
    view[axis] = scales.size
    centered = (values.astype(np.int64) - zeros.reshape(view)).astype(np.float32)
    return (centered * scales.reshape(view)).astype(np.float32)


def _name(tensor: Any) -> str:
    name = tensor.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def _as_float_constant(root: Any, schema: Any, tensor: Any, values: np.ndarray, uses: dict[int, int]) -> None:
    """Make ``tensor`` a float32 constant holding ``values`` (its own buffer, a new one when shared or absent)."""
    data = np.frombuffer(np.ascontiguousarray(values, dtype="<f4").tobytes(), dtype=np.uint8)
    if tensor.buffer > 0 and uses.get(tensor.buffer, 0) == 1:
        root.buffers[tensor.buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        root.buffers.append(buffer)
        tensor.buffer = len(root.buffers) - 1
        uses[tensor.buffer] = 1
    tensor.type = _FLOAT32
    tensor.quantization = None


def _drop_tensors(root: Any, sg_index: int, drop: set) -> None:
    """Remove tensors ``drop`` (indices nothing refers to) from subgraph ``sg_index``, renumbering the rest."""
    sg = root.subgraphs[sg_index]
    remap: dict[int, int] = {}
    kept: list[Any] = []
    for index, tensor in enumerate(sg.tensors):
        if index not in drop:
            remap[index] = len(kept)
            kept.append(tensor)
    sg.tensors = kept

    def renumber(indices: Any) -> Any:
        if indices is None:
            return None
        return [remap[i] if i >= 0 else i for i in indices]

    for op in sg.operators or []:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
        if getattr(op, "intermediates", None) is not None:
            op.intermediates = renumber(op.intermediates)
    sg.inputs, sg.outputs = renumber(sg.inputs), renumber(sg.outputs)
    for signature in root.signatureDefs or []:
        if signature.subgraphIndex == sg_index:
            for entry in list(signature.inputs or []) + list(signature.outputs or []):
                entry.tensorIndex = remap[entry.tensorIndex]


def _densify_constants(data: bytes, root: Any, schema: Any, constant: Any, uses: dict[int, int]) -> int:
    """Turn each DENSIFY(sparse constant) of subgraph 0 into the dense constant it computes; the op count removed.

    MediaPipe's face_detection_full_range_sparse and pose_detection store float16 weights sparse,
    behind DENSIFY and then DEQUANTIZE. The dense values are what LiteRT's own DENSIFY kernel
    writes: the file is run once on zeros (built-in kernels, every tensor kept) and each DENSIFY
    output is read back, so no sparse format is decoded here. The DEQUANTIZE pass then sees a
    plain float16 constant.
    """
    graph = root.subgraphs[0] if root.subgraphs else None
    codes = {i for i, c in enumerate(root.operatorCodes or []) if c.builtinCode == schema.BuiltinOperator.DENSIFY}
    if graph is None or not codes:
        return 0
    tensors = graph.tensors or []
    ops = [
        op
        for op in graph.operators or []
        if op.opcodeIndex in codes and len(op.inputs or []) == 1 and constant(tensors[op.inputs[0]])
    ]
    if not ops:
        return 0
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        interpreter = Interpreter(
            model_content=data,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True,
        )
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
        dense = {op.outputs[0]: np.array(interpreter.get_tensor(op.outputs[0])) for op in ops}
    except Exception as exc:  # noqa: BLE001 - LiteRT raises RuntimeError/ValueError alike on a file it cannot run
        raise ModelLoadError(
            f"expected LiteRT to densify the {len(ops)} sparse weight(s) behind DENSIFY, but running the "
            f"file failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "give edge-sdk a dense version of the model"
        ) from None
    sparse = set()
    for op in ops:
        target = tensors[op.outputs[0]]
        values = dense[op.outputs[0]]
        data_bytes = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data_bytes, dtype=np.uint8)
        root.buffers.append(buffer)
        target.buffer = len(root.buffers) - 1
        uses[target.buffer] = 1
        sparse.add(op.inputs[0])
    graph.operators = [op for op in graph.operators if not any(op is o for o in ops)]
    still_read = {i for op in graph.operators for i in (op.inputs or [])} | set(graph.outputs or [])
    orphans = sparse - still_read
    for index in orphans:
        if uses.get(tensors[index].buffer, 0) == 1:
            root.buffers[tensors[index].buffer].data = None
    if orphans:
        _drop_tensors(root, 0, orphans)
    return len(ops)


def float_parent(data: bytes, where: str = "model") -> FloatParent | None:
    """The float32 parent of the ``.tflite`` bytes ``data``, or None when ``data`` is already float.

    ``where`` names the file in messages. A full-integer or mixed file is a
    :class:`ModelLoadError` naming what it is.
    """
    from edge_sdk.inspect_model import _schema, inspect_model

    kind = inspect_model(data)["kind"]
    if kind == "float":
        return None
    if kind not in PARENT_KINDS:
        what = {
            "full-integer": "a full-integer model (its float weights and ranges are gone)",
            "mixed": "a partly integer model (integer and float ops side by side)",
            "weight-only-int4": "a weight-only int4 model",
        }.get(kind, f"a {kind} model")
        raise ModelLoadError(
            f"{where}: expected a float .tflite model to quantize, got one that is already {kind} "
            f"({what}); float16-weight, weight-only-int8 and dynamic-range files are taken through "
            "their float32 parent, this one cannot be: give edge-sdk the float original, or use "
            "this file as it is"
        )
    from ai_edge_litert.tools import flatbuffer_utils

    schema = _schema()
    root = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    set_builtin_codes(root)
    dequantize = {
        i for i, code in enumerate(root.operatorCodes or []) if code.builtinCode == schema.BuiltinOperator.DEQUANTIZE
    }
    uses: dict[int, int] = {}
    for sg in root.subgraphs or []:
        for t in sg.tensors or []:
            uses[t.buffer] = uses.get(t.buffer, 0) + 1

    def constant(tensor: Any) -> bool:
        buffer = root.buffers[tensor.buffer] if 0 < tensor.buffer < len(root.buffers) else None
        return buffer is not None and buffer.data is not None and len(buffer.data) > 0

    rewritten = removed = 0
    densified = _densify_constants(data, root, schema, constant, uses)
    removed += densified
    for sg_index, sg in enumerate(root.subgraphs or []):
        tensors = sg.tensors or []
        kept: list[Any] = []
        replaced_inputs = []
        for op in sg.operators or []:
            inputs = list(op.inputs or [])
            if op.opcodeIndex in dequantize and len(inputs) == 1 and 0 <= inputs[0] < len(tensors):
                source = tensors[inputs[0]]
                target = tensors[op.outputs[0]]
                if constant(source) and int(source.type) in _TYPES and int(target.type) == _FLOAT32:
                    raw = _array(root.buffers[source.buffer], _TYPES[int(source.type)])
                    values = raw.astype(np.float32) if int(source.type) == 1 else _dequantized(source, raw)
                    _as_float_constant(
                        root, schema, target, values.reshape([int(d) for d in target.shape] or [-1]), uses
                    )
                    replaced_inputs.append(inputs[0])
                    rewritten += 1
                    removed += 1
                    continue
            kept.append(op)
        sg.operators = kept
        # the small copies nothing reads any more: drop them and their bytes (an unused tensor with no
        # data would be "null" to the LiteRT quantizer's calibrator, which reads every tensor)
        still_read = {i for op in kept for i in (op.inputs or [])} | set(sg.outputs or [])
        orphans = set(replaced_inputs) - still_read
        for index in orphans:
            tensor = tensors[index]
            if uses.get(tensor.buffer, 0) == 1:
                root.buffers[tensor.buffer].data = None
        if orphans:
            _drop_tensors(root, sg_index, orphans)
        tensors = sg.tensors or []
        # dynamic-range: integer constants fed straight to float ops
        for op in kept:
            if op.opcodeIndex in dequantize:
                continue
            outputs = [tensors[i] for i in (op.outputs or []) if 0 <= i < len(tensors)]
            if not any(int(t.type) == _FLOAT32 for t in outputs):
                continue
            for index in op.inputs or []:
                if index < 0 or index >= len(tensors):
                    continue
                tensor = tensors[index]
                if int(tensor.type) in (9, 3) and constant(tensor):
                    raw = _array(root.buffers[tensor.buffer], _TYPES[int(tensor.type)])
                    _as_float_constant(root, schema, tensor, _dequantized(tensor, raw), uses)
                    rewritten += 1
            if getattr(op, "builtinOptions", None) is not None and hasattr(
                op.builtinOptions, "asymmetricQuantizeInputs"
            ):
                op.builtinOptions.asymmetricQuantizeInputs = False
    parent = bytes(flatbuffer_utils.convert_object_to_bytearray(root))
    left = inspect_model(parent)["kind"]
    if left != "float":
        raise ModelLoadError(
            f"{where}: expected its {kind} weights to turn into float32, but the rewritten "
            f"file is still {left}; give edge-sdk the float original"
        )
    return FloatParent(parent, kind, PARENT_KINDS[kind], rewritten, removed, densified)


def agreement(original: bytes, parent: bytes, inputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """How closely ``parent`` reproduces ``original`` on ``inputs``: max abs difference, and top-1 for class scores.

    ``inputs``: ``{input name: rows}``. Outputs are matched by name, never by position: a parent
    that got a SignatureDef lists them in another order (LiteRT sorts a signature's outputs by name,
    so MediaPipe's face detector ``regressors, classificators`` comes back ``classificators, regressors``).
    ``max_abs_diff`` and ``bit_identical`` cover every output; ``top1_agreement`` is given when the
    original's first output is ``[N, C]`` with C > 1 (a classifier); ``samples`` says how many rows.
    """
    from converters.evaluation import tflite_outputs

    ours = tflite_outputs(original, inputs)
    theirs = tflite_outputs(parent, inputs)
    if set(ours) != set(theirs):
        raise ModelLoadError(
            f"float32 parent: expected the outputs {', '.join(ours)} of the file, got {', '.join(theirs)}"
        )
    pairs = [(np.asarray(ours[n], np.float64), np.asarray(theirs[n], np.float64)) for n in ours]
    a, b = pairs[0]
    out: dict[str, Any] = {
        "samples": int(len(a)),
        "max_abs_diff": max((float(np.max(np.abs(x - y))) if x.size else 0.0) for x, y in pairs),
        "bit_identical": all(np.array_equal(x, y) for x, y in pairs),
    }
    if a.ndim == 2 and a.shape[1] > 1:
        out["top1_agreement"] = round(float(np.mean(a.argmax(1) == b.argmax(1))), 6)
    return out


__all__ = ["FloatParent", "PARENT_KINDS", "agreement", "float_parent"]
