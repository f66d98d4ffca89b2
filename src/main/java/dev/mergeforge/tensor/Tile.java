package dev.mergeforge.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * A float32 working buffer holding one whole tensor (or a vector such as an importance vector).
 * The memory belongs to whoever made the tile (usually a {@link TilePool}); a tile never frees it.
 * Elements are little-endian native floats at byte offset 4*i.
 */
public final class Tile {
    public static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private final MemorySegment data;
    private final Shape shape;

    public Tile(MemorySegment data, Shape shape) {
        this.shape = Objects.requireNonNull(shape, "shape");
        long need = Math.multiplyExact(shape.numel(), 4L);
        if (data.byteSize() < need) {
            throw new IllegalArgumentException("tile of shape " + shape + " needs " + need + " bytes, segment has " + data.byteSize());
        }
        this.data = data.asSlice(0, need);
    }

    /** A heap-backed tile, for tests and small vectors. */
    public static Tile ofArray(Shape shape, float[] values) {
        if (values.length != shape.numel()) {
            throw new IllegalArgumentException("values length " + values.length + " != numel of " + shape);
        }
        return new Tile(MemorySegment.ofArray(values), shape);
    }

    public static Tile ofArray(float... values) { return ofArray(Shape.of(values.length), values); }

    public MemorySegment data() { return data; }

    public Shape shape() { return shape; }

    public long size() { return data.byteSize() >>> 2; }

    public long rows() { return shape.rows(); }

    public long cols() { return shape.cols(); }

    public float get(long i) { return data.getAtIndex(F32, i); }

    public void set(long i, float v) { data.setAtIndex(F32, i, v); }

    /** A view of the same memory with another shape of the same element count. */
    public Tile reshape(Shape s) {
        if (s.numel() != shape.numel()) throw new IllegalArgumentException("cannot view " + shape + " as " + s);
        return new Tile(data, s);
    }

    /** Copies the values out (tests and small vectors only). */
    public float[] toArray() { return data.toArray(F32.withOrder(java.nio.ByteOrder.nativeOrder()).withByteAlignment(1)); }

    @Override public String toString() { return "Tile" + shape; }
}
