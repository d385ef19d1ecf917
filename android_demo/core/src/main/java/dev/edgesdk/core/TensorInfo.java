package dev.edgesdk.core;

import java.util.Arrays;

/** One model input or output as the manifest describes it. A shape entry of -1 is a dynamic dimension. */
public final class TensorInfo {
    private final String name;
    private final int[] shape;
    private final DType dtype;
    private final Quantization quantization;

    public TensorInfo(String name, int[] shape, DType dtype, Quantization quantization) {
        this.name = name;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.quantization = quantization;
    }

    public String name() {
        return name;
    }

    public int[] shape() {
        return shape.clone();
    }

    public DType dtype() {
        return dtype;
    }

    /** Null for a float tensor. */
    public Quantization quantization() {
        return quantization;
    }

    public boolean isQuantized() {
        return quantization != null;
    }

    /** Elements in one batch row: the product of every dimension after the first. */
    public int elementsPerRow() {
        int n = 1;
        for (int i = 1; i < shape.length; i++) {
            n *= shape[i];
        }
        return n;
    }

    @Override
    public String toString() {
        return name + " " + dtype.manifestName() + Arrays.toString(shape) + (quantization == null ? "" : " " + quantization);
    }
}
