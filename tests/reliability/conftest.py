"""Fixtures for the reliability tests: a tiny real model trained on scikit-learn digits.

Built once per session with tf_keras and tf.lite.TFLiteConverter (float32 and
full int8), each written with its manifest, the way `edge-sdk convert` ships them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from training.tiny_models import build_digits_models  # shared with the fuzz command


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory) -> dict[str, Path]:
    """name -> path: ``float32`` and ``int8`` .tflite (each with model.json beside), and ``x`` (100 images .npy)."""
    return build_digits_models(tmp_path_factory.mktemp("reliability_models"))


@pytest.fixture
def model_copy(digits_models, tmp_path):
    """Copy a model and its manifest into a fresh directory: ``model_copy("int8") -> path``."""

    def copy(name: str) -> Path:
        src = digits_models[name]
        dst = tmp_path / src.name
        shutil.copy(src, dst)
        shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
        return dst

    return copy


@pytest.fixture(scope="session")
def digits_x(digits_models) -> np.ndarray:
    """100 held-out digits images, NHWC float32 in [0, 1]."""
    return np.load(digits_models["x"])


@pytest.fixture(scope="session")
def keypair(tmp_path_factory) -> dict[str, Path]:
    """An Ed25519 key pair written by edge_sdk.signing: ``{"key": private PEM path, "pub": public PEM path}``."""
    from edge_sdk.signing import write_keypair

    info = write_keypair(tmp_path_factory.mktemp("keys"), "test")
    return {"key": Path(info["private_key"]), "pub": Path(info["public_key"])}


@pytest.fixture
def signed_copy(model_copy, keypair):
    """A copy of a model with its manifest and a fresh ``MODEL.sig``: ``signed_copy("int8") -> path``."""
    from edge_sdk.signing import sign_model

    def make(name: str) -> Path:
        path = model_copy(name)
        sign_model(path, keypair["key"])
        return path

    return make


CRASH_HOOK = """
import os
if os.environ.get("EDGE_SDK_TEST_CRASH_HOOK"):
    import faulthandler
    import edge_sdk.loader as _loader
    import edge_sdk.model as _model

    _mode = os.environ["EDGE_SDK_TEST_CRASH_HOOK"]
    _build, _read = _model.Model._build_interpreter, _loader._read_model_source

    def _build_interpreter(self):
        if _mode == "segv":
            faulthandler._sigsegv()  # a real SIGSEGV, as tflite-runtime gives on corrupt files
        if _mode == "hang":
            import time
            time.sleep(3600)
        return _build(self)

    def _read_model_source(model, max_model_bytes):
        if _mode.startswith("size%") and isinstance(model, bytes):
            modulus, remainder = (int(v) for v in _mode[5:].split("="))
            if len(model) % modulus == remainder:
                faulthandler._sigsegv()
        return _read(model, max_model_bytes)

    _model.Model._build_interpreter = _build_interpreter
    _loader._read_model_source = _read_model_source
"""


@pytest.fixture
def crash_hook(tmp_path, monkeypatch):
    """Make every *child* Python process crash (or hang) inside the interpreter build.

    Writes a ``sitecustomize.py`` onto PYTHONPATH; it acts only when
    ``EDGE_SDK_TEST_CRASH_HOOK`` is set (``segv``, ``hang``, or ``size%M=R`` to
    crash only on models whose byte size is R modulo M). This process is
    unaffected: it has already started. Returns a setter for the mode.
    """
    import os

    hook_dir = tmp_path / "crash_hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(CRASH_HOOK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")])))

    def set_mode(mode: str) -> None:
        monkeypatch.setenv("EDGE_SDK_TEST_CRASH_HOOK", mode)

    return set_mode
