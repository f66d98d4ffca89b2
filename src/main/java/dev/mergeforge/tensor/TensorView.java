package dev.mergeforge.tensor;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;

import java.lang.foreign.MemorySegment;

/**
 * A zero-copy view of one stored tensor: its bytes are a slice of a memory-mapped file, valid as
 * long as the owning file ({@code io.SafetensorsFile}) is open. {@code source} names the file for
 * messages. It lives here, not in io, because the backend seam reads stored tensors through it.
 */
public record TensorView(String name, DType dtype, Shape shape, MemorySegment data, String source) {
    public TensorView {
        long expect = Math.multiplyExact(shape.numel(), (long) dtype.byteSize());
        if (data.byteSize() != expect) {
            throw new IllegalArgumentException("tensor " + name + " in " + source + ": " + data.byteSize()
                    + " bytes for " + dtype + shape + " (expected " + expect + ")");
        }
    }

    public long numel() { return shape.numel(); }
}
