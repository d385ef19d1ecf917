"""Reading a TFLite file by hand, before any interpreter sees it: the identifier and the root table.

Microseconds, no schema module: these checks refuse files that would otherwise crash the
interpreter (found by ``tools/fuzz_tflite.py``) or leave the caller with a cryptic message.
"""

from __future__ import annotations

from edge_sdk.errors import CorruptModelError

TFLITE_IDENTIFIER = b"TFL3"


def describe_bytes(head: bytes) -> str:
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (a Keras .keras file?)"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (a Keras .h5 file?)"
    if head.startswith(b"\x08") and b"onnx" in head[:64].lower():
        return "an ONNX model"
    if head[:1] in (b"{", b"["):
        return "a JSON document"
    return f"bytes {head[:8]!r}"


def check_root_has_subgraphs(data: bytes, where: str) -> None:
    """Refuse a flatbuffer whose root Model table lacks the ``subgraphs`` field.

    The flatbuffer verifier accepts such a file and LiteRT 2.3.0's InterpreterBuilder then
    dereferences the missing vector and dies with SIGSEGV (found by tools/fuzz_tflite.py).
    Read by hand, without the schema module, so it costs microseconds.
    """
    n = len(data)
    root = int.from_bytes(data[0:4], "little")
    vtable = root - int.from_bytes(data[root : root + 4], "little", signed=True) if root + 4 <= n else -1
    if not 0 <= vtable <= n - 4:
        raise CorruptModelError(
            f"{where} is not a valid TFLite flatbuffer: its root table offset points outside the file"
        )
    vtable_size = int.from_bytes(data[vtable : vtable + 2], "little")
    field = vtable + 8  # vtable header (4 bytes) + 2 bytes per field; subgraphs is field 2 of Model
    if vtable_size < 10 or field + 2 > n or int.from_bytes(data[field : field + 2], "little") == 0:
        raise CorruptModelError(
            f"{where} has no subgraphs: expected a TFLite model with at least one subgraph "
            "(the root table lacks the field; a corrupt or truncated file)"
        )


def subgraph_count(data: bytes) -> int:
    """Length of the root Model table's ``subgraphs`` vector (after :func:`check_root_has_subgraphs`)."""
    root = int.from_bytes(data[0:4], "little")
    vtable = root - int.from_bytes(data[root : root + 4], "little", signed=True)
    field = root + int.from_bytes(data[vtable + 8 : vtable + 10], "little")
    vector = field + int.from_bytes(data[field : field + 4], "little")
    if not 0 <= vector <= len(data) - 4:
        raise CorruptModelError("the model's subgraphs vector points outside the file (a corrupt or truncated file)")
    return int.from_bytes(data[vector : vector + 4], "little")
