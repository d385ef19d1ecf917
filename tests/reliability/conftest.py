"""Fixtures for the reliability tests: a tiny real model trained on scikit-learn digits.

Built once per session with tf_keras and tf.lite.TFLiteConverter (float32 and
full int8), each written with its manifest, the way `edge-sdk convert` ships them.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict

import numpy as np
import pytest


def _digits(n: int = 600):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    return x[:n], digits.target[:n].astype(np.int64)


def build_digits_models(out: Path) -> Dict[str, Path]:
    """Train a small CNN on digits for a few epochs; write float32.tflite and int8.tflite with manifests."""
    import tensorflow as tf
    import tf_keras as keras

    import edge_sdk
    from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest

    tf.random.set_seed(0)
    x, y = _digits()
    model = keras.Sequential([
        keras.layers.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="probs"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:500], y[:500], epochs=4, batch_size=32, verbose=0)

    def representative():
        for i in range(100):
            yield [x[i:i + 1]]

    float_conv = tf.lite.TFLiteConverter.from_keras_model(model)
    int8_conv = tf.lite.TFLiteConverter.from_keras_model(model)
    int8_conv.optimizations = [tf.lite.Optimize.DEFAULT]
    int8_conv.representative_dataset = representative
    int8_conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    int8_conv.inference_input_type = tf.int8
    int8_conv.inference_output_type = tf.int8

    paths: Dict[str, Path] = {}
    for name, conv, kind in (("float32", float_conv, "float32"), ("int8", int8_conv, "int8")):
        data = conv.convert()
        path = out / f"{name}.tflite"
        path.write_bytes(data)
        loaded = edge_sdk.load(data)
        accuracy = float((loaded.predict(x[500:]).argmax(axis=1) == y[500:]).mean())
        manifest = build_manifest(data, path.name, kind=kind, stage="quantize" if kind == "int8" else "export",
                                  inputs=loaded.inputs, outputs=loaded.outputs,
                                  labels=[str(i) for i in range(10)],
                                  preprocessing={"scale": 1.0 / 16.0, "offset": 0.0},
                                  metrics={"accuracy": accuracy})
        write_manifest(manifest, manifest_path_for(path))
        paths[name] = path
    np.save(out / "x.npy", x[500:600])
    paths["x"] = out / "x.npy"
    return paths


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory) -> Dict[str, Path]:
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
def keypair(tmp_path_factory) -> Dict[str, Path]:
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


CRASH_HOOK = '''
import os
if os.environ.get("EDGE_SDK_TEST_CRASH_HOOK"):
    import faulthandler
    import edge_sdk.model as _model

    _mode = os.environ["EDGE_SDK_TEST_CRASH_HOOK"]
    _build, _read = _model.Model._build_interpreter, _model._read_model_source

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
    _model._read_model_source = _read_model_source
'''


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
