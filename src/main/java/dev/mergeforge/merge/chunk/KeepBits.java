package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.KeepBitLoops;
import dev.mergeforge.tensor.Tile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;

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
 * <p>Memory does not grow with the tensor: the bits go to an unnamed temporary file (unlinked when
 * opened, in {@code java.io.tmpdir}; n/8 bytes per model, the page cache holds them between the
 * passes) through one fixed buffer of {@link #BUFFER} bytes ({@link ChunkOps#nonZeroBits} packs them
 * there, {@link ChunkOps#keepBits} applies them). Chunks are found by their offset, so
 * the combine may ask for them in any order. Opened on the first write; {@link #close} releases it.
 */
public final class KeepBits implements AutoCloseable {
    /** Bytes of the one buffer bits pass through. */
    static final int BUFFER = 64 << 10;
    /** Elements whose bits fill the buffer (a multiple of 64: pieces start on whole words). */
    static final long PIECE = BUFFER * 8L;

    private final String tensor;
    private FileChannel file;
    private ByteBuffer buffer;
    private MemorySegment bits;
    private long end;
    /** File position of each (chunk offset, slot) written. */
    private final Map<Key, Long> where = new HashMap<>();

    private record Key(long offset, int slot) {}

    /** @param tensor the tensor's name, for the error message */
    public KeepBits(String tensor) { this.tensor = tensor; }

    /** Records which elements of {@code t} (the chunk at {@code offset}, for slot {@code slot}: a model) are not +0.0. */
    public void write(ChunkOps ops, long offset, int slot, Tile t) {
        open();
        where.put(new Key(offset, slot), end);
        for (long i = 0, n = t.size(); i < n; i += PIECE) {
            long m = Math.min(PIECE, n - i), bytes = KeepBitLoops.words(m) * Long.BYTES;
            ops.nonZeroBits(t, i, m, bits.asSlice(0, bytes));
            buffer.clear().limit((int) bytes);
            end += writeAll(end);
        }
    }

    /** t[i] = t[i] where bit i of the chunk at {@code offset} (slot {@code slot}) is set, else +0.0. */
    public void apply(ChunkOps ops, long offset, int slot, Tile t) {
        Long at = where.get(new Key(offset, slot));
        if (at == null) throw new IllegalStateException(tensor + ": no keep bits for the chunk at " + offset + ", slot " + slot);
        long pos = at;
        for (long i = 0, n = t.size(); i < n; i += PIECE) {
            long m = Math.min(PIECE, n - i), bytes = KeepBitLoops.words(m) * Long.BYTES;
            buffer.clear().limit((int) bytes);
            pos += readAll(pos);
            ops.keepBits(t, i, m, bits.asSlice(0, bytes));
        }
    }

    private void open() {
        if (file != null) return;
        Path dir = Path.of(System.getProperty("java.io.tmpdir"));
        try {
            Path p = Files.createTempFile(dir, "mergeforge-keep-", ".bits");
            // unlinked as it opens (DELETE_ON_CLOSE on Linux): nothing is left behind, whatever ends the run
            file = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.DELETE_ON_CLOSE);
            Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException(tensor + ": cannot write keep bits to a temporary file in " + dir + " (" + e.getMessage()
                    + "); set java.io.tmpdir to a writable folder", e);
        }
        buffer = ByteBuffer.allocateDirect(BUFFER).order(ByteOrder.LITTLE_ENDIAN);
        bits = MemorySegment.ofBuffer(buffer);
    }

    private long writeAll(long pos) {
        long done = 0;
        try {
            while (buffer.hasRemaining()) done += file.write(buffer, pos + done);
        } catch (IOException e) {
            throw new UncheckedIOException(tensor + ": writing keep bits to a temporary file failed (" + e.getMessage()
                    + "); free space in java.io.tmpdir or set it to another folder", e);
        }
        return done;
    }

    private long readAll(long pos) {
        long done = 0;
        try {
            while (buffer.hasRemaining()) {
                int r = file.read(buffer, pos + done);
                if (r < 0) throw new IOException("the file ends at " + (pos + done));
                done += r;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(tensor + ": reading keep bits back failed (" + e.getMessage() + ")", e);
        }
        return done;
    }

    @Override
    public void close() {
        where.clear();
        end = 0;
        if (file == null) return;
        try {
            file.close();
        } catch (IOException ignored) {
            // the file is unlinked already: nothing to clean up
        } finally {
            file = null;
            buffer = null;
            bits = null;
        }
    }
}
