package dev.mergeforge.run;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.io.StreamingWriter;
import dev.mergeforge.tensor.TensorView;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A merged model held in memory instead of written: each tensor's bytes in its output dtype, as
 * the safetensors writer would have stored them, in off-heap memory of one shared {@link Arena}
 * (readable from the forward pass's threads), with the config.json the output folder would hold
 * and the folder its tokenizer files would be copied from. The {@link TensorSink} a merge fills
 * (see {@link Merger#runInMemory}); memory: the merged model's bytes.
 *
 * <p>Lifetime: owns the arena; every {@link #tensors()} view is valid until {@link #close()}.
 */
public final class MemoryModel implements TensorSink, AutoCloseable {
    private static final long ALIGN = 64;

    private final Arena arena = Arena.ofShared();
    private final List<PlannedTensor> plan;
    private final Map<String, TensorView> tensors = new LinkedHashMap<>();
    private final ObjectNode config;
    private final Path tokenizerDir;
    private MemorySegment declined; // a tensor's memory whose first piece was declined, kept for its write

    MemoryModel(List<PlannedTensor> plan, ObjectNode config, Path tokenizerDir) {
        this.plan = List.copyOf(plan);
        this.config = config;
        this.tokenizerDir = tokenizerDir;
    }

    /** The merged tensors by name, in plan order. */
    public Map<String, TensorView> tensors() { return Collections.unmodifiableMap(tensors); }

    /** What the output folder's config.json would say. */
    public ObjectNode config() { return config.deepCopy(); }

    /** The folder whose tokenizer files the output folder would get. */
    public Path tokenizerDir() { return tokenizerDir; }

    /** Bytes of merged tensors held. */
    public long bytes() { return tensors.values().stream().mapToLong(v -> v.data().byteSize()).sum(); }

    @Override
    public void write(String name, MemorySegment bytes) {
        PlannedTensor t = expect(name);
        if (bytes.byteSize() != t.outBytes()) throw new IllegalArgumentException("tensor '" + name + "' is " + t.outBytes() + " bytes, got " + bytes.byteSize());
        MemorySegment m = take(t);
        MemorySegment.copy(bytes, 0, m, 0, bytes.byteSize());
        keep(t, m);
    }

    @Override
    public boolean fill(String name, long elementBytes, long cutBytes, StreamingWriter.Filler f) {
        PlannedTensor t = expect(name);
        long n = t.outBytes();
        if (elementBytes <= 0 || n % elementBytes != 0) return false;
        if (cutBytes != Long.MAX_VALUE && (cutBytes <= 0 || cutBytes % elementBytes != 0)) throw new IllegalArgumentException("cut of " + cutBytes + " bytes for " + elementBytes + "-byte elements");
        MemorySegment m = take(t);
        for (long done = 0; done < n; ) {
            long k = Math.min(n - done, cutBytes - done % cutBytes);
            if (!f.fill(done, m.asSlice(done, k))) {
                if (done > 0) throw new IllegalStateException("tensor '" + name + "': the filler declined a piece after the first");
                declined = m;
                return false;
            }
            done += k;
        }
        keep(t, m);
        return true;
    }

    @Override
    public void finish() {
        if (tensors.size() != plan.size()) throw new IllegalStateException((plan.size() - tensors.size()) + " planned tensors were never merged");
    }

    @Override
    public void close() {
        tensors.clear();
        arena.close();
    }

    /** Checks that {@code name} is the next planned tensor. */
    private PlannedTensor expect(String name) {
        int next = tensors.size();
        if (next >= plan.size() || !plan.get(next).name().equals(name)) {
            throw new IllegalStateException("tensor '" + name + "' merged out of order (expected "
                    + (next < plan.size() ? plan.get(next).name() : "no more tensors") + ")");
        }
        return plan.get(next);
    }

    private MemorySegment take(PlannedTensor t) {
        MemorySegment m = declined != null ? declined : arena.allocate(Math.max(1, t.outBytes()), ALIGN).asSlice(0, t.outBytes());
        declined = null;
        return m;
    }

    private void keep(PlannedTensor t, MemorySegment m) {
        tensors.put(t.name(), new TensorView(t.name(), t.outDtype(), t.shape(), m, "the merged candidate (in memory)"));
    }
}
