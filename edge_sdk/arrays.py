"""Reading input arrays from .npy/.npz files and matching them to a model's inputs.

Shared by ``edge-sdk run`` and ``edge-sdk bench --input``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Union

import numpy as np

from edge_sdk.errors import InputError


def read_array_file(path: Union[str, os.PathLike]) -> Dict[str, np.ndarray]:
    """Read a .npy (one array) or a .npz; return ``{key: array}`` (a .npy's key is ``""``)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"input file not found: {file} (expected a .npy or .npz file)")
    try:
        loaded = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{file} is not a readable .npy/.npz file: {exc}") from None
    if isinstance(loaded, np.ndarray):
        return {"": loaded}
    with loaded:
        return {key: loaded[key] for key in loaded.files}


def match_inputs(data: Mapping[str, np.ndarray], specs: Sequence[Any], source: str) -> List[np.ndarray]:
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
