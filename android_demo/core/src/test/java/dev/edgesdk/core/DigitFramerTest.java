package dev.edgesdk.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

import org.json.JSONObject;
import org.junit.Test;

/** Framing a canvas drawing like MNIST: real MNIST digits, blown up and moved on a big canvas, come back close to themselves. */
public class DigitFramerTest {
    private static final int CANVAS = 280;

    private static int gray(int argb) {
        return argb & 0xFF;
    }

    /** Cosine similarity of a 28x28 original and the framed image shifted by (sx, sy). */
    private static double cosine(byte[] original, int offset, int[] framed, int sx, int sy) {
        double dot = 0, a2 = 0, b2 = 0;
        for (int y = 0; y < 28; y++) {
            for (int x = 0; x < 28; x++) {
                int fx = x + sx, fy = y + sy;
                double a = original[offset + y * 28 + x] & 0xFF;
                double b = fx >= 0 && fx < 28 && fy >= 0 && fy < 28 ? gray(framed[fy * 28 + fx]) : 0;
                dot += a * b;
                a2 += a * a;
                b2 += b * b;
            }
        }
        return dot / Math.sqrt(a2 * b2);
    }

    @Test
    public void emptyCanvasIsBlack() {
        int[] out = DigitFramer.frame(new int[CANVAS * CANVAS], CANVAS, CANVAS);
        assertEquals(28 * 28, out.length);
        for (int p : out) {
            assertEquals(0, gray(p));
        }
    }

    @Test
    public void wrongArraySizeIsRejected() {
        ImageSizeException e = assertThrows(ImageSizeException.class, () -> DigitFramer.frame(new int[10], CANVAS, CANVAS));
        assertTrue(e.getMessage(), e.getMessage().contains("got an array of 10"));
    }

    @Test
    public void realMnistDigitsSurviveUpscalingAndMoving() throws Exception {
        Path dir = Paths.get(DigitFramerTest.class.getResource("/golden/golden.json").toURI()).getParent();
        int count = new JSONObject(new String(Files.readAllBytes(dir.resolve("golden.json")), "UTF-8")).getInt("count");
        byte[] pixels = Files.readAllBytes(dir.resolve("pixels.u8"));
        for (int n = 0; n < count; n++) {
            // Draw the digit 7x larger, off-centre, on a 280x280 canvas, as a finger on a phone would.
            int[] canvas = new int[CANVAS * CANVAS];
            int dx = 10 + 9 * n, dy = 60 - 3 * n;
            for (int y = 0; y < 28 * 7; y++) {
                for (int x = 0; x < 28 * 7; x++) {
                    int v = pixels[n * 784 + (y / 7) * 28 + x / 7] & 0xFF;
                    canvas[(y + dy) * CANVAS + x + dx] = 0xFF000000 | v << 16 | v << 8 | v;
                }
            }
            int[] framed = DigitFramer.frame(canvas, CANVAS, CANVAS);
            // MNIST's own centring is within a pixel of the exact centre of mass, so allow a 1 px shift.
            double best = 0;
            for (int sy = -1; sy <= 1; sy++) {
                for (int sx = -1; sx <= 1; sx++) {
                    best = Math.max(best, cosine(pixels, n * 784, framed, sx, sy));
                }
            }
            assertTrue("sample " + n + ": framed digit too unlike the original (best cosine " + best + ")", best > 0.9);
            // The framing rules themselves: ink fits a 20 px box and its centre of mass sits at the centre.
            int left = 28, right = -1, top = 28, bottom = -1;
            double mass = 0, mx = 0, my = 0;
            for (int y = 0; y < 28; y++) {
                for (int x = 0; x < 28; x++) {
                    int v = gray(framed[y * 28 + x]);
                    if (v > 0) {
                        left = Math.min(left, x);
                        right = Math.max(right, x);
                        top = Math.min(top, y);
                        bottom = Math.max(bottom, y);
                    }
                    mass += v;
                    mx += v * (x + 0.5);
                    my += v * (y + 0.5);
                }
            }
            assertEquals("sample " + n + ": longest ink side", 20, Math.max(right - left + 1, bottom - top + 1));
            assertEquals("sample " + n + ": centre of mass x", 14.0, mx / mass, 0.75);
            assertEquals("sample " + n + ": centre of mass y", 14.0, my / mass, 0.75);
        }
    }
}
