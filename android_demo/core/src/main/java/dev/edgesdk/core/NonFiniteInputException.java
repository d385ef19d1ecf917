package dev.edgesdk.core;

/** NaN or infinity sent to a quantized tensor, where it has no integer value (as edge_sdk.quant raises). */
public class NonFiniteInputException extends EdgeCoreException {
    private static final long serialVersionUID = 1L;

    public NonFiniteInputException(String message) {
        super(message);
    }
}
