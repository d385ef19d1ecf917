package dev.edgesdk.core;

/** A manifest that is not valid JSON, lacks a field the core needs, or holds a value of the wrong kind. */
public class ManifestException extends EdgeCoreException {
    private static final long serialVersionUID = 1L;

    public ManifestException(String message) {
        super(message);
    }

    public ManifestException(String message, Throwable cause) {
        super(message, cause);
    }
}
