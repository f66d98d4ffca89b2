package dev.mergeforge.merge.methods;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.mergeforge.merge.methods.Harness.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * arcee_fusion, ram and ramplus_tl against independent double-precision references written from
 * the maths (plain loops, a full sort for the quantiles), plus hand-computed cases that pin
 * mergekit's conventions: floor-index quantiles, {@code >=} at the threshold, ε on |τ|, the
 * shared/unique rescale.
 */
class FusionAndRamTest {
    static final long[][] SHAPES = {{6, 7}, {16}, {2, 3, 4}, {1, 9}, {5, 1}, {40, 30}};

    // ---------------------------------------------------------------- references

    static double[] refFusion(double[] b, double[] o, long[] dims) {
        int n = b.length, cols = (int) dims[dims.length - 1], rows = n / cols;
        double[] imp = new double[n];
        for (int r = 0; r < rows; r++) {
            double[] p = softmax(o, r * cols, cols), q = softmax(b, r * cols, cols);
            double kl = 0;
            for (int j = 0; j < cols; j++) kl += (p[j] + 1e-8) * Math.log((p[j] + 1e-8) / (q[j] + 1e-8));
            for (int j = 0; j < cols; j++) imp[r * cols + j] = Math.abs(o[r * cols + j] - b[r * cols + j]) * kl;
        }
        double[] sorted = imp.clone();
        Arrays.sort(sorted);
        double q1 = sorted[(int) Math.floor(0.25 * (n - 1))], med = sorted[(int) Math.floor(0.5 * (n - 1))];
        double q3 = sorted[(int) Math.floor(0.75 * (n - 1))];
        double thr = med + 1.5 * (q3 - q1);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) out[i] = imp[i] >= thr ? o[i] : b[i];
        return out;
    }

    static double[] softmax(double[] x, int off, int len) {
        double m = Double.NEGATIVE_INFINITY, s = 0;
        for (int j = 0; j < len; j++) m = Math.max(m, x[off + j]);
        double[] e = new double[len];
        for (int j = 0; j < len; j++) s += e[j] = Math.exp(x[off + j] - m);
        for (int j = 0; j < len; j++) e[j] /= s;
        return e;
    }

    /** RAM (r = 0) or RAM+ with its per-model λ, from the definitions. */
    static double[] refRam(double[] b, double[][] m, double eps, boolean plus, double r, double alpha) {
        int n = b.length, k = m.length;
        int[] c = new int[n];
        for (int i = 0; i < n; i++) for (double[] x : m) if (Math.abs(x[i] - b[i]) > eps) c[i]++;
        double[] lambda = new double[k];
        for (int j = 0; j < k; j++) {
            long shared = 0, unique = 0;
            for (int i = 0; i < n; i++) {
                if (Math.abs(m[j][i] - b[i]) <= eps) continue;
                if (c[i] > 1) shared++; else unique++;
            }
            double rho = shared / Math.max(unique, eps);
            lambda[j] = plus ? 1 + r * Math.min(Math.max(rho, 0), alpha) : 1;
        }
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double d = 0;
            for (int j = 0; j < k; j++) {
                double tv = m[j][i] - b[i];
                if (Math.abs(tv) > eps) d += c[i] == 1 ? tv * lambda[j] : tv / c[i];
            }
            out[i] = b[i] + d;
        }
        return out;
    }

    // ---------------------------------------------------------------- against the references

    @Test
    void arceeFusionMatchesTheReferenceOnEveryShapeWithAndWithoutTheBaseListed() {
        for (long[] dims : SHAPES) for (boolean listed : new boolean[]{false, true}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims));
            int n = numel(dims);
            float[] base = new float[n], other = new float[n];
            for (int i = 0; i < n; i++) {
                base[i] = (float) r.nextGaussian();
                // most values barely move, a few move a lot: the outliers the method keeps
                other[i] = base[i] + (float) ((r.nextDouble() < 0.1 ? 1.0 : 0.01) * r.nextGaussian());
            }
            float[][] models = listed ? new float[][]{base, other} : new float[][]{other};
            Result res = run(ArceeFusion.SPEC, Map.of(), dims, base, models, each(models.length, j -> Map.of()), listed ? 0 : -1, 0);
            double[] exp = refFusion(d(base), d(other), dims);
            assertClose(exp, res.out(), "arcee_fusion " + Arrays.toString(dims));
            long kept = java.util.stream.IntStream.range(0, n).filter(i -> exp[i] != base[i]).count();
            if (n > 100) assertTrue(kept > 0 && kept < n / 2, "an informative case keeps some, not all: " + kept + " of " + n);
        }
    }

    @Test
    void ramAndRamPlusMatchTheReference() {
        for (long[] dims : SHAPES) for (double eps : new double[]{1e-5, 0.2}) for (int k : new int[]{1, 2, 3}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims) * 7L + k);
            int n = numel(dims);
            float[] base = grid(r, n, 0.1);
            float[][] ms = OtherMethodsTest.models(r, k, n, base, 0.5);
            double[] b = d(base);
            double[][] md = OtherMethodsTest.d2(ms);
            assertClose(refRam(b, md, (float) eps, false, 0, 0),
                    run(Ram.SPEC, Map.of("epsilon", eps), dims, base, ms, each(k, j -> Map.of()), -1, 0).out(), "ram eps " + eps);
            for (double[] ra : new double[][]{{0.1, 0.2}, {0.5, 1.0}, {2.0, 0.05}}) {
                assertClose(refRam(b, md, (float) eps, true, (float) ra[0], (float) ra[1]),
                        run(RamPlusTl.SPEC, Map.of("r", ra[0], "alpha", ra[1], "epsilon", eps), dims, base, ms, each(k, j -> Map.of()), -1, 0).out(),
                        "ramplus_tl " + Arrays.toString(ra) + " eps " + eps + " k " + k + " " + Arrays.toString(dims));
            }
        }
    }

    // ---------------------------------------------------------------- hand-computed conventions

    @Test
    void arceeFusionQuantilesTakeTheFloorIndexAndTheThresholdIsInclusive() {
        float[] zeros = new float[6];
        // one row: importance = |d|·KL with one KL, so the mask is |d| against the threshold.
        // sorted |d| = [1, 2, 3, 4, 5, 7], n − 1 = 5: Q1 = [⌊1.25⌋] = 2, median = [⌊2.5⌋] = 3, Q3 = [⌊3.75⌋] = 4,
        // threshold = 3 + 1.5·2 = 6 keeps only the 7 (interpolated quantiles would give 7.25 and keep nothing)
        float[] d = {1, 2, 3, 4, 5, 7};
        assertArrayEquals(new float[]{0, 0, 0, 0, 0, 7}, fusion(zeros, d, new long[]{6}));
        // row 0 moves by a constant: softmax is unchanged, KL = 0, importance 0 although |d| = 1; row 1 changes one value.
        // importances [0, 0, 0, 0, 0, 5·KL]: every quartile is 0, threshold 0, and importance >= 0 takes every value
        float[] b2 = {0, 1, 2, 0, 0, 0}, o2 = {1, 2, 3, 0, 0, 5};
        assertArrayEquals(o2, fusion(b2, o2, new long[]{2, 3}));
        // no other model changes anything: the base, bit for bit
        assertArrayEquals(d, fusion(d, d.clone(), new long[]{2, 3}));
    }

    private static float[] fusion(float[] base, float[] other, long[] dims) {
        return run(ArceeFusion.SPEC, Map.of(), dims, base, new float[][]{other}, List.of(Map.of()), -1, 0).out();
    }

    @Test
    void ramKeepsLoneChangesWholeAndAveragesSharedOnes() {
        float[] base = {0, 0, 0, 0, 0};
        float[][] ms = {{1, 0, 2, 0.5f, 1e-6f}, {3, 0, 0, 0, 0}};
        // position 0: both changed -> (1 + 3)/2; 2 and 3: only model 0 -> kept whole; 4: |1e-6| <= 1e-5 -> no change
        assertArrayEquals(new float[]{2, 0, 2, 0.5f, 0},
                run(Ram.SPEC, Map.of(), new long[]{5}, base, ms, each(2, j -> Map.of()), -1, 0).out());
        // ramplus_tl, r = 0.5, alpha = 1: model 0 shares 1 position and owns 2 -> rho = 0.5, lambda = 1.25;
        // model 1 owns none -> rho = 1/epsilon, clamped to 1 (its lambda multiplies nothing)
        assertArrayEquals(new float[]{2, 0, 2.5f, 0.625f, 0},
                run(RamPlusTl.SPEC, Map.of("r", 0.5, "alpha", 1.0), new long[]{5}, base, ms, each(2, j -> Map.of()), -1, 0).out());
        // defaults r = 0.1, alpha = 0.2: lambda = 1 + 0.1·min(0.5, 0.2) = 1.02 (in float32)
        float lambda = 1f + 0.1f * 0.2f;
        assertArrayEquals(new float[]{2, 0, 2 * lambda, 0.5f * lambda, 0},
                run(RamPlusTl.SPEC, Map.of(), new long[]{5}, base, ms, each(2, j -> Map.of()), -1, 0).out());
    }

    @Test
    void floatSelectFindsEveryRankOfTiesZerosAndNegatives() {
        SplittableRandom r = new SplittableRandom(3);
        float[] x = new float[5000];
        for (int i = 0; i < x.length; i++) x[i] = i % 7 == 0 ? (i % 2 == 0 ? 0f : -0f) : (float) (r.nextInt(200) - 100) / 16f * (r.nextBoolean() ? 1e-3f : 1f);
        float[] sorted = x.clone();
        Arrays.sort(sorted);
        dev.mergeforge.tensor.Tile t = dev.mergeforge.tensor.Tile.ofArray(x.clone());
        for (int k = 0; k < x.length; k += 37) assertEquals(sorted[k], FloatSelect.kthSmallest(t, k), 0.0, "rank " + k);
        assertEquals(sorted[x.length - 1], FloatSelect.kthSmallest(t, x.length - 1));
        assertThrows(IllegalArgumentException.class, () -> FloatSelect.kthSmallest(t, x.length));
    }

    @Test
    void theThreeMethodsRunThroughTheCliOnAGeneratedFamily(@TempDir Path dir) throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.LLAMA, DType.F32, 2, 1, dir.resolve("m"));
        Path base = f.base(), a = f.fineTunes().get(0), b = f.fineTunes().get(1);
        String q = "model.layers.1.self_attn.q_proj.weight", norm = "model.norm.weight";
        long[] dims = {32, 32};
        String[][] cases = {
                {"arcee_fusion", "merge_method: arcee_fusion\nbase_model: %1$s\nmodels:\n  - model: %1$s\n  - model: %2$s\n"},
                {"ram", "merge_method: ram\nbase_model: %1$s\nmodels:\n  - model: %2$s\n  - model: %3$s\nparameters: {epsilon: 0.01}\n"},
                {"ramplus_tl", "merge_method: ramplus_tl\nbase_model: %1$s\nmodels:\n  - model: %2$s\n  - model: %3$s\nparameters: {epsilon: 0.01, r: 0.5, alpha: 1}\n"}};
        for (String[] c : cases) {
            Path out = dir.resolve(c[0]);
            MergeFixtures.Run r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, c[0] + ".yml", c[1].formatted(base, a, b)).toString(), out.toString(), "-q");
            assertEquals(0, r.exit(), c[0] + ": " + r.err());
            for (String n : new String[]{q, norm}) {
                double[] x0 = MergeFixtures.values(base, n), x1 = MergeFixtures.values(a, n), x2 = MergeFixtures.values(b, n);
                double[] exp = switch (c[0]) {
                    case "arcee_fusion" -> refFusion(x0, x1, n.equals(q) ? dims : new long[]{32});
                    case "ram" -> refRam(x0, new double[][]{x1, x2}, 0.01f, false, 0, 0);
                    default -> refRam(x0, new double[][]{x1, x2}, 0.01f, true, 0.5, 1);
                };
                double[] got = MergeFixtures.values(out, n);
                float[] gf = new float[got.length];
                for (int i = 0; i < got.length; i++) gf[i] = (float) got[i];
                assertClose(exp, gf, c[0] + " " + n);
            }
        }
    }

    /** The chunked programs refuse a tensor without a base as the whole-tensor path does: one line naming method, tensor and fix. */
    @Test
    void chunkedProgramsNeedABaseTensor() {
        dev.mergeforge.merge.chunk.TensorSetup noBase = new dev.mergeforge.merge.chunk.TensorSetup("model.norm.weight",
                dev.mergeforge.tensor.Shape.of(8), List.of(dev.mergeforge.merge.Params.empty("models[0]")), -1, false, 1, m -> {});
        for (dev.mergeforge.merge.chunk.ChunkedMethod m : List.of(new ArceeFusion(), new Ram(1e-5), new RamPlusTl(0.1, 0.2, 1e-5))) {
            Exception e = assertThrows(dev.mergeforge.errors.ConfigException.class, () -> m.program(noBase));
            assertTrue(e.getMessage().contains("needs base_model (tensor model.norm.weight); add base_model:"), e.getMessage());
        }
    }
}
