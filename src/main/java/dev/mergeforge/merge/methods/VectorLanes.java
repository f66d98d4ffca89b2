package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;

/**
 * The vectors a per-vector method (model_stock, nuslerp) works on, seen chunk by chunk: either the
 * whole flattened tensor (one lane, its reductions carried across chunks in a {@link BlockSum}) or
 * the rows along the last axis (chunks hold whole rows, each row reduced inside its chunk). Either
 * way the sums have the bits of the whole-tensor {@code laneDots}.
 */
final class VectorLanes {
    private final boolean rows;
    private final long cols;
    final int count;

    private VectorLanes(boolean rows, long cols, int count) {
        this.rows = rows;
        this.cols = cols;
        this.count = count;
    }

    /** Rows along the last axis when {@code perRow} and the tensor has two or more axes, else the whole tensor. */
    static VectorLanes of(Shape shape, boolean perRow) {
        if (perRow && shape.rank() >= 2) return new VectorLanes(true, shape.cols(), Math.toIntExact(shape.numel() / Math.max(1, shape.cols())));
        return new VectorLanes(false, 1, 1);
    }

    /** Elements a chunk must hold a multiple of. */
    long align() { return rows ? Math.max(1, cols) : 1; }

    /** The lanes of one chunk. */
    Lanes lanes(Chunk c) { return rows ? new Lanes(c.size() / cols, cols, 1) : Lanes.whole(c.size()); }

    /** Index of the chunk's first lane. */
    int first(Chunk c) { return rows ? Math.toIntExact(c.offset() / cols) : 0; }

    /** A per-lane dot product accumulated over the chunks, in order. */
    final class Dots {
        private final double[] values = new double[count];
        private final BlockSum whole = rows ? null : new BlockSum();

        void add(ChunkOps ops, Chunk c, Tile a, Tile b) {
            if (whole != null) {
                ops.dot(a, b, c.offset(), whole);
                return;
            }
            Lanes l = lanes(c);
            double[] part = new double[Math.toIntExact(l.count())];
            ops.laneDots(a, b, l, part);
            System.arraycopy(part, 0, values, first(c), part.length);
        }

        double[] values() {
            if (whole != null) values[0] = whole.value();
            return values;
        }
    }

    Dots dots() { return new Dots(); }

    /** out = s[v] · x per lane of the chunk. */
    void scale(ChunkOps ops, Chunk c, Tile x, float[] s, Tile out) {
        Lanes l = lanes(c);
        int from = first(c);
        float[] part = java.util.Arrays.copyOfRange(s, from, from + Math.toIntExact(l.count()));
        ops.laneScale(x, part, l, out);
    }
}
