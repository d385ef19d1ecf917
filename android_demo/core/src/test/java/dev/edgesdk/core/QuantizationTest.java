package dev.edgesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** The rounding and clipping rules of edge_sdk/quant.py, checked by hand (the golden tests check them against numpy). */
public class QuantizationTest {
    @Test
    public void halvesRoundToEven() {
        Quantization q = new Quantization(0.5f, 0);
        // x / 0.5 = 0.5, 1.5, 2.5, -0.5, -1.5, -2.5 -> 0, 2, 2, -0, -2, -2
        float[] xs = {0.25f, 0.75f, 1.25f, -0.25f, -0.75f, -1.25f};
        int[] want = {0, 2, 2, 0, -2, -2};
        for (int i = 0; i < xs.length; i++) {
            assertEquals("x=" + xs[i], want[i], q.quantize(xs[i], -128, 127));
        }
    }

    @Test
    public void zeroPointIsAddedAfterRoundingThenClipped() {
        Quantization q = new Quantization(0.1f, 3);
        assertEquals(3, q.quantize(0f, 0, 255));
        assertEquals(13, q.quantize(1f, 0, 255));
        assertEquals(0, q.quantize(-5f, 0, 255));
        assertEquals(255, q.quantize(1e30f, 0, 255));
        assertEquals(255, q.quantize(Float.MAX_VALUE, 0, 255)); // x / scale overflows to infinity, then clips
        assertArrayEquals(new byte[] {3, (byte) 255, 0}, q.quantize(new float[] {0f, 100f, -100f}, DType.UINT8));
    }

    @Test
    public void dequantizeIsFloat32() {
        Quantization q = new Quantization(0.00390625f, -128);
        assertEquals(0f, q.dequantize(-128), 0f);
        assertEquals(0.99609375f, q.dequantize(127), 0f);
        assertArrayEquals(new float[] {0.5f, 1f - 0.00390625f}, q.dequantize(new byte[] {0, 127}, DType.INT8), 0f);
        Quantization u = new Quantization(1f, 128);
        assertArrayEquals(new float[] {127f, -128f}, u.dequantize(new byte[] {(byte) 255, 0}, DType.UINT8), 0f);
    }

    @Test
    public void nonFiniteInputIsRefused() {
        Quantization q = new Quantization(0.1f, 0);
        NonFiniteInputException e = assertThrows(NonFiniteInputException.class, () -> q.quantize(Float.NaN, -128, 127));
        assertTrue(e.getMessage(), e.getMessage().contains("finite"));
        assertThrows(NonFiniteInputException.class, () -> q.quantize(Float.POSITIVE_INFINITY, -128, 127));
    }

    @Test
    public void badScaleIsRefused() {
        assertThrows(ManifestException.class, () -> new Quantization(0f, 0));
        assertThrows(ManifestException.class, () -> new Quantization(Float.NaN, 0));
        assertThrows(ManifestException.class, () -> new Quantization(-1f, 0));
    }
}
