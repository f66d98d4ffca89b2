package dev.mergeforge.merge.chunk;

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
 * One tensor's per-chunk data carried from a pass to a later one in an unnamed temporary file
 * (unlinked as it opens, in {@code java.io.tmpdir}; the page cache holds it between the passes),
 * through one fixed buffer of {@link #BUFFER} bytes: what {@link KeepBits} and {@link KeptFloats}
 * store. Each (chunk offset, slot) has one place in the file, found by the offset, so later passes
 * may ask for chunks in any order and a pass may overwrite what an earlier one wrote there. Opened on
 * the first write; {@link #close} releases it (its users close it when the tensor's runner closes
 * its passes, {@link ChunkProgram.Pass#close}).
 */
final class ChunkFile implements AutoCloseable {
    /** Bytes of the one buffer data passes through. */
    static final int BUFFER = 64 << 10;

    private final String tensor, what;
    private FileChannel file;
    private ByteBuffer buffer;
    private MemorySegment window;
    private long end;
    /** Where each (chunk offset, slot) written lies in the file. */
    private final Map<Key, Place> where = new HashMap<>();

    private record Key(long offset, int slot) {}

    private record Place(long at, long bytes) {}

    /**
     * @param tensor the tensor's name, for the error messages
     * @param what   what the file holds ("keep bits"), for the error messages
     */
    ChunkFile(String tensor, String what) {
        this.tensor = tensor;
        this.what = what;
    }

    /**
     * The file position of the chunk at {@code offset} (slot {@code slot}) for a write of {@code bytes}:
     * where it was written before (of the same size), else room at the end of the file. Opens the file.
     */
    long place(long offset, int slot, long bytes) {
        open();
        Place p = where.get(new Key(offset, slot));
        if (p == null) {
            p = new Place(end, bytes);
            where.put(new Key(offset, slot), p);
            end += bytes;
        }
        if (p.bytes() != bytes) throw new IllegalStateException(tensor + ": " + what + " of the chunk at " + offset + " were " + p.bytes() + " bytes, now " + bytes);
        return p.at();
    }

    /** The file position of the chunk at {@code offset} (slot {@code slot}), written with {@code bytes}. */
    long find(long offset, int slot, long bytes) {
        Place p = where.get(new Key(offset, slot));
        if (p == null) throw new IllegalStateException(tensor + ": no " + what + " for the chunk at " + offset + ", slot " + slot);
        if (p.bytes() != bytes) throw new IllegalStateException(tensor + ": " + what + " of the chunk at " + offset + " are " + p.bytes() + " bytes, not " + bytes);
        return p.at();
    }

    /** The buffer's first {@code bytes} bytes (at most {@link #BUFFER}): what {@link #write} writes, {@link #read} fills. */
    MemorySegment buffer(long bytes) { return window.asSlice(0, bytes); }

    /** Writes the buffer's first {@code bytes} bytes at file position {@code pos}. */
    void write(long pos, int bytes) {
        buffer.clear().limit(bytes);
        long done = 0;
        try {
            while (buffer.hasRemaining()) done += file.write(buffer, pos + done);
        } catch (IOException e) {
            throw new UncheckedIOException(tensor + ": writing " + what + " to a temporary file failed (" + e.getMessage()
                    + "); free space in java.io.tmpdir or set it to another folder", e);
        }
    }

    /** Reads {@code bytes} bytes at file position {@code pos} into the buffer's start. */
    void read(long pos, int bytes) {
        buffer.clear().limit(bytes);
        long done = 0;
        try {
            while (buffer.hasRemaining()) {
                int r = file.read(buffer, pos + done);
                if (r < 0) throw new IOException("the file ends at " + (pos + done));
                done += r;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(tensor + ": reading " + what + " back failed (" + e.getMessage() + ")", e);
        }
    }

    private void open() {
        if (file != null) return;
        Path dir = Path.of(System.getProperty("java.io.tmpdir"));
        try {
            Path p = Files.createTempFile(dir, "mergeforge-", ".chunks");
            // unlinked as it opens (DELETE_ON_CLOSE on Linux): nothing is left behind, whatever ends the run
            file = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.DELETE_ON_CLOSE);
            Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException(tensor + ": cannot write " + what + " to a temporary file in " + dir + " (" + e.getMessage()
                    + "); set java.io.tmpdir to a writable folder", e);
        }
        buffer = ByteBuffer.allocateDirect(BUFFER).order(ByteOrder.LITTLE_ENDIAN);
        window = MemorySegment.ofBuffer(buffer);
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
            window = null;
        }
    }
}
