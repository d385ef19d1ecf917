"""Files that are not what they claim (issue 26 section 3): duplicate keys and deep nesting in manifests,
signatures, golden references and recipes; a manifest path that is a directory, FIFO or device; an ONNX
model or a key that is a FIFO or a device."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.errors import ManifestError, SignatureError
from edge_sdk.jsonio import MAX_DEPTH, loads_strict, nesting_depth


def test_the_strict_reader_refuses_duplicates_and_depth_and_ignores_brackets_in_strings():
    assert loads_strict('{"a": "[[[{{{", "b": [1, {"c": 2}]}', "doc", ManifestError) == {
        "a": "[[[{{{",
        "b": [1, {"c": 2}],
    }
    assert nesting_depth('{"a": "\\"[[[", "b": [[1]]}') == 3
    with pytest.raises(ManifestError, match=r"doc has the key 'a' more than once"):
        loads_strict('{"x": {"a": 1, "a": 1}}', "doc", ManifestError)
    with pytest.raises(ManifestError, match=rf"doc nests 100000 levels deep; expected at most {MAX_DEPTH}"):
        loads_strict("[" * 100_000 + "]" * 100_000, "doc", ManifestError)
    assert loads_strict("[" * MAX_DEPTH + "]" * MAX_DEPTH, "doc", ManifestError) is not None


def test_a_signed_manifest_with_a_forged_duplicate_key_is_refused(signed_copy, keypair):
    path = signed_copy("int8")
    edge_sdk.load(path, public_key=keypair["pub"])  # as signed: fine
    manifest = path.with_suffix(".json")
    original = manifest.read_text()
    manifest.write_text('{"labels": ["forged"] * 10, '.replace(" * 10", "") + original.lstrip()[1:])
    with pytest.raises(ManifestError, match="has the key 'labels' more than once"):
        edge_sdk.load(path, public_key=keypair["pub"])
    code = main(["verify", str(path), "--public-key", str(keypair["pub"])])
    assert code == 2


def test_a_deep_manifest_is_a_manifest_error_not_a_recursion_error(model_copy):
    path = model_copy("int8")
    path.with_suffix(".json").write_text('{"x": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(ManifestError, match="nests 50001 levels deep"):
        edge_sdk.load(path)


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_a_manifest_path_that_is_not_a_file_is_refused_not_skipped(model_copy, kind, capsys):
    path = model_copy("int8")
    manifest = path.with_suffix(".json")
    manifest.unlink()
    if kind == "directory":
        manifest.mkdir()
    elif kind == "fifo":
        os.mkfifo(manifest)
    else:
        manifest.symlink_to("/dev/null")
    words = {"directory": "is a directory", "fifo": "is a named pipe", "device": "is a character device"}[kind]
    with pytest.raises(ManifestError, match=rf"{words}.*expected the model's JSON manifest there, or nothing"):
        edge_sdk.load(path)
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "no manifest" not in err and err.count("\n") == 1, err


def test_a_signature_envelope_with_a_duplicate_key_is_refused(signed_copy, keypair):
    path = signed_copy("int8")
    sig = path.with_suffix(".sig") if path.with_suffix(".sig").exists() else Path(f"{path}.sig")
    text = sig.read_text()
    envelope = json.loads(text)
    sig.write_text('{"key_id": "forged", ' + text.lstrip()[1:])
    assert envelope["key_id"] != "forged"
    with pytest.raises(SignatureError, match="has the key 'key_id' more than once"):
        edge_sdk.load(path, public_key=keypair["pub"])


def test_a_golden_reference_with_duplicate_keys_or_deep_meta_is_refused(tmp_path):
    from edge_sdk.reference import GoldenReferenceError, read_reference

    for name, meta in (("dup", '{"format": "x", "format": "y"}'), ("deep", "[" * 5000 + "]" * 5000)):
        path = tmp_path / f"{name}.npz"
        np.savez(path, meta=np.array(meta), x=np.zeros(2))
        with pytest.raises(GoldenReferenceError, match="more than once|nests 5000 levels"):
            read_reference(path)


def test_recipes_refuse_duplicates_depth_and_special_files(tmp_path):
    from converters import recipe as recipes
    from converters.errors import RecipeError
    from converters.recipe_options import parse_override

    dup = tmp_path / "dup.toml"
    dup.write_text('[quantize]\nmode = "int8"\nmode = "fp16"\n')
    with pytest.raises(RecipeError, match="not valid TOML: Cannot overwrite a value"):
        recipes.load(str(dup))
    deep = tmp_path / "deep.toml"
    deep.write_text("[quantize]\nx = " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(RecipeError, match="nests too deeply|nests deeper than"):
        recipes.load(str(deep))
    deep.write_text("[quantize]\nx = " + "[" * 40 + "]" * 40 + "\n")
    with pytest.raises(RecipeError, match="nests deeper than 16 levels"):
        recipes.load(str(deep))
    with pytest.raises(RecipeError, match="nests"):
        parse_override("quantize.x=" + "[" * 3000 + "]" * 3000)
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    with pytest.raises(RecipeError, match="is a named pipe, not a regular file; expected a .toml file"):
        recipes.load(str(fifo))


def _finishes(fn, seconds=20.0):
    """Run fn in a thread; (finished, result or exception)."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - whatever the reader raises is handed to the test thread to assert on
            box["value"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), box.get("value")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_an_onnx_path_that_is_a_fifo_or_a_device_is_refused_at_once(tmp_path, kind):
    pytest.importorskip("onnx")
    from converters.errors import ModelLoadError
    from converters.onnx_import import read_onnx

    path = tmp_path / "model.onnx"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    finished, value = _finishes(lambda: read_onnx(path), 20.0)
    if not finished and kind == "fifo":  # unblock the reader the old code left waiting
        with open(path, "wb"):
            pass
    assert finished, "read_onnx blocked"
    want = "is a named pipe" if kind == "fifo" else "is a character device"
    assert isinstance(value, ModelLoadError) and want in str(value), value


@pytest.mark.parametrize("kind", ["dev-zero", "zero.tflite", "model"])
def test_a_key_that_is_a_device_or_a_model_says_what_it_is(tmp_path, digits_models, kind):
    from edge_sdk import signing

    if kind == "dev-zero":
        key, want = Path("/dev/zero"), "/dev/zero is a character device, not a regular file; expected a key file"
    elif kind == "zero.tflite":
        key = tmp_path / "zero.tflite"
        key.symlink_to("/dev/zero")
        want = "zero.tflite is a character device, not a regular file; expected a key file"
    else:
        key, want = digits_models["int8"], "a TFLite model"
    for loader in (signing.load_public_key, signing.load_private_key):
        finished, value = _finishes(lambda loader=loader: loader(key), 20.0)
        assert finished and isinstance(value, SignatureError), value
        assert want in str(value) and "not found" not in str(value), str(value)


@pytest.mark.parametrize("name", ["pipe.tflite", "pipe.keras", "pipe.h5"])
def test_convert_of_a_model_path_that_is_a_fifo_says_what_it_is(tmp_path, capsys, name):
    """A named pipe as the model said 'expected a ... .tflite file ..., got a .tflite file'."""
    from edge_sdk.cli import main

    fifo = tmp_path / name
    os.mkfifo(fifo)
    code = main(["convert", str(fifo), "--recipe", "fp16", "--out", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "is a named pipe, not a regular file" in err and err.count("\n") == 1, err
