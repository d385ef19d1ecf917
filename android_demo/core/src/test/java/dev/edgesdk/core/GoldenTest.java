package dev.edgesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;

import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * The core against golden files that edge-sdk's Python runtime wrote (tests/android/android_golden.py):
 * quantized input bytes must match exactly, dequantized outputs within 1e-6, top-k exactly.
 *
 * <p>Runs on the committed fixtures (src/test/resources/golden) and, when the system property
 * {@code golden.dir} names a directory, on that one too (pytest passes a freshly converted model).
 */
@RunWith(Parameterized.class)
public class GoldenTest {
    private static final double OUTPUT_TOLERANCE = 1e-6;

    private final Path dir;
    private final JSONObject golden;
    private final Manifest manifest;
    private final int count;

    public GoldenTest(String name, Path dir) throws Exception {
        this.dir = dir;
        this.golden = new JSONObject(new String(Files.readAllBytes(dir.resolve("golden.json")), StandardCharsets.UTF_8));
        this.manifest = Manifest.parse(Files.readAllBytes(dir.resolve("model.json")));
        this.count = golden.getInt("count");
    }

    @Parameters(name = "{0}")
    public static Collection<Object[]> goldenDirs() throws URISyntaxException {
        List<Object[]> dirs = new ArrayList<>();
        URL committed = GoldenTest.class.getResource("/golden/golden.json");
        if (committed == null) {
            throw new IllegalStateException("committed golden fixtures missing from the test classpath (/golden/golden.json)");
        }
        dirs.add(new Object[] {"committed", Paths.get(committed.toURI()).getParent()});
        String extra = System.getProperty("golden.dir", "");
        if (!extra.isEmpty()) {
            Path path = Paths.get(extra);
            if (!Files.isRegularFile(path.resolve("golden.json"))) {
                // A wrong path must fail loudly, not quietly test only the committed files.
                throw new IllegalStateException("-Dgolden.dir=" + extra + " has no golden.json");
            }
            dirs.add(new Object[] {"golden.dir=" + extra, path});
        }
        return dirs;
    }

    private byte[] read(String file) throws IOException {
        return Files.readAllBytes(dir.resolve(file));
    }

    private static int[] grayToArgb(byte[] pixels, int offset, int n) {
        int[] argb = new int[n];
        for (int i = 0; i < n; i++) {
            int v = pixels[offset + i] & 0xFF;
            argb[i] = 0xFF000000 | v << 16 | v << 8 | v;
        }
        return argb;
    }

    @Test
    public void quantizedInputBytesMatchEdgeSdkExactly() throws Exception {
        ImagePreprocessor pre = new ImagePreprocessor(manifest);
        int w = pre.preprocessing().width();
        int h = pre.preprocessing().height();
        assertEquals("golden pixels are grayscale", 1, pre.preprocessing().channels());
        byte[] pixels = read("pixels.u8");
        byte[] expected = read("input_q.bin");
        int per = w * h;
        assertEquals(count * per, pixels.length);
        assertEquals(count * per, expected.length);
        for (int n = 0; n < count; n++) {
            byte[] got = pre.toInputBytes(grayToArgb(pixels, n * per, per), w, h);
            byte[] want = Arrays.copyOfRange(expected, n * per, (n + 1) * per);
            assertArrayEquals("sample " + n + ": quantized input bytes", want, got);
        }
    }

    @Test
    public void dequantizedOutputsMatchEdgeSdk() throws Exception {
        OutputDecoder decoder = new OutputDecoder(manifest);
        int classes = decoder.output().elementsPerRow();
        int rowBytes = classes * decoder.output().dtype().bytes();
        byte[] raw = read("output_raw.bin");
        float[] want = new float[count * classes];
        ByteBuffer.wrap(read("output_float.f32")).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(want);
        assertEquals(count * rowBytes, raw.length);
        JSONArray topK = golden.getJSONArray("top_k_indices");
        int k = golden.getInt("top_k");
        for (int n = 0; n < count; n++) {
            byte[] row = Arrays.copyOfRange(raw, n * rowBytes, (n + 1) * rowBytes);
            float[] got = decoder.scores(row);
            for (int c = 0; c < classes; c++) {
                assertEquals("sample " + n + " class " + c, want[n * classes + c], got[c], OUTPUT_TOLERANCE);
            }
            List<Classification> best = decoder.topK(row, k);
            JSONArray wantTop = topK.getJSONArray(n);
            for (int j = 0; j < k; j++) {
                assertEquals("sample " + n + " top-" + (j + 1), wantTop.getInt(j), best.get(j).index());
                assertEquals(manifest.label(wantTop.getInt(j)), best.get(j).label());
            }
        }
    }

    @Test
    public void quantizeCasesMatchEdgeSdkQuantExactly() throws Exception {
        JSONArray cases = golden.getJSONArray("quant_cases");
        assertTrue("golden.json has quantization cases", cases.length() > 0);
        for (int c = 0; c < cases.length(); c++) {
            JSONObject qc = cases.getJSONObject(c);
            Quantization q = new Quantization((float) qc.getDouble("scale"), qc.getInt("zero_point"));
            DType dtype = DType.fromManifest(qc.getString("dtype"), "case");
            JSONArray xs = qc.getJSONArray("x");
            JSONArray want = qc.getJSONArray("q");
            for (int i = 0; i < xs.length(); i++) {
                float x = (float) xs.getDouble(i);
                assertEquals(q + " " + dtype.manifestName() + " x=" + x, want.getInt(i), q.quantize(x, dtype.min(), dtype.max()));
            }
            JSONArray deq = qc.getJSONArray("dequantized");
            assertEquals(dtype.max() - dtype.min() + 1, deq.length());
            for (int i = 0; i < deq.length(); i++) {
                int stored = dtype.min() + i;
                float expected = (float) deq.getDouble(i);
                // Bit-exact: the same float32 operations in the same order.
                assertEquals(q + " dequantize(" + stored + ")", Float.floatToIntBits(expected),
                        Float.floatToIntBits(q.dequantize(stored)));
            }
        }
    }

    @Test
    public void modelBytesMatchTheManifest() throws Exception {
        byte[] model = read("model.tflite");
        manifest.verifyModel(model);
        assertEquals(golden.getString("model_sha256"), manifest.sha256());
        byte[] corrupt = model.clone();
        corrupt[corrupt.length / 2] ^= 0x01;
        IntegrityException e = assertThrows(IntegrityException.class, () -> manifest.verifyModel(corrupt));
        assertTrue(e.getMessage(), e.getMessage().contains("expected sha256 " + manifest.sha256()));
        byte[] truncated = Arrays.copyOf(model, model.length - 1);
        e = assertThrows(IntegrityException.class, () -> manifest.verifyModel(truncated));
        assertTrue(e.getMessage(), e.getMessage().contains("expected " + model.length + " bytes"));
    }

    @Test
    public void wrongSizeImageIsRejected() throws Exception {
        ImagePreprocessor pre = new ImagePreprocessor(manifest);
        int w = pre.preprocessing().width();
        int h = pre.preprocessing().height();
        ImageSizeException e = assertThrows(ImageSizeException.class, () -> pre.toInputBytes(new int[(w + 1) * h], w + 1, h));
        assertTrue(e.getMessage(), e.getMessage().contains("expected a " + w + "x" + h + " image"));
        assertTrue(e.getMessage(), e.getMessage().contains("got " + (w + 1) + "x" + h));
        try {
            pre.toInputBytes(new int[w * h - 1], w, h);
            fail("a short pixel array must be rejected");
        } catch (ImageSizeException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains("got an array of " + (w * h - 1)));
        }
    }
}
