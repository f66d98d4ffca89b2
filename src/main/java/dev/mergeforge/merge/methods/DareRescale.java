package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.Params;

/**
 * DARE's {@code rescale}: mergekit's flag (true = restore the L1 norm, its current rule) extended
 * with {@code density}, the DARE paper's 1/d per kept entry.
 */
final class DareRescale {
    private DareRescale() {}

    static final ParamSpec SPEC = new ParamSpec("rescale", ParamSpec.Type.STRING, Boolean.TRUE, Double.NaN, Double.NaN, false,
            "true: rescale each dropped task vector to its L1 norm (mergekit); density: divide by density (DARE paper); false: none");

    static Backend.Rescale parse(Params g) {
        String v = g.string("rescale", "true").trim().toLowerCase(java.util.Locale.ROOT);
        return switch (v) {
            case "true" -> Backend.Rescale.L1;
            case "false" -> Backend.Rescale.NONE;
            case "density" -> Backend.Rescale.DENSITY;
            default -> throw new ConfigException(g.where() + ": parameter 'rescale' must be true, false or density, got '"
                    + g.string("rescale", "") + "'");
        };
    }
}
