package dev.mergeforge.merge;

import java.util.List;

/**
 * A method as data: its name, what it needs, its parameters, and how to build it for one tensor
 * from the global parameters resolved for that tensor.
 *
 * @param name      the {@code merge_method} spelling
 * @param summary   one line for `mergeforge methods`
 * @param paper     link to the paper (or docs) the semantics follow
 * @param base      whether a base_model is required, optional or unused
 * @param minModels smallest number of models (besides the base) the method merges
 * @param maxModels largest number, or Integer.MAX_VALUE
 * @param global    parameters read from the top-level {@code parameters:}
 * @param perModel  parameters read from each {@code models[].parameters:} (falling back to the top level)
 * @param factory   builds the method for one tensor
 * @param stats     the per-model statistic the method reads beside each model's tensor (data-informed methods)
 */
public record MethodSpec(String name, String summary, String paper, BaseUse base, int minModels, int maxModels,
                         List<ParamSpec> global, List<ParamSpec> perModel, Factory factory, Stats stats) {

    public enum BaseUse { REQUIRED, OPTIONAL, UNUSED }

    /**
     * Per-model statistics a method needs (docs/data-informed.md): none; a diagonal Fisher with the
     * weight's own name and shape; or, for each nn.Linear weight [out, in], the Gram XᵀX/tokens [in, in].
     */
    public enum Stats { NONE, FISHER, GRAM }

    /** Per-model value the planner adds for FISHER methods: the model-wide L2 norm from the Fisher file's metadata. */
    public static final String FISHER_NORM_PARAM = "fisher_norm";

    /**
     * Global value the planner sets for every tensor of a GRAM method that has Grams: true when the
     * architecture descriptor says the weight is stored (in, out) (GPT-2's Conv1D), false for (out, in).
     */
    public static final String STORED_IN_OUT_PARAM = "stored_in_out";

    @FunctionalInterface
    public interface Factory { MergeMethod create(Params global); }

    public MethodSpec {
        global = List.copyOf(global);
        perModel = List.copyOf(perModel);
        if (stats == null) throw new IllegalArgumentException("stats must not be null; use Stats.NONE");
    }

    /** A data-free method (no per-model statistics). */
    public MethodSpec(String name, String summary, String paper, BaseUse base, int minModels, int maxModels,
                      List<ParamSpec> global, List<ParamSpec> perModel, Factory factory) {
        this(name, summary, paper, base, minModels, maxModels, global, perModel, factory, Stats.NONE);
    }
}
