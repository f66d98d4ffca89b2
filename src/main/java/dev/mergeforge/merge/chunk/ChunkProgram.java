package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.ChunkOps;
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
 */
public record ChunkProgram(long align, int scratch, List<Pass> reductions, Combine combine) {
    public ChunkProgram {
        if (align < 1) throw new IllegalArgumentException("chunk alignment " + align);
        if (scratch < 0) throw new IllegalArgumentException("scratch tiles: " + scratch);
        reductions = List.copyOf(reductions);
    }

    /** A reduction pass. */
    public interface Pass {
        /** Whether the pass has work for this tensor (asked right before it would run). */
        boolean needed();

        /** Visits one chunk. Model tiles may be overwritten; the base tile must not be. */
        void chunk(ChunkOps ops, Chunk c);

        /** After the last chunk. */
        void end();

        /**
         * Asked after {@link #end}: whether this pass runs again over every chunk (an iterative method's
         * next step), {@link #needed} being asked first as before each run. Once by default.
         */
        default boolean again() { return false; }
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
