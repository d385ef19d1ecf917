package dev.edgesdk.core;

/** An image whose size does not match what the model's manifest says it takes. */
public class ImageSizeException extends EdgeCoreException {
    private static final long serialVersionUID = 1L;

    public ImageSizeException(String message) {
        super(message);
    }
}
