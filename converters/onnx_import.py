"""ONNX models as converter input: onnx2tf (in a child process) -> SavedModel -> TensorFlow's TFLite converter.

    model = load_onnx("model.onnx")          # a LoadedModel the quantize/export stages take as a SavedModel

How and why:

* onnx2tf 1.29.24 (the last release for Python 3.11) pins TensorFlow 2.19 and numpy 1.26,
  so it is not installed in the main environment. ``make setup`` installs it with
  ``pip install --no-deps --target`` into a side folder (:func:`side_folder`, default
  ``<venv>/onnx2tf``), where it runs under the main environment's TensorFlow 2.21 and numpy 2.
  It runs in a child process with that folder on ``PYTHONPATH`` and its ``bin`` on ``PATH``
  (onnx2tf runs ``onnxsim`` as a program and silently skips it otherwise), so its imports
  and any crash stay out of the user's process.
* onnx2tf overwrites its input with a simplified copy: it gets a copy, never the user's file.
* PyTorch exports GELU as Div/Erf/Add/Mul/Mul; onnx2tf keeps the Erf, which only a
  TensorFlow Select op (FlexErf) can run. :func:`fuse_gelu` rewrites the pattern to ONNX
  ``Gelu`` (opset 20) first.
* For 3-channel 4-D inputs onnx2tf would download sample images from the internet. It
  reads them from its working directory when the file is there, so the child runs in a
  temporary directory holding crops of scikit-learn's bundled photographs under that name:
  nothing is downloaded.
* onnx2tf logs failures as warnings and exits 0: its SavedModel is loaded and its
  signature checked against the ONNX inputs here, ops it has no converter for are refused
  before it runs, and a model that needs TensorFlow Select (Flex) ops is refused naming them.
* Layout: every input keeps the ONNX model's layout (onnx2tf ``-k``: NCHW stays NCHW, with one
  Transpose inside the model), so calibration and eval data are what the user feeds ONNX
  Runtime, and the .tflite takes the same arrays. Manifests record it (``input_layout``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from converters.context import Comparison, RunContext
from converters.errors import ConversionError, ModelLoadError, first_line
from converters.model_files import KIND_SAVEDMODEL, InputSpec, LoadedModel
from edge_sdk.reference import shape_text

ONNX2TF_VERSION = "1.29.24"
SIDE_FOLDER_ENV = "EDGE_SDK_ONNX2TF_DIR"
SETUP_COMMAND = "make setup"
CHILD_TIMEOUT_S = 1800
GELU_OPSET = 20  # ONNX Gelu exists from opset 20 on
# what onnx2tf looks for in its working directory before it downloads sample images
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
NOT_KERAS = (
    "an ONNX model converted by onnx2tf has no Keras layers to prune or fine-tune; post-training quantization applies"
)


class OnnxConversionError(ConversionError):
    """onnx2tf could not convert the ONNX model, or its output cannot run on LiteRT's builtin ops."""


# ------------------------------------------------------------------------------------------------
# the side folder
# ------------------------------------------------------------------------------------------------
def side_folder() -> Path:
    """Where onnx2tf is installed: ``$EDGE_SDK_ONNX2TF_DIR``, else ``<the running venv>/onnx2tf``."""
    configured = os.environ.get(SIDE_FOLDER_ENV)
    return Path(configured) if configured else Path(sys.prefix) / "onnx2tf"


def require_side_folder() -> Path:
    """The side folder, checked: onnx2tf and onnxsim must be there; else one line naming the set-up command."""
    folder = side_folder()
    missing = [
        what
        for what, path in (("onnx2tf", folder / "onnx2tf" / "__init__.py"), ("onnxsim", folder / "bin" / "onnxsim"))
        if not path.is_file()
    ]
    if missing:
        raise ModelLoadError(
            f"ONNX input needs onnx2tf {ONNX2TF_VERSION} in its side folder {folder}, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not there: run `{SETUP_COMMAND}` from the edge-sdk checkout "
            f"(or set {SIDE_FOLDER_ENV} to a folder holding it; docs/converters.md)"
        )
    return folder


def supported_ops(folder: Path) -> frozenset:
    """ONNX op types onnx2tf has a converter for (one module per op in ``onnx2tf/ops``)."""
    return frozenset(p.stem for p in (folder / "onnx2tf" / "ops").glob("*.py") if not p.stem.startswith("_"))


# ------------------------------------------------------------------------------------------------
# reading and rewriting the ONNX graph
# ------------------------------------------------------------------------------------------------
#: protobuf's hard limit on one message: a larger .onnx file cannot be parsed, whatever it holds.
MAX_ONNX_BYTES = 2**31 - 1


def read_onnx(path: Path) -> Any:
    """The checked ``onnx.ModelProto`` in ``path``; a clear error for a file that is not ONNX."""
    import onnx

    from edge_sdk.fileio import not_a_regular_file

    problem = not_a_regular_file(path)  # a FIFO would block for ever, /dev/zero be read until MemoryError
    if problem:
        raise ModelLoadError(f"{path} {problem}; expected an ONNX model file")
    if Path(path).stat().st_size > MAX_ONNX_BYTES:
        raise ModelLoadError(
            f"{path} is {Path(path).stat().st_size:,} bytes; an ONNX protobuf cannot exceed "
            f"{MAX_ONNX_BYTES:,} bytes (2 GiB): larger models keep their weights as external data"
        )
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf and the checker raise many types
        raise ModelLoadError(
            f"{path}: expected an ONNX model, but it would not load or check: {first_line(exc, 300)}"
        ) from None
    if not model.graph.node:
        raise ModelLoadError(f"{path}: expected an ONNX model with nodes, got an empty graph")
    return model


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
#: a node name TensorFlow takes as a scope name (onnx2tf names its layers after the ONNX nodes)
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.\\/>-]*$")


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
        except Exception as exc:  # noqa: BLE001
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


# ------------------------------------------------------------------------------------------------
# onnx2tf in a child process
# ------------------------------------------------------------------------------------------------
def _sample_images() -> np.ndarray:
    """20 float32 128x128x3 crops in [0, 1] of scikit-learn's two bundled photographs (no download)."""
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(p, dtype=np.float32) / 255.0 for p in load_sample_images().images]
    crops = []
    for i in range(20):
        photo = photos[i % len(photos)]
        top = (i * 37) % (photo.shape[0] - 256)
        left = (i * 53) % (photo.shape[1] - 256)
        crops.append(photo[top : top + 256 : 2, left : left + 256 : 2, :3])
    return np.stack(crops).astype(np.float32)


@dataclasses.dataclass
class Onnx2tfRun:
    """What one onnx2tf child run did: its SavedModel and log, and whether onnxsim ran."""

    saved_model: Path
    log: str
    onnxsim_ran: bool
    seconds: float


def _child_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PATH"] = os.pathsep.join([str(folder / "bin"), os.path.dirname(sys.executable), env.get("PATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _last_errors(log: str, limit: int = 3) -> str:
    clean = re.sub(r"\x1b\[[0-9;]*m", "", log)
    lines = [ln.strip() for ln in clean.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:") or "Error" in ln.split(":")[0]]
    op = [ln for ln in lines if "onnx_op_type:" in ln]
    picked = errors[-limit:] or lines[-limit:]
    where = f" (last ONNX op reached: {op[-1].split('onnx_op_type:')[1].strip()})" if op else ""
    return " | ".join(picked)[:500] + where


def onnx2tf_options(
    keep_layout: Sequence[str], shapes: dict[str, tuple[int, ...]] | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """onnx2tf's options besides input and output: ``-k`` (layouts kept), ``-ois`` (fixed shapes), pass-through."""
    options: list[str] = []
    kept_absolutely = _kat_names(extra)
    keep = [k for k in keep_layout if k not in kept_absolutely]
    if keep:
        options += ["-k", *keep]
    if shapes:
        options += ["-ois", *(f"{name}:{','.join(map(str, dims))}" for name, dims in shapes.items())]
    return options + list(extra)


def _kat_names(extra: Sequence[str]) -> list[str]:
    names, taking = [], False
    for token in extra:
        if token.startswith("-"):
            taking = token == "-kat"
        elif taking:
            names.append(token)
    return names


def run_onnx2tf(
    onnx_path: Path,
    workdir: Path,
    keep_layout: Sequence[str],
    folder: Path,
    timeout: int = CHILD_TIMEOUT_S,
    options: Sequence[str] | None = None,
    output: str = "saved_model",
) -> Onnx2tfRun:
    """Convert ``onnx_path`` (a copy: onnx2tf overwrites it) to a SavedModel under ``workdir`` in a child process.

    ``keep_layout``: input names whose layout stays as in ONNX (onnx2tf ``-k``), used when ``options``
    (from :func:`onnx2tf_options`) is not given; ``folder``: the side folder.
    """
    import time

    np.save(workdir / ONNX2TF_SAMPLE_FILE, _sample_images())
    out = workdir / output
    command = [sys.executable, "-m", "onnx2tf", "-i", str(onnx_path), "-o", str(out), "-osd"]
    command += list(options) if options is not None else onnx2tf_options(keep_layout)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            env=_child_env(folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OnnxConversionError(f"onnx2tf did not finish converting {onnx_path.name} in {timeout} s") from None
    log = done.stdout.decode("utf-8", "replace")
    (workdir / "onnx2tf.log").write_text(log)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        why = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        raise OnnxConversionError(f"onnx2tf {ONNX2TF_VERSION} could not convert the model ({why}): {_last_errors(log)}")
    if not (out / "saved_model.pb").is_file():
        raise OnnxConversionError(f"onnx2tf {ONNX2TF_VERSION} exited 0 but wrote no SavedModel: {_last_errors(log)}")
    onnxsim_ran = "Model optimizing complete!" in log and "Failed to optimize the onnx file" not in log
    return Onnx2tfRun(out, log, onnxsim_ran, seconds)


# ------------------------------------------------------------------------------------------------
# the loaded model
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class OnnxModel(LoadedModel):
    """An ONNX input: ``path`` is the user's .onnx; ``model`` the SavedModel onnx2tf made of it.

    The quantize and export stages see a SavedModel (``kind`` ``savedmodel``); ``predict``
    runs the ONNX model itself in ONNX Runtime, the float model every artifact is measured against.
    """

    onnx_bytes: bytes = b""
    gelu_fused: int = 0
    onnxsim_ran: bool = False
    onnx2tf_seconds: float = 0.0
    input_layouts: dict[str, str] = dataclasses.field(default_factory=dict)
    #: what edge-sdk did before onnx2tf, as recorded in the manifest (fixed shapes, constants, Ifs folded...)
    prepared: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: ``{input name: value}`` fed to ONNX Runtime for the inputs made constant (``import.constant_inputs``)
    constant_feeds: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    #: the ONNX model onnx2tf was given (after the rewrites), and how to run it again (``-cotof``)
    prepared_bytes: bytes = b""
    onnx2tf_options: list[str] = dataclasses.field(default_factory=list)
    renamed_nodes: dict[str, str] = dataclasses.field(default_factory=dict)
    #: why TensorFlow's int8 calibrator cannot take this model (it crashes the process), or "" (see int8_refusal)
    int8_refusal: str = ""
    _session: Any = None

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """The user's .onnx path."""
        return str(self.path) if self.path else "the ONNX model"

    def count_params(self) -> int | None:
        """Elements of the ONNX initializers (the weights)."""
        import onnx

        return int(
            sum(
                int(np.prod(t.dims))
                for t in onnx.load_from_string(self.onnx_bytes).graph.initializer
                if t.name not in self.constant_feeds
            )
        )

    def output_names(self) -> list[str]:
        """The ONNX model's output names, in graph order."""
        return [o.name for o in self.session().get_outputs()]

    def session(self) -> Any:
        """An ONNX Runtime CPU session of the user's model (built once)."""
        if self._session is None:
            import onnxruntime as ort

            # by path when there is one: ONNX Runtime resolves external data ("location") against the
            # model's folder only then; given bytes it would look in the current directory
            source = str(self.path) if self.path and Path(self.path).is_file() else self.onnx_bytes
            self._session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
        return self._session

    def onnxruntime_outputs(self, inputs: dict[str, np.ndarray], batch_size: int = 256) -> list[np.ndarray]:
        """Every output of the ONNX model on ``{input name: array}``, in the graph's output order."""
        session = self.session()
        names = [i.name for i in session.get_inputs()]
        # onnx2tf keeps input names, save for characters a SavedModel cannot hold (':' and '/')
        by_sanitized = {re.sub(r"[:/]", "_", n).lstrip("_"): n for n in names}
        feed_names = {
            s.name: s.name if s.name in names else by_sanitized.get(s.name.lstrip("_"), s.name) for s in self.inputs
        }
        n = len(next(iter(inputs.values())))
        # a model exported with a fixed batch (PyTorch's default: 1) takes batches of exactly that size
        fixed = {d for d in (i.shape[0] if i.shape else None for i in session.get_inputs()) if isinstance(d, int)}
        if fixed:
            batch_size = min(fixed)
        # a state input whose first axis is not the batch (Silero's state [2, 1, H]) fed at its exact shape
        shapes = {i.name: i.shape for i in session.get_inputs()}
        if all(list(np.shape(v)) == list(shapes.get(feed_names.get(k, k)) or []) for k, v in inputs.items()):
            n, batch_size = 1, max(max(len(v) for v in inputs.values()), 1)
        parts: list[list[np.ndarray]] = []
        for start in range(0, n, batch_size):
            feed = {feed_names.get(k, k): np.asarray(v[start : start + batch_size]) for k, v in inputs.items()}
            feed.update(self.constant_feeds)
            for i, out in enumerate(session.run(None, feed)):
                if i == len(parts):
                    parts.append([])
                parts[i].append(np.asarray(out))
        return [np.concatenate(p, axis=0) for p in parts]

    def predict(self, inputs: dict[str, np.ndarray], batch_size: int = 256) -> np.ndarray:
        """The ONNX model's first output (ONNX Runtime) on ``{input name: array}``."""
        return self.onnxruntime_outputs(inputs, batch_size)[0]


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


def _input_layout(spec: InputSpec) -> str:
    rank = len(spec.shape)
    return {3: "NCW", 4: "NCHW", 5: "NCDHW"}.get(rank, "as in ONNX") if rank in (3, 4, 5) else "as in ONNX"


def prepare_onnx(model: Any, options: Any, folder: Path, source: str) -> dict[str, Any]:
    """Rewrite ``model`` in place for onnx2tf and refuse what the graph alone shows it cannot convert.

    In order: fix input shapes (``--input-shape``), make inputs constant (``import.constant_inputs``),
    fold Ifs on constant conditions, then refuse string inputs, ops onnx2tf has no converter for
    (in subgraphs too), control flow left, and dynamic dimensions other than the batch, each naming
    the node or input and the option that would help. Returns what was done, for the manifest.
    """
    shapes = options.shapes() if options is not None else {}
    constants = options.constants() if options is not None else {}
    fix_input_shapes(model, shapes, source)
    make_inputs_constant(model, constants, source)
    refuse_string_inputs(model, source)
    folded = 0
    if options is None or options.fold_constants:
        model_folded, folded = fold_constant_ifs(model)
        if model_folded is not model:
            model.CopyFrom(model_folded)
    refuse_unsupported_ops(model, supported_ops(folder), source)
    refuse_control_flow(model, source)
    moved = constants_to_initializers(model)
    specs = onnx_input_specs(model)
    if not specs:
        raise ModelLoadError(f"{source}: expected an ONNX model with at least one input, got none")
    refuse_dynamic_dims(specs, source)
    record: dict[str, Any] = {}
    if shapes:
        record["input_shapes"] = {k: list(v) for k, v in shapes.items()}
    if constants:
        record["constant_inputs"] = constants
    if folded:
        record["ifs_folded"] = folded
    if moved:
        record["constant_nodes_to_initializers"] = moved
    if options is not None and options.onnx2tf_args:
        record["onnx2tf_args"] = list(options.onnx2tf_args)
    return record


def load_onnx(path: Path, options: Any = None) -> OnnxModel:
    """Convert the ONNX model at ``path`` into a SavedModel (onnx2tf, child process) and wrap it.

    ``options``: the recipe's ``[import]`` section (:class:`converters.recipe.ImportOptions`; defaults when None).
    Refuses, with one line each and before onnx2tf runs: a missing side folder (naming ``make setup``),
    a file that is not ONNX, string inputs, ops onnx2tf cannot convert (subgraphs included), control
    flow that does not fold, and dynamic dimensions (naming ``--input-shape``); after it: a conversion
    that failed or wrote nothing usable, and a model LiteRT could only run through TensorFlow Select ops.
    """
    path = Path(path)
    model = read_onnx(path)
    folder = require_side_folder()
    if not onnx_input_specs(model):
        raise ModelLoadError(f"{path}: expected an ONNX model with at least one input, got none")
    prepared = prepare_onnx(model, options, folder, str(path))
    specs = onnx_input_specs(model)
    renamed = sanitize_node_names(model)
    model, fused = fuse_gelu(model)
    if options is None or options.split_before_concat:
        moved = split_before_concat(model)
        if moved:
            prepared["splits_before_concat"] = moved
    tmp = tempfile.TemporaryDirectory(prefix="edge-sdk-onnx-")
    workdir = Path(tmp.name)
    copy = workdir / "model.onnx"
    prepared_bytes = model.SerializeToString()
    copy.write_bytes(prepared_bytes)  # onnx2tf overwrites its input: never the user's file
    keep = [s.name for s in specs if len(s.shape) in (3, 4, 5)]
    shapes = options.shapes() if options is not None else {}
    extra = list(options.onnx2tf_args) if options is not None else []
    # token ids and other integer inputs are never images: onnx2tf's layout guess must not touch them
    # (magika's int32 [N,2048] failed with "If the input OP of ONNX before conversion is NHWC ...")
    integers = [s.name for s in specs if not s.dtype.startswith("float") and s.name not in _kat_names(extra)]
    # a recurrent model's 3-D inputs are sequences and states, not NCW signals: onnx2tf's transpose of them
    # failed (time-major x: "Input to reshape is a tensor with 128 values, but the requested shape has 32";
    # a state [2, 1, H]: "An `initial_state` was passed that is not compatible with `cell.state_size`")
    if any(node.op_type in RECURRENT for node, _ in walk_nodes(model.graph)):
        integers += [s.name for s in specs if len(s.shape) == 3 and s.name not in integers + _kat_names(extra)]
    if integers:
        extra = ["-kat", *integers] + extra
    command = onnx2tf_options(keep, shapes, extra)
    run = run_onnx2tf(copy, workdir, keep, folder, options=command)
    loaded, directory = _load_saved_model(run.saved_model, specs, path, workdir)
    constants = options.constants() if options is not None else {}
    feeds = {}
    if constants:
        original = {v.name: v for v in read_onnx_header(path).graph.input}
        from onnx import helper

        for name, value in constants.items():
            tensor = original[name].type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tensor.shape.dim]
            feeds[name] = np.full(dims, value, dtype=helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    result = OnnxModel(
        KIND_SAVEDMODEL,
        path,
        loaded,
        _saved_model_specs(loaded),
        _saved_model_dir=directory,
        _tmp=tmp,
        not_keras_because=NOT_KERAS,
        onnx_bytes=path.read_bytes(),
        gelu_fused=fused,
        onnxsim_ran=run.onnxsim_ran,
        onnx2tf_seconds=round(run.seconds, 1),
        input_layouts={s.name: _input_layout(s) for s in specs},
        prepared=prepared,
        constant_feeds=feeds,
        prepared_bytes=prepared_bytes,
        onnx2tf_options=command,
        renamed_nodes=renamed,
        int8_refusal=recurrent_state_refusal(model, str(path)),
    )
    refuse_select_ops(result)
    return result


def read_onnx_header(path: Path) -> Any:
    """The ONNX model at ``path`` without its external data (names, shapes, nodes)."""
    import onnx

    return onnx.load(str(path), load_external_data=False)


def _saved_model_specs(loaded: Any) -> list[InputSpec]:
    """The signature's inputs, named as the .tflite will name them (the TensorSpec name, else the key)."""
    _, kwargs = loaded.signatures["serving_default"].structured_input_signature
    return [
        InputSpec(spec.name or name, tuple(None if d is None else int(d) for d in spec.shape), spec.dtype.name)
        for name, spec in sorted(kwargs.items())
    ]


def _sanitized(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def map_input_names(specs: Sequence[InputSpec], keys: dict[str, Any]) -> dict[str, str]:
    """``{ONNX input name: SavedModel signature key}``, undoing onnx2tf's and TensorFlow's renames.

    ``keys``: the signature's ``{key: TensorSpec}``. A name matches its key as is, sanitized
    (``input.1`` -> ``input_1``, ``a/b:0`` -> ``a_b_0``), with a leading underscore dropped or with
    ``arg_`` before it (``0`` -> ``arg_0``); one input left on each side with the same rank and dtype
    match each other. Raises :class:`OnnxConversionError` when an input stays unmatched.
    """

    def forms(name: str) -> set:
        clean = _sanitized(name)
        return {name, clean, clean.lstrip("_"), f"arg_{clean}", f"arg_{clean.lstrip('_')}", f"input_{clean}"}

    mapping: dict[str, str] = {}
    free = dict(keys)
    for spec in specs:
        wanted = forms(spec.name)
        hits = [k for k, t in free.items() if k in wanted or (t.name or "") in wanted]
        if len(hits) == 1:
            mapping[spec.name] = hits[0]
            free.pop(hits[0])
    left = [s for s in specs if s.name not in mapping]
    if len(left) == 1 and len(free) == 1:
        key, tensor = next(iter(free.items()))
        if len(tensor.shape) == len(left[0].shape) and tensor.dtype.name == left[0].dtype:
            mapping[left[0].name] = key
            left = []
    if left:
        raise OnnxConversionError(
            f"onnx2tf's SavedModel inputs {sorted(keys)} could not be matched to the ONNX input(s) "
            f"{[s.name for s in left]}"
        )
    return mapping


def _rename_inputs(loaded: Any, mapping: dict[str, str], directory: Path) -> Any:
    """A SavedModel calling ``loaded`` whose signature takes the ONNX names (``input.1``, ``0``) as they are.

    TensorFlow keeps a TensorSpec's name in the .tflite's SignatureDef, so ``predict({"input.1": x})``
    works on every artifact converted from it.
    """
    from converters._tf import tf

    signature = loaded.signatures["serving_default"]
    _, kwargs = signature.structured_input_signature
    specs = {
        onnx_name: tf.TensorSpec(kwargs[key].shape, kwargs[key].dtype, name=onnx_name)
        for onnx_name, key in mapping.items()
    }

    module = tf.Module()
    module.inner = loaded

    @tf.function(input_signature=[specs])
    def serve(feed):
        return signature(**{key: feed[onnx_name] for onnx_name, key in mapping.items()})

    module.serve = serve
    tf.saved_model.save(module, str(directory), signatures={"serving_default": serve.get_concrete_function()})
    return tf.saved_model.load(str(directory))


def _load_saved_model(
    directory: Path, specs: list[InputSpec], source: Path, workdir: Path | None = None
) -> tuple[Any, Path]:
    """Load onnx2tf's SavedModel and check its signature takes the ONNX inputs (names, ranks, dtypes).

    Inputs onnx2tf renamed (``input.1`` -> ``input_1``, ``0`` -> ``arg_0``) are mapped back: the
    returned SavedModel (and its directory) takes the ONNX names.
    """
    from converters._tf import tf

    try:
        loaded = tf.saved_model.load(str(directory))
        signature = loaded.signatures["serving_default"]
    except Exception as exc:  # noqa: BLE001
        raise OnnxConversionError(
            f"{source}: onnx2tf wrote a SavedModel that does not load: {first_line(exc, 300)}"
        ) from None
    if not signature.structured_outputs:
        raise OnnxConversionError(f"{source}: onnx2tf's SavedModel has no outputs")
    _, kwargs = signature.structured_input_signature
    try:
        mapping = map_input_names(specs, kwargs)
    except OnnxConversionError as exc:
        raise OnnxConversionError(f"{source}: {exc}") from None
    for spec in specs:
        have = kwargs[mapping[spec.name]]
        if len(have.shape) != len(spec.shape) or have.dtype.name != spec.dtype:
            raise OnnxConversionError(
                f"{source}: onnx2tf's SavedModel inputs {[(k, tuple(t.shape), t.dtype.name) for k, t in kwargs.items()]} "
                f"do not match the ONNX inputs {[(s.name, s.shape, s.dtype) for s in specs]}"
            )
    if all(kwargs[key].name == name for name, key in mapping.items()):
        return loaded, directory
    target = (workdir or directory.parent) / "saved_model_onnx_names"
    return _rename_inputs(loaded, mapping, target), target


def refuse_select_ops(model: OnnxModel) -> None:
    """Refuse a converted model that needs TensorFlow Select (Flex) ops, naming them.

    LiteRT runs builtin ops only; TensorFlow's converter says which ops are missing when
    Select ops are not allowed, which is how they are found here.
    """
    from converters.tflite_convert import convert

    try:
        convert(model, "float32")
    except ConversionError as exc:
        text = str(exc)
        found = re.findall(r"'tf\.(\w+)' op|\btf\.(\w+)\(", text)
        ops = sorted({a or b for a, b in found} | set(_select_list(text)))
        if ops or "flex op" in text or "Select" in text or "not supported" in text:
            named = ", ".join(ops) if ops else "(see TensorFlow's message)"
            raise OnnxConversionError(
                f"{model.describe()}: converted, but op(s) {named} have no LiteRT builtin kernel (they would "
                f"need TensorFlow Select/Flex ops, e.g. Flex{ops[0] if ops else 'Op'}, which edge_sdk's runtime "
                f"cannot run): {first_line(exc, 200)}"
            ) from None
        raise


def _select_list(text: str) -> list[str]:
    match = re.search(r"TF Select ops: ([\w, ]+)", text)
    return [op.strip() for op in match.group(1).split(",") if op.strip()] if match else []


# ------------------------------------------------------------------------------------------------
# float32.tflite against ONNX Runtime (the convert run's check for an ONNX input)
# ------------------------------------------------------------------------------------------------
def compare_with_onnxruntime(model: OnnxModel, tflite: bytes, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Max abs difference between ``tflite``'s outputs and ONNX Runtime's on ``inputs``, per output and overall.

    Outputs are matched by position after sorting the .tflite's by name (onnx2tf names them
    ``output_0``, ``output_1``... in the ONNX graph's order); a 3-5-D output may come channels-last
    (onnx2tf's choice), which ``output_layout`` records.
    """
    from converters.evaluation import tflite_outputs

    want = model.onnxruntime_outputs(inputs)
    got_by_name = tflite_outputs(tflite, inputs)
    got = [got_by_name[k] for k in sorted(got_by_name, key=_natural)]
    if len(got) != len(want):
        raise OnnxConversionError(f"float32.tflite has {len(got)} outputs, the ONNX model {len(want)}")
    per_output, layouts, scales = [], [], []
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        scales.append(float(np.max(np.abs(w.astype(np.float64)))) if w.size else 0.0)
        # onnx2tf gives 3-5-D outputs channels-last (NHWC for an NCHW output): compare in either layout
        candidates = [("as in ONNX", g)]
        if 3 <= g.ndim <= 5:
            candidates.append(("channels-last", np.moveaxis(g, -1, 1)))
        # onnx2tf may move a unit axis (a recurrent state [2, 1, H] comes out [1, 2, H]): the same values
        if g.shape != w.shape and g.size == w.size and [d for d in g.shape if d != 1] == [d for d in w.shape if d != 1]:
            candidates.append(("unit axes moved", g.reshape(w.shape)))
        errors = [
            (float(np.max(np.abs(c.astype(np.float64) - w.astype(np.float64)))) if c.size else 0.0, layout)
            for layout, c in candidates
            if c.shape == w.shape
        ]
        if not errors:
            raise OnnxConversionError(f"float32.tflite output {i} has shape {g.shape}, ONNX Runtime's {w.shape}")
        error, layout = min(errors)
        per_output.append(error)
        layouts.append(layout)
    return {
        "max_abs_error": max(per_output),
        "per_output": per_output,
        "output_layout": layouts,
        "output_names": model.output_names() if model.path or model.onnx_bytes else [],
        "output_scale": scales,
        "samples": int(len(next(iter(inputs.values())))),
    }


def judge(measured: dict[str, Any], atol: float, max_relative: float) -> list[str]:
    """Why the float32.tflite fails the ONNX Runtime gate (one text per failing output; empty: it passes).

    An output fails beyond ``atol`` (``export.onnx_atol``) times its largest magnitude when that exceeds 1
    (float32 rounding grows with the values: a YOLO box row in pixels), or beyond ``max_relative`` of its largest
    magnitude (at least 1) whatever ``atol`` says: a box row off by 627 on a 0-640 scale is wrong by
    construction, not by float rounding, and a loose ``onnx_atol`` must not promote it.
    """
    names = measured.get("output_names") or []
    reasons = []
    for i, error in enumerate(measured["per_output"]):
        scale = measured.get("output_scale", [0.0] * len(measured["per_output"]))[i]
        label = f"output {i} {names[i]!r}" if i < len(names) else f"output {i}"
        share = f" ({100 * error / scale:.2g}% of its largest value {scale:.3g})" if scale > 0 else ""
        # float rounding is relative: a box row in pixels (0-640) carries 640x the rounding of a 0-1 score
        allowed = atol * max(scale, 1.0)
        if error > allowed:
            per = f" x its largest value {scale:.3g}" if scale > 1.0 else ""
            reasons.append(
                f"{label} max abs error {error:.3g}{share} > {allowed:.3g} ({atol:g} (export.onnx_atol){per})"
            )
        elif error > max_relative * max(scale, 1.0):
            reasons.append(
                f"{label} max abs error {error:.3g}{share} > {max_relative:g} of it "
                "(import.max_relative_error: wrong by construction, whatever export.onnx_atol allows)"
            )
    return reasons


def first_divergence(log: str, model_bytes: bytes, renamed: dict[str, str]) -> dict[str, Any] | None:
    """The first op (graph order) whose output onnx2tf's ``-cotof`` check found unmatched, from its log."""
    import onnx

    clean = re.sub(r"\x1b\[[0-9;]*m", "", log)
    unmatched: dict[str, float] = {}
    for match in re.finditer(
        r"onnx_output_name: (\S+) .*?validate_result:\s+Unmatched\s+max_abs_error: ([^\s]+)", clean
    ):
        try:
            unmatched.setdefault(match.group(1), float(match.group(2)))
        except ValueError:
            unmatched.setdefault(match.group(1), float("nan"))
    if not unmatched:
        return None
    graph = onnx.load_from_string(model_bytes).graph
    for index, node in enumerate(graph.node):
        for out in node.output:
            key = out if out in unmatched else re.sub("^/", "wa/", out)
            if key in unmatched:
                return {
                    "node": renamed.get(node.name, node.name),
                    "op": node.op_type,
                    "output": out,
                    "max_abs_error": unmatched[key],
                    "index": index,
                }
    name, error = next(iter(unmatched.items()))
    return {"node": None, "op": None, "output": name, "max_abs_error": error, "index": None}


def find_divergence(model: OnnxModel, budget_s: float) -> dict[str, Any]:
    """Run onnx2tf again with ``-cotof`` (every op against ONNX Runtime) within ``budget_s``; the first op that
    diverges, or why it was not found."""
    if budget_s <= 0 or not model.prepared_bytes:
        return {"found": False, "why": "import.find_divergence = 0"}
    folder = require_side_folder()
    with tempfile.TemporaryDirectory(prefix="edge-sdk-cotof-") as tmp:
        workdir = Path(tmp)
        copy = workdir / "model.onnx"
        copy.write_bytes(model.prepared_bytes)
        try:
            run = run_onnx2tf(
                copy,
                workdir,
                [],
                folder,
                timeout=int(budget_s),
                options=list(model.onnx2tf_options) + ["-cotof"],
                output="cotof",
            )
        except OnnxConversionError as exc:
            return {"found": False, "why": first_line(exc, 200)}
        hit = first_divergence(run.log, model.prepared_bytes, model.renamed_nodes)
    if hit is None:
        return {"found": False, "why": "onnx2tf's op-by-op check found every op within its tolerance"}
    return dict(hit, found=True)


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


@dataclasses.dataclass
class OnnxInputCheck(Comparison):
    """summary.json's ``comparisons["onnx_input"]``: how the ONNX input was converted and float32.tflite
    against ONNX Runtime."""

    key: ClassVar[str] = "onnx_input"
    line_order: ClassVar[int] = 40
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.record

    def lines(self) -> list[str]:
        o = self.record
        if o.get("max_abs_error") is None:
            return []
        layouts = ", ".join(f"{k} {v}" for k, v in (o.get("input_layout") or {}).items())
        line = (
            f"onnx: float32.tflite vs ONNX Runtime max abs error {o['max_abs_error']:.3g} on {o['samples']} "
            f"samples (tolerance {o['tolerance']:g}); inputs keep the ONNX layout ({layouts})"
        )
        if o.get("input_shapes"):
            line += "; fixed shapes " + ", ".join(f"{k}={','.join(map(str, v))}" for k, v in o["input_shapes"].items())
        return [line]


def record_layout(ctx: RunContext) -> None:
    """Say in every manifest of the run that inputs keep the ONNX layout (e.g. NCHW), when the data gave no preprocessing.

    ``preprocessing`` becomes ``{"scale": 1, "offset": 0, "layout": ...}``: the .tflite takes the
    arrays ONNX Runtime takes, as they are.
    """
    model = cast(OnnxModel, ctx.model)  # the load stage put an OnnxModel there for an ONNX input
    layouts = {v for v in model.input_layouts.values() if v != "as in ONNX"}
    if ctx.data.preprocessing is None and len(layouts) == 1:
        ctx.data.preprocessing = {"scale": 1.0, "offset": 0.0, "layout": layouts.pop()}


def check_onnx_input(ctx: RunContext) -> None:
    """For an ONNX input: compare ``float32.tflite`` with ONNX Runtime and record it; a gate failure beyond tolerance.

    ``ctx``: the run context after the load stage wrote ``ctx.base``. The tolerance is the
    recipe's ``export.onnx_atol`` (the largest allowed |ONNX - TFLite| difference) and
    ``import.max_relative_error``. The result goes into ``comparisons["onnx_input"]``, the float32
    manifest's metrics and the summary. On failure the message names each failing output with its
    error and the first op that diverges (onnx2tf ``-cotof``, within ``import.find_divergence``
    seconds), and the file and a report go to ``rejected/`` in staging (kept with ``--keep-rejected``).
    """
    from converters.gate import GateFailedError
    from edge_sdk.fileio import atomic_write_bytes, atomic_write_text
    from edge_sdk.manifest import manifest_path_for, write_manifest

    model = cast(OnnxModel, ctx.model)  # the load stage put an OnnxModel there for an ONNX input
    options = ctx.recipe.import_
    check_x, check_on = ctx.check_data()  # the same data every artifact is checked on
    record: dict[str, Any] = {
        "converter": f"onnx2tf {ONNX2TF_VERSION} (child process) -> SavedModel -> TensorFlow TFLiteConverter",
        "onnx2tf_seconds": model.onnx2tf_seconds,
        "onnxsim_ran": model.onnxsim_ran,
        "gelu_patterns_fused": model.gelu_fused,
        "input_layout": model.input_layouts,
        "tolerance": ctx.recipe.export.onnx_atol,
        "max_relative_error": options.max_relative_error,
        **model.prepared,
    }
    if not model.onnxsim_ran:
        ctx.warn("onnx2tf did not run onnxsim on the model (see onnx2tf's log); the conversion went on unsimplified")
    reasons: list[str] = []
    if check_x is None:
        ctx.warn("ONNX input without data (--calibration or --eval): float32.tflite was not compared with ONNX Runtime")
    else:
        measured = compare_with_onnxruntime(model, (ctx.staging / ctx.base.file).read_bytes(), check_x)
        reasons = judge(measured, record["tolerance"], options.max_relative_error)
        record.update(measured, data=check_on, passed=not reasons)
        ctx.base.metrics["onnxruntime_max_abs_error"] = measured["max_abs_error"]
    ctx.base.manifest["source"] = dict(record, format="onnx")
    ctx.base.manifest["metrics"] = ctx.base.metrics
    write_manifest(ctx.base.manifest, manifest_path_for(ctx.staging / ctx.base.file))
    ctx.record(OnnxInputCheck(record))
    if not reasons:
        return
    # an op-by-op search only helps when the file is wrong, not when float rounding misses a tight tolerance
    wrong = any(
        e > max(1e-3, 10 * record["tolerance"]) * max(scale, 1.0)
        for e, scale in zip(
            record["per_output"], record.get("output_scale") or [1.0] * len(record["per_output"]), strict=False
        )
    )
    divergence = (
        find_divergence(model, options.find_divergence)
        if wrong
        else {"found": False, "why": "errors are float rounding, not a wrong op"}
    )
    record["divergence"] = divergence
    rejected = ctx.staging / "rejected"
    rejected.mkdir(exist_ok=True)
    atomic_write_bytes(rejected / "float32.tflite", (ctx.staging / ctx.base.file).read_bytes())
    atomic_write_text(
        rejected / "report.json",
        json.dumps({"reasons": reasons, "onnx_input": record, "source": str(model.path)}, indent=2, default=str) + "\n",
    )
    if divergence.get("found") and divergence.get("node"):
        where = (
            f"; first op that diverges: {divergence['op']} '{divergence['node']}' (output "
            f"{divergence['output']}, max abs error {divergence['max_abs_error']:.3g}, onnx2tf -cotof)"
        )
    elif divergence.get("found"):
        where = f"; first tensor that diverges: {divergence['output']} (onnx2tf -cotof)"
    else:
        where = f"; first diverging op not found ({divergence['why']})"
    keep = "kept in rejected/ with --keep-rejected" if not options.keep_rejected else "kept with the report"
    raise GateFailedError(
        f"FAIL: float32.tflite differs from ONNX Runtime by {record['max_abs_error']:.3g} (max abs) on "
        f"{record['samples']} samples, expected <= {record['tolerance']:g} (export.onnx_atol): "
        f"{'; '.join(reasons)}{where}; nothing promoted (the file and a report: {keep})",
        report={"onnx_input": record, "rejected": str(rejected)},
    )
