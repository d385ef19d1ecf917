package dev.edgesdk.core;

/**
 * Per-tensor affine quantization, the same maths as edge_sdk/quant.py, bit for bit.
 *
 * <pre>
 *   q = clip(rint(float32(x) / scale) + zero_point, qmin, qmax)
 *   x = (float32(q) - zero_point) * scale
 * </pre>
 *
 * Everything is float32 arithmetic (Java float operations are IEEE single precision, with no
 * fused multiply-add unless asked for), and {@link Math#rint} rounds half to even like numpy.
 */
public final class Quantization {
    private final float scale;
    private final int zeroPoint;

    /** {@code scale} is the float32 scale from the manifest; it must be positive and finite. */
    public Quantization(float scale, int zeroPoint) {
        if (!(scale > 0f) || Float.isInfinite(scale)) {
            throw new ManifestException("quantization scale must be a positive finite number, got " + scale);
        }
        this.scale = scale;
        this.zeroPoint = zeroPoint;
    }

    public float scale() {
        return scale;
    }

    public int zeroPoint() {
        return zeroPoint;
    }

    /** Quantize one value to the integer range [lo, hi]; throws on NaN or infinity. */
    public int quantize(float x, int lo, int hi) {
        if (Float.isNaN(x) || Float.isInfinite(x)) {
            throw new NonFiniteInputException(
                    "a quantized tensor needs finite values; got " + x + " (NaN and infinity have no integer value)");
        }
        float t = x / scale;
        // rint of a float is an integer that a float holds exactly, so the cast back loses nothing.
        float rounded = (float) Math.rint(t);
        float q = rounded + (float) zeroPoint;
        if (q < lo) {
            q = lo;
        } else if (q > hi) {
            q = hi;
        }
        return (int) q;
    }

    /** Quantize a float array to the stored bytes of {@code dtype} ("int8" or "uint8"). */
    public byte[] quantize(float[] values, DType dtype) {
        byte[] out = new byte[values.length];
        int lo = dtype.min();
        int hi = dtype.max();
        for (int i = 0; i < values.length; i++) {
            out[i] = (byte) quantize(values[i], lo, hi);
        }
        return out;
    }

    /** Map one stored integer back to float32. */
    public float dequantize(int q) {
        return ((float) q - (float) zeroPoint) * scale;
    }

    /** Dequantize stored bytes of {@code dtype} to float32. */
    public float[] dequantize(byte[] stored, DType dtype) {
        float[] out = new float[stored.length];
        for (int i = 0; i < stored.length; i++) {
            out[i] = dequantize(dtype.toInt(stored[i]));
        }
        return out;
    }

    @Override
    public String toString() {
        return "q(scale=" + scale + ", zero_point=" + zeroPoint + ")";
    }
}
