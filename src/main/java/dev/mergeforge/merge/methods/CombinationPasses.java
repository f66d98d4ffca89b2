package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Combination;
import dev.mergeforge.merge.CombinationMethod;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@link Combination} (linear, task arithmetic) as one combine pass over chunks, with the bits of
 * {@link Combination#run}: for backends that do not fuse it from the stored bytes (the Java
 * reference), so these methods stream there too. Without the AIM relaxation (a relaxed tensor takes
 * the fused or the whole-tensor path).
 */
final class CombinationPasses {
    private CombinationPasses() {}

    static ChunkProgram program(CombinationMethod.Program p) {
        Combination c = p.combination();
        if (c.relax() != null) return null;
        int[] models = p.models();
        return new ChunkProgram(1, 0, List.of(), (ops, ch, out) -> {
            List<Tile> terms = new ArrayList<>(models.length);
            for (int j : models) terms.add(ch.model(j));
            // t_j = x_j - base
            if (c.taskVectors()) for (Tile t : terms) ops.sub(t, ch.base(), t);
            // acc = sum_j w_j t_j
            ops.weightedSum(terms, c.weights(), out);
            // acc = s_q * acc
            for (float s : c.scales()) ops.scale(out, s, out);
            // out = base + acc
            if (c.taskVectors()) ops.add(ch.base(), out, out);
        });
    }
}
