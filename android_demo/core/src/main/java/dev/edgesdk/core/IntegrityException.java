package dev.edgesdk.core;

/** Model bytes whose sha256 or size differ from the manifest's: a corrupt or swapped file. */
public class IntegrityException extends EdgeCoreException {
    private static final long serialVersionUID = 1L;

    public IntegrityException(String message) {
        super(message);
    }
}
