package dev.mergeforge.backend;

import java.util.Arrays;

/**
 * A reduction in the canonical order of {@link Reductions}, fed in pieces: the terms of elements
 * with tensor indices in increasing order, possibly cut anywhere. Blocks of {@link Reductions#BLOCK}
 * elements are placed by tensor index; a block that a piece leaves unfinished is carried as its
 * {@link Reductions#STRIPES} stripe sums (each stripe is a sequential sum, so it simply continues
 * in the next piece), closed by {@link Reductions#tree} when its last element arrives; finished
 * blocks are added left to right to the total from 0.0 — the bits of the whole-tensor reduction,
 * whatever the chunk size. Not thread-safe: one per reduction.
 */
public final class BlockSum {
    private double total = 0.0;
    private final double[] open = new double[Reductions.STRIPES];
    private long next = 0;
    private boolean hasOpen;

    /** A reduction from index 0. */
    public BlockSum() {}

    /**
     * A reduction over a window of a tensor that starts at tensor index {@code start}, the elements
     * before it counting as zeros: the state the whole-tensor reduction is in at {@code start}.
     */
    public static BlockSum at(long start) {
        if (start < 0) throw new IllegalArgumentException("start " + start);
        BlockSum s = new BlockSum();
        s.next = start;
        s.hasOpen = start % Reductions.BLOCK != 0;
        return s;
    }

    /** The tensor index the next term must have. */
    public long next() { return next; }

    /**
     * What a run starting at {@code next()} continues: a copy of the open block's 64 stripe sums
     * (stripe j = the terms at tensor indices ≡ j mod 64 so far), all 0.0 when no block is open.
     */
    public double[] stripes() { return open.clone(); }

    /**
     * Adds a run of terms lying in one block and starting at tensor index {@code at}
     * ({@code = next()}), given as the block's stripe sums after it: {@link #stripes()} with each
     * term of the run added to its stripe in index order. A run that reaches the block's end closes
     * the block (its {@link Reductions#tree} goes to the total).
     */
    public void addRun(long at, long count, double[] stripes) {
        if (count <= 0) { check(at, 0); return; }
        check(at, count);
        System.arraycopy(stripes, 0, open, 0, Reductions.STRIPES);
        hasOpen = true;
        next = at + count;
        if (next % Reductions.BLOCK == 0) {
            total += Reductions.tree(open);
            Arrays.fill(open, 0.0);
            hasOpen = false;
        }
    }

    /**
     * Adds a run of terms starting at tensor index {@code at} ({@code = next()}) and ending at its
     * block's end, given as the finished block's sum: the tree of {@link #stripes()} continued by
     * the run.
     */
    public void addClosingRun(long at, long count, double blockSum) {
        check(at, count);
        if (count <= 0 || (at + count) % Reductions.BLOCK != 0) {
            throw new IllegalArgumentException("a run of " + count + " at " + at + " does not end at a block edge");
        }
        total += blockSum;
        Arrays.fill(open, 0.0);
        hasOpen = false;
        next = at + count;
    }

    /**
     * Feeds a chunk's runs in order: the chunk holds tensor indices [offset, offset + n), cut at
     * block edges; {@code sums[r]} is the finished sum of run r for each run that ends at a block
     * edge, and {@code lastStripes} the stripes after the last run when it does not.
     */
    public void addChunk(long offset, long n, double[] sums, double[] lastStripes) {
        if (n <= 0) return;
        long first = Math.min(n, Reductions.BLOCK - offset % Reductions.BLOCK);
        long runs = 1 + Reductions.blocks(n - first);
        for (int r = 0; r < runs; r++) {
            long lo = r == 0 ? 0 : first + (long) (r - 1) * Reductions.BLOCK, hi = r == 0 ? first : Math.min(n, lo + Reductions.BLOCK);
            if ((offset + hi) % Reductions.BLOCK == 0) addClosingRun(offset + lo, hi - lo, sums[r]);
            else addRun(offset + lo, hi - lo, lastStripes);
        }
    }

    private void check(long at, long count) {
        if (at != next) throw new IllegalStateException("reduction fed out of order: element " + at + ", expected " + next);
        if (count > 0 && (at / Reductions.BLOCK) != ((at + count - 1) / Reductions.BLOCK)) {
            throw new IllegalArgumentException("a run of " + count + " at " + at + " crosses a block");
        }
    }

    /** The sum of every term fed so far (an open block closed by the tree, its missing stripes 0.0). */
    public double value() { return hasOpen ? total + Reductions.tree(open.clone()) : total; }
}
