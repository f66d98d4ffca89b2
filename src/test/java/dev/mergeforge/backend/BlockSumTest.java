package dev.mergeforge.backend;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * BlockSum's carried state and its refusals: an open block is carried as its 64 stripe sums (stripe
 * j = the terms at indices ≡ j mod 64), finished by the tree; runs must come in order, stay in one
 * block, and a run given as a finished block sum must end at a block edge.
 */
class BlockSumTest {
    @Test
    void openStripesAreTheSequentialSumsOfEachResidueAndTheValueIsTheirTree() {
        SplittableRandom r = new SplittableRandom(9);
        double[] t = new double[4096 + 300];
        for (int i = 0; i < t.length; i++) t[i] = r.nextGaussian() * Math.pow(10, r.nextInt(-6, 7));
        BlockSum acc = new BlockSum();
        // block 0 closed by its finished sum, then 300 terms of block 1 in two runs of stripes
        acc.addClosingRun(0, 4096, CanonicalSum.of(4096, i -> t[(int) i]));
        double[] s = acc.stripes();
        for (int i = 4096; i < 4196; i++) s[i % 64] += t[i];
        acc.addRun(4096, 100, s);
        s = acc.stripes();
        for (int i = 4196; i < t.length; i++) s[i % 64] += t[i];
        acc.addRun(4196, 200, s);
        double[] open = acc.stripes();
        for (int j = 0; j < 64; j++) {
            double want = 0.0;
            for (int i = 4096 + j; i < t.length; i += 64) want += t[i];
            assertEquals(want, open[j], 0.0, "stripe " + j);
        }
        assertEquals(CanonicalSum.of(t.length, i -> t[(int) i]), acc.value(), 0.0, "value: block 0, then the open block's tree");
        assertEquals(t.length, acc.next());
    }

    @Test
    void runsOutOfOrderAcrossABlockOrClosingOffAnEdgeAreRefused() {
        BlockSum acc = BlockSum.at(4000);
        double[] s = acc.stripes();
        IllegalStateException order = assertThrows(IllegalStateException.class, () -> acc.addRun(4001, 1, s));
        assertEquals("reduction fed out of order: element 4001, expected 4000", order.getMessage());
        IllegalArgumentException cross = assertThrows(IllegalArgumentException.class, () -> acc.addRun(4000, 97, s));
        assertEquals("a run of 97 at 4000 crosses a block", cross.getMessage());
        IllegalArgumentException edge = assertThrows(IllegalArgumentException.class, () -> acc.addClosingRun(4000, 95, 1.0));
        assertEquals("a run of 95 at 4000 does not end at a block edge", edge.getMessage());
        acc.addClosingRun(4000, 96, 1.5);
        assertEquals(1.5, acc.value(), 0.0);
    }
}
