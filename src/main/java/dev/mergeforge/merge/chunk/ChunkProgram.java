package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Combination;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * One tensor's merge as passes over chunks: the reduction passes in order (each sees every chunk
 * once, in order, and may use what the passes before it found), then one combine pass that writes
 * each output chunk. The runner loads every input into the chunk before each pass. A pass may run
 * again and again ({@link Pass#again}): an iterative method is one such pass, one run per step.
 *
 * @param align      chunks hold a multiple of this many elements (1: any cut; the method's row or slab otherwise)
 * @param scratch    scratch chunk tiles the passes use ({@link Chunk#scratch})
 * @param reductions the reduction passes
 * @param combine    the combine pass
 * @param elementStats the tensor's per-model statistics are per element (Fisher: the tensor's own
 *                   shape): the runner loads their chunks in the same windows as the models'
 *                   ({@link Chunk#stat}); false: the program reads no statistics, or reads them itself
 *                   (RegMean's Grams)
 * @param heldBytes  bytes the program holds whatever the chunk size, outside the chunk budget
 *                   (RegMean's float64 Gram factor: O(in²) by nature); the plan states them apart
 * @param hostBytesPerElement bytes per chunk element the program holds beside its chunk tiles
 *                   (RegMean's float64 right-hand sides): inside the budget, sized with the chunks
 */
public record ChunkProgram(long align, int scratch, List<Pass> reductions, Combine combine, boolean elementStats, long heldBytes,
                           int hostBytesPerElement) {
    public ChunkProgram {
        if (align < 1) throw new IllegalArgumentException("chunk alignment " + align);
        if (scratch < 0) throw new IllegalArgumentException("scratch tiles: " + scratch);
        if (heldBytes < 0 || hostBytesPerElement < 0) throw new IllegalArgumentException("held bytes: " + heldBytes + ", per element " + hostBytesPerElement);
        reductions = List.copyOf(reductions);
    }

    /** A program that streams no statistics and holds nothing beyond its chunks. */
    public ChunkProgram(long align, int scratch, List<Pass> reductions, Combine combine) {
        this(align, scratch, reductions, combine, false, 0, 0);
    }

    /**
     * This program with AIM's relaxation toward the base as the last step of its combine pass
     * (docs/aim.md, "The relaxation"; "AIM composes with any method"): each output chunk, once
     * combined, is relaxed against the chunk's base values with the importance of the input
     * channels it lies on. Along columns or rows the chunks hold whole rows, so the alignment becomes
     * the least common multiple of the method's and the row's; the importance vector is one float per
     * channel, whatever the chunk size. The tensor must have a base.
     */
    public ChunkProgram relaxed(Combination.Relax r) {
        long a = r.axis() == Backend.Axis.ELEMENTS ? align : Math.multiplyExact(align / gcd(align, r.cols()), r.cols());
        Combine method = combine;
        return new ChunkProgram(a, scratch, reductions, (ops, c, out) -> {
            // theta = method(theta_0, theta_1..N) on this chunk
            method.chunk(ops, c, out);
            if (c.base() == null) throw new IllegalStateException("AIM relaxes a tensor without a base");
            // theta = theta_0 + (theta - theta_0) * (1 - (1 - omega) * I[c])
            ops.relax(c.base(), out, r, c.offset(), out);
        }, elementStats, heldBytes, hostBytesPerElement);
    }

    private static long gcd(long a, long b) { return b == 0 ? a : gcd(b, a % b); }

    /** A reduction pass. */
    public interface Pass {
        /** Whether the pass has work for this tensor (asked right before it would run). */
        boolean needed();

        /** Visits one chunk. Model tiles may be overwritten; the base tile must not be. */
        void chunk(ChunkOps ops, Chunk c);

        /**
         * Whether the pass reads its chunks' stored inputs itself ({@link Chunk#stored}) through ops that
         * fuse the load with their work ({@link ChunkOps#storedVariance}): the runner maps each chunk's
         * pages in around {@link #chunk} but loads nothing, and the chunk's base and model tiles are
         * the pass's scratch. Not in a program that streams statistics. False by default.
         */
        default boolean readsStored() { return false; }

        /** After the last chunk. */
        void end();

        /**
         * Asked after {@link #end}: whether this pass runs again over every chunk (an iterative method's
         * next step), {@link #needed} being asked first as before each run. Once by default.
         */
        default boolean again() { return false; }

        /**
         * Releases what the pass kept for the combine beyond its chunks (DELLA's keep bits, {@link KeepBits});
         * the runner calls it when it closes, after the combine or when the merge of the tensor stops.
         */
        default void close() { }
    }

    /** The combine pass: writes the merged values of a chunk into {@code out}. */
    @FunctionalInterface
    public interface Combine {
        void chunk(ChunkOps ops, Chunk c, Tile out);
    }

    /**
     * A combine pass that can also start from what the last reduction pass left in the chunk's tiles
     * instead of from freshly loaded inputs. The runner resumes when the tensor is one chunk: that
     * chunk is still in the tiles after the reductions, so the combine need not load it again nor redo
     * the work the last pass did on it (a DELLA row ranked once, not twice).
     */
    public interface Resumable extends Combine {
        /** Whether the tiles the reductions left hold what {@link #resume} starts from (asked after they ran). */
        boolean canResume();

        /** As {@link #chunk}, on the tiles as the last reduction pass left them: the same values written to {@code out}. */
        void resume(ChunkOps ops, Chunk c, Tile out);
    }
}
