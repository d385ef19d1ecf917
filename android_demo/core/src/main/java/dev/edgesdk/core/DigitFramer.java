package dev.edgesdk.core;

/**
 * Frames a digit drawn on a large canvas the way MNIST digits are framed, so a model trained on
 * MNIST sees what it was trained on: the ink's bounding box is scaled (area averaging) to fit a
 * 20x20 box, keeping its aspect ratio, and pasted into a 28x28 black image with its centre of
 * mass at the centre. Input and output are ARGB pixels; ink is light on a dark background.
 */
public final class DigitFramer {
    /** Output side in pixels (MNIST: 28). */
    public static final int SIZE = 28;
    /** Side of the box the ink is scaled to fit (MNIST: 20). */
    public static final int BOX = 20;
    /** Gray levels at or below this are background, not ink. */
    private static final int INK_THRESHOLD = 0;

    private DigitFramer() {
    }

    /** A SIZE x SIZE ARGB image of the digit in {@code argb} (width x height); all black when there is no ink. */
    public static int[] frame(int[] argb, int width, int height) {
        if (argb == null || width <= 0 || height <= 0 || argb.length != width * height) {
            throw new ImageSizeException("expected " + width + "x" + height + " = " + ((long) width * height)
                    + " ARGB pixels, got " + (argb == null ? "null" : "an array of " + argb.length));
        }
        int[] gray = new int[argb.length];
        int left = width, top = height, right = -1, bottom = -1;
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int p = argb[y * width + x];
                int g = ImagePreprocessor.luma((p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF);
                gray[y * width + x] = g;
                if (g > INK_THRESHOLD) {
                    left = Math.min(left, x);
                    right = Math.max(right, x);
                    top = Math.min(top, y);
                    bottom = Math.max(bottom, y);
                }
            }
        }
        int[] out = new int[SIZE * SIZE];
        if (right < 0) {
            java.util.Arrays.fill(out, 0xFF000000);
            return out;
        }
        int boxW = right - left + 1;
        int boxH = bottom - top + 1;
        double scale = (double) BOX / Math.max(boxW, boxH);
        int w = Math.max(1, (int) Math.round(boxW * scale));
        int h = Math.max(1, (int) Math.round(boxH * scale));
        double[] small = areaResample(gray, width, left, top, boxW, boxH, w, h);

        double mass = 0, mx = 0, my = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double v = small[y * w + x];
                mass += v;
                mx += v * (x + 0.5);
                my += v * (y + 0.5);
            }
        }
        // Place the centre of mass at the image centre (MNIST's convention), kept inside the frame.
        int offX = clamp((int) Math.round(SIZE / 2.0 - mx / mass), 0, SIZE - w);
        int offY = clamp((int) Math.round(SIZE / 2.0 - my / mass), 0, SIZE - h);
        java.util.Arrays.fill(out, 0xFF000000);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int v = clamp((int) Math.round(small[y * w + x]), 0, 255);
                out[(y + offY) * SIZE + (x + offX)] = 0xFF000000 | v << 16 | v << 8 | v;
            }
        }
        return out;
    }

    /** Box-filter downscale (or upscale) of a sub-rectangle: each output pixel averages the source area it covers. */
    private static double[] areaResample(int[] gray, int stride, int left, int top, int srcW, int srcH, int w, int h) {
        double[] out = new double[w * h];
        double sx = (double) srcW / w;
        double sy = (double) srcH / h;
        for (int oy = 0; oy < h; oy++) {
            double y0 = oy * sy, y1 = y0 + sy;
            for (int ox = 0; ox < w; ox++) {
                double x0 = ox * sx, x1 = x0 + sx;
                double sum = 0, area = 0;
                for (int y = (int) Math.floor(y0); y < Math.min(srcH, (int) Math.ceil(y1)); y++) {
                    double wy = Math.min(y1, y + 1) - Math.max(y0, y);
                    for (int x = (int) Math.floor(x0); x < Math.min(srcW, (int) Math.ceil(x1)); x++) {
                        double wx = Math.min(x1, x + 1) - Math.max(x0, x);
                        sum += wx * wy * gray[(top + y) * stride + left + x];
                        area += wx * wy;
                    }
                }
                out[oy * w + ox] = area > 0 ? sum / area : 0;
            }
        }
        return out;
    }

    private static int clamp(int v, int lo, int hi) {
        return Math.max(lo, Math.min(hi, v));
    }
}
