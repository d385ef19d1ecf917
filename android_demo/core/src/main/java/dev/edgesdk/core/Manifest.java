package dev.edgesdk.core;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The manifest {@code edge-sdk convert} writes beside a model ({@code model.tflite} -> {@code model.json}),
 * format {@value #FORMAT}: the parts a device app needs to feed the model and read its answer.
 *
 * <p>Every missing or mistyped field raises {@link ManifestException} naming the field's path
 * (for example {@code inputs[0].quantization.scale}), what was expected and what came.
 */
public final class Manifest {
    /** The manifest format this core reads (edge_sdk/manifest.py MANIFEST_FORMAT). */
    public static final String FORMAT = "edge-sdk-manifest/1";

    private final String modelFile;
    private final String sha256;
    private final long sizeBytes;
    private final String kind;
    private final List<TensorInfo> inputs;
    private final List<TensorInfo> outputs;
    private final List<String> labels;
    private final Preprocessing preprocessing;

    private Manifest(String modelFile, String sha256, long sizeBytes, String kind, List<TensorInfo> inputs,
                     List<TensorInfo> outputs, List<String> labels, Preprocessing preprocessing) {
        this.modelFile = modelFile;
        this.sha256 = sha256;
        this.sizeBytes = sizeBytes;
        this.kind = kind;
        this.inputs = Collections.unmodifiableList(inputs);
        this.outputs = Collections.unmodifiableList(outputs);
        this.labels = labels == null ? null : Collections.unmodifiableList(labels);
        this.preprocessing = preprocessing;
    }

    /** Parse manifest JSON text. */
    public static Manifest parse(String json) {
        JSONObject root;
        try {
            root = new JSONObject(json);
        } catch (JSONException e) {
            throw new ManifestException("manifest is not a JSON object: " + e.getMessage(), e);
        }
        return fromJson(root);
    }

    /** Parse manifest JSON bytes (UTF-8), as read from an asset or a file. */
    public static Manifest parse(byte[] utf8) {
        return parse(new String(utf8, StandardCharsets.UTF_8));
    }

    /** Read an already parsed manifest object. */
    public static Manifest fromJson(JSONObject root) {
        String format = Json.string(root, "format", "");
        if (!FORMAT.equals(format)) {
            throw new ManifestException("manifest field 'format': expected \"" + FORMAT + "\", got \"" + format + "\"");
        }
        String modelFile = Json.string(root, "model_file", "");
        String sha256 = Json.string(root, "sha256", "").toLowerCase(Locale.ROOT);
        if (!sha256.matches("[0-9a-f]{64}")) {
            throw new ManifestException("manifest field 'sha256': expected 64 hex digits, got \"" + sha256 + "\"");
        }
        long sizeBytes = Json.integer(root, "size_bytes", "");
        String kind = root.has("kind") && !root.isNull("kind") ? Json.string(root, "kind", "") : null;
        List<TensorInfo> inputs = tensors(root, "inputs");
        List<TensorInfo> outputs = tensors(root, "outputs");
        List<String> labels = null;
        if (root.has("labels") && !root.isNull("labels")) {
            JSONArray array = Json.array(root, "labels", "");
            labels = new ArrayList<>();
            for (int i = 0; i < array.length(); i++) {
                Object label = array.opt(i);
                if (!(label instanceof String)) {
                    throw new ManifestException("manifest field 'labels[" + i + "]': expected a string, got " + Json.describe(label));
                }
                labels.add((String) label);
            }
        }
        Preprocessing preprocessing = null;
        if (root.has("preprocessing") && !root.isNull("preprocessing")) {
            preprocessing = Preprocessing.fromJson(Json.object(root, "preprocessing", ""), "preprocessing");
        }
        return new Manifest(modelFile, sha256, sizeBytes, kind, inputs, outputs, labels, preprocessing);
    }

    private static List<TensorInfo> tensors(JSONObject root, String field) {
        JSONArray array = Json.array(root, field, "");
        if (array.length() == 0) {
            throw new ManifestException("manifest field '" + field + "': expected at least one tensor, got an empty list");
        }
        List<TensorInfo> out = new ArrayList<>();
        for (int i = 0; i < array.length(); i++) {
            String where = field + "[" + i + "]";
            Object item = array.opt(i);
            if (!(item instanceof JSONObject)) {
                throw new ManifestException("manifest field '" + where + "': expected an object, got " + Json.describe(item));
            }
            out.add(tensor((JSONObject) item, where));
        }
        return out;
    }

    private static TensorInfo tensor(JSONObject t, String where) {
        String name = Json.string(t, "name", where);
        JSONArray shapeJson = Json.array(t, "shape", where);
        int[] shape = new int[shapeJson.length()];
        for (int i = 0; i < shape.length; i++) {
            Object dim = shapeJson.opt(i);
            if (!Json.isIntegral(dim) || ((Number) dim).longValue() < -1 || ((Number) dim).longValue() > Integer.MAX_VALUE) {
                throw new ManifestException("manifest field '" + where + ".shape[" + i
                        + "]': expected a dimension (an integer >= 0, or -1 for dynamic), got " + Json.describe(dim));
            }
            shape[i] = ((Number) dim).intValue();
        }
        DType dtype = DType.fromManifest(Json.string(t, "dtype", where), "manifest field '" + where + ".dtype'");
        if (!t.has("quantization")) {
            throw new ManifestException("manifest is missing field '" + where
                    + ".quantization' (expected {scale, zero_point} or null)");
        }
        Quantization quantization = null;
        if (!t.isNull("quantization")) {
            JSONObject q = Json.object(t, "quantization", where);
            String qWhere = where + ".quantization";
            Object scale = q.opt("scale");
            if (scale instanceof JSONArray) {
                throw new ManifestException("manifest field '" + qWhere + ".scale': per-channel quantization ("
                        + ((JSONArray) scale).length() + " scales) on a model input or output is not supported; expected one scale");
            }
            float s = (float) Json.number(q, "scale", qWhere);
            long zp = Json.integer(q, "zero_point", qWhere);
            quantization = new Quantization(s, (int) zp);
        }
        if (dtype.isQuantizable() && quantization == null) {
            throw new ManifestException("manifest field '" + where + ".quantization': a " + dtype.manifestName()
                    + " tensor needs {scale, zero_point}, got null");
        }
        return new TensorInfo(name, shape, dtype, quantization);
    }

    /**
     * Check model bytes against this manifest's size and sha256 before handing them to LiteRT.
     * LiteRT's loader does not catch corruption inside weight buffers (the model then runs with
     * wrong answers), and some header corruption crashes it; a checksum catches both.
     */
    public void verifyModel(byte[] modelBytes) {
        if (modelBytes.length != sizeBytes) {
            throw new IntegrityException("model " + modelFile + ": expected " + sizeBytes + " bytes (manifest size_bytes), got "
                    + modelBytes.length + " bytes");
        }
        String actual = sha256Hex(modelBytes);
        if (!actual.equals(sha256)) {
            throw new IntegrityException("model " + modelFile + ": expected sha256 " + sha256 + " (manifest), got " + actual
                    + "; the file is corrupt or is not the model this manifest describes");
        }
    }

    /** Lowercase hex SHA-256 of {@code data}. */
    public static String sha256Hex(byte[] data) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(data);
            StringBuilder hex = new StringBuilder(64);
            for (byte b : digest) {
                hex.append(String.format(Locale.ROOT, "%02x", b & 0xFF));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required on every Java platform", e);
        }
    }

    public String modelFile() {
        return modelFile;
    }

    public String sha256() {
        return sha256;
    }

    public long sizeBytes() {
        return sizeBytes;
    }

    /** float32 | dynamic-range | float16 | int8 | ..., or null when the manifest does not say. */
    public String kind() {
        return kind;
    }

    public List<TensorInfo> inputs() {
        return inputs;
    }

    public List<TensorInfo> outputs() {
        return outputs;
    }

    /** Class names, or null when the manifest has none. */
    public List<String> labels() {
        return labels;
    }

    /** The label of class {@code index}, or the index itself when the manifest has no labels. */
    public String label(int index) {
        return labels != null && index >= 0 && index < labels.size() ? labels.get(index) : Integer.toString(index);
    }

    /** The preprocessing block, or null when the manifest has none (a tabular model, say). */
    public Preprocessing preprocessing() {
        return preprocessing;
    }

    /** The preprocessing an image model needs; throws {@link ManifestException} when it is absent. */
    public Preprocessing requireImagePreprocessing() {
        if (preprocessing == null) {
            throw new ManifestException("manifest field 'preprocessing': expected {scale, offset, layout, image} for an image "
                    + "model, got null or missing");
        }
        if (preprocessing.height() <= 0) {
            throw new ManifestException("manifest field 'preprocessing.image': expected {height, width, channels} for an image "
                    + "model, got none");
        }
        return preprocessing;
    }
}
