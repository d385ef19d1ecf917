"""``edge_sdk.load``: read a model from a path or bytes, check it (size, identifier, manifest, signature,
crash isolation) and hand it to :class:`edge_sdk.model.Model`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from edge_sdk.backends import get_backend, parse_accelerator
from edge_sdk.errors import (
    ArgumentError,
    IntegrityError,
    ModelNotFoundError,
    ModelTooLargeError,
    NotTFLiteError,
    check_argument,
    kind_of,
)
from edge_sdk.fileio import sha256_bytes
from edge_sdk.flatbuffer import TFLITE_IDENTIFIER, describe_bytes
from edge_sdk.limits import DEFAULT_MAX_TENSOR_BYTES, check_thread_count
from edge_sdk.manifest import check_manifest_matches_model, find_manifest, read_manifest
from edge_sdk.model import Model


def _read_model_source(
    model: str | os.PathLike[str] | bytes | bytearray | memoryview, max_model_bytes: int | None
) -> tuple[bytes, Path | None]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        path = None
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.exists():
            raise ModelNotFoundError(f"model file not found: {path} (expected a .tflite file)")
        if path.is_dir():
            raise NotTFLiteError(
                f"{path} is a directory; expected a .tflite file "
                "(a SavedModel? convert it first: edge-sdk convert DIR --recipe int8 --out OUT)"
            )
        if not path.is_file():  # a device such as /dev/zero would be read without end
            raise NotTFLiteError(f"{path} is not a regular file (a device or a pipe); expected a .tflite file")
        size = path.stat().st_size
        if max_model_bytes is not None and size > max_model_bytes:
            raise ModelTooLargeError(
                f"{path} is {size:,} bytes; the limit (max_model_bytes) is {max_model_bytes:,} bytes"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelNotFoundError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    else:
        raise ArgumentError(f"edge_sdk.load: model must be a path or the model's bytes, got {kind_of(model)}")
    if max_model_bytes is not None and len(data) > max_model_bytes:
        raise ModelTooLargeError(
            f"model is {len(data):,} bytes; the limit (max_model_bytes) is {max_model_bytes:,} bytes"
        )
    where = str(path) if path else "model bytes"
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise NotTFLiteError(
            f"{where} is not a TFLite flatbuffer: expected the file identifier 'TFL3' at bytes 4..8, "
            f"got {describe_bytes(data[:16])} ({len(data)} bytes)"
        )
    return data, path


def _check_integrity(data: bytes, path: Path | None, manifest: Any) -> dict[str, Any] | None:
    """Return the manifest used (if any) after checking the model's sha256 against it."""
    if manifest is None and path is not None:
        found = find_manifest(path)
        if found is None:
            return None
        manifest = found
    if manifest is None:
        return None
    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    expected = manifest.get("sha256")
    actual = sha256_bytes(data)
    if expected != actual:
        where = path if path else "model bytes"
        raise IntegrityError(
            f"{where} does not match its manifest: expected sha256 {expected}, got {actual}. "
            "The file is corrupt or was altered; pass verify=False only if you know why."
        )
    return cast(dict[str, Any], manifest)  # a dict given, or read_manifest's document


def load(
    model: str | os.PathLike[str] | bytes,
    *,
    backend: str | None = None,
    num_threads: int | None = None,
    verify: bool = True,
    manifest: Any = None,
    public_key: Any = None,
    signature: Any = None,
    isolate: bool | None = None,
    max_model_bytes: int | None = None,
    max_tensor_bytes: int | None = DEFAULT_MAX_TENSOR_BYTES,
    accelerator: str | None = None,
) -> Model:
    """Load a TFLite model from a path or bytes and return a :class:`Model`.

    - ``backend``: ``"litert"`` (default when installed), ``"tflite-runtime"``,
      ``"tf"``, or ``None``/``"auto"`` for the first one installed.
    - ``num_threads``: interpreter threads (default 1).
    - ``verify``: check the model's sha256 against its manifest (``manifest=``,
      a dict or path, or ``model.json`` beside ``model.tflite``), and that the
      manifest's inputs, outputs, quantization, size and labels are the
      model's; a mismatch raises :class:`IntegrityError` (a contradiction:
      ``edge_sdk.manifest.ManifestMismatchError``). ``verify=False`` skips both.
    - ``public_key``: an Ed25519 public key (path, PEM or raw bytes); the model
      must carry a valid signature (see ``edge-sdk sign``) or
      :class:`SignatureError` is raised. ``signature`` is the envelope (dict,
      JSON bytes or path) when it is not ``MODEL.sig`` beside the model, e.g.
      for a model downloaded into memory.
    - ``isolate``: first load and run the model in a child process so a file
      that crashes the interpreter costs an exception, not the app. Defaults
      to on for the crash-prone tflite-runtime and tf backends.
    - ``max_model_bytes`` / ``max_tensor_bytes``: refuse oversized files and
      tensors with :class:`ModelTooLargeError`.
    - ``accelerator``: run the default signature through LiteRT's
      CompiledModel API on ``"cpu"``, ``"gpu"`` or ``"npu"``, or a fallback
      chain such as ``"gpu+cpu"``; ``None`` (default) runs the classic
      interpreter. An accelerator this machine or model cannot use raises
      :class:`BackendUnavailableError` saying why. Inputs are checked and
      converted exactly as on the interpreter path.

    The bytes are always handed to the interpreter as content, so LiteRT's
    flatbuffer verifier runs on every load.
    """
    if num_threads is not None:
        check_thread_count(num_threads, "num_threads")  # a huge count crashes the interpreter (SIGSEGV)
    if accelerator is not None:
        check_argument(
            "edge_sdk.load",
            "accelerator",
            accelerator,
            "a string such as 'gpu+cpu' or None",
            isinstance(accelerator, str),
        )
        parse_accelerator(accelerator)  # a misspelt name fails before any file is read
    _check_load_arguments(
        model,
        backend=backend,
        verify=verify,
        manifest=manifest,
        public_key=public_key,
        signature=signature,
        isolate=isolate,
        max_model_bytes=max_model_bytes,
        max_tensor_bytes=max_tensor_bytes,
    )
    data, path = _read_model_source(model, max_model_bytes)
    used_manifest = _check_integrity(data, path, manifest) if verify else None
    if public_key is not None:
        from edge_sdk import signing

        signing.verify_model(
            data, path, used_manifest if used_manifest is not None else manifest, public_key, signature=signature
        )
    chosen = get_backend(backend)
    if isolate or (isolate is None and chosen.crash_prone):
        from edge_sdk import isolate as isolation

        isolation.check_in_child(data, chosen.name, num_threads)
    loaded = Model(
        data,
        chosen,
        path=path,
        num_threads=num_threads,
        manifest=used_manifest,
        max_tensor_bytes=max_tensor_bytes,
        accelerator=accelerator,
    )
    if used_manifest is not None:  # the interpreter already read the I/O: comparing costs microseconds
        check_manifest_matches_model(
            used_manifest, loaded.inputs, loaded.outputs, len(data), where=str(path) if path else "the model bytes"
        )
    return loaded


_PATH_TYPES = (str, os.PathLike)
_BYTES_TYPES = (bytes, bytearray, memoryview)


def is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_load_arguments(model: Any, **kwargs: Any) -> None:
    """The argument types of :func:`load` (``num_threads`` and ``accelerator`` are checked beside it)."""
    fn = "edge_sdk.load"
    check_argument(fn, "model", model, "a path or the model's bytes", isinstance(model, _PATH_TYPES + _BYTES_TYPES))
    backend = kwargs["backend"]
    check_argument(
        fn, "backend", backend, "a backend name such as 'litert' or None", backend is None or isinstance(backend, str)
    )
    check_argument(fn, "verify", kwargs["verify"], "True or False", isinstance(kwargs["verify"], bool))
    check_argument(
        fn,
        "isolate",
        kwargs["isolate"],
        "True, False or None",
        kwargs["isolate"] is None or isinstance(kwargs["isolate"], bool),
    )
    manifest = kwargs["manifest"]
    check_argument(
        fn,
        "manifest",
        manifest,
        "a dict or the path of a manifest file, or None",
        manifest is None or isinstance(manifest, (dict,) + _PATH_TYPES),
    )
    signature = kwargs["signature"]
    check_argument(
        fn,
        "signature",
        signature,
        "a signature envelope (dict, JSON bytes or a path) or None",
        signature is None or isinstance(signature, (dict,) + _PATH_TYPES + _BYTES_TYPES),
    )
    key = kwargs["public_key"]
    # a key object from the cryptography package is accepted too (edge_sdk.signing checks what it is)
    check_argument(
        fn,
        "public_key",
        key,
        "an Ed25519 public key (path, PEM or raw bytes, or a key object) or None",
        key is None or not isinstance(key, (bool, int, float, complex, list, tuple, dict, set)),
    )
    for name in ("max_model_bytes", "max_tensor_bytes"):
        value = kwargs[name]
        check_argument(
            fn, name, value, "a positive integer number of bytes or None", value is None or is_positive_int(value)
        )


#: The keyword arguments :func:`load` takes (``ModelPool`` passes them through).
LOAD_OPTIONS = frozenset(
    (
        "backend",
        "num_threads",
        "verify",
        "manifest",
        "public_key",
        "signature",
        "isolate",
        "max_model_bytes",
        "max_tensor_bytes",
        "accelerator",
    )
)
