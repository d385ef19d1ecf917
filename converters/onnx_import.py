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
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from converters.errors import ConversionError, ModelLoadError, first_line
from converters.loading import KIND_SAVEDMODEL, InputSpec, LoadedModel

ONNX2TF_VERSION = "1.29.24"
SIDE_FOLDER_ENV = "EDGE_SDK_ONNX2TF_DIR"
SETUP_COMMAND = "make setup"
CHILD_TIMEOUT_S = 1800
GELU_OPSET = 20  # ONNX Gelu exists from opset 20 on
# what onnx2tf looks for in its working directory before it downloads sample images
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
NOT_KERAS = ("an ONNX model converted by onnx2tf has no Keras layers to prune or fine-tune; "
             "post-training quantization applies")


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
    missing = [what for what, path in (("onnx2tf", folder / "onnx2tf" / "__init__.py"),
                                       ("onnxsim", folder / "bin" / "onnxsim"))
               if not path.is_file()]
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
MAX_ONNX_BYTES = 2 ** 31 - 1


def read_onnx(path: Path) -> Any:
    """The checked ``onnx.ModelProto`` in ``path``; a clear error for a file that is not ONNX."""
    import onnx

    from edge_sdk.fileio import not_a_regular_file

    problem = not_a_regular_file(path)  # a FIFO would block for ever, /dev/zero be read until MemoryError
    if problem:
        raise ModelLoadError(f"{path} {problem}; expected an ONNX model file")
    if Path(path).stat().st_size > MAX_ONNX_BYTES:
        raise ModelLoadError(f"{path} is {Path(path).stat().st_size:,} bytes; an ONNX protobuf cannot exceed "
                             f"{MAX_ONNX_BYTES:,} bytes (2 GiB): larger models keep their weights as external data")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf and the checker raise many types
        raise ModelLoadError(f"{path}: expected an ONNX model, but it would not load or check: "
                             f"{first_line(exc, 300)}") from None
    if not model.graph.node:
        raise ModelLoadError(f"{path}: expected an ONNX model with nodes, got an empty graph")
    return model


def onnx_input_specs(model: Any) -> List[InputSpec]:
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


def refuse_unsupported_ops(model: Any, supported: frozenset, source: str) -> None:
    """Raise :class:`OnnxConversionError` naming the ops onnx2tf has no converter for (custom domains too)."""
    unknown: Dict[str, List[str]] = {}
    for node in model.graph.node:
        custom = node.domain not in ("", "ai.onnx")
        if custom or node.op_type not in supported:
            label = f"{node.domain}::{node.op_type}" if custom else node.op_type
            unknown.setdefault(label, []).append(node.name or "(unnamed)")
    if unknown:
        shown = ", ".join(f"{op} ({len(nodes)} node{'s' * (len(nodes) > 1)}, e.g. {nodes[0]})"
                          for op, nodes in sorted(unknown.items()))
        raise OnnxConversionError(f"{source}: unsupported ONNX op(s) {shown}: onnx2tf {ONNX2TF_VERSION} has no "
                                  "converter for them, so the model cannot become a .tflite")


def _constants(model: Any) -> Dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _scalar(constants: Dict[str, np.ndarray], name: str) -> Optional[float]:
    value = constants.get(name)
    if value is None or value.size != 1:
        return None
    return float(np.asarray(value, dtype=np.float64).reshape(()))


def _close(value: Optional[float], target: float) -> bool:
    return value is not None and abs(value - target) <= 1e-3 * abs(target)


def fuse_gelu(model: Any) -> Tuple[Any, int]:
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
    consumers: Dict[str, List[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}

    def only_consumer(name: str, op_type: str) -> Optional[Any]:
        users = consumers.get(name, [])
        if name in graph_outputs or len(users) != 1 or users[0].op_type != op_type:
            return None
        return users[0]

    def other(node: Any, name: str) -> Optional[str]:
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
            if (half is None or half.op_type != "Mul" or only_consumer(partner, "Mul") is None
                    or x not in half.input or not _close(_scalar(constants, other(half, x) or ""), 0.5)):
                continue
            matches.append(([scale, erf, add, half, mul], x, mul.output[0]))
    if not matches:
        return model, 0
    if default_opset(model) < GELU_OPSET:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, GELU_OPSET)
        except Exception as exc:  # noqa: BLE001
            raise OnnxConversionError(f"the model has PyTorch's GELU pattern (Div/Erf/Add/Mul/Mul), which must become "
                                      f"ONNX Gelu (opset {GELU_OPSET}), but moving it from opset "
                                      f"{default_opset(model)} failed: {first_line(exc, 200)}") from None
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
        crops.append(photo[top:top + 256:2, left:left + 256:2, :3])
    return np.stack(crops).astype(np.float32)


@dataclasses.dataclass
class Onnx2tfRun:
    """What one onnx2tf child run did: its SavedModel and log, and whether onnxsim ran."""

    saved_model: Path
    log: str
    onnxsim_ran: bool
    seconds: float


def _child_env(folder: Path) -> Dict[str, str]:
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


def run_onnx2tf(onnx_path: Path, workdir: Path, keep_layout: Sequence[str], folder: Path,
                timeout: int = CHILD_TIMEOUT_S) -> Onnx2tfRun:
    """Convert ``onnx_path`` (a copy: onnx2tf overwrites it) to a SavedModel under ``workdir`` in a child process.

    ``keep_layout``: input names whose layout stays as in ONNX (onnx2tf ``-k``); ``folder``: the side folder.
    """
    import time

    np.save(workdir / ONNX2TF_SAMPLE_FILE, _sample_images())
    out = workdir / "saved_model"
    command = [sys.executable, "-m", "onnx2tf", "-i", str(onnx_path), "-o", str(out), "-osd"]
    if keep_layout:
        command += ["-k", *keep_layout]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=workdir, env=_child_env(folder), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise OnnxConversionError(f"onnx2tf did not finish converting {onnx_path.name} in {timeout} s") from None
    log = done.stdout.decode("utf-8", "replace")
    (workdir / "onnx2tf.log").write_text(log)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        why = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        raise OnnxConversionError(f"onnx2tf {ONNX2TF_VERSION} could not convert the model ({why}): "
                                  f"{_last_errors(log)}")
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
    input_layouts: Dict[str, str] = dataclasses.field(default_factory=dict)
    _session: Any = None

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """The user's .onnx path."""
        return str(self.path) if self.path else "the ONNX model"

    def count_params(self) -> Optional[int]:
        """Elements of the ONNX initializers (the weights)."""
        import onnx

        return int(sum(int(np.prod(t.dims)) for t in onnx.load_from_string(self.onnx_bytes).graph.initializer))

    def session(self) -> Any:
        """An ONNX Runtime CPU session of the user's model (built once)."""
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(self.onnx_bytes, providers=["CPUExecutionProvider"])
        return self._session

    def onnxruntime_outputs(self, inputs: Dict[str, np.ndarray], batch_size: int = 256) -> List[np.ndarray]:
        """Every output of the ONNX model on ``{input name: array}``, in the graph's output order."""
        session = self.session()
        names = [i.name for i in session.get_inputs()]
        # onnx2tf keeps input names, save for characters a SavedModel cannot hold (':' and '/')
        by_sanitized = {re.sub(r"[:/]", "_", n).lstrip("_"): n for n in names}
        feed_names = {s.name: s.name if s.name in names else by_sanitized.get(s.name.lstrip("_"), s.name)
                      for s in self.inputs}
        n = len(next(iter(inputs.values())))
        # a model exported with a fixed batch (PyTorch's default: 1) takes batches of exactly that size
        fixed = {d for d in (i.shape[0] if i.shape else None for i in session.get_inputs()) if isinstance(d, int)}
        if fixed:
            batch_size = min(fixed)
        parts: List[List[np.ndarray]] = []
        for start in range(0, n, batch_size):
            feed = {feed_names.get(k, k): np.asarray(v[start:start + batch_size]) for k, v in inputs.items()}
            for i, out in enumerate(session.run(None, feed)):
                if i == len(parts):
                    parts.append([])
                parts[i].append(np.asarray(out))
        return [np.concatenate(p, axis=0) for p in parts]

    def predict(self, inputs: Dict[str, np.ndarray], batch_size: int = 256) -> np.ndarray:
        """The ONNX model's first output (ONNX Runtime) on ``{input name: array}``."""
        return self.onnxruntime_outputs(inputs, batch_size)[0]


def _input_layout(spec: InputSpec) -> str:
    rank = len(spec.shape)
    return {3: "NCW", 4: "NCHW", 5: "NCDHW"}.get(rank, "as in ONNX") if rank in (3, 4, 5) else "as in ONNX"


def load_onnx(path: Path) -> OnnxModel:
    """Convert the ONNX model at ``path`` into a SavedModel (onnx2tf, child process) and wrap it.

    Refuses, with one line each: a missing side folder (naming ``make setup``), a file that is
    not ONNX, ops onnx2tf cannot convert, a conversion that failed or wrote nothing usable, and
    a model LiteRT could only run through TensorFlow Select ops (naming them).
    """
    path = Path(path)
    model = read_onnx(path)
    folder = require_side_folder()
    specs = onnx_input_specs(model)
    if not specs:
        raise ModelLoadError(f"{path}: expected an ONNX model with at least one input, got none")
    refuse_unsupported_ops(model, supported_ops(folder), str(path))
    model, fused = fuse_gelu(model)
    tmp = tempfile.TemporaryDirectory(prefix="edge-sdk-onnx-")
    workdir = Path(tmp.name)
    copy = workdir / "model.onnx"
    copy.write_bytes(model.SerializeToString())  # onnx2tf overwrites its input: never the user's file
    keep = [s.name for s in specs if len(s.shape) in (3, 4, 5)]
    run = run_onnx2tf(copy, workdir, keep, folder)
    loaded = _load_saved_model(run.saved_model, specs, path)
    result = OnnxModel(KIND_SAVEDMODEL, path, loaded, _saved_model_specs(loaded), _saved_model_dir=run.saved_model,
                       _tmp=tmp, not_keras_because=NOT_KERAS, onnx_bytes=path.read_bytes(), gelu_fused=fused,
                       onnxsim_ran=run.onnxsim_ran, onnx2tf_seconds=round(run.seconds, 1),
                       input_layouts={s.name: _input_layout(s) for s in specs})
    refuse_select_ops(result)
    return result


def _saved_model_specs(loaded: Any) -> List[InputSpec]:
    _, kwargs = loaded.signatures["serving_default"].structured_input_signature
    return [InputSpec(name, tuple(None if d is None else int(d) for d in spec.shape), spec.dtype.name)
            for name, spec in sorted(kwargs.items())]


def _load_saved_model(directory: Path, specs: List[InputSpec], source: Path) -> Any:
    """Load onnx2tf's SavedModel and check its signature takes the ONNX inputs (names, ranks, dtypes)."""
    from converters._tf import tf

    try:
        loaded = tf.saved_model.load(str(directory))
        signature = loaded.signatures["serving_default"]
    except Exception as exc:  # noqa: BLE001
        raise OnnxConversionError(f"{source}: onnx2tf wrote a SavedModel that does not load: "
                                  f"{first_line(exc, 300)}") from None
    got = {s.name: s for s in _saved_model_specs(loaded)}
    for spec in specs:
        have = got.get(spec.name)
        if have is None or len(have.shape) != len(spec.shape) or have.dtype != spec.dtype:
            raise OnnxConversionError(
                f"{source}: onnx2tf's SavedModel inputs {[(s.name, s.shape, s.dtype) for s in got.values()]} "
                f"do not match the ONNX inputs {[(s.name, s.shape, s.dtype) for s in specs]}")
    if not signature.structured_outputs:
        raise OnnxConversionError(f"{source}: onnx2tf's SavedModel has no outputs")
    return loaded


def refuse_select_ops(model: OnnxModel) -> None:
    """Refuse a converted model that needs TensorFlow Select (Flex) ops, naming them.

    LiteRT runs builtin ops only; TensorFlow's converter says which ops are missing when
    Select ops are not allowed, which is how they are found here.
    """
    from converters.quantize import convert

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
                f"cannot run): {first_line(exc, 200)}") from None
        raise


def _select_list(text: str) -> List[str]:
    match = re.search(r"TF Select ops: ([\w, ]+)", text)
    return [op.strip() for op in match.group(1).split(",") if op.strip()] if match else []


# ------------------------------------------------------------------------------------------------
# float32.tflite against ONNX Runtime (the convert run's check for an ONNX input)
# ------------------------------------------------------------------------------------------------
def compare_with_onnxruntime(model: OnnxModel, tflite: bytes, inputs: Dict[str, np.ndarray]) -> Dict[str, Any]:
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
    per_output, layouts = [], []
    for i, (g, w) in enumerate(zip(got, want)):
        # onnx2tf gives 3-5-D outputs channels-last (NHWC for an NCHW output): compare in either layout
        candidates = [("as in ONNX", g)]
        if 3 <= g.ndim <= 5:
            candidates.append(("channels-last", np.moveaxis(g, -1, 1)))
        errors = [(float(np.max(np.abs(c.astype(np.float64) - w.astype(np.float64)))) if c.size else 0.0, layout)
                  for layout, c in candidates if c.shape == w.shape]
        if not errors:
            raise OnnxConversionError(f"float32.tflite output {i} has shape {g.shape}, ONNX Runtime's {w.shape}")
        error, layout = min(errors)
        per_output.append(error)
        layouts.append(layout)
    return {"max_abs_error": max(per_output), "per_output": per_output, "output_layout": layouts,
            "samples": int(len(next(iter(inputs.values()))))}


def _natural(name: str) -> Tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def record_layout(ctx: Any) -> None:
    """Say in every manifest of the run that inputs keep the ONNX layout (e.g. NCHW), when the data gave no preprocessing.

    ``preprocessing`` becomes ``{"scale": 1, "offset": 0, "layout": ...}``: the .tflite takes the
    arrays ONNX Runtime takes, as they are.
    """
    model: OnnxModel = ctx.model
    layouts = {v for v in model.input_layouts.values() if v != "as in ONNX"}
    if ctx.data.preprocessing is None and len(layouts) == 1:
        ctx.data.preprocessing = {"scale": 1.0, "offset": 0.0, "layout": layouts.pop()}


def check_onnx_input(ctx: Any) -> None:
    """For an ONNX input: compare ``float32.tflite`` with ONNX Runtime and record it; a gate failure beyond tolerance.

    ``ctx``: the run context after the load stage wrote ``ctx.base``. The tolerance is the
    recipe's ``export.onnx_atol`` (the largest allowed |ONNX - TFLite| difference). The result
    goes into ``comparisons["onnx_input"]``, the float32 manifest's metrics and the summary.
    """
    from converters.gate import GateFailedError
    from edge_sdk.manifest import manifest_path_for, write_manifest

    model: OnnxModel = ctx.model
    check_x, check_on = ctx._check_data()  # noqa: SLF001 - the same data every artifact is checked on
    record: Dict[str, Any] = {
        "converter": f"onnx2tf {ONNX2TF_VERSION} (child process) -> SavedModel -> TensorFlow TFLiteConverter",
        "onnx2tf_seconds": model.onnx2tf_seconds, "onnxsim_ran": model.onnxsim_ran,
        "gelu_patterns_fused": model.gelu_fused, "input_layout": model.input_layouts,
        "tolerance": ctx.recipe.export.onnx_atol,
    }
    if not model.onnxsim_ran:
        ctx.warn("onnx2tf did not run onnxsim on the model (see onnx2tf's log); the conversion went on unsimplified")
    if check_x is None:
        ctx.warn("ONNX input without data (--calibration or --eval): float32.tflite was not compared with ONNX Runtime")
    else:
        measured = compare_with_onnxruntime(model, (ctx.staging / ctx.base.file).read_bytes(), check_x)
        record.update(measured, data=check_on, passed=measured["max_abs_error"] <= record["tolerance"])
        ctx.base.metrics["onnxruntime_max_abs_error"] = measured["max_abs_error"]
    ctx.base.manifest["source"] = dict(record, format="onnx")
    ctx.base.manifest["metrics"] = ctx.base.metrics
    write_manifest(ctx.base.manifest, manifest_path_for(ctx.staging / ctx.base.file))
    ctx.comparisons["onnx_input"] = record
    if record.get("passed") is False:
        raise GateFailedError(
            f"FAIL: float32.tflite differs from ONNX Runtime by {record['max_abs_error']:.3g} (max abs) on "
            f"{record['samples']} samples, expected <= {record['tolerance']:g} (export.onnx_atol); nothing promoted")
