package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.tensor.Tile;

import java.util.Arrays;

/**
 * Arcee Fusion's per-row KL divergence over chunks of whole rows, by the backend's
 * {@link ChunkOps#rowKl} (the definition of {@code FusionLoops}, which the whole-tensor path uses
 * too: the same bits). The first pass computes every row's KL and keeps those of the tensor's first
 * {@code keep} rows (4 bytes a row: 0.5 MB for a 128,256-row embedding); later passes read the kept
 * ones, and a chunk holding rows beyond them is computed again.
 */
final class FusionKl {
    /** Rows whose KL is kept after the first pass by default: 16 MB at most, whatever the tensor. */
    static final long KEEP_ROWS = 1L << 22;

    private final long cols;
    private final float[] kept;

    /** A tensor of {@code rows} rows of {@code cols} elements; the KL of its first {@code keep} rows is kept. */
    FusionKl(long rows, long cols, long keep) {
        this.cols = cols;
        this.kept = new float[(int) Math.min(rows, keep)];
    }

    /**
     * The KL of the {@code n} whole rows in a chunk, the first being the tensor's row {@code firstRow}.
     * {@code first}: the first pass, which computes them and keeps those it may; later passes read
     * the kept rows, or compute the chunk's rows again where any is not kept.
     */
    float[] rows(ChunkOps ops, Tile base, Tile other, long firstRow, int n, boolean first) {
        boolean allKept = firstRow + n <= kept.length;
        if (!first && allKept) return Arrays.copyOfRange(kept, (int) firstRow, (int) firstRow + n);
        double[] exact = new double[n];
        ops.rowKl(base, other, cols, exact);
        // the KL rounded to float32 once
        float[] kl = new float[n];
        for (int r = 0; r < n; r++) kl[r] = (float) exact[r];
        if (first && firstRow < kept.length) System.arraycopy(kl, 0, kept, (int) firstRow, (int) Math.min(n, kept.length - firstRow));
        return kl;
    }
}
