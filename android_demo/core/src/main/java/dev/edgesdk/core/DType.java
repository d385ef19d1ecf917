package dev.edgesdk.core;

/** The tensor element types the core handles, named as in the manifest ("int8", "uint8", "float32"). */
public enum DType {
    INT8("int8", 1, -128, 127),
    UINT8("uint8", 1, 0, 255),
    FLOAT32("float32", 4, 0, 0);

    private final String manifestName;
    private final int bytes;
    private final int min;
    private final int max;

    DType(String manifestName, int bytes, int min, int max) {
        this.manifestName = manifestName;
        this.bytes = bytes;
        this.min = min;
        this.max = max;
    }

    /** The dtype called {@code name} in a manifest; throws {@link ManifestException} for anything else. */
    public static DType fromManifest(String name, String where) {
        for (DType t : values()) {
            if (t.manifestName.equals(name)) {
                return t;
            }
        }
        throw new ManifestException(where + ": expected dtype int8, uint8 or float32, got \"" + name + "\"");
    }

    public String manifestName() {
        return manifestName;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** Smallest stored integer (integer types only). */
    public int min() {
        return min;
    }

    /** Largest stored integer (integer types only). */
    public int max() {
        return max;
    }

    public boolean isQuantizable() {
        return this != FLOAT32;
    }

    /** A stored byte as the integer it stands for (uint8 bytes are unsigned). */
    public int toInt(byte stored) {
        return this == UINT8 ? (stored & 0xFF) : stored;
    }
}
