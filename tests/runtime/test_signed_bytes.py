"""A signed model downloaded into memory: load(bytes, public_key=..., signature=...)."""

import subprocess
import sys

import pytest

import edge_sdk

pytest.importorskip("cryptography")


def test_bytes_with_their_signature(runtime_models, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(runtime_models["int8"].read_bytes())
    cli = [sys.executable, "-m", "edge_sdk"]
    subprocess.run(cli + ["keygen", "-o", str(tmp_path / "keys")], check=True, capture_output=True)
    subprocess.run(
        cli + ["sign", str(model), "--key", str(tmp_path / "keys" / "edge-sdk.key")], check=True, capture_output=True
    )
    data, envelope = model.read_bytes(), (tmp_path / "m.tflite.sig").read_bytes()
    public = tmp_path / "keys" / "edge-sdk.pub"
    assert edge_sdk.load(data, public_key=public, signature=envelope).sha256 == edge_sdk.load(model).sha256
    altered = bytearray(data)
    altered[len(data) // 2] ^= 1
    with pytest.raises(edge_sdk.SignatureError, match="altered after signing"):
        edge_sdk.load(bytes(altered), public_key=public, signature=envelope)
    with pytest.raises(edge_sdk.SignatureError, match="given as bytes"):
        edge_sdk.load(data, public_key=public)
