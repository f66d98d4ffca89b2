package dev.mergeforge.merge;

import dev.mergeforge.backend.Combination;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * A method that is one {@link Combination} of some of its inputs (linear, task arithmetic). Its
 * merge is that program run with backend ops; the merger may instead hand the same program to
 * {@link dev.mergeforge.backend.Backend#combineStored} and skip the float32 tiles altogether.
 */
public interface CombinationMethod extends MergeMethod {

    /** Which models take part (indices into the tensor's inputs) and the program over them. */
    record Program(int[] models, Combination combination) {}

    /**
     * The program for one tensor, or null when the method must take another path for it (then
     * {@link #mergeOther} runs).
     *
     * @param params    per-model parameters, aligned with the inputs
     * @param baseIndex index of the input that is the base model, or -1
     * @param hasBase   whether the config has a base model
     */
    Program program(String tensor, List<Params> params, int baseIndex, boolean hasBase);

    /** The merge when {@link #program} is null. */
    void mergeOther(MergeContext ctx, MergeInputs in, Tile out);

    @Override
    default void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Program p = program(in.tensor(), in.params(), in.baseIndex(), in.base() != null);
        if (p == null) {
            mergeOther(ctx, in, out);
            return;
        }
        List<Tile> xs = new ArrayList<>();
        for (int j : p.models()) xs.add(in.models().get(j));
        p.combination().run(ctx.backend(), xs, in.base(), out);
    }
}
