package dev.mergeforge.config;

import dev.mergeforge.errors.ConfigException;

import java.util.ArrayList;
import java.util.List;

/**
 * Collects every problem found in one config so the user sees all of them at once. Each problem
 * names its key path ({@code models[1].parameters.density}) and says how to fix it; they are
 * joined with "; " into the one line the CLI prints.
 */
final class Problems {
    private final String source;
    private final List<String> items = new ArrayList<>();

    Problems(String source) { this.source = source; }

    /** Records "path: message". */
    void add(String path, String message) { items.add(path + ": " + message); }

    boolean isEmpty() { return items.isEmpty(); }

    int size() { return items.size(); }

    /** Throws one ConfigException naming the source and listing every problem, if there is any. */
    void throwIfAny() {
        if (items.isEmpty()) return;
        String head = items.size() == 1 ? source + ": " : source + ": " + items.size() + " problems: ";
        throw new ConfigException(head + String.join("; ", items));
    }
}
