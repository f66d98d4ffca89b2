package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.ParamSpec;

/** Parameter specs shared by several methods, spelled and defaulted as in mergekit 0.1.x. */
final class Specs {
    private Specs() {}

    static final ParamSpec WEIGHT = ParamSpec.number("weight", null, "weight of this model");
    static final ParamSpec DENSITY = ParamSpec.number("density", 1.0, 0, 1, true,
            "fraction of the task vector kept, in (0, 1]; 1 keeps everything");
    static final ParamSpec GAMMA = ParamSpec.number("gamma", 0.01, 0, 1, false,
            "fraction of the largest-magnitude entries removed as outliers");
    static final ParamSpec EPSILON = ParamSpec.number("epsilon", 0.15, 0, 1, false,
            "half-width of the keep-probability range [density-epsilon, density+epsilon]");
    static final ParamSpec LAMBDA = ParamSpec.number("lambda", 1.0, "scale of the merged task vector before it is added to the base");
    static final ParamSpec INT8_MASK = ParamSpec.flag("int8_mask", false,
            "accepted for mergekit compatibility; masks are always bytes here, so it changes nothing");

    static ParamSpec normalize(boolean dflt) {
        return ParamSpec.flag("normalize", dflt, "divide the merged task vector by the sum of the (kept) weights");
    }

    static ParamSpec rescale(boolean dflt) {
        return ParamSpec.flag("rescale", dflt, "after sparsifying, rescale each task vector to its original L1 norm");
    }
}
