package dev.mergeforge.backend;

import dev.mergeforge.tensor.Shape;

/**
 * A tensor cut into equal vectors ("lanes") along one axis: the tensor is seen as
 * [outer, length, inner] and lane v = o·inner + j (0 ≤ o &lt; outer, 0 ≤ j &lt; inner) holds the
 * elements at flat index o·length·inner + k·inner + j for k = 0 .. length-1, in that order.
 * Rows of a matrix are {@code along(shape, 1)}; its columns {@code along(shape, 0)}; the whole
 * tensor as one vector is {@link #whole}.
 */
public record Lanes(long outer, long length, long inner) {
    public Lanes {
        if (outer < 0 || length < 0 || inner < 0) {
            throw new IllegalArgumentException("negative lane geometry " + outer + "x" + length + "x" + inner);
        }
    }

    /** The whole tensor of n elements as one lane. */
    public static Lanes whole(long n) { return new Lanes(1, n, 1); }

    /** Vectors along axis {@code dim} of {@code shape}; a scalar or vector shape is one lane. */
    public static Lanes along(Shape shape, int dim) {
        int r = shape.rank();
        if (r <= 1) return whole(shape.numel());
        if (dim < 0 || dim >= r) throw new IllegalArgumentException("axis " + dim + " out of range for shape " + shape);
        long outer = 1, inner = 1;
        for (int i = 0; i < dim; i++) outer = Math.multiplyExact(outer, shape.dim(i));
        for (int i = dim + 1; i < r; i++) inner = Math.multiplyExact(inner, shape.dim(i));
        return new Lanes(outer, shape.dim(dim), inner);
    }

    /** Number of lanes. */
    public long count() { return Math.multiplyExact(outer, inner); }

    /** Number of elements covered. */
    public long numel() { return Math.multiplyExact(count(), length); }

    /** Flat index of element k of lane v. */
    public long index(long v, long k) {
        long o = v / inner, j = v - o * inner;
        return (o * length + k) * inner + j;
    }

    /** The lane that flat index i belongs to. */
    public long laneOf(long i) {
        long o = i / (length * inner), j = i % inner;
        return o * inner + j;
    }
}
