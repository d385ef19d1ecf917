"""Outputs quantization wiped out: a channel group (a YOLO head's class rows) or a whole output whose values
collapsed to a constant or lost most of their range against float (issue 25 item 5).

One per-tensor int8 scale for boxes in pixels (0-640) and class scores (0-1) turns every score into 0: the
file runs and its argmax barely moves, yet the detector finds nothing. :func:`find_wipeouts` names such
outputs and channels; :func:`wipeout_message` says so in one line with the remedies. numpy only: the light
runtime's ``parity --reference`` uses it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

WIPEOUT_REMEDY = (
    "split the output (e.g. boxes and class scores as separate outputs), keep the last op in float "
    "(--recipe auto builds that as int8-float-head; the LiteRT quantizer takes --scheme int8 "
    "--keep-float REGEX naming its output), or use int16 activations (--scheme int16x8)"
)


# ------------------------------------------------------------------------------------------------
# wiped-out outputs
# ------------------------------------------------------------------------------------------------
def channel_axis(shape: Sequence[int]) -> int | None:
    """The axis whose entries are separate channels: 1 for ``[B, F]``; the smaller of ``[B, A, N]``; last of 4-D."""
    if len(shape) == 2:
        return 1 if shape[1] > 1 else None
    if len(shape) == 3:
        return 1 if shape[1] <= shape[2] else 2
    if len(shape) >= 4:
        return len(shape) - 1 if shape[-1] > 1 else None
    return None


def _spread(a: np.ndarray, axis: int | None) -> np.ndarray:
    """Per-channel range (99th minus 1st percentile) over every other axis."""
    a = np.asarray(a, np.float64)
    if axis is None:
        flat = a.reshape(1, -1)
    else:
        flat = np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
    spread: np.ndarray = np.percentile(flat, 99, axis=1) - np.percentile(flat, 1, axis=1)
    return spread


def _runs(indices: Sequence[int]) -> str:
    """``[4, 5, 6, 9]`` as ``"4-6, 9"``."""
    parts: list[str] = []
    ordered = list(indices)
    start = 0
    for k in range(1, len(ordered) + 1):
        if k == len(ordered) or ordered[k] != ordered[k - 1] + 1:
            first, last = ordered[start], ordered[k - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = k
    return ", ".join(parts)


#: The smallest probability a class output must reach somewhere in the data for its collapse to count.
PROBABILITY_FLOOR = 0.01


def find_wipeouts(
    f_out: Mapping[str, np.ndarray],
    q_out: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    *,
    kept: float = 0.25,
    share: float = 0.2,
) -> list[dict[str, Any]]:
    """Outputs, or channel groups of an output, that quantization collapsed.

    A channel *collapsed* when its quantized range (1st to 99th percentile over the data) is
    below ``kept`` of its float range (a constant is range 0); channels constant in float too
    are left out. An output is reported when all of it collapsed, or when at least ``share``
    of its channels did (the class rows of a YOLO head: 80 of 84 rows); scattered dead
    channels (an autoencoder's always-blank border pixels) are not. Returns one dict per
    wiped-out output: ``output``, ``axis``, ``channels`` (indices), ``of``, ``what`` (words).
    """
    found: list[dict[str, Any]] = []
    for f_name, q_name in pairs:
        f, q = np.asarray(f_out[f_name]), np.asarray(q_out[q_name])
        if f.dtype.kind != "f" or f.size == 0 or f.shape != q.shape:
            continue
        whole_f, whole_q = float(_spread(f, None)[0]), float(_spread(q, None)[0])
        scale = max(float(np.max(np.abs(f))), 1e-30)
        if whole_f > 1e-6 * scale and whole_q < kept * whole_f:
            found.append(
                {
                    "output": f_name,
                    "axis": None,
                    "channels": [],
                    "of": 1,
                    "what": f"all of output {f_name!r} (range {whole_f:.3g} in float, {whole_q:.3g} quantized)",
                }
            )
            continue
        axis = channel_axis(f.shape)
        if axis is None:
            continue
        fs, qs = _spread(f, axis), _spread(q, axis)
        live = fs > 1e-6 * scale
        if float(np.min(f)) >= 0.0 and float(np.max(f)) <= 1.0:
            # Probabilities (softmax or sigmoid): a class the float model never gives even 1% is decided by
            # no threshold or ranking, so its collapse below the output's step (1/256) loses nothing. Without
            # this, a keyword spotter's never-chosen classes (float up to 1e-4) read as a wiped-out output.
            live &= np.moveaxis(f, axis, 0).reshape(f.shape[axis], -1).max(axis=1) >= PROBABILITY_FLOOR
        dead = np.where(live & (qs < kept * fs))[0]
        if len(dead) and len(dead) >= share * int(live.sum()):
            found.append(
                {
                    "output": f_name,
                    "axis": axis,
                    "channels": [int(i) for i in dead],
                    "of": int(f.shape[axis]),
                    "what": (
                        f"channels {_runs(dead.tolist())} (axis {axis}) of output {f_name!r}, "
                        f"{len(dead)} of {f.shape[axis]}: float range up to {float(fs[dead].max()):.3g}, "
                        f"quantized {float(qs[dead].max()):.3g}"
                    ),
                }
            )
    return found


def wipeout_message(found: Sequence[Mapping[str, Any]], subject: str) -> str:
    """One line: what collapsed in ``subject`` and the remedies."""
    return (
        f"{subject}: quantization wiped out "
        + "; ".join(w["what"] for w in found)
        + f" (values collapsed to a constant or lost most of their range); remedy: {WIPEOUT_REMEDY}"
    )
