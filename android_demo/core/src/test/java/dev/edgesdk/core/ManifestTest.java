package dev.edgesdk.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.io.ByteArrayOutputStream;

import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.Before;
import org.junit.Test;

/** Manifest parsing: the committed golden manifest reads; each missing or mistyped field gets a clear error. */
public class ManifestTest {
    private String text;

    @Before
    public void readCommittedManifest() throws Exception {
        try (InputStream in = ManifestTest.class.getResourceAsStream("/golden/model.json")) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] chunk = new byte[4096];
            for (int n; (n = in.read(chunk)) > 0; ) {
                out.write(chunk, 0, n);
            }
            text = new String(out.toByteArray(), StandardCharsets.UTF_8);
        }
    }

    private JSONObject fresh() throws Exception {
        return new JSONObject(text);
    }

    private static String errorOf(JSONObject broken) {
        ManifestException e = assertThrows(ManifestException.class, () -> {
            Manifest m = Manifest.fromJson(broken);
            new ImagePreprocessor(m);
        });
        return e.getMessage();
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) {
            assertTrue("expected \"" + part + "\" in: " + message, message.contains(part));
        }
    }

    @Test
    public void readsTheCommittedManifest() throws Exception {
        Manifest m = Manifest.parse(text);
        assertEquals("model.tflite", m.modelFile());
        assertEquals(1, m.inputs().size());
        TensorInfo in = m.inputs().get(0);
        assertEquals(DType.INT8, in.dtype());
        assertEquals(-1, in.shape()[0]);
        assertEquals(28 * 28, in.elementsPerRow());
        assertTrue(in.isQuantized());
        assertEquals(10, m.labels().size());
        assertEquals("7", m.label(7));
        Preprocessing p = m.requireImagePreprocessing();
        assertEquals(28, p.height());
        assertEquals(1, p.channels());
        assertEquals("NHWC", p.layout());
        assertEquals((float) (1.0 / 255.0), p.scale(), 0f);
    }

    @Test
    public void missingTopLevelFieldsAreNamed() throws Exception {
        for (String field : new String[] {"format", "model_file", "sha256", "size_bytes", "inputs", "outputs"}) {
            JSONObject m = fresh();
            m.remove(field);
            assertMentions(errorOf(m), "'" + field + "'");
        }
    }

    @Test
    public void missingQuantizationFieldsAreNamed() throws Exception {
        JSONObject m = fresh();
        m.getJSONArray("inputs").getJSONObject(0).getJSONObject("quantization").remove("scale");
        assertMentions(errorOf(m), "missing field 'inputs[0].quantization.scale'", "expected a number");

        m = fresh();
        m.getJSONArray("outputs").getJSONObject(0).getJSONObject("quantization").remove("zero_point");
        assertMentions(errorOf(m), "missing field 'outputs[0].quantization.zero_point'", "expected an integer");

        m = fresh();
        m.getJSONArray("inputs").getJSONObject(0).remove("quantization");
        assertMentions(errorOf(m), "missing field 'inputs[0].quantization'");

        m = fresh();
        m.getJSONArray("inputs").getJSONObject(0).put("quantization", JSONObject.NULL);
        assertMentions(errorOf(m), "'inputs[0].quantization'", "int8 tensor needs {scale, zero_point}, got null");
    }

    @Test
    public void missingPreprocessingFieldsAreNamed() throws Exception {
        JSONObject m = fresh();
        m.remove("preprocessing");
        assertMentions(errorOf(m), "'preprocessing'", "expected {scale, offset, layout, image}");

        m = fresh();
        m.getJSONObject("preprocessing").remove("scale");
        assertMentions(errorOf(m), "missing field 'preprocessing.scale'");

        m = fresh();
        m.getJSONObject("preprocessing").getJSONObject("image").remove("height");
        assertMentions(errorOf(m), "missing field 'preprocessing.image.height'", "expected an integer");

        m = fresh();
        m.getJSONObject("preprocessing").remove("image");
        assertMentions(errorOf(m), "'preprocessing.image'", "expected {height, width, channels}");

        m = fresh();
        m.getJSONObject("preprocessing").put("layout", "NCHW");
        assertMentions(errorOf(m), "'preprocessing.layout'", "expected \"NHWC\", got \"NCHW\"");
    }

    @Test
    public void wrongTypesAndValuesSayWhatCame() throws Exception {
        JSONObject m = fresh();
        m.put("format", "something-else/2");
        assertMentions(errorOf(m), "'format'", "expected \"edge-sdk-manifest/1\"", "got \"something-else/2\"");

        m = fresh();
        m.getJSONArray("inputs").getJSONObject(0).getJSONObject("quantization").put("scale", "0.1");
        assertMentions(errorOf(m), "'inputs[0].quantization.scale'", "expected a number", "got the string \"0.1\"");

        m = fresh();
        m.getJSONArray("inputs").getJSONObject(0).getJSONObject("quantization").put("scale", new JSONArray("[0.1, 0.2]"));
        assertMentions(errorOf(m), "per-channel", "expected one scale");

        m = fresh();
        m.getJSONArray("inputs").getJSONObject(0).getJSONObject("quantization").put("scale", 0);
        assertMentions(errorOf(m), "positive finite", "got 0.0");

        m = fresh();
        m.getJSONArray("inputs").getJSONObject(0).put("dtype", "int4");
        assertMentions(errorOf(m), "'inputs[0].dtype'", "got \"int4\"");

        m = fresh();
        m.getJSONArray("inputs").getJSONObject(0).put("shape", new JSONArray("[-1, 32, 32, 1]"));
        assertMentions(errorOf(m), "inputs[0].shape is [-1, 32, 32, 1]", "preprocessing.image says 28x28x1");

        m = fresh();
        m.put("inputs", new JSONArray());
        assertMentions(errorOf(m), "'inputs'", "expected at least one tensor");

        m = fresh();
        m.put("sha256", "abc");
        assertMentions(errorOf(m), "'sha256'", "expected 64 hex digits");

        ManifestException e = assertThrows(ManifestException.class, () -> Manifest.parse("{not json"));
        assertMentions(e.getMessage(), "not a JSON object");
    }

    @Test
    public void labelsAreOptional() throws Exception {
        JSONObject m = fresh();
        m.put("labels", JSONObject.NULL);
        Manifest parsed = Manifest.fromJson(m);
        assertNull(parsed.labels());
        assertEquals("3", parsed.label(3));
    }
}
