"""edge-sdk keygen / sign / verify: the round trip and every tamper case, with exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from edge_sdk.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_keys(tmp_path, capsys):
    code, out, _ = _run(capsys, "keygen", "--out-dir", str(tmp_path / "keys"), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["key_id"] and len(info["public_key_hex"]) == 64
    return info


def test_round_trip_and_tamper_cases(cli_keys, model_copy, tmp_path, capsys):
    model = model_copy("int8")
    code, out, _ = _run(capsys, "sign", str(model), "--key", cli_keys["private_key"], "--json")
    assert code == 0
    envelope = json.loads(out)
    assert envelope["path"] == str(model) + ".sig" and envelope["manifest_sha256"]

    code, out, _ = _run(capsys, "verify", str(model), "--public-key", cli_keys["public_key"])
    assert code == 0 and "verified" in out and "covers model + manifest" in out
    code, out, _ = _run(capsys, "verify", str(model), "--public-key", cli_keys["public_key"], "--json")
    report = json.loads(out)
    assert report["ok"] is True and [(c["check"], c["ok"]) for c in report["checks"]] == [
        ("model", True),
        ("manifest", True),
        ("signature", True),
    ]

    # The model altered: both the manifest sha256 and the signature fail; exit 1 (a check failed).
    original = model.read_bytes()
    model.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    code, out, _ = _run(capsys, "verify", str(model), "--public-key", cli_keys["public_key"], "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    checks = {c["check"]: c for c in report["checks"]}  # the flipped byte may or may not leave a loadable model
    assert checks["manifest"]["ok"] is False and checks["signature"]["ok"] is False
    assert "altered after signing" in checks["signature"]["detail"]
    model.write_bytes(original)

    # The manifest altered (a value, still valid JSON and still naming the right sha256).
    manifest_path = model.with_suffix(".json")
    manifest_text = manifest_path.read_text()
    manifest_path.write_text(manifest_text.replace('"stage": "quantize"', '"stage": "tampered"'))
    code, out, _ = _run(capsys, "verify", str(model), "--public-key", cli_keys["public_key"])
    assert code == 1 and "manifest was altered" in out and "NOT verified" in out
    manifest_path.write_text(manifest_text)

    # The wrong key.
    code, out, _ = _run(capsys, "keygen", "--out-dir", str(tmp_path / "other"), "--json")
    other = json.loads(out)
    code, out, _ = _run(capsys, "verify", str(model), "--public-key", other["public_key"])
    assert code == 1 and f"made with key {cli_keys['key_id']}" in out

    # A missing signature.
    model.with_name(model.name + ".sig").unlink()
    code, out, _ = _run(capsys, "verify", str(model), "--public-key", cli_keys["public_key"])
    assert code == 1 and "not signed" in out

    # Without a key, verify checks the manifest only and says the signature was skipped.
    code, out, _ = _run(capsys, "verify", str(model))
    assert code == 0 and "skipped" in out


def test_verify_needs_a_model_and_something_to_check_against(model_copy, tmp_path, capsys):
    """A file that is not a model fails; a model with no manifest and no key is not called verified."""
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a model at all")
    code, out, _ = _run(capsys, "verify", str(garbage), "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["checks"][0]["check"] == "model" and report["checks"][0]["ok"] is False
    assert "not a TFLite flatbuffer" in report["checks"][0]["detail"]

    bare = tmp_path / "bare.tflite"
    shutil.copy(model_copy("int8"), bare)  # the manifest stays behind
    code, out, _ = _run(capsys, "verify", str(bare))
    assert code == 1 and "model      ok" in out and "NOT verified: nothing to check the sha256 against" in out

    # A real model with its manifest still verifies, with the load check first.
    code, out, _ = _run(capsys, "verify", str(model_copy("float32")), "--json")
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "verified"
    assert [c["check"] for c in report["checks"]] == ["model", "manifest", "signature"]


def test_could_not_run_cases_exit_2(cli_keys, model_copy, tmp_path, capsys):
    model = model_copy("int8")
    code, _, err = _run(capsys, "sign", str(model), "--key", str(tmp_path / "nope.key"))
    assert code == 2 and "error: private key not found" in err
    code, _, err = _run(capsys, "sign", str(model), "--key", cli_keys["public_key"])
    assert code == 2 and "got a public key" in err
    code, _, err = _run(capsys, "verify", str(tmp_path / "nope.tflite"))
    assert code == 2 and "model file not found" in err
    code, _, err = _run(capsys, "verify", str(model), "--public-key", cli_keys["private_key"])
    assert code == 2 and "private key" in err
    code, _, err = _run(capsys, "keygen", "--out-dir", str(tmp_path / "keys"))
    assert code == 2 and "refusing to overwrite" in err
    code, _, err = _run(capsys, "keygen", "--out-dir", str(tmp_path / "k2"), "--passphrase-env", "EDGE_SDK_NO_SUCH_VAR")
    assert code == 2 and "EDGE_SDK_NO_SUCH_VAR" in err


def test_passphrase_protected_key(model_copy, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGE_TEST_PASSPHRASE", "correct horse")
    code, out, _ = _run(
        capsys, "keygen", "-o", str(tmp_path), "--name", "enc", "--passphrase-env", "EDGE_TEST_PASSPHRASE", "--json"
    )
    assert code == 0 and json.loads(out)["encrypted"] is True
    assert b"ENCRYPTED" in (tmp_path / "enc.key").read_bytes()
    model = model_copy("float32")
    code, _, err = _run(capsys, "sign", str(model), "--key", str(tmp_path / "enc.key"))
    assert code == 2 and "passphrase" in err
    code, _, _ = _run(
        capsys, "sign", str(model), "--key", str(tmp_path / "enc.key"), "--passphrase-env", "EDGE_TEST_PASSPHRASE"
    )
    assert code == 0
    code, _, _ = _run(capsys, "verify", str(model), "--public-key", str(tmp_path / "enc.pub"))
    assert code == 0


def test_verify_runs_on_the_light_runtime_without_tensorflow(cli_keys, model_copy, capsys):
    """The console script in a fresh process: verify must not import TensorFlow."""
    model = model_copy("int8")
    assert main(["sign", str(model), "--key", cli_keys["private_key"]]) == 0
    capsys.readouterr()
    code = (
        "import sys; from edge_sdk.cli import main; "
        f"rc = main(['verify', {str(model)!r}, '--public-key', {cli_keys['public_key']!r}]); "
        "heavy = [m for m in ('tensorflow', 'keras', 'tf_keras', 'onnx') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-800:]
    assert "HEAVY []" in done.stdout and "verified" in done.stdout
    script = shutil.which("edge-sdk", path=str(__import__("pathlib").Path(sys.executable).parent))
    if script:
        done = subprocess.run(
            [script, "verify", str(model), "--public-key", cli_keys["public_key"], "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True


def test_sign_without_cryptography_names_the_extra(model_copy, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography", None)
    code, _, err = _run(capsys, "sign", str(model_copy("int8")), "--key", str(tmp_path / "k.key"))
    assert code == 2 and "pip install 'edge-sdk[sign]'" in err
    code, _, err = _run(capsys, "keygen", "-o", str(tmp_path))
    assert code == 2 and "'sign' extra" in err


def test_verify_refuses_a_signed_model_copied_under_another_name(cli_keys, model_copy, capsys):
    model = model_copy("int8")
    assert main(["sign", str(model), "--key", cli_keys["private_key"]]) == 0
    renamed = model.with_name("b.tflite")
    shutil.copy(model, renamed)
    shutil.copy(model.with_suffix(".json"), renamed.with_suffix(".json"))
    shutil.copy(model.with_name(model.name + ".sig"), renamed.with_name("b.tflite.sig"))
    capsys.readouterr()
    code, out, _ = _run(capsys, "verify", str(renamed), "--public-key", cli_keys["public_key"], "--json")
    report = json.loads(out)
    checks = {c["check"]: c for c in report["checks"]}
    assert code == 1 and report["ok"] is False and checks["signature"]["ok"] is False
    assert "for model file 'int8.tflite', but the model was given as 'b.tflite'" in checks["signature"]["detail"]
    code, out, _ = _run(capsys, "verify", str(model), "--public-key", cli_keys["public_key"])
    assert code == 0 and out.strip().endswith("verified")


@pytest.mark.parametrize("name", ["../escaped", "sub/dir", ".."])
def test_keygen_refuses_a_name_that_leaves_the_out_dir(tmp_path, capsys, name):
    out = tmp_path / "keys"
    code, _, err = _run(capsys, "keygen", "--out-dir", str(out), "--name", name)
    assert code == 2 and err.startswith("error: key name") and err.count("\n") == 1
    assert not list(tmp_path.rglob("*.key"))


def test_verify_reports_each_manifest_contradiction_with_both_values(model_copy, capsys):
    model = model_copy("int8")
    manifest_path = model.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    real_dtype = manifest["inputs"][0]["dtype"]
    manifest["inputs"][0]["dtype"] = "float32"
    manifest["labels"] = manifest["labels"][:3]
    manifest_path.write_text(json.dumps(manifest))
    code, out, _ = _run(capsys, "verify", str(model), "--json")
    report = json.loads(out)
    check = {c["check"]: c for c in report["checks"]}["manifest"]
    assert code == 1 and check["ok"] is False and report["verdict"] == "NOT verified"
    name = manifest["inputs"][0]["name"]
    assert f"input {name!r} dtype: manifest 'float32', model {real_dtype!r}" in check["detail"]
    assert "labels: manifest lists 3 labels" in check["detail"] and "width 10" in check["detail"]
