package dev.mergeforge.model.cuda;

import dev.mergeforge.backend.cuda.Device;
import dev.mergeforge.backend.cuda.DeviceBuffer;
import dev.mergeforge.backend.cuda.DeviceBufferPool;
import dev.mergeforge.backend.cuda.ForwardOps;
import dev.mergeforge.model.AbsSumObserver;
import dev.mergeforge.model.ActivationObserver;

import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hands the module inputs of one layer (over all chunks) to an observer. An {@link AbsSumObserver}
 * gets Σ|x| per input channel summed on the device in float64 ({@code mf_abs_sum_cols}, rows in
 * order, as the CPU adds them) once the layer is done ({@link #finish}); modules that read one
 * input (q/k/v, gate/up) share one sum. Any other observer gets the rows, copied back per chunk.
 */
final class DeviceObservation implements AutoCloseable {
    private final ActivationObserver obs;
    private final AbsSumObserver sums;
    private final Device dev;
    private final DeviceBufferPool pool;
    private final ForwardOps fops;
    private final int[][] seqs;
    private final Map<String, Acc> acc = new LinkedHashMap<>();

    /** A device float64 accumulator [width] shared by {@code names}. */
    private static final class Acc {
        final String[] names;
        final DeviceBuffer sum;
        final int width;
        long tokens;

        Acc(String[] names, DeviceBuffer sum, int width) {
            this.names = names;
            this.sum = sum;
            this.width = width;
        }
    }

    DeviceObservation(ActivationObserver obs, Device dev, DeviceBufferPool pool, ForwardOps fops, int[][] seqs) {
        this.obs = obs;
        this.sums = obs instanceof AbsSumObserver a ? a : null;
        this.dev = dev;
        this.pool = pool;
        this.fops = fops;
        this.seqs = seqs;
    }

    /** x [chunk tokens, width] is the input of every module in {@code names}. */
    void see(DeviceBuffer x, ForwardPlan.Chunk ch, int width, String... names) {
        if (obs == ActivationObserver.NONE) return;
        if (sums != null) {
            Acc a = acc.get(names[0]);
            if (a == null) {
                a = new Acc(names, pool.borrow(8L * width, "act_mean sums"), width);
                acc.put(names[0], a);
                dev.zero(a.sum, 8L * width);
            }
            // sum[j] += Σ_t |x[t, j]|
            fops.absSumCols(x, ch.tokens(), width, a.sum);
            a.tokens += ch.tokens();
            return;
        }
        float[] rows = new float[ch.tokens() * width];
        dev.download(x.slice(0, 4L * rows.length), MemorySegment.ofArray(rows));
        for (int b = ch.first(); b < ch.end(); b++) {
            int at = (ch.rowOf(b) - ch.row0()) * width;
            for (String n : names) obs.accept(n, rows, at, seqs[b].length, width);
        }
    }

    /** Hands the layer's sums to the observer (after the last chunk). */
    void finish() {
        for (Acc a : acc.values()) {
            double[] s = new double[a.width];
            dev.download(a.sum, MemorySegment.ofArray(s));
            for (String n : a.names) sums.acceptAbsSums(n, s.clone(), a.tokens);
        }
    }

    /** Returns the accumulators to the pool (also when the layer failed). */
    @Override
    public void close() {
        for (Acc a : acc.values()) pool.release(a.sum);
        acc.clear();
    }
}
