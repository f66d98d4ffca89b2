package dev.mergeforge.config;

import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.methods.Linear;

import java.util.List;

/** Method specs shaped like mergekit's, built here so config tests do not depend on which methods are registered. */
final class TestSpecs {
    private TestSpecs() {}

    static final MethodSpec TIES = new MethodSpec("ties", "fake ties", "arXiv 2306.01708", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(ParamSpec.flag("normalize", true, "normalize"),
                    ParamSpec.number("lambda", 1.0, "scale"),
                    ParamSpec.flag("int8_mask", false, "mask dtype")),
            List.of(ParamSpec.number("weight", null, "weight"),
                    ParamSpec.number("density", 1.0, 0, 1, true, "density")),
            g -> null);

    static final MethodSpec SLERP = new MethodSpec("slerp", "fake slerp", "", MethodSpec.BaseUse.REQUIRED, 1, 1,
            List.of(ParamSpec.number("t", null, 0, 1, false, "position")), List.of(), g -> null);

    static final MethodSpec PASSTHROUGH = new MethodSpec("passthrough", "fake passthrough", "", MethodSpec.BaseUse.UNUSED, 1, 1,
            List.of(), List.of(ParamSpec.number("scale", 1.0, "scale")), g -> null);

    static final MethodSpec FUSION = new MethodSpec("arcee_fusion", "fake fusion", "", MethodSpec.BaseUse.REQUIRED, 1, 1,
            List.of(), List.of(), g -> null);

    static final MethodSpec DARE = new MethodSpec("dare_linear", "fake dare", "", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(new ParamSpec("rescale", ParamSpec.Type.STRING, "l1", Double.NaN, Double.NaN, false, "rescale rule")),
            List.of(ParamSpec.number("weight", null, "weight"), ParamSpec.number("density", 1.0, 0, 1, true, "density")),
            g -> null);

    static final MethodSpec OPTIONAL_BASE = new MethodSpec("task_like", "fake optional base", "", MethodSpec.BaseUse.OPTIONAL, 2, 3,
            List.of(), List.of(ParamSpec.number("weight", null, "weight")), g -> null);

    static final List<MethodSpec> ALL = List.of(Linear.SPEC, TIES, SLERP, PASSTHROUGH, FUSION, DARE, OPTIONAL_BASE);

    static MergeConfig parse(String yaml) { return ConfigReader.parse(yaml, "test.yaml", ALL); }
}
