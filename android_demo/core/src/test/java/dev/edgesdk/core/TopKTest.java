package dev.edgesdk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertThrows;

import org.junit.Test;

public class TopKTest {
    @Test
    public void bestFirst() {
        assertArrayEquals(new int[] {2, 0}, TopK.indices(new float[] {0.3f, 0.1f, 0.6f}, 2));
    }

    @Test
    public void tiesGoToTheLowerIndex() {
        assertArrayEquals(new int[] {1, 3, 0}, TopK.indices(new float[] {0f, 0.5f, 0f, 0.5f, 0f}, 3));
    }

    @Test
    public void nanRanksLastAndKIsClamped() {
        assertArrayEquals(new int[] {1, 2, 0}, TopK.indices(new float[] {Float.NaN, 2f, 1f}, 10));
    }

    @Test
    public void kMustBePositive() {
        assertThrows(IllegalArgumentException.class, () -> TopK.indices(new float[] {1f}, 0));
    }
}
