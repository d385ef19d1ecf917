"""Affine int8/uint8 quantization, the maths the runtime and the Android core share.

    q = clip(rint(float32(x) / scale) + zero_point, qmin, qmax)
    x = (float32(q) - zero_point) * scale

Everything is computed in float32 so a Java or C port reproduces it bit for bit.
``rint`` rounds half to even (IEEE default; Java ``Math.rint``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np

from edge_sdk.errors import NonFiniteInputError

ScaleLike = Union[float, Sequence[float], np.ndarray]

_SATURATED = 2.0**33  # beyond int32 plus any zero point: clips whatever the dtype
_INT_LIMITS = {np.dtype(t): (np.iinfo(t).min, np.iinfo(t).max) for t in (np.int8, np.uint8, np.int16, np.int32)}


def _broadcastable(values: ScaleLike, ndim: int, axis: Optional[int]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim == 0 or arr.size == 1:
        return arr.reshape(())
    if axis is None:
        raise ValueError("per-channel parameters need the quantized axis")
    shape = [1] * ndim
    shape[axis] = arr.size
    return arr.reshape(shape)


def quantize(
    x: np.ndarray,
    scale: ScaleLike,
    zero_point: ScaleLike,
    dtype=np.int8,
    axis: Optional[int] = None,
    name: str = "input",
) -> np.ndarray:
    """Quantize float ``x`` to ``dtype``: round half to even, then clip to the dtype's range.

    Raises :class:`NonFiniteInputError` for NaN or inf, which have no integer value.
    """
    dtype = np.dtype(dtype)
    if dtype not in _INT_LIMITS:
        raise ValueError(f"quantize: expected an integer dtype (int8, uint8, int16, int32), got {dtype}")
    x32 = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x32).all():
        bad = int(np.size(x32) - np.count_nonzero(np.isfinite(x32)))
        raise NonFiniteInputError(
            f"input {name!r} is quantized ({dtype}), so it needs finite values; "
            f"got {bad} NaN/inf value(s)"
        )
    scale_b = _broadcastable(scale, x32.ndim, axis)
    zero_b = _broadcastable(zero_point, x32.ndim, axis)
    lo, hi = _INT_LIMITS[dtype]
    with np.errstate(over="ignore"):  # a finite value too large for float32 after scaling saturates below
        q = np.rint(x32 / scale_b) + zero_b
    return np.clip(q, lo, hi).astype(dtype)


def quantize_per_tensor(x: np.ndarray, scale: np.float32, zero_point: np.float32, dtype: np.dtype,
                        lo: int, hi: int, name: str = "input") -> np.ndarray:
    """:func:`quantize` for one scale and zero point given as float32 scalars; the runtime's hot path."""
    x32 = x if x.dtype == np.float32 else x.astype(np.float32)
    if x32.size == 1:
        # One value (a tabular feature at batch 1): scalar maths costs a quarter of the ufunc
        # calls and gives the same result. A float64 quotient of two float32 values rounded to
        # float32 is the float32 quotient (53 >= 2*24 + 2 bits: double rounding is innocuous),
        # and round() is half to even. Quotients beyond any integer range just clip.
        value = x32.item()
        if not math.isfinite(value):
            return quantize(x32, scale, zero_point, dtype, name=name)  # raises with the count
        t = value / float(scale)
        if t >= _SATURATED:
            q = hi
        elif t <= -_SATURATED:
            q = lo
        else:
            q = min(max(round(float(np.float32(t))) + int(zero_point), lo), hi)
        return np.array(q, dtype).reshape(x32.shape)  # half the cost of np.full for one value
    if not np.isfinite(x32).all():
        return quantize(x32, scale, zero_point, dtype, name=name)  # raises with the count
    t = x32 / scale
    np.rint(t, out=t)
    t += zero_point
    np.clip(t, lo, hi, out=t)
    return t.astype(dtype)


def dequantize_per_tensor(q: np.ndarray, scale: np.float32, zero_point: np.float32) -> np.ndarray:
    """:func:`dequantize` for one scale and zero point given as float32 scalars."""
    out = np.subtract(q, zero_point, dtype=np.float32)
    out *= scale
    return out


def dequantize(q: np.ndarray, scale: ScaleLike, zero_point: ScaleLike, axis: Optional[int] = None) -> np.ndarray:
    """Map stored integers back to float32: ``(q - zero_point) * scale``."""
    q32 = np.asarray(q).astype(np.float32)
    scale_b = _broadcastable(scale, q32.ndim, axis)
    zero_b = _broadcastable(zero_point, q32.ndim, axis)
    return ((q32 - zero_b) * scale_b).astype(np.float32, copy=False)
