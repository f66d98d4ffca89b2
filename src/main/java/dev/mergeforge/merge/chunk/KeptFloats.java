package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A chunk tile's float32 values kept by one pass for the later passes of the same tensor, bit for
 * bit (docs/methods.md, "Passes over chunks": karcher's iterate), so they need not compute them
 * again. Memory does not grow with the tensor: the values go to an unnamed temporary file
 * ({@link ChunkFile}; n·4 bytes per slot, the page cache holds them between the passes) through its
 * one fixed buffer. The tile's values are read and written in its host memory inside
 * {@link ChunkOps#onHost} (a device backend copies the chunk down to keep it and up again after it
 * is read back). Each (chunk offset, slot) has one place: a pass may overwrite what an earlier pass
 * kept for the chunk. Opened on the first write; {@link #close} releases it.
 */
public final class KeptFloats implements AutoCloseable {
    /** Elements whose values fill the buffer. */
    static final long PIECE = ChunkFile.BUFFER / Float.BYTES;

    private final ChunkFile file;

    /** @param tensor the tensor's name, for the error messages */
    public KeptFloats(String tensor) { this.file = new ChunkFile(tensor, "kept values"); }

    /** Keeps the values of {@code t}, the chunk at {@code offset}, for slot {@code slot} (in place of what it kept there before). */
    public void write(ChunkOps ops, long offset, int slot, Tile t) {
        long at = file.place(offset, slot, t.size() * Float.BYTES);
        ops.onHost(List.of(t), List.of(), () -> {
            for (long i = 0, n = t.size(); i < n; i += PIECE) {
                int bytes = Math.toIntExact(Math.min(PIECE, n - i) * Float.BYTES);
                MemorySegment.copy(t.data(), i * Float.BYTES, file.buffer(bytes), 0, bytes);
                file.write(at + i * Float.BYTES, bytes);
            }
        });
    }

    /** t = the values kept for the chunk at {@code offset}, slot {@code slot} (of t's size). */
    public void read(ChunkOps ops, long offset, int slot, Tile t) {
        long at = file.find(offset, slot, t.size() * Float.BYTES);
        ops.onHost(List.of(), List.of(t), () -> {
            for (long i = 0, n = t.size(); i < n; i += PIECE) {
                int bytes = Math.toIntExact(Math.min(PIECE, n - i) * Float.BYTES);
                file.read(at + i * Float.BYTES, bytes);
                MemorySegment.copy(file.buffer(bytes), 0, t.data(), i * Float.BYTES, bytes);
            }
        });
    }

    @Override
    public void close() { file.close(); }
}
