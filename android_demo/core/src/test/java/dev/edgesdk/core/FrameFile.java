package dev.edgesdk.core;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;

/**
 * Test tool for tests/android: frames every square grayscale canvas in a raw file with
 * {@link DigitFramer} and writes the 28x28 results, so Python can run the real model on them.
 *
 * <pre>java -cp ... dev.edgesdk.core.FrameFile SIDE IN.u8 OUT.u8</pre>
 */
public final class FrameFile {
    private FrameFile() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 3) {
            System.err.println("usage: FrameFile SIDE IN.u8 OUT.u8");
            System.exit(2);
        }
        int side = Integer.parseInt(args[0]);
        byte[] in = Files.readAllBytes(Paths.get(args[1]));
        int per = side * side;
        if (in.length % per != 0) {
            System.err.println("error: expected a multiple of " + per + " bytes, got " + in.length);
            System.exit(2);
        }
        int count = in.length / per;
        byte[] out = new byte[count * DigitFramer.SIZE * DigitFramer.SIZE];
        int[] argb = new int[per];
        for (int n = 0; n < count; n++) {
            for (int i = 0; i < per; i++) {
                int v = in[n * per + i] & 0xFF;
                argb[i] = 0xFF000000 | v << 16 | v << 8 | v;
            }
            int[] framed = DigitFramer.frame(argb, side, side);
            for (int i = 0; i < framed.length; i++) {
                out[n * framed.length + i] = (byte) (framed[i] & 0xFF);
            }
        }
        Files.write(Paths.get(args[2]), out);
    }
}
