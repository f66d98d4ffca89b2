package dev.mergeforge.tensor;

import java.util.Arrays;

/** A tensor shape; sizes are longs so that 70B-scale tensors never overflow. */
public record Shape(long[] dims) {
    public Shape {
        dims = dims.clone();
        for (long d : dims) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(dims));
        }
    }

    public static Shape of(long... dims) { return new Shape(dims); }

    public int rank() { return dims.length; }

    public long dim(int i) { return dims[i]; }

    @Override public long[] dims() { return dims.clone(); }

    /** Number of elements; throws if it overflows a long. */
    public long numel() {
        long n = 1;
        for (long d : dims) n = Math.multiplyExact(n, d);
        return n;
    }

    /** Rows of the tensor seen as a matrix: product of all but the last dimension (1 for a scalar or vector). */
    public long rows() {
        if (dims.length <= 1) return 1;
        long n = 1;
        for (int i = 0; i < dims.length - 1; i++) n = Math.multiplyExact(n, dims[i]);
        return n;
    }

    /** Columns of the tensor seen as a matrix: the last dimension (numel for a vector, 1 for a scalar). */
    public long cols() {
        return dims.length == 0 ? 1 : dims[dims.length - 1];
    }

    @Override public boolean equals(Object o) { return o instanceof Shape s && Arrays.equals(dims, s.dims); }

    @Override public int hashCode() { return Arrays.hashCode(dims); }

    @Override public String toString() { return Arrays.toString(dims); }
}
