"""Reading input arrays from .npy/.npz files and matching them to a model's inputs.

Shared by ``edge-sdk run`` and ``edge-sdk bench --input``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.console import first_line
from edge_sdk.errors import EdgeSdkError, InputError
from edge_sdk.fileio import describe_file_start, not_a_regular_file, read_head

_EXPECTED = "a .npy or .npz file written by numpy.save/numpy.savez"


def check_array_file(
    path: str | os.PathLike[str], what: str = "input file", error: type[EdgeSdkError] = InputError
) -> Path:
    """Check that ``path`` is a .npy/.npz of plain (non-object) arrays, reading headers only.

    Raises ``error`` with a message saying what came: a missing path, a directory,
    a device, another kind of file (a model, a pickle), or arrays of Python objects,
    which edge-sdk never unpickles (loading a pickle can run code).
    """
    file = Path(path)
    problem = not_a_regular_file(file)
    if problem == "does not exist":
        raise error(f"{what} not found: {file} (expected {_EXPECTED})")
    if problem:
        raise error(f"{what} {file} {problem}; expected {_EXPECTED}")
    head = read_head(file)
    try:
        if head.startswith(_NPY_MAGIC):
            with open(file, "rb") as handle:
                _check_npy_header(handle, file, what, error, "")
        elif head.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(file) as archive:
                for name in archive.namelist():
                    with archive.open(name) as member:
                        if member.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                            raise error(f"{what} {file}: entry {name!r} is not a numpy array; expected {_EXPECTED}")
                    with archive.open(name) as member:
                        _check_npy_header(member, file, what, error, name)
        else:
            hint = " (edge-sdk never loads pickles: they can run code)" if head[:1] == b"\x80" else ""
            raise error(
                f"{what} {file} is {describe_file_start(head)}, not a .npy/.npz file{hint}; expected {_EXPECTED}"
            )
    except EdgeSdkError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise error(
            f"{what} {file} is a damaged .npy/.npz file ({first_line(exc, 200)}); expected {_EXPECTED}"
        ) from None
    return file


_NPY_MAGIC = b"\x93NUMPY"


def _check_npy_header(handle: Any, file: Path, what: str, error: type[EdgeSdkError], entry: str) -> None:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        _, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        _, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:  # a newer header version: numpy's own reader below judges it
        return
    if dtype.hasobject:
        where = f" entry {entry!r}" if entry else ""
        raise error(
            f"{what} {file}{where} holds Python objects (dtype {dtype}), which edge-sdk does not unpickle; "
            "expected numeric arrays (convert them with np.asarray(x, dtype=np.float32) before saving)"
        )


def read_array_file(path: str | os.PathLike[str], what: str = "input file") -> dict[str, np.ndarray]:
    """Read a .npy (one array) or a .npz; return ``{key: array}`` (a .npy's key is ``""``).

    Bad files raise :class:`InputError` saying what was expected and what came (see :func:`check_array_file`).
    """
    file = check_array_file(path, what)
    try:
        loaded = np.load(file, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"": loaded}
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"{what} {file} is not a readable .npy/.npz file ({first_line(exc, 200)}); expected {_EXPECTED}"
        ) from None


def match_inputs(data: Mapping[str, np.ndarray], specs: Sequence[Any], source: str) -> list[np.ndarray]:
    """Order ``data`` as the model's inputs: by input name, ``arr_0..`` in order, or one array for one input."""
    names = [s.name for s in specs]
    keys = list(data)
    if keys == [""] or (len(keys) == 1 and len(names) == 1) or (len(names) == 1 and "x" in data):
        if len(names) != 1:
            raise InputError(
                f"{source} holds one array but the model has {len(names)} inputs {names}; "
                "give a .npz with one array per input name"
            )
        return [data["x"] if "x" in data and len(keys) > 1 else data[keys[0]]]
    if set(names) <= set(keys):
        return [data[n] for n in names]
    if len(keys) == len(names) and all(f"arr_{i}" in data for i in range(len(names))):
        return [data[f"arr_{i}"] for i in range(len(names))]
    raise InputError(
        f"{source} has arrays {keys}; expected one per model input, named {names} "
        "(or arr_0.. in input order, or 'x' for a one-input model)"
    )
