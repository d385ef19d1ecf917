package dev.edgesdk.core;

/** Top-k selection. Ties go to the lower index, as a stable descending sort (numpy kind="stable") gives. */
public final class TopK {
    private TopK() {
    }

    /**
     * Indices of the {@code k} largest scores, best first. {@code k} larger than the number of
     * scores returns them all. NaN scores rank last.
     */
    public static int[] indices(float[] scores, int k) {
        if (k < 1) {
            throw new IllegalArgumentException("top-k: expected k >= 1, got " + k);
        }
        int n = Math.min(k, scores.length);
        int[] best = new int[n];
        boolean[] taken = new boolean[scores.length];
        // k is small (the app shows 3); a selection pass per slot beats sorting every class.
        for (int slot = 0; slot < n; slot++) {
            int pick = -1;
            for (int i = 0; i < scores.length; i++) {
                if (taken[i]) {
                    continue;
                }
                if (pick < 0 || better(scores[i], scores[pick])) {
                    pick = i;
                }
            }
            taken[pick] = true;
            best[slot] = pick;
        }
        return best;
    }

    /** Strictly better: a later index must beat, not tie, an earlier one. */
    private static boolean better(float candidate, float current) {
        if (Float.isNaN(candidate)) {
            return false;
        }
        return Float.isNaN(current) || candidate > current;
    }
}
