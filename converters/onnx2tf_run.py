"""onnx2tf itself: its side folder, the child process that runs it, and what its log says.

onnx2tf pins TensorFlow 2.19 and numpy 1.26, so make setup installs it into a side folder
(:func:`side_folder`) and it runs in a child process with that folder on PYTHONPATH; its
failures come back as :class:`OnnxConversionError` naming the last errors of its log.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from converters.errors import ConversionError, ModelLoadError

ONNX2TF_VERSION = "1.29.24"
SIDE_FOLDER_ENV = "EDGE_SDK_ONNX2TF_DIR"
SETUP_COMMAND = "make setup"
CHILD_TIMEOUT_S = 1800
# what onnx2tf looks for in its working directory before it downloads sample images
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


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
