package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;

/**
 * The vectors a per-vector method (model_stock, nuslerp) works on, seen chunk by chunk: the whole
 * flattened tensor (one lane, its reductions carried across chunks in a {@link BlockSum}), the rows
 * along the last axis (chunks hold whole rows, each row reduced inside its chunk), or the columns
 * along axis 0 (chunks hold whole rows, each column's sum carried in a {@link BlockSum} of its own).
 * Every way the sums have the bits of the whole-tensor {@code laneDots}.
 */
final class VectorLanes {
    /** How the vectors lie: the whole tensor, rows along the last axis, or columns along axis 0. */
    private enum Kind { WHOLE, ROWS, COLUMNS }

    private final Kind kind;
    private final long cols;
    final int count;

    private VectorLanes(Kind kind, long cols, int count) {
        this.kind = kind;
        this.cols = cols;
        this.count = count;
    }

    /** Rows along the last axis when {@code perRow} and the tensor has two or more axes, else the whole tensor. */
    static VectorLanes of(Shape shape, boolean perRow) {
        if (perRow && shape.rank() >= 2) return new VectorLanes(Kind.ROWS, shape.cols(), Math.toIntExact(shape.numel() / Math.max(1, shape.cols())));
        return new VectorLanes(Kind.WHOLE, 1, 1);
    }

    /**
     * The vectors along axis 0 ({@code Lanes.along(shape, 0)}) of a tensor of two or more axes: the
     * tensor seen as [dim 0, rest], one vector per column of that matrix; chunks hold whole rows and each
     * column's sums are carried from chunk to chunk.
     */
    static VectorLanes columns(Shape shape) {
        if (shape.rank() < 2) throw new IllegalArgumentException("columns of a tensor of rank " + shape.rank());
        long inner = shape.numel() / Math.max(1, shape.dim(0));
        return new VectorLanes(Kind.COLUMNS, inner, Math.toIntExact(inner));
    }

    /** Elements a chunk must hold a multiple of. */
    long align() { return kind == Kind.WHOLE ? 1 : Math.max(1, cols); }

    /** The lanes of one chunk. */
    Lanes lanes(Chunk c) {
        return switch (kind) {
            case WHOLE -> Lanes.whole(c.size());
            case ROWS -> new Lanes(c.size() / cols, cols, 1);
            case COLUMNS -> new Lanes(1, c.size() / cols, cols);
        };
    }

    /** Index of the chunk's first lane (every chunk holds a piece of every column). */
    int first(Chunk c) { return kind == Kind.ROWS ? Math.toIntExact(c.offset() / cols) : 0; }

    /** A per-lane dot product accumulated over the chunks, in order. */
    final class Dots {
        private final double[] values = new double[count];
        private final BlockSum whole = kind == Kind.WHOLE ? new BlockSum() : null;
        private final BlockSum[] columns = kind == Kind.COLUMNS ? new BlockSum[count] : null;

        Dots() {
            if (columns != null) for (int v = 0; v < count; v++) columns[v] = new BlockSum();
        }

        void add(ChunkOps ops, Chunk c, Tile a, Tile b) {
            switch (kind) {
                case WHOLE -> ops.dot(a, b, c.offset(), whole);
                case COLUMNS -> ops.carriedLaneDots(a, b, lanes(c), c.offset() / cols, columns);
                case ROWS -> {
                    Lanes l = lanes(c);
                    double[] part = new double[Math.toIntExact(l.count())];
                    ops.laneDots(a, b, l, part);
                    System.arraycopy(part, 0, values, first(c), part.length);
                }
            }
        }

        double[] values() {
            if (whole != null) values[0] = whole.value();
            if (columns != null) for (int v = 0; v < count; v++) values[v] = columns[v].value();
            return values;
        }
    }

    Dots dots() { return new Dots(); }

    /** out = s[v] · x per lane of the chunk. */
    void scale(ChunkOps ops, Chunk c, Tile x, float[] s, Tile out) {
        Lanes l = lanes(c);
        int from = first(c);
        float[] part = kind == Kind.COLUMNS ? s : java.util.Arrays.copyOfRange(s, from, from + Math.toIntExact(l.count()));
        ops.laneScale(x, part, l, out);
    }
}
