"""Ed25519 signing: every altered byte of the model, manifest or signature is refused."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

import edge_sdk
from edge_sdk import signing
from edge_sdk.errors import IntegrityError, ManifestError, MissingExtraError, NotTFLiteError, SignatureError


def test_signed_model_loads_with_each_public_key_form(signed_copy, keypair, digits_x):
    path = signed_copy("int8")
    pub_pem = keypair["pub"].read_bytes()
    raw = signing.raw_public_bytes(signing.load_public_key(pub_pem))
    expected = edge_sdk.load(path).predict(digits_x)
    for key in (keypair["pub"], str(keypair["pub"]), pub_pem, pub_pem.decode(), raw, raw.hex()):
        np.testing.assert_array_equal(edge_sdk.load(path, public_key=key).predict(digits_x), expected)
    envelope = json.loads(signing.signature_path_for(path).read_text())
    assert envelope["model_sha256"] == edge_sdk.load(path).sha256
    assert envelope["manifest_sha256"] is not None and envelope["key_id"] == signing.key_id(
        signing.load_public_key(raw)
    )


def test_every_single_byte_flip_of_the_model_is_refused(signed_copy, keypair):
    path = signed_copy("int8")
    original = path.read_bytes()
    public = signing.load_public_key(keypair["pub"])
    outcomes = {}
    with open(path, "r+b") as handle:
        for position in range(len(original)):
            handle.seek(position)
            handle.write(bytes([original[position] ^ 0xFF]))
            handle.flush()
            try:
                # verify=False: the signature alone must catch it, not the manifest's sha256.
                edge_sdk.load(path, public_key=public, verify=False)
                outcomes[position] = "loaded"
            except SignatureError as exc:
                outcomes[position] = "signature" if "altered after signing" in str(exc) else str(exc)
            except NotTFLiteError:
                outcomes[position] = "identifier"  # bytes 4..8 are compared before anything else
            handle.seek(position)
            handle.write(original[position : position + 1])
            handle.flush()
    assert len(outcomes) == len(original) > 5000
    wrong = {p: o for p, o in outcomes.items() if o != ("identifier" if 4 <= p < 8 else "signature")}
    assert not wrong, f"{len(wrong)} flips not refused as expected, e.g. {list(wrong.items())[:5]}"
    assert path.read_bytes() == original
    edge_sdk.load(path, public_key=public, verify=False)


def test_random_byte_flips_of_a_larger_model_are_refused_with_the_manifest_check_on(signed_copy, keypair):
    path = signed_copy("float32")
    original = path.read_bytes()
    rng = np.random.default_rng(7)
    for position in rng.choice(len(original), size=1000, replace=False):
        flipped = bytearray(original)
        flipped[position] ^= int(rng.integers(1, 256))
        path.write_bytes(flipped)
        with pytest.raises((IntegrityError, SignatureError)):
            edge_sdk.load(path, public_key=keypair["pub"])


def test_every_byte_flip_of_the_signature_and_manifest_is_refused(signed_copy, keypair):
    path = signed_copy("int8")
    sig_path = signing.signature_path_for(path)
    manifest_path = path.with_suffix(".json")
    public = signing.load_public_key(keypair["pub"])
    for target in (sig_path, manifest_path):
        original = target.read_bytes()
        for position in range(len(original)):
            flipped = bytearray(original)
            flipped[position] ^= 0xFF
            target.write_bytes(flipped)
            with pytest.raises(SignatureError):
                edge_sdk.load(path, public_key=public, verify=False)
        target.write_bytes(original)
    edge_sdk.load(path, public_key=public)


def test_semantic_tampering_is_refused(signed_copy, keypair, tmp_path):
    path = signed_copy("int8")
    manifest_path = path.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    manifest["preprocessing"]["scale"] = 1.0  # a valid manifest that changes what the app feeds
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SignatureError, match="manifest was altered"):
        edge_sdk.load(path, public_key=keypair["pub"])
    # Reformatting the manifest without changing a value is not tampering.
    manifest["preprocessing"]["scale"] = 1.0 / 16.0
    manifest_path.write_text(json.dumps(manifest, indent=7, sort_keys=True))
    edge_sdk.load(path, public_key=keypair["pub"])
    manifest_path.unlink()
    with pytest.raises(SignatureError, match="none was found"):
        edge_sdk.load(path, public_key=keypair["pub"])


def test_unsigned_wrong_key_and_swapped_signature_are_refused(model_copy, signed_copy, keypair, tmp_path):
    unsigned = model_copy("float32")
    with pytest.raises(SignatureError, match="not signed"):
        edge_sdk.load(unsigned, public_key=keypair["pub"])
    signed = signed_copy("int8")
    other = signing.write_keypair(tmp_path / "other", "other")
    with pytest.raises(SignatureError, match="made with key"):
        edge_sdk.load(signed, public_key=other["public_key"])
    # A genuine signature of another model does not transfer: not under the other model's name ...
    shutil.copy(signing.signature_path_for(signed), signing.signature_path_for(unsigned))
    with pytest.raises(SignatureError, match="signature is for model file 'int8.tflite'"):
        edge_sdk.load(unsigned, public_key=keypair["pub"])
    # ... nor onto another model given the signed name.
    shutil.copy(unsigned, signed)
    with pytest.raises(SignatureError, match="model was altered"):
        edge_sdk.load(signed, public_key=keypair["pub"], verify=False)


def test_model_signed_without_manifest_refuses_one_added_later(tmp_path, digits_models, keypair):
    path = tmp_path / "bare.tflite"
    shutil.copy(digits_models["int8"], path)
    envelope = signing.sign_model(path, keypair["key"])
    assert envelope["manifest_sha256"] is None
    edge_sdk.load(path, public_key=keypair["pub"])
    shutil.copy(digits_models["int8"].with_suffix(".json"), path.with_suffix(".json"))
    with pytest.raises(SignatureError, match="signed without a manifest"):
        edge_sdk.load(path, public_key=keypair["pub"])


def test_bytes_need_an_explicit_signature(signed_copy, keypair):
    path = signed_copy("int8")
    data = path.read_bytes()
    with pytest.raises(SignatureError, match="given as bytes"):
        edge_sdk.load(data, public_key=keypair["pub"])
    manifest = json.loads(path.with_suffix(".json").read_text())
    envelope = signing.signature_path_for(path).read_bytes()
    report = signing.verify_model(data, None, manifest, keypair["pub"], signature=envelope)
    assert report["model_sha256"] == edge_sdk.load(data).sha256
    with pytest.raises(SignatureError):
        signing.verify_model(data[:-1] + b"\x00", None, manifest, keypair["pub"], signature=envelope)


def test_key_mistakes_have_clear_errors(tmp_path, keypair, model_copy):
    with pytest.raises(SignatureError, match="got a PEM private key"):
        signing.load_public_key(keypair["key"])
    with pytest.raises(SignatureError, match="got a public key"):
        signing.load_private_key(keypair["pub"])
    with pytest.raises(SignatureError, match="key file"):
        signing.load_public_key(tmp_path / "missing.pub")
    with pytest.raises(SignatureError, match="32 raw bytes"):
        signing.load_public_key(b"\x01" * 31)
    with pytest.raises(SignatureError, match="refusing to overwrite"):
        signing.write_keypair(keypair["key"].parent, "test")
    encrypted = signing.write_keypair(tmp_path, "enc", passphrase=b"s3cret")
    path = model_copy("int8")
    with pytest.raises(SignatureError, match="passphrase"):
        signing.sign_model(path, encrypted["private_key"])
    with pytest.raises(SignatureError):
        signing.sign_model(path, encrypted["private_key"], passphrase=b"wrong")
    signing.sign_model(path, encrypted["private_key"], passphrase=b"s3cret")
    edge_sdk.load(path, public_key=encrypted["public_key"])
    assert (tmp_path / "enc.key").stat().st_mode & 0o077 == 0  # private key readable by its owner only


def test_refuses_to_sign_a_model_that_does_not_match_its_manifest(model_copy, keypair):
    path = model_copy("int8")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(data)
    with pytest.raises(SignatureError, match="refusing to sign"):
        signing.sign_model(path, keypair["key"])
    assert not signing.signature_path_for(path).exists()


def test_unusable_manifest_is_a_signature_error_not_a_crash(signed_copy, keypair):
    path = signed_copy("int8")
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ManifestError):  # the default sha256 check reads it first
        edge_sdk.load(path, public_key=keypair["pub"])
    with pytest.raises(SignatureError, match="not valid JSON"):
        edge_sdk.load(path, public_key=keypair["pub"], verify=False)


def test_missing_cryptography_names_the_sign_extra(monkeypatch, signed_copy, keypair):
    path = signed_copy("int8")
    for name in (
        "cryptography",
        "cryptography.exceptions",
        "cryptography.hazmat.primitives",
        "cryptography.hazmat.primitives.asymmetric",
    ):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=r"edge-sdk\[sign\]"):
        edge_sdk.load(path, public_key=keypair["pub"])
    edge_sdk.load(path)  # loading without a key never needs cryptography


def _copy_signed_under(path, stem):
    """Copy MODEL.tflite, MODEL.json and MODEL.tflite.sig to STEM.* beside them (what a user renaming files does)."""
    target = path.with_name(f"{stem}.tflite")
    shutil.copy(path, target)
    shutil.copy(path.with_suffix(".json"), target.with_suffix(".json"))
    shutil.copy(signing.signature_path_for(path), signing.signature_path_for(target))
    return target


def test_a_signed_model_copied_under_another_name_is_refused(signed_copy, keypair):
    original = signed_copy("int8")  # int8.tflite, int8.json, int8.tflite.sig
    renamed = _copy_signed_under(original, "b")
    for verify in (True, False):
        with pytest.raises(
            SignatureError,
            match=r"signature is for model file 'int8.tflite', but the model was "
            r"given as 'b.tflite'.*sign it again",
        ):
            edge_sdk.load(renamed, public_key=keypair["pub"], verify=verify)
    edge_sdk.load(original, public_key=keypair["pub"])  # the signed name still loads

    # Renaming legitimately: the manifest must name the new file, then the model is signed again.
    with pytest.raises(SignatureError, match=r"names model_file 'int8.tflite', the file is 'b.tflite'"):
        signing.sign_model(renamed, keypair["key"])
    manifest_path = renamed.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    manifest["model_file"] = "b.tflite"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SignatureError, match="signature is for model file 'int8.tflite'"):  # still the old .sig
        edge_sdk.load(renamed, public_key=keypair["pub"])
    assert signing.sign_model(renamed, keypair["key"])["model_file"] == "b.tflite"
    edge_sdk.load(renamed, public_key=keypair["pub"])


def test_bytes_are_checked_against_the_signed_name_only_when_a_name_is_known(signed_copy, keypair):
    path = signed_copy("int8")
    data = path.read_bytes()
    envelope = signing.signature_path_for(path).read_bytes()
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert signing.verify_model(data, None, manifest, keypair["pub"], signature=envelope)["model_file"] == "int8.tflite"
    with pytest.raises(SignatureError, match="given as 'other.tflite'"):
        signing.verify_model(data, path.with_name("other.tflite"), manifest, keypair["pub"], signature=envelope)


def test_an_envelope_without_a_model_file_is_refused(signed_copy, keypair):
    """A signature that names no file (never written by edge-sdk, but validly signed) is not accepted."""
    path = signed_copy("int8")
    sig_path = signing.signature_path_for(path)
    envelope = json.loads(sig_path.read_text())
    del envelope["model_file"], envelope["signature"]
    private = signing.load_private_key(keypair["key"])
    envelope["signature"] = __import__("base64").b64encode(private.sign(signing._message(envelope))).decode()
    sig_path.write_text(json.dumps(envelope))
    with pytest.raises(SignatureError, match="lacks field.*model_file"):
        edge_sdk.load(path, public_key=keypair["pub"])


def test_the_private_key_is_0600_from_its_first_byte(tmp_path, monkeypatch):
    """Every rename, link or chmod that touches the private key's bytes sees mode 0600, never wider."""
    import os
    import stat

    seen = []

    def private_mode(path):
        try:
            if b"PRIVATE KEY" in open(path, "rb").read(64):
                return stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            pass
        return None

    for name in ("replace", "rename", "link"):
        real = getattr(os, name)

        def wrapped(src, dst, *args, _real=real, _name=name, **kwargs):
            seen.append((_name, private_mode(src)))
            return _real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, wrapped)
    real_chmod = os.chmod

    def chmod(path, mode, *args, **kwargs):
        if private_mode(path) is not None:
            seen.append(("chmod", mode))
        return real_chmod(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", chmod)

    old_umask = os.umask(0o022)
    try:
        info = signing.write_keypair(tmp_path / "keys", "k")
        signing.write_keypair(tmp_path / "keys", "k", overwrite=True)
    finally:
        os.umask(old_umask)
    touching = [(op, mode) for op, mode in seen if mode is not None]
    assert touching and all(op != "chmod" for op, _ in touching), touching
    assert all(mode == 0o600 for _, mode in touching), touching
    assert stat.S_IMODE(os.stat(info["private_key"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(info["public_key"]).st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["k.key", "k.pub"]  # no temporaries left


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", ".", "", " ", "x\0y"])
def test_key_names_that_would_leave_the_out_dir_are_refused(tmp_path, name):
    out = tmp_path / "keys"
    with pytest.raises(edge_sdk.errors.InputError, match="key name"):
        signing.write_keypair(out, name)
    assert not any(tmp_path.rglob("*.key")) and not any(tmp_path.rglob("*.pub"))
