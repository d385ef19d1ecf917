"""Ed25519 model signing: ``model.tflite`` + ``model.json`` are covered by ``model.tflite.sig``.

    edge-sdk keygen -o keys/                       # keys/edge-sdk.key (private), keys/edge-sdk.pub
    edge-sdk sign out/model.tflite --key keys/edge-sdk.key
    m = edge_sdk.load("out/model.tflite", public_key=PUBLIC_KEY_PEM)   # SignatureError if altered

The signature file is a small JSON envelope beside the model::

    {"format": "edge-sdk-signature/1", "algorithm": "ed25519", "key_id": "...",
     "model_file": "model.tflite", "model_sha256": "...", "model_size": 12345,
     "manifest_sha256": "..." | null, "signed_at": "...", "signature": "<base64>"}

The signature is Ed25519 over a domain tag plus the canonical JSON of every
other field, so it binds the model's sha256, its file name (``model_file``) and
the manifest's sha256 (of its canonical JSON: sorted keys, compact; reformatting
the file does not matter, changing a value does). A model signed without a
manifest refuses to load once a manifest appears beside it, and the other way
round. A signed model copied or renamed to another file name (with its manifest
and ``.sig``) is refused, naming both names: renaming a model is a release
decision, so rename the model and its manifest, set the manifest's
``model_file`` to the new name, and sign again. Signatures written before the
name was checked carry the same ``model_file`` field under the same format, so
they keep verifying under their own name and are refused under any other.

Private keys never ship: they stay on the build machine (or in a CI secret)
and sign releases. The app embeds only the public key (32 bytes, or the PEM).

``cryptography`` (the ``sign`` extra) is imported only when a key is used, so
``import edge_sdk`` stays numpy + LiteRT.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from edge_sdk.console import first_line as _first_line
from edge_sdk.errors import InputError, ManifestError, MissingExtraError, SignatureError
from edge_sdk.fileio import (
    atomic_write_bytes,
    atomic_write_text,
    describe_file_start,
    not_a_regular_file,
    read_head,
    sha256_bytes,
)
from edge_sdk.jsonio import loads_strict
from edge_sdk.manifest import find_manifest, read_manifest

if TYPE_CHECKING:  # the `sign` extra: imported at run time only when a key is used (_crypto)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FORMAT = "edge-sdk-signature/1"
SIGNATURE_SUFFIX = ".sig"
ALGORITHM = "ed25519"
_DOMAIN_TAG = b"edge-sdk-signature/1\x00"
_RAW_KEY_BYTES = 32

KeyLike = str | os.PathLike[str] | bytes | bytearray | Any


def _crypto() -> tuple[Any, Any, type[Exception]]:  # the optional extra's modules, imported on use
    """Import the Ed25519 primitives, or raise MissingExtraError naming the ``sign`` extra."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise MissingExtraError(
            "model signing needs the 'sign' extra (the cryptography package is not importable); "
            "install it with: pip install 'edge-sdk[sign]'"
        ) from None
    return ed25519, serialization, InvalidSignature


def signature_path_for(model_path: str | os.PathLike[str]) -> Path:
    """``dir/model.tflite`` -> ``dir/model.tflite.sig``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + SIGNATURE_SUFFIX)


def canonical_json(obj: Any) -> bytes:
    """The bytes a signature covers for a JSON value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def manifest_digest(manifest: dict[str, Any] | None) -> str | None:
    """sha256 of a manifest's canonical JSON, or None when there is no manifest."""
    if manifest is None:
        return None
    try:
        return sha256_bytes(canonical_json(manifest))
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"manifest cannot be signed: expected plain JSON values, got {exc}") from None


# -- keys -----------------------------------------------------------------------------------------

#: An Ed25519 key file is a few hundred bytes (an encrypted PEM under 1 KB).
MAX_KEY_FILE_BYTES = 64 << 10


def _read_key_source(key: str | os.PathLike[str], what: str) -> bytes:
    path = Path(key)
    problem = not_a_regular_file(path)
    if problem == "does not exist":
        raise SignatureError(f"{what} not found: expected a key file at {path}")
    if problem:  # /dev/zero would be read until memory runs out, a FIFO block for ever
        raise SignatureError(f"{what} {path} {problem}; expected a key file")
    size = path.stat().st_size
    if size > MAX_KEY_FILE_BYTES:
        raise SignatureError(
            f"{what} {path} is {size:,} bytes, {describe_file_start(read_head(path))}; "
            f"expected a key file (PEM, at most {MAX_KEY_FILE_BYTES:,} bytes)"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_public_key(key: KeyLike) -> Ed25519PublicKey:
    """An ``Ed25519PublicKey`` from a key object, raw 32 bytes, PEM bytes/text, 64-char hex, or a file path."""
    ed25519, serialization, _ = _crypto()
    if isinstance(key, ed25519.Ed25519PublicKey):  # (_crypto's modules are Any: the casts restore the types)
        return cast("Ed25519PublicKey", key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(
            "expected an Ed25519 public key, got a private key; the app must embed only the public key"
        )
    source = "public key"
    if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        data = key.encode("ascii", errors="replace")
    elif isinstance(key, str) and len(key) == 2 * _RAW_KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in key):
        data = bytes.fromhex(key)
    elif isinstance(key, (str, os.PathLike)):
        source = f"public key file {key}"
        data = _read_key_source(key, "public key")
    elif isinstance(key, (bytes, bytearray, memoryview)):
        data = bytes(key)
    else:
        raise SignatureError(
            f"public_key: expected a path, PEM text, 32 raw bytes or an Ed25519PublicKey, got {type(key).__name__}"
        )
    stripped = data.strip()
    if len(data) == _RAW_KEY_BYTES:
        return cast("Ed25519PublicKey", ed25519.Ed25519PublicKey.from_public_bytes(data))
    if len(stripped) == 2 * _RAW_KEY_BYTES:
        try:
            return cast(
                "Ed25519PublicKey", ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(stripped.decode("ascii")))
            )
        except (ValueError, UnicodeDecodeError):
            pass
    if stripped.startswith(b"-----BEGIN") and b"PRIVATE KEY" in stripped[:40]:
        raise SignatureError(f"{source}: expected a public key, got a PEM private key; ship only the .pub file")
    try:
        loaded = serialization.load_pem_public_key(stripped)
    except (ValueError, TypeError) as exc:
        raise SignatureError(
            f"{source}: expected an Ed25519 public key as PEM, 32 raw bytes or 64 hex characters, "
            f"got {len(data)} bytes that are none of these: {describe_file_start(data[:64])} ({_first_line(exc)})"
        ) from None
    if not isinstance(loaded, ed25519.Ed25519PublicKey):
        raise SignatureError(f"{source}: expected an Ed25519 public key, got {type(loaded).__name__}")
    return cast("Ed25519PublicKey", loaded)


def load_private_key(key: KeyLike, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """An ``Ed25519PrivateKey`` from a key object, PEM (PKCS#8, optionally encrypted) or a file path."""
    ed25519, serialization, _ = _crypto()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return cast("Ed25519PrivateKey", key)
    source = "private key"
    if isinstance(key, (bytes, bytearray, memoryview)):
        data = bytes(key)
    elif isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        data = key.encode("ascii", errors="replace")
    elif isinstance(key, (str, os.PathLike)):
        source = f"private key file {key}"
        data = _read_key_source(key, "private key")
    else:
        raise SignatureError(f"expected a private key path or PEM, got {type(key).__name__}")
    if b"PUBLIC KEY" in data[:40]:
        raise SignatureError(f"{source}: expected a private key, got a public key (sign with the .key file)")
    try:
        loaded = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:
        needs = "is encrypted: pass its passphrase" if passphrase is None else "is not encrypted: drop the passphrase"
        raise SignatureError(f"{source} {needs} ({_first_line(exc)})") from None
    except ValueError as exc:
        raise SignatureError(
            f"{source}: expected an Ed25519 private key in PEM (PKCS#8), or the right passphrase; "
            f"could not load it: {describe_file_start(data[:64])} ({_first_line(exc)})"
        ) from None
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{source}: expected an Ed25519 private key, got {type(loaded).__name__}")
    return cast("Ed25519PrivateKey", loaded)


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key (what an app embeds)."""
    _, serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of sha256 of its raw bytes."""
    return hashlib.sha256(raw_public_bytes(public_key)).hexdigest()[:16]


def generate_keypair(passphrase: bytes | None = None) -> tuple[bytes, bytes, str]:
    """A new Ed25519 key pair: (private PEM, public PEM, key id). Encrypts the private PEM if a passphrase is given."""
    ed25519, serialization, _ = _crypto()
    private = ed25519.Ed25519PrivateKey.generate()
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = private.public_key()
    public_pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem, public_pem, key_id(public)


def check_key_name(name: Any) -> str:
    """Return ``name`` if it is a plain file-name stem for ``NAME.key``/``NAME.pub``; else raise InputError.

    A name is joined to ``--out-dir``, so a separator, ``..`` or an empty name
    would write the private key somewhere else than the directory asked for.
    """
    if not isinstance(name, str) or not name or not name.strip():
        raise InputError(f"key name: expected a non-empty file name stem such as 'edge-sdk', got {name!r}")
    separators = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(sep in name for sep in separators) or "\0" in name:
        raise InputError(
            f"key name: expected a plain file name without path separators, got {name!r}; "
            "choose the directory with --out-dir"
        )
    if name in (".", ".."):
        raise InputError(f"key name: expected a file name stem, got {name!r}, which names a directory")
    return name


def _write_private_file(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to ``path`` so that it is mode 0600 from its first byte, atomically.

    The temporary file is created by ``os.open(O_CREAT | O_EXCL, 0o600)`` in the
    same directory, filled, synced, then renamed (or hard-linked, which refuses
    to replace a key that appeared meanwhile); its mode is never widened.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise SignatureError(f"cannot create a temporary file in {path.parent}")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails with EEXIST instead of replacing a key
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    raise SignatureError(
                        f"refusing to overwrite existing key file {path}; pass --force to replace it"
                    ) from None
                if path.exists():  # a filesystem without hard links: check, then rename
                    raise SignatureError(
                        f"refusing to overwrite existing key file {path}; pass --force to replace it"
                    ) from None
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_keypair(
    out_dir: str | os.PathLike[str],
    name: str = "edge-sdk",
    *,
    passphrase: bytes | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``NAME.key`` (private, mode 0600 from its first byte) and ``NAME.pub`` into ``out_dir``.

    ``name`` must be a plain file-name stem (no path separators, not ``..``,
    not empty). Returns the paths and the key id.
    """
    out = Path(out_dir)
    check_key_name(name)
    private_path, public_path = out / f"{name}.key", out / f"{name}.pub"
    if not overwrite:
        existing = [str(p) for p in (private_path, public_path) if p.exists()]
        if existing:
            raise SignatureError(
                f"refusing to overwrite existing key file(s) {', '.join(existing)}; "
                "pass --force to replace them (models signed with the old key will no longer verify)"
            )
    private_pem, public_pem, kid = generate_keypair(passphrase)
    _write_private_file(private_path, private_pem, overwrite)
    atomic_write_bytes(public_path, public_pem)
    os.chmod(public_path, 0o644)  # public by design, whatever the umask
    public = load_public_key(public_pem)
    return {
        "private_key": str(private_path),
        "public_key": str(public_path),
        "key_id": kid,
        "public_key_hex": raw_public_bytes(public).hex(),
        "encrypted": bool(passphrase),
    }


# -- sign and verify ------------------------------------------------------------------------------


def _resolve_manifest(model_path: Path | None, manifest: Any) -> dict[str, Any] | None:
    if isinstance(manifest, dict):
        return manifest
    if manifest is not None:
        return read_manifest(manifest)
    if model_path is not None:
        found = find_manifest(model_path)
        if found is not None:
            return read_manifest(found)
    return None


def _message(envelope: dict[str, Any]) -> bytes:
    body = {k: v for k, v in envelope.items() if k != "signature"}
    return _DOMAIN_TAG + canonical_json(body)


def sign_bytes(
    model_bytes: bytes,
    manifest: dict[str, Any] | None,
    private_key: KeyLike,
    *,
    model_file: str | None = None,
    passphrase: bytes | None = None,
) -> dict[str, Any]:
    """Return a signature envelope (a dict) for ``model_bytes`` and its ``manifest`` (or None).

    ``model_file`` is the file name the signature binds (a copy under another
    name is refused); by default the manifest's ``model_file``, else ``model.tflite``.
    """
    if model_file is None:
        model_file = str((manifest or {}).get("model_file") or "model.tflite")
    private = load_private_key(private_key, passphrase)
    public = private.public_key()
    envelope: dict[str, Any] = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(public),
        "model_file": model_file,
        "model_sha256": sha256_bytes(model_bytes),
        "model_size": len(model_bytes),
        "manifest_sha256": manifest_digest(manifest),
        "signed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    envelope["signature"] = base64.b64encode(private.sign(_message(envelope))).decode("ascii")
    return envelope


def sign_model(
    model_path: str | os.PathLike[str],
    private_key: KeyLike,
    *,
    manifest: Any = None,
    out: str | os.PathLike[str] | None = None,
    passphrase: bytes | None = None,
) -> dict[str, Any]:
    """Sign a model file (and its manifest, beside it or given) and write ``MODEL.sig`` atomically.

    Returns the envelope with ``"path"`` added (not part of the file).
    """
    path = Path(model_path)
    if not path.is_file():
        raise SignatureError(f"model file not found: {path} (expected a .tflite file to sign)")
    data = path.read_bytes()
    resolved = _resolve_manifest(path, manifest)
    if resolved is not None and resolved.get("sha256") not in (None, sha256_bytes(data)):
        raise SignatureError(
            f"refusing to sign {path}: its manifest says sha256 {resolved.get('sha256')}, "
            f"the file is {sha256_bytes(data)}; rebuild the manifest or the model first"
        )
    if resolved is not None and resolved.get("model_file") not in (None, path.name):
        raise SignatureError(
            f"refusing to sign {path}: its manifest names model_file {resolved.get('model_file')!r}, the file is "
            f'{path.name!r}; a signature binds the file name, so to rename a model set "model_file": '
            f'"{path.name}" in its manifest, then sign it'
        )
    envelope = sign_bytes(data, resolved, private_key, model_file=path.name, passphrase=passphrase)
    target = Path(out) if out else signature_path_for(path)
    atomic_write_text(target, json.dumps(envelope, indent=2) + "\n")
    return {**envelope, "path": str(target)}


def read_signature(source: Any) -> dict[str, Any]:
    """A signature envelope from a dict, JSON bytes/text, or a ``.sig`` file path; SignatureError if unusable."""
    if isinstance(source, dict):
        envelope = source
        where = "signature"
    else:
        if isinstance(source, (bytes, bytearray)):
            raw, where = bytes(source), "signature"
        else:
            path = Path(source)
            where = f"signature file {path}"
            problem = not_a_regular_file(path)
            if problem == "does not exist":
                raise SignatureError(f"the model is not signed: expected a signature file at {path}")
            if problem:
                raise SignatureError(f"{where} {problem}; expected a signature file ({SIGNATURE_FORMAT} JSON)")
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise SignatureError(f"cannot read {where}: {exc.strerror or exc}") from None
        envelope = loads_strict(raw, where, SignatureError)
    if not isinstance(envelope, dict):
        raise SignatureError(f"{where}: expected a JSON object, got {type(envelope).__name__}")
    if envelope.get("format") != SIGNATURE_FORMAT:
        raise SignatureError(f"{where}: expected format {SIGNATURE_FORMAT!r}, got {envelope.get('format')!r}")
    if envelope.get("algorithm") != ALGORITHM:
        raise SignatureError(f"{where}: expected algorithm {ALGORITHM!r}, got {envelope.get('algorithm')!r}")
    missing = [k for k in ("key_id", "model_file", "model_sha256", "manifest_sha256", "signature") if k not in envelope]
    if missing:
        raise SignatureError(f"{where} lacks field(s): {', '.join(missing)}")
    return envelope


def verify_envelope(
    envelope: dict[str, Any],
    model_bytes: bytes,
    manifest: dict[str, Any] | None,
    public_key: KeyLike,
    model_file: str | None = None,
) -> dict[str, Any]:
    """Check an envelope against the model bytes, the manifest and the public key; return a report dict.

    ``model_file`` is the name the model was given as (the file name when it
    was loaded from a path); it must be the name that was signed. Raises
    :class:`SignatureError` saying which check failed: the signature itself
    (wrong key or altered envelope), the file name, the model bytes, or the
    manifest.
    """
    _, _, InvalidSignature = _crypto()
    public = load_public_key(public_key)
    expected_key = key_id(public)
    try:
        signature = base64.b64decode(str(envelope["signature"]), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the signature field is not valid base64; the signature file is damaged") from None
    try:
        public.verify(signature, _message(envelope))
    except InvalidSignature:
        if envelope.get("key_id") != expected_key:
            raise SignatureError(
                f"signature does not verify: it was made with key {envelope.get('key_id')}, "
                f"the public key given is {expected_key}"
            ) from None
        raise SignatureError(
            f"signature does not verify with key {expected_key}: the signature file was altered or damaged"
        ) from None
    signed_name = envelope["model_file"]
    if model_file is not None and signed_name != model_file:
        raise SignatureError(
            f"the signature is for model file {signed_name!r}, but the model was given as {model_file!r}: a "
            "signature binds the file name. To rename a signed model, rename it and its manifest, set the "
            "manifest's model_file to the new name, and sign it again"
        )
    actual_model = sha256_bytes(model_bytes)
    if envelope["model_sha256"] != actual_model:
        raise SignatureError(
            f"the model was altered after signing: the signature covers sha256 {envelope['model_sha256']}, "
            f"the model is {actual_model} ({len(model_bytes)} bytes)"
        )
    actual_manifest = manifest_digest(manifest)
    signed_manifest = envelope["manifest_sha256"]
    if signed_manifest != actual_manifest:
        if signed_manifest is None:
            raise SignatureError(
                "the model was signed without a manifest, but a manifest came with it; "
                "re-sign the model together with its manifest"
            )
        if actual_manifest is None:
            raise SignatureError("the signature covers a manifest, but none was found beside the model or passed in")
        raise SignatureError(
            f"the manifest was altered after signing: the signature covers manifest digest {signed_manifest}, "
            f"the manifest is {actual_manifest}"
        )
    return {
        "key_id": expected_key,
        "model_file": signed_name,
        "model_sha256": actual_model,
        "manifest_sha256": actual_manifest,
        "signed_at": envelope.get("signed_at"),
    }


def verify_model(
    model_bytes: bytes,
    model_path: str | os.PathLike[str] | None,
    manifest: Any,
    public_key: KeyLike,
    signature: Any = None,
) -> dict[str, Any]:
    """Refuse an unsigned or altered model: the hook ``edge_sdk.load(..., public_key=...)`` calls.

    ``signature`` is an envelope (dict, JSON bytes or path); by default
    ``MODEL.sig`` beside ``model_path``. ``manifest`` is a dict, a path, or
    None to use ``model.json`` beside the model if present. The signature must
    name ``model_path``'s file name (a copy under another name is refused).
    Returns a report dict; raises :class:`SignatureError` on any failure.
    """
    path = Path(model_path) if model_path is not None else None
    if signature is None:
        if path is None:
            raise SignatureError(
                "the model was given as bytes, so there is no MODEL.sig beside it to check; load it from "
                "its path, or call edge_sdk.signing.verify_model(data, None, manifest, key, signature=...) first"
            )
        signature = signature_path_for(path)
    envelope = read_signature(signature)
    try:
        resolved = _resolve_manifest(path, manifest)
    except ManifestError as exc:
        raise SignatureError(f"cannot check the signature: {exc}") from None
    return verify_envelope(
        envelope, model_bytes, resolved, public_key, model_file=path.name if path is not None else None
    )
