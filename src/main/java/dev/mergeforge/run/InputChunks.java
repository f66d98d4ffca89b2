package dev.mergeforge.run;

import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.LargePages;
import dev.mergeforge.tensor.Shape;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/**
 * The inputs of fused tensors, read in chunks ({@link #CHUNK} elements by default) with positional reads
 * into small reused buffers, one chunk ahead of the pass that combines them. Reading a tensor
 * whole into a buffer of its size (the simple way) wrote and then re-read hundreds of megabytes
 * that no cache held, and touched that much fresh memory; a chunk of every input fits in the
 * cache, so the copy lands there and the combine finds it there.
 *
 * <p>Chunk 0 of each tensor is read by the merger's read-ahead while the previous tensor merges
 * ({@link #readHead}); {@link #begin} then starts reading chunk 1 on the reader thread. Owns two
 * slots of buffers (chunk k uses slot k mod 2) in an arena closed with this object. One tensor at
 * a time, on the merge thread.
 */
final class InputChunks implements AutoCloseable {
    /** Default elements per chunk: 4 MiB of each bf16 input. */
    static final long CHUNK = 2L << 20;

    private final long chunk;
    private final dev.mergeforge.tensor.MemoryLedger ledger;
    private long charged;
    private final Planner.Inputs inputs;
    private final ExecutorService reader;
    private final Arena arena = Arena.ofShared();
    private final List<List<MemorySegment>> slots = List.of(new ArrayList<>(), new ArrayList<>());

    private List<TensorView> views = List.of();
    /** The checkpoint each view comes from, looked up once per tensor. */
    private List<Checkpoint> owners = List.of();
    private Map<TensorView, TensorView> head = Map.of();
    private long n;
    private Future<?> pending;
    private long pendingChunk = -1;
    private long current = -1;
    private List<TensorView> currentViews;

    /** @param chunk elements per chunk (tests use small ones so that tensors span several) */
    InputChunks(Planner.Inputs inputs, ExecutorService reader, long chunk) {
        this(inputs, reader, chunk, dev.mergeforge.tensor.MemoryLedger.unlimited());
    }

    /** As above, counting its buffers in {@code ledger}. */
    InputChunks(Planner.Inputs inputs, ExecutorService reader, long chunk, dev.mergeforge.tensor.MemoryLedger ledger) {
        if (chunk <= 0) throw new IllegalArgumentException("chunk of " + chunk + " elements");
        this.ledger = ledger;
        this.inputs = inputs;
        this.reader = reader;
        this.chunk = chunk;
    }

    long chunkElements() { return chunk; }

    /** Told of each input range copied out (its page-cache pages can go: {@link DropBehind}). */
    @FunctionalInterface
    interface Consumed {
        void consumed(TensorView v, long fromByte, long bytes);

        Consumed NONE = (v, from, n) -> { };
    }

    private Consumed consumed = Consumed.NONE;

    /**
     * Chunk 0 of each distinct view, copied into {@code buffers} (segments of at least the chunk's
     * bytes, one per view, taken by the caller): identity map from view to its staged chunk, or
     * null when a view is not from an open checkpoint (then the mapped path is used).
     */
    static Map<TensorView, TensorView> readHead(List<TensorView> distinct, Planner.Inputs inputs, List<MemorySegment> buffers, long chunk) {
        return readHead(distinct, inputs, buffers, chunk, Consumed.NONE);
    }

    /** As above, telling {@code done} of each range read. */
    static Map<TensorView, TensorView> readHead(List<TensorView> distinct, Planner.Inputs inputs, List<MemorySegment> buffers, long chunk,
                                                Consumed done) {
        List<Checkpoint> from = owners(distinct, inputs);
        if (from == null) return null;
        Map<TensorView, TensorView> out = new IdentityHashMap<>();
        for (int j = 0; j < distinct.size(); j++) {
            TensorView v = distinct.get(j);
            long count = Math.min(chunk, v.numel());
            TensorView part = slice(v, 0, count);
            MemorySegment dst = buffers.get(j).asSlice(0, part.data().byteSize());
            from.get(j).readInto(part, dst);
            done.consumed(v, 0, dst.byteSize());
            out.put(v, new TensorView(v.name(), v.dtype(), Shape.of(count), dst, v.source()));
        }
        return out;
    }

    /** Starts a tensor: its distinct input views (all of n elements) and their staged chunk 0; reads chunk 1 ahead. */
    void begin(List<TensorView> distinct, Map<TensorView, TensorView> headChunks, long elements) {
        begin(distinct, headChunks, elements, Consumed.NONE);
    }

    /** As above, telling {@code done} of each range read for this tensor. */
    void begin(List<TensorView> distinct, Map<TensorView, TensorView> headChunks, long elements, Consumed done) {
        settle();
        this.consumed = done;
        this.views = List.copyOf(distinct);
        this.owners = owners(views, inputs);
        if (owners == null) throw new IllegalArgumentException("a view of " + views + " is not from an open checkpoint");
        this.head = headChunks;
        this.n = elements;
        this.current = -1;
        prefetch(1);
    }

    /** The views of chunk k (elements [k·chunk, min(n, (k+1)·chunk))), in {@code begin}'s order; reads chunk k+1 ahead. */
    List<TensorView> chunk(long k) throws InterruptedException, ExecutionException {
        if (k == current) return currentViews;
        List<TensorView> out;
        if (k == 0) {
            out = views.stream().map(head::get).toList();
        } else {
            if (pendingChunk == k) {
                pending.get();
                pending = null;
                pendingChunk = -1;
            } else {
                settle();
                read(k);
            }
            out = staged(k);
        }
        current = k;
        currentViews = out;
        prefetch(k + 1);
        return out;
    }

    private void prefetch(long k) {
        if (k * chunk >= n || pendingChunk == k) return;
        settle();
        pendingChunk = k;
        pending = reader.submit(() -> { read(k); return null; });
    }

    /** Waits for a read in flight (its failure is reported by whoever asks for its chunk). */
    private void settle() {
        if (pending == null) return;
        try {
            pending.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            // the chunk is read again, synchronously, if it is asked for
        }
        pending = null;
        pendingChunk = -1;
    }

    private void read(long k) {
        List<MemorySegment> slot = slot(k);
        for (int j = 0; j < views.size(); j++) {
            TensorView part = part(views.get(j), k);
            owners.get(j).readInto(part, slot.get(j).asSlice(0, part.data().byteSize()));
            consumed.consumed(views.get(j), k * chunk * part.dtype().byteSize(), part.data().byteSize());
        }
    }

    private List<TensorView> staged(long k) {
        List<MemorySegment> slot = slot(k);
        List<TensorView> out = new ArrayList<>(views.size());
        for (int j = 0; j < views.size(); j++) {
            TensorView v = views.get(j), part = part(v, k);
            out.add(new TensorView(v.name(), v.dtype(), part.shape(), slot.get(j).asSlice(0, part.data().byteSize()), v.source()));
        }
        return out;
    }

    /**
     * Slot k mod 2 with a chunk-sized buffer per view, each as large as its view's dtype needs (a
     * buffer is replaced by a larger one only when a wider dtype comes: fresh memory is costly to touch).
     */
    private synchronized List<MemorySegment> slot(long k) {
        List<MemorySegment> slot = slots.get((int) (k & 1));
        for (int j = 0; j < views.size(); j++) {
            long need = chunk * views.get(j).dtype().byteSize();
            if (j == slot.size()) slot.add(allocate(need));
            else if (slot.get(j).byteSize() < need) slot.set(j, allocate(need)); // the smaller one stays in the arena until close
        }
        return slot;
    }

    private MemorySegment allocate(long bytes) {
        ledger.charge(bytes, "an input chunk buffer");
        charged += bytes;
        return LargePages.allocate(arena, bytes, 4096);
    }

    private TensorView part(TensorView v, long k) {
        long from = k * chunk;
        return slice(v, from, Math.min(chunk, n - from));
    }

    static TensorView slice(TensorView v, long from, long count) {
        long b = v.dtype().byteSize();
        return new TensorView(v.name(), v.dtype(), Shape.of(count), v.data().asSlice(from * b, count * b), v.source());
    }

    /** The checkpoint each view comes from, or null when one is not from an open checkpoint. */
    private static List<Checkpoint> owners(List<TensorView> vs, Planner.Inputs inputs) {
        List<Checkpoint> out = new ArrayList<>(vs.size());
        for (TensorView v : vs) {
            Checkpoint c = inputs.all().stream().filter(x -> x.holds(v)).findFirst().orElse(null);
            if (c == null) return null;
            out.add(c);
        }
        return out;
    }

    /** Bytes one view's chunk 0 needs in a head buffer. */
    static long headBytes(TensorView v, long chunk) {
        return Math.min(chunk, v.numel()) * v.dtype().byteSize();
    }

    @Override
    public void close() {
        settle();
        arena.close();
        ledger.credit(charged);
        charged = 0;
    }

}
