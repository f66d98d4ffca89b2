package dev.mergeforge.merge;

import dev.mergeforge.errors.ConfigException;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Parameter values resolved for one tensor (gradients and filters already applied): numbers are
 * Doubles, flags Booleans, names Strings. {@code where} names the config place for messages.
 */
public record Params(Map<String, Object> values, String where) {
    public Params {
        values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }

    public static Params empty(String where) { return new Params(Map.of(), where); }

    public boolean has(String name) { return values.containsKey(name); }

    public double number(String name, double dflt) {
        Object v = values.get(name);
        if (v == null) return dflt;
        if (v instanceof Number n) return n.doubleValue();
        if (v instanceof Boolean b) return b ? 1 : 0;
        throw new ConfigException(where + ": parameter '" + name + "' must be a number, got '" + v + "'");
    }

    /** A required number; the error names the parameter and where it was missing. */
    public double number(String name) {
        if (!values.containsKey(name)) {
            throw new ConfigException(where + ": parameter '" + name + "' is required; add it under parameters:");
        }
        return number(name, Double.NaN);
    }

    public boolean flag(String name, boolean dflt) {
        Object v = values.get(name);
        if (v == null) return dflt;
        if (v instanceof Boolean b) return b;
        if (v instanceof Number n) return n.doubleValue() != 0;
        throw new ConfigException(where + ": parameter '" + name + "' must be true or false, got '" + v + "'");
    }

    public String string(String name, String dflt) {
        Object v = values.get(name);
        return v == null ? dflt : v.toString();
    }
}
