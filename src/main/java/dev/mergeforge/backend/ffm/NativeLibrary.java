package dev.mergeforge.backend.ffm;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Loads libmergeops once, from the path in the system property {@value #PROPERTY} (the launcher
 * and the test runner set it to {@code target/native/libmergeops.so}). The library is loaded with
 * {@link System#load} into this class loader, which is where the generated bindings'
 * {@code SymbolLookup.loaderLookup()} finds its symbols. Loading never throws: a missing or broken
 * library leaves {@link #error()} saying why and how to fix it.
 */
final class NativeLibrary {
    static final String PROPERTY = "mergeforge.native.lib";

    private static final String ERROR = load(System.getProperty(PROPERTY));

    private NativeLibrary() {}

    /** Null when the library is loaded, else a one-line reason naming the path and the fix. */
    static String error() { return ERROR; }

    /** Loads the library at path {@code prop}; returns null, or why it cannot be used. */
    static String load(String prop) {
        if (prop == null || prop.isBlank()) {
            return "system property " + PROPERTY + " is not set; run through bin/mergeforge or pass -D"
                    + PROPERTY + "=/path/to/libmergeops.so";
        }
        Path p = Path.of(prop).toAbsolutePath();
        if (!Files.isRegularFile(p)) return p + " does not exist; build it with `make native` (needs gcc)";
        try {
            if (Files.size(p) == 0) return p + " is empty (built without native sources); rebuild with `make native`";
            System.load(p.toString());
            return null;
        } catch (UnsatisfiedLinkError | java.io.IOException | SecurityException e) {
            return "cannot load " + p + ": " + e.getMessage() + "; rebuild it with `make native`";
        }
    }
}
