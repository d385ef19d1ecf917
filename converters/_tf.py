"""Import TensorFlow and friends in the one order that works.

tfmot only accepts tf_keras models and sets ``TF_USE_LEGACY_KERAS=1`` when
imported; doing that before TensorFlow is first imported makes ``tf.keras`` and
``tf.lite.TFLiteConverter.from_keras_model`` agree with tf_keras everywhere in
the process. TensorFlow's C++ log chatter is turned down (TF_CPP_MIN_LOG_LEVEL
2 unless set), including the absl lines printed at import that ignore the level.
A stack that is installed but raises while importing (a missing shared library,
an incompatible numpy or protobuf) gives :class:`BrokenExtraError`, one line
naming the package, instead of a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import traceback

from edge_sdk.console import first_line
from edge_sdk.errors import MissingExtraError

# absl's C++ logging writes these at import before TF_CPP_MIN_LOG_LEVEL applies
# (tensorflow/tensorflow#100442): a banner, then "I..." and "W..." lines. The first
# device query adds an error line on machines without a GPU driver, the normal case here.
_BANNER = "WARNING: All log messages before absl::InitializeLog()"
_NO_GPU_DRIVER = "failed call to cuInit"


def _is_chatter(line: str, level: str) -> bool:
    """Whether ``line`` is start-up noise at TF_CPP_MIN_LOG_LEVEL ``level`` (1 hides info, 2 warnings too)."""
    try:
        number = int(level)
    except ValueError:
        number = 2
    if number >= 1 and (line.startswith((_BANNER, "I0000 ")) or _NO_GPU_DRIVER in line):
        return True
    return number >= 2 and line.startswith("W0000 ")


@contextlib.contextmanager
def _native_stderr_filtered(level: str):
    """Capture what native code writes to fd 2 meanwhile; pass on every line that is not chatter."""
    if level == "0":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): leave it alone
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not _is_chatter(line, level):
                    sys.stderr.write(line)


os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_PACKAGES = {
    "tensorflow_model_optimization": "tensorflow-model-optimization",
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "keras": "keras",
}


class BrokenExtraError(MissingExtraError):
    """TensorFlow (or tf_keras / tfmot) is installed but raises while it is imported."""


def _culprit(exc: BaseException, importing: str) -> str:
    """The package whose own code raised: the innermost traceback frame inside one of them."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        parts = frame.filename.replace("\\", "/").split("/")
        for module in _PACKAGES:
            if module in parts[:-1]:
                return module
    return importing


def _broken(exc: BaseException, importing: str) -> BrokenExtraError:
    module = _culprit(exc, importing)
    return BrokenExtraError(
        f"{module} is installed but failed to import ({type(exc).__name__}: {first_line(exc, 300)}); "
        f"the 'convert' extra needs a working TensorFlow stack: reinstall it with "
        f"pip install --force-reinstall 'edge-sdk[convert]' (or fix {_PACKAGES[module]})"
    )


os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_importing = "tensorflow_model_optimization"
try:
    with _native_stderr_filtered(os.environ["TF_CPP_MIN_LOG_LEVEL"]):
        import tensorflow_model_optimization as tfmot  # noqa: E402  (must precede tensorflow)

        _importing = "tensorflow"
        import tensorflow as tf  # noqa: E402 - imported after the environment guard above is set

        _importing = "tf_keras"
        import tf_keras  # noqa: E402 - imported after the environment guard above is set

        tf.config.list_physical_devices()  # the CUDA probe, here where its log line is filtered
except Exception as _exc:  # noqa: BLE001 - a half-installed or incompatible stack: one line, not a traceback
    raise _broken(_exc, _importing) from None

tf.get_logger().setLevel("ERROR")

# Reproducible builds: the same model, recipe, data and seed give byte-identical .tflite files.
# Op determinism makes TensorFlow's kernels and tf.data (parallel map/interleave, random ops in
# them) run in one fixed order; the seeds come from each run (tf_keras.utils.set_random_seed).
# EDGE_SDK_DETERMINISTIC=0 turns it off for speed (see docs/training.md for what it costs).
DETERMINISTIC = os.environ.get("EDGE_SDK_DETERMINISTIC", "1").strip().lower() not in ("0", "false", "no", "off")
if DETERMINISTIC:
    tf.config.experimental.enable_op_determinism()

__all__ = ["tf", "tf_keras", "tfmot", "DETERMINISTIC"]
