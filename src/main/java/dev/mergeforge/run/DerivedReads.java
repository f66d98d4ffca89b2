package dev.mergeforge.run;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.io.DerivedTensors;
import dev.mergeforge.merge.chunk.ChunkRunner;
import dev.mergeforge.tensor.MemoryLedger;
import dev.mergeforge.tensor.TensorView;

import java.util.Collection;

/**
 * The computed inputs of one merge (permuted embeddings, LoRA-applied weights: {@link DerivedTensors})
 * as its paths read them (docs/io.md, "Computed inputs"): the chunked passes and the fused pass
 * make each chunk readable as they reach it (a window per view, charged to the merge's ledger), a
 * copied tensor is computed straight into the writer's blocks, and only the whole-tensor tile path
 * computes a derived input whole. Stored views pass through untouched.
 */
final class DerivedReads implements ChunkRunner.Sources {
    private final DerivedTensors derived;
    private final MemoryLedger ledger;
    private final long window;

    /** @param window elements per window when a whole derived view is scanned (its NaN/Inf check) */
    DerivedReads(DerivedTensors derived, MemoryLedger ledger, long window) {
        this.derived = derived;
        this.ledger = ledger;
        this.window = window;
    }

    @Override
    public void ready(TensorView v, long from, long n) { derived.window(v, from, n, ledger); }

    boolean isDerived(TensorView v) { return derived.isDerived(v); }

    /** Computes the derived views among {@code views} whole: for the whole-tensor tile path only. */
    void prepare(Collection<TensorView> views) { derived.prepare(views); }

    /** After their tensor: drops the windows of the derived views among {@code views}. */
    void release(Collection<TensorView> views) { derived.release(views); }

    /**
     * Writes derived {@code src} as tensor {@code name} into {@code sink}, computed block by block;
     * false when the sink takes whole tensors only (the caller then prepares it whole).
     */
    boolean copy(TensorView src, String name, TensorSink sink) {
        long es = src.dtype().byteSize();
        return sink.fill(name, es, (offset, dst) -> {
            derived.read(src, offset / es, dst.byteSize() / es, dst);
            return true;
        });
    }

    /**
     * The first element of {@code v} that is NaN or ±Inf, or -1: a derived view is computed and
     * scanned window by window. The window holding the element found stays (the caller's message
     * reads its value) until {@link #release}.
     */
    long firstNonFinite(Backend be, TensorView v) {
        if (!isDerived(v)) return be.firstNonFinite(v);
        for (long from = 0; from < v.numel(); from += window) {
            long n = Math.min(window, v.numel() - from);
            ready(v, from, n);
            long bad = be.firstNonFinite(InputChunks.slice(v, from, n));
            if (bad >= 0) return from + bad;
        }
        return -1;
    }
}
