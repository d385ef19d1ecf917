package dev.edgesdk.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Turns a bitmap-like ARGB pixel array (what {@code android.graphics.Bitmap.getPixels} fills) into
 * the bytes the model's first input takes, as the manifest says: size check, grayscale or RGB in
 * NHWC order, {@code raw * scale + offset}, then quantization with the input's scale and zero point.
 *
 * <p>Grayscale is the integer luma {@code (299 R + 587 G + 114 B + 500) / 1000}, so a gray pixel
 * (R = G = B = v) gives exactly v.
 */
public final class ImagePreprocessor {
    private final Preprocessing preprocessing;
    private final TensorInfo input;

    /** Checks that the manifest describes an NHWC image model whose first input matches its image size. */
    public ImagePreprocessor(Manifest manifest) {
        this.preprocessing = manifest.requireImagePreprocessing();
        this.input = manifest.inputs().get(0);
        int[] shape = input.shape();
        int[] expected = {preprocessing.height(), preprocessing.width(), preprocessing.channels()};
        if (shape.length != 4) {
            throw new ManifestException("manifest field 'inputs[0].shape': expected rank 4 (NHWC) for an image model, got rank "
                    + shape.length);
        }
        for (int i = 0; i < 3; i++) {
            if (shape[i + 1] != expected[i]) {
                throw new ManifestException("manifest fields disagree: inputs[0].shape is " + java.util.Arrays.toString(shape)
                        + " but preprocessing.image says " + expected[0] + "x" + expected[1] + "x" + expected[2]);
            }
        }
    }

    public Preprocessing preprocessing() {
        return preprocessing;
    }

    public TensorInfo input() {
        return input;
    }

    /** Float input values, NHWC for one image. Throws {@link ImageSizeException} for the wrong size. */
    public float[] toFloat(int[] argb, int width, int height) {
        checkSize(argb, width, height);
        int channels = preprocessing.channels();
        float[] out = new float[width * height * channels];
        for (int i = 0; i < width * height; i++) {
            int p = argb[i];
            int r = (p >> 16) & 0xFF;
            int g = (p >> 8) & 0xFF;
            int b = p & 0xFF;
            if (channels == 1) {
                out[i] = preprocessing.apply(luma(r, g, b));
            } else {
                out[3 * i] = preprocessing.apply(r);
                out[3 * i + 1] = preprocessing.apply(g);
                out[3 * i + 2] = preprocessing.apply(b);
            }
        }
        return out;
    }

    /**
     * The input tensor's bytes for one image: quantized int8/uint8 bytes, or little-endian float32
     * for a float model. Ready to copy into the interpreter's input buffer.
     */
    public byte[] toInputBytes(int[] argb, int width, int height) {
        float[] values = toFloat(argb, width, height);
        if (input.isQuantized()) {
            return input.quantization().quantize(values, input.dtype());
        }
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buffer.putFloat(v);
        }
        return buffer.array();
    }

    /** Integer luma of an sRGB pixel, rounded to nearest. */
    public static int luma(int r, int g, int b) {
        return (299 * r + 587 * g + 114 * b + 500) / 1000;
    }

    private void checkSize(int[] argb, int width, int height) {
        int w = preprocessing.width();
        int h = preprocessing.height();
        if (argb == null) {
            throw new ImageSizeException("expected " + w + "x" + h + " ARGB pixels, got null");
        }
        if (width != w || height != h) {
            throw new ImageSizeException("expected a " + w + "x" + h + " image (the manifest's preprocessing.image), got "
                    + width + "x" + height + "; scale the bitmap first (Bitmap.createScaledBitmap)");
        }
        if (argb.length != w * h) {
            throw new ImageSizeException("expected " + (w * h) + " pixels for a " + w + "x" + h + " image, got an array of "
                    + argb.length);
        }
    }
}
