package dev.edgesdk.core;

/** One ranked class: its index, its label from the manifest, and its score. */
public final class Classification {
    private final int index;
    private final String label;
    private final float score;

    public Classification(int index, String label, float score) {
        this.index = index;
        this.label = label;
        this.score = score;
    }

    public int index() {
        return index;
    }

    public String label() {
        return label;
    }

    public float score() {
        return score;
    }

    @Override
    public String toString() {
        return label + " (" + index + "): " + score;
    }
}
