package dev.edgesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.json.JSONObject;
import org.junit.Test;

/** Pixel handling: luma, RGB order, float formula, quantization of a whole image, size errors. */
public class ImagePreprocessorTest {
    private static Manifest manifest(int h, int w, int c, String dtype, String quantization) throws Exception {
        String json = "{\"format\": \"edge-sdk-manifest/1\", \"model_file\": \"m.tflite\","
                + " \"sha256\": \"" + "0".repeat(64) + "\", \"size_bytes\": 1,"
                + " \"inputs\": [{\"name\": \"image\", \"shape\": [-1, " + h + ", " + w + ", " + c + "], \"dtype\": \"" + dtype
                + "\", \"quantization\": " + quantization + "}],"
                + " \"outputs\": [{\"name\": \"probs\", \"shape\": [-1, 3], \"dtype\": \"int8\","
                + " \"quantization\": {\"scale\": 0.00390625, \"zero_point\": -128}}],"
                + " \"labels\": [\"cat\", \"dog\", \"bird\"],"
                + " \"preprocessing\": {\"scale\": 0.00392156862745098, \"offset\": 0.0, \"layout\": \"NHWC\","
                + " \"image\": {\"height\": " + h + ", \"width\": " + w + ", \"channels\": " + c + "}}}";
        return Manifest.fromJson(new JSONObject(json));
    }

    @Test
    public void grayPixelsKeepTheirValue() {
        for (int v = 0; v < 256; v++) {
            assertEquals(v, ImagePreprocessor.luma(v, v, v));
        }
        assertEquals(76, ImagePreprocessor.luma(255, 0, 0)); // 0.299 * 255 = 76.2
        assertEquals(150, ImagePreprocessor.luma(0, 255, 0));
        assertEquals(29, ImagePreprocessor.luma(0, 0, 255));
    }

    @Test
    public void rgbImagesAreNhwcAndScaled() throws Exception {
        Manifest m = manifest(1, 2, 3, "float32", "null");
        ImagePreprocessor pre = new ImagePreprocessor(m);
        int[] argb = {0xFF102030, 0x80FF0001};  // alpha is ignored
        float[] x = pre.toFloat(argb, 2, 1);
        float s = (float) (1.0 / 255.0);
        assertArrayEquals(new float[] {16 * s, 32 * s, 48 * s, 255 * s, 0f, 1 * s}, x, 0f);
        byte[] bytes = pre.toInputBytes(argb, 2, 1);
        assertEquals(6 * 4, bytes.length);  // float32 model: little-endian floats
        assertEquals(Float.floatToIntBits(16 * s),
                (bytes[0] & 0xFF) | (bytes[1] & 0xFF) << 8 | (bytes[2] & 0xFF) << 16 | (bytes[3] & 0xFF) << 24);
    }

    @Test
    public void int8ImageQuantizesWithTheInputScale() throws Exception {
        Manifest m = manifest(2, 2, 1, "int8", "{\"scale\": 0.003921568859368563, \"zero_point\": -128}");
        ImagePreprocessor pre = new ImagePreprocessor(m);
        byte[] q = pre.toInputBytes(new int[] {0xFF000000, 0xFFFFFFFF, 0xFF808080, 0xFF010101}, 2, 2);
        assertArrayEquals(new byte[] {-128, 127, 0, -127}, q);
    }

    @Test
    public void wrongSizesAreClearErrors() throws Exception {
        ImagePreprocessor pre = new ImagePreprocessor(manifest(28, 28, 1, "int8", "{\"scale\": 0.1, \"zero_point\": 0}"));
        ImageSizeException e = assertThrows(ImageSizeException.class, () -> pre.toFloat(new int[280 * 280], 280, 280));
        assertTrue(e.getMessage(), e.getMessage().contains("expected a 28x28 image"));
        assertTrue(e.getMessage(), e.getMessage().contains("got 280x280"));
        e = assertThrows(ImageSizeException.class, () -> pre.toFloat(new int[10], 28, 28));
        assertTrue(e.getMessage(), e.getMessage().contains("expected 784 pixels"));
        e = assertThrows(ImageSizeException.class, () -> pre.toFloat(null, 28, 28));
        assertTrue(e.getMessage(), e.getMessage().contains("got null"));
    }

    @Test
    public void topKUsesManifestLabels() throws Exception {
        OutputDecoder decoder = new OutputDecoder(manifest(1, 1, 1, "int8", "{\"scale\": 0.1, \"zero_point\": 0}"));
        // int8 outputs, scale 1/256, zero point -128: stored 0 -> 0.5, 127 -> 0.99609375
        java.util.List<Classification> top = decoder.topK(new byte[] {0, 127, -128}, 2);
        assertEquals("dog", top.get(0).label());
        assertEquals(0.99609375f, top.get(0).score(), 0f);
        assertEquals("cat", top.get(1).label());
        assertEquals(0.5f, top.get(1).score(), 0f);
        EdgeCoreException e = assertThrows(EdgeCoreException.class, () -> decoder.scores(new byte[4]));
        assertTrue(e.getMessage(), e.getMessage().contains("expected 3 bytes"));
        // Float scores (a float model's output) rank the same way.
        java.util.List<Classification> ranked = decoder.rank(new float[] {0.2f, 0.1f, 0.7f}, 3);
        assertEquals("bird", ranked.get(0).label());
        assertEquals("cat", ranked.get(1).label());
        e = assertThrows(EdgeCoreException.class, () -> decoder.rank(new float[] {1f}, 1));
        assertTrue(e.getMessage(), e.getMessage().contains("expected 3 scores, got 1"));
    }
}
