"""The identity of a directory model (a SavedModel): one rule, used by convert and by lineage checks.

A directory is hashed as the sorted lines ``relative/path\\0<file sha256>\\n`` of every file
in it; the sha256 of that listing is the directory's sha256. ``edge-sdk convert`` records
it for SavedModel artifacts and inputs, and :func:`edge_sdk.reference.model_sha256` uses it
to recognise them again, so the two must never disagree: both call this module.
The same SavedModel copied elsewhere keeps its identity.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edge_sdk.fileio import sha256_file


def tree_listing(directory: str | os.PathLike[str]) -> bytes:
    """The sorted ``relative path\\0file sha256\\n`` lines of every file under ``directory``."""
    root = Path(directory)
    lines = [
        f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}\n"
        for p in sorted(q for q in root.rglob("*") if q.is_file())
    ]
    return "".join(lines).encode()


def tree_sha256(directory: str | os.PathLike[str]) -> str:
    """sha256 of a directory model: the sha256 of its :func:`tree_listing`."""
    return hashlib.sha256(tree_listing(directory)).hexdigest()
