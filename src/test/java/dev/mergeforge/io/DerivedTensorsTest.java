package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.MemoryLedger;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Derived views read in ranges: {@code read} computes just the range asked for (a nested derived
 * source read through it too), {@code window} makes a range readable through the view's memory with
 * one window per view charged to the ledger (the previous one dropped and credited), {@code release}
 * gives everything back, {@code prepare} computes the view whole; stored views are copied, never computed.
 */
class DerivedTensorsTest {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    @Test
    void rangesAreComputedOnDemandAndWindowsAreChargedOneAtATime() {
        try (DerivedTensors d = new DerivedTensors()) {
            List<long[]> asked = new ArrayList<>();
            // inner: element i is i (16 MiB: a reserved, lazily backed mapping)
            long n = 4L << 20;
            TensorView inner = d.create("inner", DType.F32, Shape.of(n), "test", (from, count, dst) -> {
                asked.add(new long[] {from, count});
                for (long i = 0; i < count; i++) dst.setAtIndex(F, i, from + i);
            });
            // outer: element i is 2 · inner[n - 1 - i], read through read()
            TensorView outer = d.create("outer", DType.F32, Shape.of(n), "test", (from, count, dst) -> {
                MemorySegment src = MemorySegment.ofArray(new float[(int) count]);
                d.read(inner, n - from - count, count, src);
                for (long i = 0; i < count; i++) dst.setAtIndex(F, i, 2 * src.getAtIndex(F, count - 1 - i));
            });
            assertTrue(d.isDerived(outer) && d.isDerived(inner));
            MemorySegment got = MemorySegment.ofArray(new float[10]);
            d.read(outer, 100, 10, got);
            for (int i = 0; i < 10; i++) assertEquals(2f * (n - 1 - (100 + i)), got.getAtIndex(F, i));
            assertEquals(1, asked.size(), "the nested source computed once");
            assertEquals(n - 110, asked.getFirst()[0], "only the range the outer range needs");
            assertEquals(10, asked.getFirst()[1]);

            MemoryLedger ledger = new MemoryLedger(1L << 20, m -> { }, true);
            long w = 100_000;
            d.window(inner, 3 * w, w, ledger);
            assertEquals((float) (3 * w + 5), inner.data().getAtIndex(F, 3 * w + 5));
            long one = ledger.held();
            assertTrue(one >= 4 * w && one <= 4 * w + 8192, "a window charges its pages: " + one);
            asked.clear();
            d.window(inner, 3 * w + 10, 20, ledger);
            assertTrue(asked.isEmpty(), "a range inside the current window is not computed again");
            // walking the whole view window by window never holds more than one window
            for (long from = 0; from < n; from += w) {
                d.window(inner, from, Math.min(w, n - from), ledger);
                assertTrue(ledger.held() <= 4 * w + 8192, "held " + ledger.held() + " at " + from);
            }
            assertEquals((float) (n - 1), inner.data().getAtIndex(F, n - 1));
            // the dropped windows' pages are returned: an anonymous mapping reads zeros again
            assertEquals(0f, inner.data().getAtIndex(F, 5 * w + 17));
            d.release(List.of(inner, outer));
            assertEquals(0, ledger.held(), "released windows are credited");
            assertTrue(ledger.peak() <= 4 * w + 8192, "peak " + ledger.peak());
            // a strict ledger refuses a window past its allowance
            assertThrows(IllegalStateException.class, () -> d.window(inner, 0, n, ledger));
            d.release(List.of(inner));

            d.prepare(List.of(outer, outer));
            assertEquals(2f * (n - 1), outer.data().getAtIndex(F, 0));
            assertEquals(0f, outer.data().getAtIndex(F, n - 1));

            TensorView stored = new TensorView("s", DType.F32, Shape.of(3), MemorySegment.ofArray(new float[] {1, 2, 3}), "mem");
            assertFalse(d.isDerived(stored));
            d.prepare(List.of(stored)); // stored views are left alone
            d.window(stored, 0, 3, ledger);
            MemorySegment two = MemorySegment.ofArray(new float[2]);
            d.read(stored, 1, 2, two);
            assertEquals(3f, two.getAtIndex(F, 1));
            assertThrows(IllegalArgumentException.class, () -> d.read(stored, 2, 2, two));
        }
    }
}
