package dev.mergeforge.run;

import dev.mergeforge.io.StreamingWriter;

import java.lang.foreign.MemorySegment;

/**
 * Where the {@link Merger} puts each merged tensor's bytes, in the output dtype and in plan order:
 * the safetensors shards of an output folder ({@link ShardWriters}, the default) or memory
 * ({@link MemoryModel}, for a candidate evaluated without a checkpoint).
 */
public interface TensorSink {
    /** Takes the named tensor's bytes; tensors come in plan order. */
    void write(String name, MemorySegment bytes);

    /**
     * Lets the merge compute the named tensor's bytes straight into the sink: {@code f} is called
     * for each contiguous piece in order, every piece a whole number of {@code elementBytes}-byte
     * elements and cut at every multiple of {@code cutBytes} ({@code Long.MAX_VALUE}: no cut).
     * Returns false, having taken nothing, when the sink or {@code f} declines the first piece;
     * the merge then stages the bytes and calls {@link #write}.
     */
    boolean fill(String name, long elementBytes, long cutBytes, StreamingWriter.Filler f);

    /** As {@link #fill(String, long, long, StreamingWriter.Filler)} with no cut. */
    default boolean fill(String name, long elementBytes, StreamingWriter.Filler f) { return fill(name, elementBytes, Long.MAX_VALUE, f); }

    /** Called after the named tensor is complete (the shard writers finish a shard after its last tensor). */
    default void written(String name) {}

    /** Called once after the last tensor; fails when a planned tensor never came. */
    void finish();
}
