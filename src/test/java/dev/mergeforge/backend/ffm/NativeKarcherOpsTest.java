package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.KarcherCases;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;

import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Karcher's native fused ops (native/src/karcher.c) against the Java reference
 * ({@code KarcherLoops}) and the separate ops they replace, bit for bit: every {@link KarcherCases}
 * case (±0, subnormals, quiet and signalling NaNs, ±∞, overflow, sizes up to 70,001 over several
 * work chunks) on the AVX2 kernels with 1 and 3 threads and on the portable ones with 2; units
 * written over their inputs (native memory) and into heap tiles (staged).
 */
class NativeKarcherOpsTest {
    private static Parallel par;
    private static JavaChunkOps ref;
    private static final List<Case> VARIANTS = List.of(new Case(0, 1, true), new Case(0, 3, true), new Case(0, 2, false));

    @BeforeAll static void setUp() {
        NativeFixtures.requireNative();
        par = new Parallel(2);
        ref = new JavaChunkOps(par);
    }

    @AfterAll static void tearDown() {
        NativeFixtures.restoreSimd();
        if (par != null) par.shutdown();
    }

    @Test
    void meanIsJavasBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            try (Arena arena = Arena.ofShared()) {
                int[][] want = KarcherCases.separateMean(ref, arena, c);
                for (Case v : VARIANTS) {
                    ChunkOps ops = nat(v).chunkOps().orElseThrow();
                    for (int mode = 0; mode < 3; mode++) {
                        boolean inPlace = mode == 0, none = mode == 2;
                        List<Tile> xs = KarcherCases.tiles(arena, c.xs());
                        List<Tile> units = inPlace ? xs : none ? List.of() : heapTiles(c.xs().length, c.n());
                        Tile u = KarcherCases.tile(arena, new int[c.n()]);
                        ops.karcherMean(xs, c.scales(), units, c.w(), c.f(), u);
                        String what = c + " " + v + (inPlace ? " in place" : none ? " units not kept" : " into heap tiles");
                        for (int p = 0; p < units.size(); p++) {
                            assertNull(KarcherCases.firstDifference(want[p], KarcherCases.bits(units.get(p))), what + " unit " + p);
                        }
                        assertNull(KarcherCases.firstDifference(want[c.xs().length], KarcherCases.bits(u)), what + " u");
                    }
                }
            }
        }
    }

    @Test
    void tangentIsJavasBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            try (Arena arena = Arena.ofShared()) {
                int[] want = KarcherCases.separateTangent(ref, arena, c);
                Tile mine = KarcherCases.tile(arena, new int[c.n()]);
                ref.karcherTangent(KarcherCases.tiles(arena, c.xs()), KarcherCases.tile(arena, c.u()), c.minusCos(), c.coef(), mine);
                assertNull(KarcherCases.firstDifference(want, KarcherCases.bits(mine)), c + " Java");
                for (Case v : VARIANTS) {
                    Tile t = KarcherCases.tile(arena, new int[c.n()]);
                    nat(v).chunkOps().orElseThrow().karcherTangent(KarcherCases.tiles(arena, c.xs()), KarcherCases.tile(arena, c.u()), c.minusCos(), c.coef(), t);
                    assertNull(KarcherCases.firstDifference(want, KarcherCases.bits(t)), c + " " + v);
                }
            }
        }
    }

    @Test
    void tangentOfNoTermsIsPositiveZero() {
        try (Arena arena = Arena.ofShared()) {
            Tile t = KarcherCases.tile(arena, new int[] {0x80000000, 0x7fc00000, 5});
            nat(VARIANTS.get(0)).chunkOps().orElseThrow().karcherTangent(List.of(), KarcherCases.tile(arena, new int[3]), new float[0], new float[0], t);
            assertEquals(List.of(0, 0, 0), java.util.Arrays.stream(KarcherCases.bits(t)).boxed().toList());
        }
    }

    private static List<Tile> heapTiles(int k, int n) {
        List<Tile> ts = new java.util.ArrayList<>();
        for (int p = 0; p < k; p++) ts.add(Tile.ofArray(new float[n]));
        return ts;
    }

    @Test
    void meanTangentIsTheSeparateOpsBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            try (Arena arena = Arena.ofShared()) {
                for (int[] terms : KarcherCases.termChoices(c)) {
                    int[] want = KarcherCases.separateMeanTangent(ref, arena, c, terms);
                    for (Case v : VARIANTS) {
                        ChunkOps ops = nat(v).chunkOps().orElseThrow();
                        Tile t = KarcherCases.tile(arena, new int[c.n()]);
                        ops.karcherMeanTangent(KarcherCases.tiles(arena, c.xs()), c.scales(), c.w(), c.f(), terms,
                                KarcherCases.pick(c.minusCos(), terms), KarcherCases.pick(c.coef(), terms), t);
                        assertNull(KarcherCases.firstDifference(want, KarcherCases.bits(t)), c + " terms " + java.util.Arrays.toString(terms) + " " + v);
                    }
                }
            }
        }
    }
}
