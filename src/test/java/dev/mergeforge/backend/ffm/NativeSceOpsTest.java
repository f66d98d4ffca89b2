package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.SceOpsReference;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * SCE's fused chunk ops on the native backend (mo_stored_variance, mo_disjoint_mean), and the TIES
 * combine (mo_ties_combine) of ties, dare_ties, breadcrumbs_ties and della, against the Java
 * reference bit for bit and against {@link SceOpsReference}'s plain loops: stored inputs of every
 * float dtype read at an offset, with and without a base, one to three models; ±∞, ±0, subnormals and
 * one NaN payload; sizes around the SIMD width and the task chunk, 1 and 3 threads on AVX2, 2 on the
 * portable kernels. Only the written tile is compared: the native ops leave their working tiles alone.
 */
class NativeSceOpsTest {
    private static Parallel par;
    private static JavaChunkOps ref;
    private static final DType[] DTYPES = {DType.BF16, DType.F16, DType.F32, DType.F64};

    @BeforeAll static void setUp() {
        NativeFixtures.requireNative();
        par = new Parallel(2);
        ref = new JavaChunkOps(par);
    }

    @AfterAll static void tearDown() {
        NativeFixtures.restoreSimd();
        if (par != null) par.shutdown();
    }

    static Stream<Arguments> cases() {
        return NativeFixtures.cases().filter(a -> {
            Case c = (Case) a.get()[0];
            return c.n() < 100_000 || (c.threads() == 3 && c.avx2());
        });
    }

    @ParameterizedTest @MethodSource("cases")
    void storedVariance(Case c) {
        ChunkOps nat = nat(c).chunkOps().orElseThrow();
        int n = Math.toIntExact(c.n()), off = 37;
        try (Arena arena = Arena.ofShared()) {
            for (int k = 1; k <= 3; k++) {
                for (boolean withBase : new boolean[] {true, false}) {
                    float[] b = SceOpsReference.representable(DTYPES[k % 4], SceOpsReference.values(n * 7L + k, n + off, true, false));
                    List<float[]> xs = new ArrayList<>();
                    List<TensorView> views = new ArrayList<>();
                    for (int j = 0; j < k; j++) {
                        DType d = DTYPES[(j + k) % 4];
                        // one NaN payload, never in f16 (its NaN rule on load is the machine's, docs/native.md)
                        float[] x = SceOpsReference.representable(d, SceOpsReference.values(n * 11L + j, n + off, false, j == 0 && d != DType.F16));
                        xs.add(Arrays.copyOfRange(x, off, off + n));
                        views.add(SceOpsReference.stored(arena, "x" + j, d, x));
                    }
                    TensorView base = withBase ? SceOpsReference.stored(arena, "b", DTYPES[k % 4], b) : null;
                    String what = "storedVariance k=" + k + " base=" + withBase + " " + c;
                    float[] want = run(ref, base, views, off, n, arena), got = run(nat, base, views, off, n, arena);
                    assertBits(want, got, what);
                    assertBitsOrNaN(SceOpsReference.variance(withBase ? Arrays.copyOfRange(b, off, off + n) : null, xs), got, what + " (plain loops)");
                }
            }
        }
    }

    private static float[] run(ChunkOps ops, TensorView base, List<TensorView> xs, long off, int n, Arena arena) {
        List<Tile> scratch = new ArrayList<>();
        for (int j = 0; j < xs.size(); j++) scratch.add(tile(arena, new float[n]));
        // garbage in var: an element the op does not write shows
        Tile var = tile(arena, SceOpsReference.values(99, n, true, true));
        ops.storedVariance(base, xs, off, scratch, var);
        return var.toArray();
    }

    @ParameterizedTest @MethodSource("cases")
    void disjointMean(Case c) {
        ChunkOps nat = nat(c).chunkOps().orElseThrow();
        int n = Math.toIntExact(c.n());
        try (Arena arena = Arena.ofShared()) {
            for (int k = 1; k <= 3; k++) {
                float[] base = SceOpsReference.values(n * 3L + k, n, true, false);
                List<float[]> taus = new ArrayList<>();
                float[] w = new float[k];
                for (int j = 0; j < k; j++) {
                    taus.add(SceOpsReference.values(n * 5L + j, n, j != 0, j == 0));
                    w[j] = j == 1 ? 0f : (float) (0.1 + 0.3 * j);
                }
                String what = "disjointMean k=" + k + " " + c;
                float[] want = mean(ref, base, taus, w, arena), got = mean(nat, base, taus, w, arena);
                assertBits(want, got, what);
                assertBitsOrNaN(SceOpsReference.disjointMean(base, taus, w, 1e-6f), got, what + " (plain loops)");
            }
        }
    }

    private static float[] mean(ChunkOps ops, float[] base, List<float[]> taus, float[] w, Arena arena) {
        List<Tile> ts = new ArrayList<>();
        for (float[] t : taus) ts.add(tile(arena, t));
        // garbage in out: an element the op does not write shows
        Tile b = tile(arena, base), out = tile(arena, SceOpsReference.values(98, base.length, true, true));
        ops.disjointMean(b, ts, w, 1e-6f, tile(arena, new float[base.length]), out);
        return out.toArray();
    }

    /** The TIES combine (mo_ties_combine) of ties, dare_ties, breadcrumbs_ties and della: normalised or not, λ or none, a zero weight. */
    @ParameterizedTest @MethodSource("cases")
    void tiesCombine(Case c) {
        ChunkOps nat = nat(c).chunkOps().orElseThrow();
        int n = Math.toIntExact(c.n());
        try (Arena arena = Arena.ofShared()) {
            for (int k = 1; k <= 3; k++) {
                float[] base = SceOpsReference.values(n * 13L + k, n, true, false);
                List<float[]> taus = new ArrayList<>();
                float[] w = new float[k];
                for (int j = 0; j < k; j++) {
                    taus.add(SceOpsReference.values(n * 17L + j, n, j != 0, j == 0));
                    w[j] = j == 1 ? 0f : (float) (0.1 + 0.3 * j);
                }
                for (int mode = 0; mode < 4; mode++) {
                    boolean normalize = (mode & 1) != 0, scaled = (mode & 2) != 0;
                    float lambda = scaled ? 0.7f : 1f;
                    String what = "tiesCombine k=" + k + " normalize=" + normalize + " scaled=" + scaled + " " + c;
                    float[] want = ties(ref, base, taus, w, normalize, scaled, lambda, arena), got = ties(nat, base, taus, w, normalize, scaled, lambda, arena);
                    assertBits(want, got, what);
                    assertBitsOrNaN(SceOpsReference.tiesCombine(base, taus, w, normalize, scaled, lambda), got, what + " (plain loops)");
                }
            }
        }
    }

    private static float[] ties(ChunkOps ops, float[] base, List<float[]> taus, float[] w, boolean normalize, boolean scaled, float lambda, Arena arena) {
        List<Tile> ts = new ArrayList<>();
        for (float[] t : taus) ts.add(tile(arena, t));
        // garbage in out: an element the op does not write shows
        Tile b = tile(arena, base), out = tile(arena, SceOpsReference.values(97, base.length, true, true));
        ops.tiesCombine(b, ts, w, normalize, scaled, lambda, tile(arena, new float[base.length]), out);
        return out.toArray();
    }

    /** Bit for bit, a NaN matching any NaN (the plain loops do not pin payloads). */
    private static void assertBitsOrNaN(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(want[i]) && Float.isNaN(got[i])) continue;
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), what + ": element " + i + " is " + got[i] + ", expected " + want[i]);
        }
    }
}
