package dev.mergeforge.run;

import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.DropMode;
import dev.mergeforge.tensor.TensorView;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Drops a merge's input pages from the page cache behind its reader (docs/io.md, "Inputs larger
 * than memory"), so that a merge whose inputs exceed memory streams them through the cache once
 * instead of evicting everything else and then its own chunks. The readers report the byte ranges
 * they are done with ({@link #consumed}); a range is dropped unless
 * <ul>
 *   <li>the merge's inputs fit in the page cache its memory budget leaves (mode {@link DropMode#AUTO}):
 *       then they stay for the next merge of the same models, as the kernel would keep them;</li>
 *   <li>a later tensor of the plan reads the same stored bytes again (a layer repeated by slices,
 *       a tied head);</li>
 *   <li>or the tensor itself reads them again in a later pass and they lie inside its keep window
 *       ({@link #keepElements}): a multi-pass tensor keeps the first chunks that fit in the cache
 *       and drops the rest behind every pass, so later passes find that share cached instead of
 *       none (a cache smaller than a cyclic scan holds nothing of it under LRU).</li>
 * </ul>
 * Thread-safe: the read-ahead thread reports the next tensor's first chunks while the merge thread
 * reports the current tensor's.
 */
final class DropBehind {
    /** Where a dropped range goes: {@link Checkpoint#evict} (the page cache), or a test's recorder. */
    @FunctionalInterface
    interface Evictor {
        void evict(Checkpoint from, TensorView v, long fromByte, long length);
    }

    /** The page cache, through {@link Checkpoint#evict}. */
    static final Evictor PAGE_CACHE = Checkpoint::evict;

    /** How a merge drops its inputs: the mode and where dropped ranges go. */
    record Settings(DropMode mode, Evictor evictor) {
        /** The configured mode ({@link DropMode#configured}), into the page cache. */
        static Settings configured() { return new Settings(DropMode.configured(), PAGE_CACHE); }
    }

    private final List<PlannedTensor> tensors;
    private final List<Checkpoint> checkpoints;
    private final Evictor evictor;
    private final boolean active;
    private final long room;
    /** Per tensor index: its views that a later tensor reads again (computed on first use). */
    private final Map<Integer, Set<TensorView>> rereadLater = new java.util.HashMap<>();
    private final Map<TensorView, Checkpoint> owners = new IdentityHashMap<>();

    /**
     * @param room the page cache the memory budget leaves (physical memory less the budget)
     */
    DropBehind(Planner.Plan plan, Planner.Inputs inputs, Settings s, long room) {
        this.tensors = plan.tensors();
        this.checkpoints = inputs.all();
        this.evictor = s.evictor();
        this.room = room;
        this.active = switch (s.mode()) {
            case ALWAYS -> true;
            case NEVER -> false;
            case AUTO -> distinctInputBytes(plan) > room;
        };
        // faults read ahead, never around: reading around would bring back what was just dropped
        if (active) for (Checkpoint c : checkpoints) c.adviseSequential();
    }

    /** Whether this merge drops its inputs behind it at all. */
    boolean active() { return active; }

    /** Bytes of stored inputs the plan reads, each stored tensor counted once. */
    static long distinctInputBytes(Planner.Plan plan) {
        Set<TensorView> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        long b = 0;
        for (PlannedTensor t : plan.tensors()) for (TensorView v : views(t)) if (seen.add(v)) b += v.data().byteSize();
        return b;
    }

    /**
     * Elements of tensor {@code t} (a multi-pass tensor) whose input pages stay cached between its
     * passes: as many as the page cache room holds of its distinct inputs, counted per element.
     */
    long keepElements(PlannedTensor t) {
        if (!active) return Long.MAX_VALUE;
        long perElement = 0;
        Set<TensorView> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        if (t.base() != null && seen.add(t.base())) perElement += t.base().dtype().byteSize();
        for (TensorView v : t.inputs()) if (seen.add(v)) perElement += v.dtype().byteSize();
        return perElement == 0 ? Long.MAX_VALUE : Math.max(0, room) / perElement;
    }

    /**
     * The reader of tensor {@code index} is done with bytes [fromByte, fromByte + length) of its
     * input {@code v}: drops them unless a rule of the class comment keeps them. Views not read
     * from a checkpoint's file (computed inputs) are ignored.
     */
    void consumed(int index, TensorView v, long fromByte, long length) {
        if (!active || length <= 0) return;
        Checkpoint c;
        synchronized (this) {
            if (rereadLater(index).contains(v)) return;
            c = owners.computeIfAbsent(v, k -> checkpoints.stream().filter(x -> x.holds(k)).findFirst().orElse(null));
        }
        if (c != null) evictor.evict(c, v, fromByte, length);
    }

    /** Tensor {@code index} is merged: drops all of its inputs that no later tensor reads. */
    void finished(int index) {
        if (!active) return;
        for (TensorView v : views(tensors.get(index))) consumed(index, v, 0, v.data().byteSize());
        synchronized (this) {
            rereadLater.remove(index);
        }
    }

    /** The views of tensor {@code index} whose bytes some later tensor reads too. */
    private Set<TensorView> rereadLater(int index) {
        return rereadLater.computeIfAbsent(index, i -> {
            Set<TensorView> out = Collections.newSetFromMap(new IdentityHashMap<>());
            for (TensorView v : views(tensors.get(i))) {
                long a = v.data().address(), b = a + v.data().byteSize();
                later:
                for (int j = i + 1; j < tensors.size(); j++) {
                    for (TensorView w : views(tensors.get(j))) {
                        long c = w.data().address(), d = c + w.data().byteSize();
                        if (c < b && a < d) {
                            out.add(v);
                            break later;
                        }
                    }
                }
            }
            return out;
        });
    }

    private static List<TensorView> views(PlannedTensor t) {
        List<TensorView> out = new ArrayList<>(t.inputs().size() + 1 + t.stats().size());
        if (t.base() != null) out.add(t.base());
        out.addAll(t.inputs());
        out.addAll(t.stats());
        return out;
    }
}
