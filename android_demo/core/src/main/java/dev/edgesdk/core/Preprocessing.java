package dev.edgesdk.core;

import org.json.JSONObject;

/**
 * The manifest's preprocessing block: {@code float input = raw * scale + offset}, with the image
 * layout and size for image models.
 */
public final class Preprocessing {
    private final float scale;
    private final float offset;
    private final String layout;
    private final int height;
    private final int width;
    private final int channels;

    public Preprocessing(float scale, float offset, String layout, int height, int width, int channels) {
        this.scale = scale;
        this.offset = offset;
        this.layout = layout;
        this.height = height;
        this.width = width;
        this.channels = channels;
    }

    static Preprocessing fromJson(JSONObject p, String where) {
        float scale = (float) Json.number(p, "scale", where);
        float offset = (float) Json.number(p, "offset", where);
        String layout = p.has("layout") && !p.isNull("layout") ? Json.string(p, "layout", where) : null;
        int height = 0;
        int width = 0;
        int channels = 0;
        if (p.has("image") && !p.isNull("image")) {
            String imageWhere = Json.path(where, "image");
            JSONObject image = Json.object(p, "image", where);
            height = positive(image, "height", imageWhere);
            width = positive(image, "width", imageWhere);
            channels = positive(image, "channels", imageWhere);
            if (channels != 1 && channels != 3) {
                throw new ManifestException("manifest field '" + imageWhere + ".channels': expected 1 (grayscale) or 3 (RGB), got "
                        + channels);
            }
            if (layout == null) {
                throw new ManifestException("manifest is missing field '" + Json.path(where, "layout")
                        + "' (expected \"NHWC\" for an image model)");
            }
            if (!"NHWC".equals(layout)) {
                throw new ManifestException("manifest field '" + Json.path(where, "layout") + "': expected \"NHWC\", got \"" + layout
                        + "\"");
            }
        }
        return new Preprocessing(scale, offset, layout, height, width, channels);
    }

    private static int positive(JSONObject o, String field, String where) {
        long v = Json.integer(o, field, where);
        if (v <= 0 || v > 1 << 16) {
            throw new ManifestException("manifest field '" + Json.path(where, field) + "': expected a size between 1 and 65536, got " + v);
        }
        return (int) v;
    }

    /** Multiplies the raw pixel value (0..255). */
    public float scale() {
        return scale;
    }

    /** Added after scaling. */
    public float offset() {
        return offset;
    }

    /** "NHWC" for images, or null. */
    public String layout() {
        return layout;
    }

    /** Image height in pixels, 0 when the manifest has no image block. */
    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    /** 1 (grayscale) or 3 (RGB); 0 when there is no image block. */
    public int channels() {
        return channels;
    }

    /** The float the model expects for a raw value, in float32 as edge-sdk computes it. */
    public float apply(int raw) {
        return (float) raw * scale + offset;
    }
}
