package dev.mergeforge.backend;

/**
 * A reduction in the canonical order of {@link Reductions}, fed in pieces: the terms of elements
 * with tensor indices in increasing order, possibly cut anywhere. Blocks of {@link Reductions#BLOCK}
 * elements are placed by tensor index; each block is summed left to right from 0.0, and finished
 * blocks are added left to right to the total from 0.0 — the bits of the whole-tensor reduction,
 * whatever the chunk size. Not thread-safe: one per reduction.
 */
public final class BlockSum {
    private double total = 0.0, open = 0.0;
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
     * Adds the sum of a run of terms lying in one block and starting at tensor index {@code at}
     * ({@code = next()}): {@code partial} must be that run summed left to right from
     * {@code start()}, i.e. from the block's open sum when the run continues a block, else from 0.0.
     */
    public void addRun(long at, long count, double partial) {
        if (at != next) throw new IllegalStateException("reduction fed out of order: element " + at + ", expected " + next);
        if (count <= 0) return;
        long end = at + count;
        if ((at / Reductions.BLOCK) != ((end - 1) / Reductions.BLOCK)) throw new IllegalArgumentException("a run of " + count + " at " + at + " crosses a block");
        open = partial;
        hasOpen = true;
        next = end;
        if (end % Reductions.BLOCK == 0) {
            total += open;
            open = 0.0;
            hasOpen = false;
        }
    }

    /** What a run starting at {@code next()} starts summing from: the open block's sum, or 0.0. */
    public double start() { return hasOpen ? open : 0.0; }

    /** The sum of every term fed so far. */
    public double value() { return hasOpen ? total + open : total; }
}
