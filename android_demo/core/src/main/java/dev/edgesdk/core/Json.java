package dev.edgesdk.core;

import org.json.JSONArray;
import org.json.JSONObject;

/** Typed field access on org.json objects with errors that name the field's path. */
final class Json {
    private Json() {
    }

    static String path(String where, String field) {
        return where.isEmpty() ? field : where + "." + field;
    }

    static Object require(JSONObject o, String field, String where, String expected) {
        if (!o.has(field)) {
            throw new ManifestException("manifest is missing field '" + path(where, field) + "' (expected " + expected + ")");
        }
        return o.opt(field);
    }

    static String string(JSONObject o, String field, String where) {
        Object v = require(o, field, where, "a string");
        if (!(v instanceof String)) {
            throw new ManifestException("manifest field '" + path(where, field) + "': expected a string, got " + describe(v));
        }
        return (String) v;
    }

    static double number(JSONObject o, String field, String where) {
        Object v = require(o, field, where, "a number");
        if (!(v instanceof Number)) {
            throw new ManifestException("manifest field '" + path(where, field) + "': expected a number, got " + describe(v));
        }
        double d = ((Number) v).doubleValue();
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            throw new ManifestException("manifest field '" + path(where, field) + "': expected a finite number, got " + d);
        }
        return d;
    }

    static long integer(JSONObject o, String field, String where) {
        Object v = require(o, field, where, "an integer");
        if (!isIntegral(v)) {
            throw new ManifestException("manifest field '" + path(where, field) + "': expected an integer, got " + describe(v));
        }
        return ((Number) v).longValue();
    }

    static JSONArray array(JSONObject o, String field, String where) {
        Object v = require(o, field, where, "a list");
        if (!(v instanceof JSONArray)) {
            throw new ManifestException("manifest field '" + path(where, field) + "': expected a list, got " + describe(v));
        }
        return (JSONArray) v;
    }

    static JSONObject object(JSONObject o, String field, String where) {
        Object v = require(o, field, where, "an object");
        if (!(v instanceof JSONObject)) {
            throw new ManifestException("manifest field '" + path(where, field) + "': expected an object, got " + describe(v));
        }
        return (JSONObject) v;
    }

    static boolean isIntegral(Object v) {
        if (v instanceof Integer || v instanceof Long) {
            return true;
        }
        if (v instanceof Number) {
            double d = ((Number) v).doubleValue();
            return d == Math.rint(d) && !Double.isInfinite(d);
        }
        return false;
    }

    static String describe(Object v) {
        if (v == null || v == JSONObject.NULL) {
            return "null";
        }
        if (v instanceof String) {
            return "the string \"" + v + "\"";
        }
        if (v instanceof JSONArray) {
            return "a list";
        }
        if (v instanceof JSONObject) {
            return "an object";
        }
        if (v instanceof Boolean) {
            return "the boolean " + v;
        }
        return "the number " + v;
    }
}
