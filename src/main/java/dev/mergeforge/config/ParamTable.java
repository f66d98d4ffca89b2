package dev.mergeforge.config;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The {@code parameters:} block of one config level (top level, one model, one slice or one slice
 * source), parsed but not yet evaluated for a tensor.
 *
 * @param settings parameter name to its setting, in file order
 * @param path     the key path of the block, e.g. {@code models[1].parameters}, for messages
 */
public record ParamTable(Map<String, Setting> settings, String path) {
    public ParamTable {
        settings = Collections.unmodifiableMap(new LinkedHashMap<>(settings));
        if (path == null || path.isEmpty()) throw new IllegalArgumentException("a ParamTable needs the key path it came from");
    }

    public static ParamTable empty(String path) { return new ParamTable(Map.of(), path); }

    public boolean has(String name) { return settings.containsKey(name); }

    public boolean isEmpty() { return settings.isEmpty(); }

    /** The named setting evaluated for one tensor at t, or null when absent or when no filter matched. */
    public Object evaluate(String name, String tensorName, double t) {
        Setting s = settings.get(name);
        return s == null ? null : s.evaluate(tensorName, t);
    }
}
