"""The quantization maths against a plain numpy reference."""

import numpy as np
import pytest

from edge_sdk import NonFiniteInputError
from edge_sdk.quant import (
    PerTensorQuantizer,
    dequantize,
    dequantize_per_tensor,
    dequantize_table,
    quantize,
    quantize_per_tensor,
)


def reference_quantize(x, scale, zero_point, lo, hi):
    """Straight from the definition, one element at a time."""
    out = []
    for value in np.asarray(x, dtype=np.float32).ravel():
        q = np.rint(np.float32(value) / np.float32(scale)) + zero_point
        out.append(min(max(q, lo), hi))
    return np.array(out).reshape(np.shape(x))


@pytest.mark.parametrize("dtype,zero_point", [(np.int8, -128), (np.int8, 3), (np.uint8, 0), (np.uint8, 128)])
def test_quantize_matches_reference(dtype, zero_point):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.5, size=(7, 5)).astype(np.float32)
    scale = 0.0123
    info = np.iinfo(dtype)
    got = quantize(x, scale, zero_point, dtype)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, reference_quantize(x, scale, zero_point, info.min, info.max))


def test_rounding_is_half_to_even_and_clips():
    got = quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1000.0, -1000.0], np.float32), 1.0, 0, np.int8)
    np.testing.assert_array_equal(got, [0, 2, 2, 0, -2, 127, -128])


def test_fast_path_equals_general_path():
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, size=(4, 8, 8, 1)).astype(np.float32)
    scale, zero = np.float32(0.02), np.float32(-5)
    fast = quantize_per_tensor(x, scale, zero, np.dtype(np.int8), -128, 127)
    np.testing.assert_array_equal(fast, quantize(x, scale, zero, np.int8))
    np.testing.assert_array_equal(dequantize_per_tensor(fast, scale, zero), dequantize(fast, scale, zero))


@pytest.mark.parametrize("dtype,lo,hi,zero", [(np.int8, -128, 127, -5), (np.uint8, 0, 255, 128)])
def test_single_value_path_equals_general_path(dtype, lo, hi, zero):
    """One-element inputs take scalar maths; every value, halfway points and clipping included, must agree."""
    scale, zero32 = np.float32(0.0371), np.float32(zero)
    rng = np.random.default_rng(2)
    halfway = ((np.arange(-300, 300) + 0.5) * scale).astype(np.float32)
    values = np.concatenate(
        [rng.normal(0, 3, 20000).astype(np.float32), halfway, np.array([0.0, -0.0, 1e30, -1e30, 3.4e38], np.float32)]
    )
    for shape in [(1,), (1, 1)]:
        singles = [quantize_per_tensor(v.reshape(shape), scale, zero32, np.dtype(dtype), lo, hi) for v in values]
        assert all(q.shape == shape and q.dtype == dtype for q in singles)
        np.testing.assert_array_equal(
            np.concatenate([q.ravel() for q in singles]), quantize(values, scale, zero32, dtype)
        )
    ints = np.array([[7]], np.int64)  # integer features are converted to float32 first, as in the array path
    assert (
        quantize_per_tensor(ints, scale, zero32, np.dtype(dtype), lo, hi)[0, 0]
        == quantize(ints, scale, zero32, dtype)[0, 0]
    )
    for bad in (np.nan, np.inf):
        with pytest.raises(NonFiniteInputError, match="1 NaN/inf"):
            quantize_per_tensor(np.array([[bad]], np.float32), scale, zero32, np.dtype(dtype), lo, hi)


def test_round_trip_error_is_at_most_half_a_step():
    x = np.linspace(-1, 1, 1001, dtype=np.float32)
    scale, zero = 2.0 / 255, 0
    back = dequantize(quantize(x, scale, zero, np.int8), scale, zero)
    assert np.max(np.abs(back - x)) <= scale / 2 + 1e-7


def test_dequantize_matches_reference():
    q = np.array([-128, -1, 0, 5, 127], np.int8)
    np.testing.assert_allclose(dequantize(q, 0.5, -1), (q.astype(np.float64) + 1) * 0.5)


def test_per_axis_quantization_uses_each_channels_scale():
    x = np.array([[1.0, 1.0], [2.0, 2.0]], np.float32)
    got = quantize(x, [0.5, 0.25], [0, 1], np.int8, axis=1)
    np.testing.assert_array_equal(got, [[2, 5], [4, 9]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    x = np.array([0.0, bad], np.float32)
    with pytest.raises(NonFiniteInputError, match="1 NaN/inf"):
        quantize(x, 0.1, 0, np.int8)
    with pytest.raises(NonFiniteInputError):
        quantize_per_tensor(x, np.float32(0.1), np.float32(0), np.dtype(np.int8), -128, 127)


@pytest.mark.parametrize(
    "dtype,zero_point",
    [(np.int8, -128), (np.int8, -5), (np.int8, 3), (np.uint8, 0), (np.uint8, 131), (np.int16, 0), (np.int16, -77)],
)
@pytest.mark.parametrize("scale", [0.0039215686, 0.0371, 1.0, 1e-6, 123.4])
def test_per_tensor_quantizer_is_bit_for_bit_quantize(dtype, zero_point, scale):
    """The four-call rounding trick (clip, add 1.5*2**23, keep the low bytes) against the definition:
    random values, every halfway point in range, exact steps, signed zeros, huge and tiny values."""
    s = np.float32(scale)
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.normal(0, 300, 4000) * s,
            (np.arange(-700, 700) + 0.5) * s,
            np.arange(-700, 700) * s,
            [0.0, -0.0, 1e30, -1e30, 3.4e38, -3.4e38, 1e-40, 0.25 * s],
        ]
    )
    x = values.astype(np.float32).reshape(-1, 2)
    quantizer = PerTensorQuantizer(s, zero_point, dtype)
    assert quantizer.usable
    with np.errstate(over="ignore"):
        got = quantizer(x)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, quantize(x, s, zero_point, dtype))
    with pytest.raises(NonFiniteInputError, match="1 NaN/inf"):
        quantizer(np.array([1.0, np.nan, 2.0], np.float32))


@pytest.mark.parametrize("dtype,zero_point", [(np.int8, -128), (np.int8, 7), (np.uint8, 0), (np.uint8, 200)])
def test_dequantize_table_equals_dequantize(dtype, zero_point):
    every = np.arange(256, dtype=np.uint8).view(dtype)
    table = dequantize_table(dtype, 0.0371, zero_point)
    expected = dequantize_per_tensor(every, np.float32(0.0371), np.float32(zero_point))
    np.testing.assert_array_equal(table.take(every.view(np.uint8)), expected)
    # The runtime takes with the stored dtype itself: negative int8 indices must wrap to the same byte.
    np.testing.assert_array_equal(table.take(every.reshape(16, 16)), expected.reshape(16, 16))
    assert dequantize_table(np.int16, 0.1, 0) is None
