package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.FusionCases;
import dev.mergeforge.backend.FusionLoops;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Arcee Fusion's native chunk ops (native/src/fusion.c, explog.h) against the Java reference
 * ({@link FusionLoops}) bit for bit, NaN payloads included: every {@link FusionCases} case (long
 * rows over several canonical blocks with a tail, equal rows, huge spread, ±0, subnormals, NaN and
 * ±∞) on the AVX2 kernels with 1 and 3 threads and on the portable ones with 2.
 */
class NativeFusionOpsTest {
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

    private static void sameBits(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                fail(what + ": element " + i + " is " + got[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(got[i])) + "), Java gives "
                        + want[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(want[i])) + ")");
            }
        }
    }

    @Test
    void rowKlIsJavasBits() {
        for (FusionCases.Case c : FusionCases.cases(true)) {
            double[] want = new double[c.rows()];
            ref.rowKl(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), want);
            for (Case v : VARIANTS) {
                ChunkOps ops = nat(v).chunkOps().orElseThrow();
                double[] got = new double[c.rows()];
                ops.rowKl(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), got);
                // in double, where a term added to another stripe or block would show
                for (int r = 0; r < want.length; r++) {
                    assertEquals(Double.doubleToRawLongBits(want[r]), Double.doubleToRawLongBits(got[r]), c.name() + " rowKl row " + r + ": " + got[r] + ", Java " + want[r] + ", " + v);
                }
            }
        }
    }

    @Test
    void importanceAndCombineAreJavasBits() {
        for (FusionCases.Case c : FusionCases.cases(true)) {
            float[] kl = FusionCases.kls(c.rows(), c.cols());
            float[] want = new float[c.base().length];
            ref.fusionImportance(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), kl, Tile.ofArray(want));
            for (Case v : VARIANTS) {
                ChunkOps ops = nat(v).chunkOps().orElseThrow();
                float[] got = new float[want.length];
                ops.fusionImportance(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), kl, Tile.ofArray(got));
                sameBits(want, got, c.name() + " importance, " + v);
                for (float t : new float[] {0f, -0f, 1e-6f, -1e-9f, Float.NaN}) {
                    float[] w = new float[want.length], g = new float[want.length];
                    ref.fusionCombine(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), kl, t, Tile.ofArray(w));
                    ops.fusionCombine(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), kl, t, Tile.ofArray(g));
                    sameBits(w, g, c.name() + " combine at " + t + ", " + v);
                }
            }
        }
    }

    @Test
    void orderHistogramsAreJavasCounts() {
        for (FusionCases.Case c : FusionCases.cases(true)) {
            // importances of every sign, ±0 included, spread over several tasks (the largest case has 140k elements)
            float[] x = new float[c.base().length];
            ref.fusionImportance(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), FusionCases.kls(c.rows(), 1), Tile.ofArray(x));
            long[] want = new long[FusionLoops.BINS];
            ref.orderHistogram(Tile.ofArray(x), -1, want);
            int[] bins = {FusionLoops.orderKey(x[0]) >>> 16, FusionLoops.orderKey(-0f) >>> 16, FusionLoops.orderKey(0f) >>> 16, 0xffff};
            for (Case v : VARIANTS) {
                ChunkOps ops = nat(v).chunkOps().orElseThrow();
                long[] got = new long[FusionLoops.BINS];
                got[5] = 7;   // the op adds to what is there
                ops.orderHistogram(Tile.ofArray(x), -1, got);
                got[5] -= 7;
                assertEquals(Arrays.toString(want), Arrays.toString(got), c.name() + " high bits, " + v);
                for (int b : bins) {
                    long[] lw = new long[FusionLoops.BINS], lg = new long[FusionLoops.BINS];
                    ref.orderHistogram(Tile.ofArray(x), b, lw);
                    ops.orderHistogram(Tile.ofArray(x), b, lg);
                    assertEquals(Arrays.toString(lw), Arrays.toString(lg), c.name() + " low bits of bin " + b + ", " + v);
                }
            }
        }
    }
}
