"""Rewrites of an ONNX graph before onnx2tf runs, each so onnx2tf converts what it would otherwise get wrong.

GELU fusing (PyTorch's Div/Erf/Add/Mul/Mul to ONNX ``Gelu``), names TensorFlow accepts (Paddle's
``Softmax@0``), fixed input shapes and constant inputs, Constant nodes to initializers, If nodes with a
constant condition folded, and Split/Concat pairs moved apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from converters.errors import ModelLoadError, first_line
from converters.onnx2tf_run import OnnxConversionError
from converters.onnx_checks import _subgraphs, default_opset, onnx_input_specs, walk_nodes
from edge_sdk.reference import shape_text

GELU_OPSET = 20  # ONNX Gelu exists from opset 20 on
#: a node name TensorFlow takes as a scope name (onnx2tf names its layers after the ONNX nodes)
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.\\/>-]*$")


def sanitize_node_names(model: Any) -> dict[str, str]:
    """Give every node a unique name TensorFlow accepts as a scope; returns ``{new name: original name}``.

    Paddle exports name nodes ``Softmax@0``; TensorFlow refuses ``@`` in a scope name and onnx2tf
    fails at that node (``'Softmax@0' is not a valid scope name``). Unnamed nodes get ``OpType_i``.
    """
    renamed: dict[str, str] = {}
    used = {node.name for node, _ in walk_nodes(model.graph) if node.name and _SCOPE_NAME.match(node.name)}
    for i, (node, _) in enumerate(walk_nodes(model.graph)):
        if node.name and _SCOPE_NAME.match(node.name):
            continue
        base = re.sub(r"[^A-Za-z0-9_.>-]", "_", node.name) if node.name else f"{node.op_type}_{i}"
        name, k = base, 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        renamed[name] = node.name
        node.name = name
    return renamed


def fix_input_shapes(model: Any, shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """Set the dims of the inputs named in ``shapes`` (``--input-shape``); a name, rank or fixed dim that
    does not fit is refused naming what the model has."""
    specs = {s.name: s for s in onnx_input_specs(model)}
    for name, shape in shapes.items():
        spec = specs.get(name)
        if spec is None:
            raise ModelLoadError(
                f"{source}: --input-shape names input {name!r}, but the model's inputs are "
                f"{', '.join(f'{s.name} {shape_text(s.shape)}' for s in specs.values())}"
            )
        if len(shape) != len(spec.shape):
            raise ModelLoadError(
                f"{source}: --input-shape {name}={','.join(map(str, shape))} has {len(shape)} "
                f"dimensions, input {name!r} has {len(spec.shape)}: {shape_text(spec.shape)}"
            )
        clash = [
            i
            for i, (want, have) in enumerate(zip(shape, spec.shape, strict=False))
            if have is not None and have != want
        ]
        if clash:
            raise ModelLoadError(
                f"{source}: --input-shape {name}={','.join(map(str, shape))} changes fixed "
                f"dimension(s) {clash} of input {name!r} {shape_text(spec.shape)}: only dynamic "
                "dimensions can be fixed"
            )
        value = next(v for v in model.graph.input if v.name == name)
        for dim, size in zip(value.type.tensor_type.shape.dim, shape, strict=False):
            dim.Clear()
            dim.dim_value = int(size)


def make_inputs_constant(model: Any, constants: dict[str, float], source: str) -> None:
    """Turn the inputs named in ``constants`` (``import.constant_inputs``) into initializers of that value."""
    from onnx import helper, numpy_helper

    for name, value in constants.items():
        found = [v for v in model.graph.input if v.name == name]
        if not found:
            raise ModelLoadError(
                f"{source}: import.constant_inputs names input {name!r}, but the model's inputs "
                f"are {', '.join(s.name for s in onnx_input_specs(model))}"
            )
        tensor = found[0].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tensor.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        model.graph.input.remove(found[0])
        model.graph.initializer.append(numpy_helper.from_array(np.full(dims, value, dtype=dtype), name))


def constants_to_initializers(model: Any) -> int:
    """Move the main graph's ``Constant`` nodes (``value`` tensors) into initializers; returns how many.

    paddle2onnx writes every scalar weight as a Constant node; onnx2tf 1.29.24 then loses the
    tensor behind an ``Add(Mul(w0, conv) + w1, 3)`` and fails with ``Output tensors of a Functional
    model must be the output of a TensorFlow Layer ... Found: 3.0`` (PP-OCRv4's detector). As
    initializers the same values convert.
    """
    kept, moved = [], 0
    for node in model.graph.node:
        attrs = list(node.attribute)
        if (
            node.op_type == "Constant"
            and node.domain in ("", "ai.onnx")
            and len(attrs) == 1
            and attrs[0].name == "value"
        ):
            tensor = type(attrs[0].t)()
            tensor.CopyFrom(attrs[0].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
            moved += 1
        else:
            kept.append(node)
    if moved:
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return moved


def fold_constant_ifs(model: Any) -> tuple[Any, int]:
    """Replace each If whose condition is computable from constants (initializers, Constant nodes, Shape of a
    tensor with a static shape) by the nodes of the branch it takes; returns ``(model, Ifs folded)``.

    onnx2tf fails on If nodes whose branches use the outer graph's constants (``KeyError:
    '/Constant_output_0'``); a condition fixed in practice (a sample rate made constant with
    ``import.constant_inputs``, a shape fixed with ``--input-shape``) folds them away.
    """
    from onnx import shape_inference

    folded = 0
    for _ in range(100):
        ifs = [n for n in model.graph.node if n.op_type == "If"]
        if not ifs:
            break
        try:
            inferred = shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 - folding is best effort: onnx2tf gets the model as it is
            inferred = model
        static = {}
        for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
            dims = value.type.tensor_type.shape.dim
            if (
                value.type.HasField("tensor_type")
                and value.type.tensor_type.HasField("shape")
                and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims)
            ):
                static[value.name] = [d.dim_value for d in dims]
        target = next((n for n in ifs if _computable(model.graph, n.input[0], static)), None)
        if target is None:
            break
        cond = bool(np.asarray(_evaluate(model, target.input[0], static)).reshape(-1)[0])
        branch = next(a.g for a in target.attribute if a.name == ("then_branch" if cond else "else_branch"))
        _inline(model.graph, target, branch)
        folded += 1
    return model, folded


_NOT_FOLDABLE = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli")


def _computable(graph: Any, name: str, static: dict[str, list[int]]) -> bool:
    producer = {out: node for node in graph.node for out in node.output}
    constants = {t.name for t in graph.initializer}
    memo: dict[str, bool] = {}

    def ok(current: str, depth: int = 0) -> bool:
        if not current or current in constants:
            return True
        if current in memo:
            return memo[current]
        node = producer.get(current)
        if node is None or depth > 500:
            result = False
        elif node.op_type == "Shape":
            result = node.input[0] in static
        elif node.op_type in _NOT_FOLDABLE or _subgraphs(node) or node.domain not in ("", "ai.onnx"):
            result = False
        else:
            result = all(ok(i, depth + 1) for i in node.input)
        memo[current] = result
        return result

    return ok(name)


def _evaluate(model: Any, name: str, static: dict[str, list[int]]) -> np.ndarray:
    """The value of ``name`` (computable from constants), by ONNX's reference evaluator on the nodes it needs."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    needed, todo = set(), [name]
    while todo:
        current = todo.pop()
        node = producer.get(current)
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        if node.op_type != "Shape":
            todo.extend(i for i in node.input if i)
    nodes = []
    for node in graph.node:
        if id(node) not in needed:
            continue
        if node.op_type == "Shape":
            shape = np.asarray(static[node.input[0]], dtype=np.int64)
            start = next((a.i for a in node.attribute if a.name == "start"), 0)
            end = next((a.i for a in node.attribute if a.name == "end"), None)
            shape = shape[start:end]
            nodes.append(
                helper.make_node(
                    "Constant", [], [node.output[0]], value=numpy_helper.from_array(shape, node.output[0] + "_value")
                )
            )
        else:
            nodes.append(node)
    used = {i for n in nodes for i in n.input}
    initializers = [t for t in graph.initializer if t.name in used]
    sub = helper.make_graph(nodes, "fold", [], [helper.make_empty_tensor_value_info(name)], initializers)
    sub_model = helper.make_model(sub, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    result: np.ndarray = ReferenceEvaluator(sub_model).run(None, {})[0]  # type: ignore[index]  # onnx's stub types run() loosely
    return result


def _inline(graph: Any, node: Any, branch: Any) -> None:
    """Put ``branch``'s nodes where the If ``node`` was; its outputs become the If's outputs (Identity)."""
    from onnx import helper

    taken = {t.name for t in graph.initializer} | {v.name for v in graph.input}
    taken |= {out for n in graph.node for out in n.output}
    local = {out for n in branch.node for out in n.output} | {t.name for t in branch.initializer}
    prefix = re.sub(r"[^A-Za-z0-9_./-]", "_", node.name or "if")
    rename = {name: f"{prefix}/{name}" for name in local if name in taken}

    def renamed(names: Sequence[str]) -> list[str]:
        return [rename.get(n, n) for n in names]

    def rename_inside(g: Any) -> None:  # a nested subgraph may read the branch's values
        for inner in g.node:
            inner.input[:] = renamed(inner.input)
            for _, deeper in _subgraphs(inner):
                rename_inside(deeper)

    new_nodes = []
    for inner in branch.node:
        copy = type(inner)()
        copy.CopyFrom(inner)
        copy.input[:] = renamed(copy.input)
        copy.output[:] = renamed(copy.output)
        for _, deeper in _subgraphs(copy):
            rename_inside(deeper)
        new_nodes.append(copy)
    for tensor in branch.initializer:
        copy = type(tensor)()
        copy.CopyFrom(tensor)
        copy.name = rename.get(tensor.name, tensor.name)
        graph.initializer.append(copy)
    for value, out in zip(branch.output, node.output, strict=False):
        new_nodes.append(
            helper.make_node(
                "Identity", [rename.get(value.name, value.name)], [out], name=f"{prefix}/output_{out}"[:200]
            )
        )
    position = list(graph.node).index(node)
    nodes = list(graph.node)
    nodes[position : position + 1] = new_nodes
    del graph.node[:]
    graph.node.extend(nodes)


def _constants(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _scalar(constants: dict[str, np.ndarray], name: str) -> float | None:
    value = constants.get(name)
    if value is None or value.size != 1:
        return None
    return float(np.asarray(value, dtype=np.float64).reshape(()))


def _close(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= 1e-3 * abs(target)


def fuse_gelu(model: Any) -> tuple[Any, int]:
    """Rewrite PyTorch's exact-GELU pattern to ONNX ``Gelu``; returns ``(model, patterns rewritten)``.

    The pattern: ``Div(x, sqrt 2)`` (or ``Mul(x, 1/sqrt 2)``) -> ``Erf`` -> ``Add(., 1)`` ->
    ``Mul(x, .)`` -> ``Mul(., 0.5)``, or with the 0.5 applied to x first. Intermediate values
    used anywhere else are left alone. The model is moved to opset 20 (where Gelu is
    defined) with ONNX's version converter when it is older.
    """
    from onnx import helper

    constants = _constants(model)
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}

    def only_consumer(name: str, op_type: str) -> Any | None:
        users = consumers.get(name, [])
        if name in graph_outputs or len(users) != 1 or users[0].op_type != op_type:
            return None
        return users[0]

    def other(node: Any, name: str) -> str | None:
        rest = [i for i in node.input if i != name]
        return rest[0] if len(rest) == 1 else None

    matches = []  # (nodes to remove, x, final output)
    sqrt2 = float(np.sqrt(2.0))
    for erf in (n for n in graph.node if n.op_type == "Erf"):
        scale = producer.get(erf.input[0])
        if scale is None or only_consumer(erf.input[0], "Erf") is None:
            continue
        if scale.op_type == "Div" and _close(_scalar(constants, scale.input[1]), sqrt2):
            x = scale.input[0]
        elif scale.op_type == "Mul" and _close(_scalar(constants, scale.input[1]), 1 / sqrt2):
            x = scale.input[0]
        elif scale.op_type == "Mul" and _close(_scalar(constants, scale.input[0]), 1 / sqrt2):
            x = scale.input[1]
        else:
            continue
        add = only_consumer(erf.output[0], "Add")
        if add is None or not _close(_scalar(constants, other(add, erf.output[0]) or ""), 1.0):
            continue
        mul = only_consumer(add.output[0], "Mul")
        if mul is None:
            continue
        partner = other(mul, add.output[0])
        if partner == x:  # Mul(x, 1 + erf) then Mul(., 0.5)
            half = only_consumer(mul.output[0], "Mul")
            if half is None or not _close(_scalar(constants, other(half, mul.output[0]) or ""), 0.5):
                continue
            matches.append(([scale, erf, add, mul, half], x, half.output[0]))
        else:  # Mul(x, 0.5) then Mul(., 1 + erf)
            half = producer.get(partner or "")
            if (
                half is None
                or half.op_type != "Mul"
                or only_consumer(partner or "", "Mul") is None
                or x not in half.input
                or not _close(_scalar(constants, other(half, x) or ""), 0.5)
            ):
                continue
            matches.append(([scale, erf, add, half, mul], x, mul.output[0]))
    if not matches:
        return model, 0
    if default_opset(model) < GELU_OPSET:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, GELU_OPSET)
        except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
            raise OnnxConversionError(
                f"the model has PyTorch's GELU pattern (Div/Erf/Add/Mul/Mul), which must become "
                f"ONNX Gelu (opset {GELU_OPSET}), but moving it from opset "
                f"{default_opset(model)} failed: {first_line(exc, 200)}"
            ) from None
        return fuse_gelu(model)  # node objects changed with the conversion: match again
    removed = {id(node) for nodes, _, _ in matches for node in nodes}
    new_nodes = []
    fused = {id(nodes[-1]): (x, out, i) for i, (nodes, x, out) in enumerate(matches)}
    for node in graph.node:
        if id(node) in fused:
            x, out, i = fused[id(node)]
            new_nodes.append(helper.make_node("Gelu", [x], [out], name=f"edge_sdk_gelu_{i}"))
        elif id(node) not in removed:
            new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    return model, len(matches)


def split_before_concat(model: Any) -> int:
    """Move each ``Split`` that cuts a ``Concat``'s output on another axis above that Concat; returns how many.

    ``Split(Concat([a, b], axis=2), axis=1)`` becomes ``[Concat([a_i, b_i], axis=2) for a_i, b_i in
    zip(Split(a, axis=1), Split(b, axis=1))]``: the same values. YOLOv8's head concatenates each
    level's ``[1, 4 + C, n]`` rows and splits boxes from class scores; when the concatenated tensor
    is square (``4 + C == N``), onnx2tf 1.29.24 takes its layout for channels-last and splits the
    wrong axis (the box rows off by 98% of their scale; ``-cotof`` names the Split). Split per level,
    each tensor keeps a shape onnx2tf reads right. Only a Concat whose one consumer is the Split moves.
    """
    from onnx import helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    outputs = {o.name for o in graph.output}

    def axis(node: Any) -> int | None:
        return next((a.i for a in node.attribute if a.name == "axis"), 0 if node.op_type == "Split" else None)

    moved, nodes, dropped = 0, [], set()
    for node in graph.node:
        concat = producer.get(node.input[0]) if node.op_type == "Split" and node.input else None
        if (
            concat is None
            or concat.op_type != "Concat"
            or consumers.get(node.input[0], 0) != 1
            or node.input[0] in outputs
            or (concat_axis := axis(concat)) is None
            or (split_axis := axis(node)) is None
            or concat_axis < 0
            or split_axis < 0
            or concat_axis == split_axis
        ):
            nodes.append(node)
            continue
        parts: list[list[str]] = [[] for _ in node.output]
        for j, piece in enumerate(concat.input):
            names = [f"{node.output[i]}/edge_sdk_part{j}" for i in range(len(node.output))]
            split = helper.make_node(
                "Split", [piece, *node.input[1:]], names, name=f"{node.name or 'Split'}/edge_sdk_{j}"
            )
            split.attribute.extend(node.attribute)
            nodes.append(split)
            for i, name in enumerate(names):
                parts[i].append(name)
        for i, out in enumerate(node.output):
            nodes.append(
                helper.make_node(
                    "Concat", parts[i], [out], name=f"{concat.name or 'Concat'}/edge_sdk_{i}", axis=axis(concat)
                )
            )
        dropped.add(id(concat))
        moved += 1
    if moved:
        del graph.node[:]
        graph.node.extend(n for n in nodes if id(n) not in dropped)
    return moved
