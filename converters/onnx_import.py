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
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from converters.context import Comparison, RunContext
from converters.errors import ConversionError, ModelLoadError, first_line
from converters.model_files import KIND_SAVEDMODEL, InputSpec, LoadedModel
from converters.onnx2tf_run import (
    ONNX2TF_VERSION,
    OnnxConversionError,
    _kat_names,
    first_divergence,
    onnx2tf_options,
    require_side_folder,
    run_onnx2tf,
    supported_ops,
)
from converters.onnx_checks import (
    RECURRENT,
    onnx_input_specs,
    recurrent_state_refusal,
    refuse_control_flow,
    refuse_dynamic_dims,
    refuse_string_inputs,
    refuse_unsupported_ops,
    walk_nodes,
)
from converters.onnx_rewrites import (
    constants_to_initializers,
    fix_input_shapes,
    fold_constant_ifs,
    fuse_gelu,
    make_inputs_constant,
    sanitize_node_names,
    split_before_concat,
)

NOT_KERAS = (
    "an ONNX model converted by onnx2tf has no Keras layers to prune or fine-tune; post-training quantization applies"
)


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
    except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
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
