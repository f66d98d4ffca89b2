package dev.mergeforge.model;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Float arrays of a decoder layer the forward pass has finished with, handed to the next layer's
 * load: a layer-by-layer pass of a model converts tens of megabytes of float32 per layer, and fresh
 * arrays for each made the garbage collector copy the live layers and the heap grow, every new page
 * faulted in (on the shared test VM 7-18 µs of CPU per 4 KiB page, beside the products). Arrays are
 * matched by exact length; what a load does not take is dropped at the next {@link #refill}, so at
 * most one finished layer is held. The load overwrites every element it takes (no stale value can
 * reach a result).
 *
 * <p>Thread use: the pass refills it before it starts the loader that takes from it; both methods
 * are synchronized, so a loader on another thread sees the arrays.
 */
final class SpareArrays {
    private final Map<Integer, ArrayDeque<float[]>> free = new HashMap<>();

    /** An array of exactly n floats: a spare one (old contents, to be overwritten) or a new one. */
    synchronized float[] take(int n) {
        ArrayDeque<float[]> q = free.get(n);
        float[] a = q == null ? null : q.poll();
        return a != null ? a : new float[n];
    }

    /** Gives back one array (the caller no longer reads or writes it). */
    synchronized void give(float[] a) {
        if (a != null) free.computeIfAbsent(a.length, k -> new ArrayDeque<>()).add(a);
    }

    /** Drops what is held and takes every array of a finished layer instead. */
    synchronized void refill(LayerTensors finished) {
        free.clear();
        finished.giveArrays(this);
    }
}
