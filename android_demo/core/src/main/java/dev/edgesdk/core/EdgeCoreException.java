package dev.edgesdk.core;

/** Base class of every error the core raises on purpose; the message says what was expected and what came. */
public class EdgeCoreException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public EdgeCoreException(String message) {
        super(message);
    }

    public EdgeCoreException(String message, Throwable cause) {
        super(message, cause);
    }
}
