"""Affine int8/uint8 quantization, the maths the runtime and the Android core share.

    q = clip(rint(float32(x) / scale) + zero_point, qmin, qmax)
    x = (float32(q) - zero_point) * scale

Everything is computed in float32 so a Java or C port reproduces it bit for bit.
``rint`` rounds half to even (IEEE default; Java ``Math.rint``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from edge_sdk.errors import NonFiniteInputError

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

try:  # the clip ufunc itself: np.clip adds about 2 us of Python dispatch per call on small arrays
    from numpy._core.umath import clip as _numpy_clip  # type: ignore[attr-defined]  # numpy ships no stub for the ufunc
except ImportError:  # numpy < 2
    try:
        from numpy.core.umath import clip as _numpy_clip  # type: ignore[no-redef]  # the numpy 1 home of the same ufunc
    except ImportError:  # pragma: no cover - very old numpy
        _numpy_clip = np.clip
_clip_ufunc = _numpy_clip  # assigned, not imported: model.py's fast path reads it (strict mypy: no re-exports)


class QuantizationClipWarning(UserWarning):
    """Float input data fell outside what an input's int8/uint8 quantization can represent and was clipped."""


ScaleLike = float | np.floating | Sequence[float] | np.ndarray

_SATURATED = 2.0**33  # beyond int32 plus any zero point: clips whatever the dtype
_INT_LIMITS = {np.dtype(t): (np.iinfo(t).min, np.iinfo(t).max) for t in (np.int8, np.uint8, np.int16, np.int32)}


def _broadcastable(values: ScaleLike, ndim: int, axis: int | None) -> np.ndarray:
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
    dtype: DTypeLike = np.int8,
    axis: int | None = None,
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
            f"input {name!r} is quantized ({dtype}), so it needs finite values; got {bad} NaN/inf value(s)"
        )
    scale_b = _broadcastable(scale, x32.ndim, axis)
    zero_b = _broadcastable(zero_point, x32.ndim, axis)
    lo, hi = _INT_LIMITS[dtype]
    with np.errstate(over="ignore"):  # a finite value too large for float32 after scaling saturates below
        q = np.rint(x32 / scale_b) + zero_b
    stored: np.ndarray = np.clip(q, lo, hi).astype(dtype)
    return stored


def quantize_per_tensor(
    x: np.ndarray, scale: np.float32, zero_point: np.float32, dtype: np.dtype, lo: int, hi: int, name: str = "input"
) -> np.ndarray:
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


#: 1.5 * 2**23: adding it to a float32 of magnitude below 2**22 rounds to an integer, half to even,
#: exactly like ``rint`` (the ulp there is 1), and leaves that integer in the low mantissa bits.
_ROUNDING_MAGIC = 12582912.0
_UNSIGNED: dict[np.dtype, np.dtype] = {
    np.dtype(np.int8): np.dtype(np.uint8),
    np.dtype(np.uint8): np.dtype(np.uint8),
    np.dtype(np.int16): np.dtype(np.uint16),
    np.dtype(np.uint16): np.dtype(np.uint16),
}


class PerTensorQuantizer:
    """Float32 -> int8/uint8/int16 with one scale and zero point, in four numpy calls and no extra copy.

    The result is bit for bit :func:`quantize` (``clip(rint(x / scale) + zero_point)``):

    1. ``t = x / scale`` in float32, as in :func:`quantize`;
    2. ``t`` is clipped to ``[qmin - zero_point, qmax - zero_point]``. The bounds are integers, so
       clipping before rounding gives the same integer as rounding before clipping, and the
       clipped value is small (below 2**16);
    3. ``t + 1.5 * 2**23`` rounds ``t`` half to even to an integer (the ulp of that sum is 1; the
       constant is even, so ties keep their parity) and leaves it, in two's complement, in the
       low bits of the float32's bit pattern. When the zero point is even it is folded into the
       constant (an even shift keeps ties' parity too);
    4. the low 8 (or 16) bits of each float32 are the stored integer modulo 2**8 (2**16), which
       equals the stored integer because it lies in the dtype's range: they are copied (or, for an
       odd zero point, added to the zero point with wrap-around) straight into the destination.

    Needs a little-endian machine (the low bytes come first); :attr:`usable` says whether it applies.
    NaN and inf are refused as :func:`quantize` refuses them.
    """

    __slots__ = ("scale", "zero", "dtype", "unsigned", "stride", "lo", "hi", "magic", "byte_add", "usable", "_ones")

    dtype: np.dtype
    scale: np.float32
    zero: np.float32
    usable: bool
    # The rest is set only when ``usable`` (and read only then):
    unsigned: np.dtype
    stride: int
    lo: np.float32
    hi: np.float32
    magic: np.float32
    byte_add: np.generic | None

    def __init__(self, scale: float, zero_point: int, dtype: DTypeLike):
        self.dtype = np.dtype(dtype)
        self.scale = np.float32(scale)
        self.zero = np.float32(zero_point)
        unsigned = _UNSIGNED.get(self.dtype)
        self.usable = unsigned is not None and sys.byteorder == "little"
        self._ones = np.ones(0, np.float32)
        if unsigned is None or not self.usable:
            self.unsigned = unsigned  # type: ignore[assignment]  # None: not usable, and then never read
            return
        self.unsigned = unsigned
        info = np.iinfo(self.dtype)
        z = int(zero_point)
        self.stride = 4 // self.dtype.itemsize
        self.lo = np.float32(info.min - z)
        self.hi = np.float32(info.max - z)
        even = z % 2 == 0
        self.magic = np.float32(_ROUNDING_MAGIC + (z if even else 0))
        modulus = 1 << (8 * self.dtype.itemsize)
        self.byte_add = None if even else self.unsigned.type(z % modulus)

    def scaled(self, x32: np.ndarray, name: str) -> np.ndarray:
        """``x32 / scale`` as a new flat float32 array, after refusing NaN and inf."""
        t: np.ndarray = np.divide(x32.reshape(-1), self.scale)
        self._refuse_non_finite(t, x32, name)
        return t

    def scale_into(self, x32: np.ndarray, out: np.ndarray, out_flat: np.ndarray, name: str) -> None:
        """:meth:`scaled` into a preallocated float32 ``out`` of ``x32``'s shape (``out_flat``: its flat view)."""
        np.divide(x32, self.scale, out=out)
        self._refuse_non_finite(out_flat, x32, name)

    def _refuse_non_finite(self, t_flat: np.ndarray, x32: np.ndarray, name: str) -> None:
        # One BLAS dot with ones instead of isfinite().all() (two numpy calls, twice the time): a NaN or
        # inf makes the sum non-finite. A finite sum that overflows (values near float32's limit, whose
        # division has already overflowed) is a false alarm, settled by the exact check.
        ones = self._ones
        if ones.shape[0] != t_flat.shape[0]:
            ones = self._ones = np.ones(t_flat.shape[0], np.float32)
        if not math.isfinite(t_flat.dot(ones)) and not np.isfinite(x32).all():
            quantize(x32, self.scale, self.zero, self.dtype, name=name)  # raises, with the count

    def store(self, t: np.ndarray, t_low: np.ndarray, out_unsigned: np.ndarray) -> None:
        """Round and clip ``t`` (modified in place) into ``out_unsigned``.

        ``t_low`` is ``t``'s flat memory viewed as :attr:`unsigned` with step :attr:`stride` (the
        low bytes of each float32); ``out_unsigned`` the destination viewed as :attr:`unsigned`,
        flat, with as many elements as ``t``.
        """
        _clip_ufunc(t, self.lo, self.hi, out=t)
        t += self.magic
        if self.byte_add is None:
            out_unsigned[...] = t_low
        else:
            np.add(t_low, self.byte_add, out=out_unsigned)

    def __call__(self, x: np.ndarray, name: str = "input") -> np.ndarray:
        """Quantize ``x`` to a new array of ``dtype`` with ``x``'s shape."""
        x32 = x if x.dtype == np.float32 else np.asarray(x, dtype=np.float32)
        out = np.empty(x32.shape, self.dtype)
        t = self.scaled(x32, name)
        self.store(t, t.view(self.unsigned)[:: self.stride], out.reshape(-1).view(self.unsigned))
        return out


def dequantize_table(dtype: DTypeLike, scale: float, zero_point: int) -> np.ndarray | None:
    """For an 8-bit ``dtype``: the float32 value of every stored byte, indexed by the byte as uint8.

    ``table.take(q)`` is then :func:`dequantize_per_tensor` of ``q``, bit for bit, in one numpy call
    (``take`` wraps negative int8 indices as Python does, so -1 reads entry 255, the byte 0xff).
    ``None`` for wider dtypes.
    """
    dtype = np.dtype(dtype)
    if dtype.itemsize != 1 or dtype.kind not in "iu":
        return None
    stored = np.arange(256, dtype=np.uint8).view(dtype)
    return dequantize_per_tensor(stored, np.float32(scale), np.float32(zero_point))


def dequantize_per_tensor(q: np.ndarray, scale: np.float32, zero_point: np.float32) -> np.ndarray:
    """:func:`dequantize` for one scale and zero point given as float32 scalars."""
    out: np.ndarray = np.subtract(q, zero_point, dtype=np.float32)
    out *= scale
    return out


def dequantize(q: np.ndarray, scale: ScaleLike, zero_point: ScaleLike, axis: int | None = None) -> np.ndarray:
    """Map stored integers back to float32: ``(q - zero_point) * scale``."""
    q32 = np.asarray(q).astype(np.float32)
    scale_b = _broadcastable(scale, q32.ndim, axis)
    zero_b = _broadcastable(zero_point, q32.ndim, axis)
    values: np.ndarray = ((q32 - zero_b) * scale_b).astype(np.float32, copy=False)
    return values
