package dev.mergeforge.merge.chunk;

import dev.mergeforge.merge.MergeMethod;

/**
 * A merge method written as a short program of passes over chunks of its inputs (see
 * {@link ChunkProgram}): memory is the chunk size times a small constant, whatever the tensor's
 * size. It stays a {@link MergeMethod}: the whole-tensor {@code merge} is the oracle the chunked
 * program is tested against, and the path backends without chunk ops (CUDA) still take.
 */
public interface ChunkedMethod extends MergeMethod {

    /** The passes for one tensor, or null when this tensor must take the whole-tensor path. */
    ChunkProgram program(TensorSetup in);
}
