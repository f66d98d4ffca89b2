package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The lifecycle of derived views: computed on prepare (inputs first, once per call), inputs released after. */
class DerivedTensorsTest {
    @Test
    void prepareFillsInputsFirstAndEachViewOncePerCall() {
        try (DerivedTensors d = new DerivedTensors()) {
            AtomicInteger innerFills = new AtomicInteger(), outerFills = new AtomicInteger();
            // inner: a 16 MiB tensor of 1.0f (large enough to be a reserved, lazily backed mapping)
            long n = 4L << 20;
            TensorView inner = d.create("inner", DType.F32, Shape.of(n), "test", dst -> {
                innerFills.incrementAndGet();
                dst.fill((byte) 0);
                for (long i = 0; i < n; i++) dst.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, 1f);
            });
            TensorView outer = d.create("outer", DType.F32, Shape.of(4), "test", new DerivedTensors.Filler() {
                @Override public void fill(MemorySegment dst) {
                    outerFills.incrementAndGet();
                    // reads its input, which must already hold its values
                    float s = 0;
                    for (long i = 0; i < n; i++) s += inner.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                    for (int i = 0; i < 4; i++) dst.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, s);
                }

                @Override public List<TensorView> inputs() { return List.of(inner); }
            });
            assertTrue(d.isDerived(outer) && d.isDerived(inner));
            d.prepare(List.of(outer, outer));
            assertEquals(1, outerFills.get(), "a view listed twice is computed once");
            assertEquals(1, innerFills.get());
            assertEquals((float) n, outer.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 3));
            // the input's memory was returned after use: an anonymous mapping reads zeros again
            assertEquals(0f, inner.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, n / 2));
            d.prepare(List.of(outer));
            assertEquals(2, innerFills.get(), "a later prepare computes the view again");
            TensorView stored = new TensorView("s", DType.F32, Shape.of(1), MemorySegment.ofArray(new float[1]), "mem");
            assertFalse(d.isDerived(stored));
            d.prepare(List.of(stored)); // stored views are left alone
        }
    }
}
