package dev.edgesdk.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/** Reads the model's first output: dequantizes raw bytes with the manifest's scale and zero point, ranks classes. */
public final class OutputDecoder {
    private final Manifest manifest;
    private final TensorInfo output;

    public OutputDecoder(Manifest manifest) {
        this.manifest = manifest;
        this.output = manifest.outputs().get(0);
    }

    public TensorInfo output() {
        return output;
    }

    /**
     * Float scores from one row of raw output bytes (int8/uint8 as stored, or little-endian float32).
     * Throws {@link EdgeCoreException} when the byte count is not one output row.
     */
    public float[] scores(byte[] raw) {
        int elements = output.elementsPerRow();
        int expected = elements * output.dtype().bytes();
        if (raw.length != expected) {
            throw new EdgeCoreException("output " + output.name() + ": expected " + expected + " bytes (" + elements + " x "
                    + output.dtype().manifestName() + "), got " + raw.length);
        }
        if (output.isQuantized()) {
            return output.quantization().dequantize(raw, output.dtype());
        }
        float[] out = new float[elements];
        ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** The {@code k} best classes of one output row of raw bytes, labelled from the manifest. */
    public List<Classification> topK(byte[] raw, int k) {
        return rank(scores(raw), k);
    }

    /** The {@code k} best classes of float scores (a float model's output, or already dequantized). */
    public List<Classification> rank(float[] scores, int k) {
        if (scores.length != output.elementsPerRow()) {
            throw new EdgeCoreException("output " + output.name() + ": expected " + output.elementsPerRow() + " scores, got "
                    + scores.length);
        }
        List<Classification> out = new ArrayList<>();
        for (int index : TopK.indices(scores, k)) {
            out.add(new Classification(index, manifest.label(index), scores[index]));
        }
        return out;
    }
}
