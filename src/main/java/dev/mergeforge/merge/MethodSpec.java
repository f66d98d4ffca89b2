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
 */
public record MethodSpec(String name, String summary, String paper, BaseUse base, int minModels, int maxModels,
                         List<ParamSpec> global, List<ParamSpec> perModel, Factory factory) {

    public enum BaseUse { REQUIRED, OPTIONAL, UNUSED }

    @FunctionalInterface
    public interface Factory { MergeMethod create(Params global); }

    public MethodSpec {
        global = List.copyOf(global);
        perModel = List.copyOf(perModel);
    }
}
