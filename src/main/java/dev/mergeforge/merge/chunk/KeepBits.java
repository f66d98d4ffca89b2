package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.KeepBitLoops;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;

/**
 * What a sparsification kept, one bit per element, written by a reduction pass and read back by the
 * combine pass of the same tensor (docs/methods.md, "Passes over chunks": DELLA's and SCE's keep bits),
 * so the combine need not decide again what the reduction decided (a DELLA row ranked once, not twice;
 * SCE's variance computed and windowed in its reduction passes only).
 *
 * <p>Bit i of a sparsified chunk is set iff element i's float bits are not those of +0.0: every
 * drop writes +0.0, so {@link #apply} on the same τ (recomputed from the same inputs by the same
 * ops) gives back the sparsified values bit for bit — a kept −0.0 or NaN stays as it was, a kept
 * +0.0 is +0.0 either way.
 *
 * <p>Memory does not grow with the tensor: the bits go to an unnamed temporary file ({@link ChunkFile};
 * n/8 bytes per model, the page cache holds them between the passes) through its one fixed buffer
 * ({@link ChunkOps#nonZeroBits} packs them there, {@link ChunkOps#keepBits} applies them). Chunks are
 * found by their offset, so the combine may ask for them in any order. Opened on the first write;
 * {@link #close} releases it.
 */
public final class KeepBits implements AutoCloseable {
    /** Elements whose bits fill the buffer (a multiple of 64: pieces start on whole words). */
    static final long PIECE = ChunkFile.BUFFER * 8L;

    private final ChunkFile file;

    /** @param tensor the tensor's name, for the error messages */
    public KeepBits(String tensor) { this.file = new ChunkFile(tensor, "keep bits"); }

    /** Records which elements of {@code t} (the chunk at {@code offset}, for slot {@code slot}: a model) are not +0.0. */
    public void write(ChunkOps ops, long offset, int slot, Tile t) {
        long pos = file.place(offset, slot, KeepBitLoops.words(t.size()) * Long.BYTES);
        for (long i = 0, n = t.size(); i < n; i += PIECE) {
            long m = Math.min(PIECE, n - i);
            int bytes = Math.toIntExact(KeepBitLoops.words(m) * Long.BYTES);
            ops.nonZeroBits(t, i, m, file.buffer(bytes));
            file.write(pos, bytes);
            pos += bytes;
        }
    }

    /** t[i] = t[i] where bit i of the chunk at {@code offset} (slot {@code slot}) is set, else +0.0. */
    public void apply(ChunkOps ops, long offset, int slot, Tile t) {
        long pos = file.find(offset, slot, KeepBitLoops.words(t.size()) * Long.BYTES);
        for (long i = 0, n = t.size(); i < n; i += PIECE) {
            long m = Math.min(PIECE, n - i);
            int bytes = Math.toIntExact(KeepBitLoops.words(m) * Long.BYTES);
            file.read(pos, bytes);
            ops.keepBits(t, i, m, file.buffer(bytes));
            pos += bytes;
        }
    }

    @Override
    public void close() { file.close(); }
}
