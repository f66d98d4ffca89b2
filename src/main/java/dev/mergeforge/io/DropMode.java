package dev.mergeforge.io;

import java.util.Locale;

/**
 * Whether a merge drops the pages of its inputs and output from the page cache behind it
 * (docs/io.md, "Inputs larger than memory"). Set with {@code -Dmergeforge.drop-behind=auto|always|never}
 * (through {@code MERGEFORGE_JAVA_OPTS} for the launcher); {@link #AUTO} by default.
 */
public enum DropMode {
    /** Inputs dropped behind the reader only when the merge's inputs exceed the page cache its memory budget leaves; output written pages always. */
    AUTO,
    /** Inputs and output dropped behind, whatever their size. */
    ALWAYS,
    /** Nothing dropped: the kernel's own page-cache policy. */
    NEVER;

    /** The system property naming the mode. */
    public static final String PROPERTY = "mergeforge.drop-behind";

    /** The mode the property sets; an unknown value is an error naming the valid ones. */
    public static DropMode configured() {
        String v = System.getProperty(PROPERTY, "auto").trim().toUpperCase(Locale.ROOT);
        try {
            return valueOf(v);
        } catch (IllegalArgumentException e) {
            throw new dev.mergeforge.errors.ConfigException("-D" + PROPERTY + "=" + System.getProperty(PROPERTY)
                    + " is not a drop-behind mode; use auto, always or never");
        }
    }
}
