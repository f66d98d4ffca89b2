package dev.mergeforge.backend;

import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Karcher's fused ops on the Java backend ({@link KarcherLoops}) against the separate ops they
 * replace (scale, weightedSum, fill: {@link KarcherCases#separateMean}, {@link KarcherCases#separateTangent})
 * bit for bit, on every {@link KarcherCases} case: units written over their inputs and into other
 * tiles, and a tangent of no terms (+0.0).
 */
class KarcherLoopsTest {
    private static Parallel par;
    private static JavaChunkOps ops;

    @BeforeAll static void setUp() {
        par = new Parallel(2);
        ops = new JavaChunkOps(par);
    }

    @AfterAll static void tearDown() { par.shutdown(); }

    @Test
    void meanIsTheSeparateOpsBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            try (Arena arena = Arena.ofShared()) {
                int[][] want = KarcherCases.separateMean(ops, arena, c);
                for (int mode = 0; mode < 3; mode++) {
                    boolean inPlace = mode == 0, none = mode == 2;
                    List<Tile> xs = KarcherCases.tiles(arena, c.xs());
                    List<Tile> units = inPlace ? xs : none ? List.of() : KarcherCases.tiles(arena, new int[c.xs().length][c.n()]);
                    Tile u = KarcherCases.tile(arena, new int[c.n()]);
                    ops.karcherMean(xs, c.scales(), units, c.w(), c.f(), u);
                    for (int p = 0; p < units.size(); p++) {
                        assertNull(KarcherCases.firstDifference(want[p], KarcherCases.bits(units.get(p))), c + " unit " + p + (inPlace ? " in place" : ""));
                    }
                    assertNull(KarcherCases.firstDifference(want[c.xs().length], KarcherCases.bits(u)), c + " u" + (inPlace ? " in place" : none ? " units not kept" : ""));
                }
            }
        }
    }

    @Test
    void tangentIsTheSeparateOpsBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            try (Arena arena = Arena.ofShared()) {
                int[] want = KarcherCases.separateTangent(ops, arena, c);
                Tile t = KarcherCases.tile(arena, new int[c.n()]);
                ops.karcherTangent(KarcherCases.tiles(arena, c.xs()), KarcherCases.tile(arena, c.u()), c.minusCos(), c.coef(), t);
                assertNull(KarcherCases.firstDifference(want, KarcherCases.bits(t)), c.toString());
            }
        }
    }

    @Test
    void tangentOfNoTermsIsPositiveZero() {
        try (Arena arena = Arena.ofShared()) {
            Tile t = KarcherCases.tile(arena, new int[] {0x80000000, 0x7fc00000, 5});
            ops.karcherTangent(List.of(), KarcherCases.tile(arena, new int[3]), new float[0], new float[0], t);
            assertEquals(List.of(0, 0, 0), java.util.Arrays.stream(KarcherCases.bits(t)).boxed().toList());
        }
    }

    @Test
    void mismatchedArgumentsAreRefused() {
        Tile a = Tile.ofArray(1f, 2f), b = Tile.ofArray(1f);
        assertThrows(IllegalArgumentException.class, () -> ops.karcherMean(List.of(a), new float[] {1f, 2f}, List.of(a), new float[] {1f}, 1f, a));
        assertThrows(IllegalArgumentException.class, () -> ops.karcherMean(List.of(a), new float[] {1f}, List.of(a), new float[] {1f}, 1f, b));
        assertThrows(IllegalArgumentException.class, () -> ops.karcherTangent(List.of(a), a, new float[0], new float[] {1f}, a));
        assertThrows(IllegalArgumentException.class, () -> ops.karcherMeanTangent(List.of(a), new float[] {1f}, new float[] {1f}, 1f, new int[] {1},
                new float[] {1f}, new float[] {1f}, a));
    }

    @Test
    void meanTangentIsTheSeparateOpsBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            try (Arena arena = Arena.ofShared()) {
                for (int[] terms : KarcherCases.termChoices(c)) {
                    int[] want = KarcherCases.separateMeanTangent(KarcherLoopsTest.ops, arena, c, terms);
                    for (ChunkOps ops : List.of(KarcherLoopsTest.ops)) {
                        Tile t = KarcherCases.tile(arena, new int[c.n()]);
                        ops.karcherMeanTangent(KarcherCases.tiles(arena, c.xs()), c.scales(), c.w(), c.f(), terms,
                                KarcherCases.pick(c.minusCos(), terms), KarcherCases.pick(c.coef(), terms), t);
                        assertNull(KarcherCases.firstDifference(want, KarcherCases.bits(t)), c + " terms " + java.util.Arrays.toString(terms) + "");
                    }
                }
            }
        }
    }
}
