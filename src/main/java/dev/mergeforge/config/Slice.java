package dev.mergeforge.config;

import java.util.List;

/**
 * One entry of {@code slices:}: output layers made by merging the same number of layers from each
 * source (one source for passthrough).
 *
 * @param sources   the sources, all of the same length
 * @param baseModel this slice's {@code base_model}, or null to use the top-level one
 * @param params    this slice's {@code parameters:} (empty when absent); between source and top-level in precedence
 */
public record Slice(List<SliceSource> sources, String baseModel, ParamTable params) {
    public Slice {
        sources = List.copyOf(sources);
        if (sources.isEmpty()) throw new IllegalArgumentException("a slice needs at least one source");
        int n = sources.getFirst().length();
        for (SliceSource s : sources) {
            if (s.length() != n) throw new IllegalArgumentException("all sources of a slice must have the same number of layers");
        }
        if (params == null) throw new IllegalArgumentException("params must not be null; use ParamTable.empty");
    }

    /** A slice with no base_model and no parameters of its own. */
    public Slice(List<SliceSource> sources) { this(sources, null, ParamTable.empty("slices[?].parameters")); }

    /** Number of output layers this slice makes. */
    public int length() { return sources.getFirst().length(); }
}
