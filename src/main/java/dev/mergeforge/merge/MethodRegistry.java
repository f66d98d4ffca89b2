package dev.mergeforge.merge;

import dev.mergeforge.errors.ConfigException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The one table of merge methods, by name: built from {@code Methods.all()}, where every method is listed, and read by everyone else. */
public final class MethodRegistry {
    private static final Map<String, MethodSpec> METHODS = new LinkedHashMap<>();

    static {
        for (MethodSpec s : dev.mergeforge.merge.methods.Methods.all()) {
            if (METHODS.put(s.name(), s) != null) throw new IllegalStateException("method registered twice: " + s.name());
        }
    }

    private MethodRegistry() {}

    public static List<MethodSpec> all() { return List.copyOf(METHODS.values()); }

    /** The method, or a ConfigException listing the valid names. */
    public static MethodSpec get(String name) {
        MethodSpec s = METHODS.get(name);
        if (s == null) {
            throw new ConfigException("merge_method: unknown method '" + name + "'; valid methods: " + String.join(", ", METHODS.keySet()));
        }
        return s;
    }
}
