package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Philox;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MethodSpec;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.mergeforge.merge.methods.Harness.*;
import static org.junit.jupiter.api.Assertions.*;

/** The generalized-task-arithmetic family against the double references of {@link Ref}. */
class TaskVectorMethodsTest {
    static final long[][] SHAPES = {{6, 7}, {16}, {2, 3, 4}, {1, 9}, {5, 1}, {12, 10}};
    static final double[] W = {1.0, 0.5, -0.75};
    static final double[] DENSITY = {0.5, 0.3, 0.8};
    static final double[] GAMMA = {0.1, 0.0, 0.05};
    static final double[] EPS = {0.1, 0.2, 0.05};

    enum Kind { PLAIN, MAGNITUDE, RANDOM, OUTLIERS, DELLA }

    record Case(MethodSpec spec, Kind kind, boolean consensus) {}

    static final List<Case> CASES = List.of(
            new Case(TaskArithmetic.SPEC, Kind.PLAIN, false), new Case(Ties.SPEC, Kind.MAGNITUDE, true),
            new Case(DareLinear.SPEC, Kind.RANDOM, false), new Case(DareTies.SPEC, Kind.RANDOM, true),
            new Case(Breadcrumbs.SPEC, Kind.OUTLIERS, false), new Case(BreadcrumbsTies.SPEC, Kind.OUTLIERS, true),
            new Case(Della.SPEC, Kind.DELLA, true), new Case(DellaLinear.SPEC, Kind.DELLA, false));

    /** Per-model parameters the case uses (only those the method accepts). */
    static Map<String, Object> modelParams(Case c, int j) {
        Map<String, Object> p = new HashMap<>();
        p.put("weight", W[j]);
        if (c.kind != Kind.PLAIN) p.put("density", DENSITY[j]);
        if (c.kind == Kind.OUTLIERS) p.put("gamma", GAMMA[j]);
        if (c.kind == Kind.DELLA) p.put("epsilon", EPS[j]);
        return p;
    }

    static double[] expected(Case c, long[] dims, double[] base, double[][] models, int baseIndex, long seed,
                             boolean normalize, boolean rescale, Ref.Rescale dare, double lambda) {
        int m = models.length;
        int k = 0;
        double[][] tvs = new double[baseIndex >= 0 ? m - 1 : m][];
        double[] w = new double[tvs.length];
        for (int j = 0; j < m; j++) {
            if (j == baseIndex) continue;
            int cfg = baseIndex >= 0 && j > baseIndex ? j - 1 : j; // parameter row of this fine-tune
            double[] tv = Ref.sub(models[j], base);
            long key = Philox.key(seed, TENSOR, j);
            tvs[k] = switch (c.kind) {
                case PLAIN -> tv;
                case MAGNITUDE -> Ref.magnitude(tv, DENSITY[cfg], rescale);
                case RANDOM -> Ref.random(tv, DENSITY[cfg], key, dare);
                case OUTLIERS -> Ref.outliers(tv, DENSITY[cfg], GAMMA[cfg], rescale);
                case DELLA -> Ref.della(tv, dims, DENSITY[cfg], EPS[cfg], key, rescale);
            };
            w[k++] = W[cfg];
        }
        return Ref.gta(base, tvs, w, c.consensus, normalize, lambda);
    }

    static void runCase(Case c, long[] dims, int baseIndex, boolean normalize, boolean rescale, String dareRescale, double lambda, long seed) {
        SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims) * 31L + c.spec.name().hashCode() + baseIndex);
        int n = numel(dims), fine = 3, m = baseIndex >= 0 ? fine + 1 : fine;
        float[] base = grid(r, n, 0.1);
        float[][] models = new float[m][];
        List<Map<String, Object>> per = new java.util.ArrayList<>();
        int f = 0;
        for (int j = 0; j < m; j++) {
            if (j == baseIndex) { models[j] = base; per.add(Map.of()); continue; }
            float[] dlt = grid(r, n, 0.2);
            models[j] = new float[n];
            for (int i = 0; i < n; i++) models[j][i] = base[i] + dlt[i];
            per.add(modelParams(c, f++));
        }
        Map<String, Object> g = new HashMap<>();
        g.put("normalize", normalize);
        g.put("lambda", lambda);
        if (c.kind == Kind.RANDOM) g.put("rescale", dareRescale); else g.put("rescale", rescale);
        Ref.Rescale dare = switch (dareRescale) { case "true" -> Ref.Rescale.L1; case "false" -> Ref.Rescale.NONE; default -> Ref.Rescale.DENSITY; };
        Result got = run(c.spec, g, dims, base, models, per, baseIndex, seed);
        double[][] dm = new double[m][];
        for (int j = 0; j < m; j++) dm[j] = d(models[j]);
        double[] exp = expected(c, dims, d(base), dm, baseIndex, seed, normalize, rescale, dare, lambda);
        assertClose(exp, got.out(), c.spec.name() + " " + Arrays.toString(dims) + " baseIndex " + baseIndex
                + " normalize " + normalize + " rescale " + rescale + "/" + dareRescale);
    }

    @Test
    void everyMethodMatchesReferenceOnEveryShape() {
        for (Case c : CASES) for (long[] dims : SHAPES) {
            runCase(c, dims, -1, false, false, "true", 1.0, 42);
            runCase(c, dims, -1, true, true, "false", 0.7, 43);
        }
    }

    @Test
    void baseListedAmongModelsIsSkipped() {
        for (Case c : CASES) {
            runCase(c, new long[] {6, 7}, 0, true, false, "density", 1.0, 5);
            runCase(c, new long[] {16}, 2, false, true, "true", 1.3, 6);
        }
    }

    @Test
    void randomMethodsAreReproduciblePerSeedAndDifferAcrossSeeds() {
        for (Case c : CASES) {
            if (c.kind != Kind.RANDOM && c.kind != Kind.DELLA) continue;
            SplittableRandom r = new SplittableRandom(11);
            long[] dims = {20, 30};
            int n = 600;
            float[] base = grid(r, n, 0);
            float[][] models = {grid(r, n, 0), grid(r, n, 0)};
            List<Map<String, Object>> per = each(2, j -> modelParams(c, j));
            float[] a = run(c.spec, Map.of(), dims, base, models, per, -1, 1).out();
            float[] b = run(c.spec, Map.of(), dims, base, models, per, -1, 1).out();
            float[] other = run(c.spec, Map.of(), dims, base, models, per, -1, 2).out();
            assertArrayEquals(a, b, c.spec.name() + ": same seed must give the same bits");
            assertFalse(Arrays.equals(a, other), c.spec.name() + ": another seed must give another mask");
        }
    }

    @Test
    void magnitudePruningToZeroEntriesDropsTheModelAndSaysSo() {
        long[] dims = {9};
        SplittableRandom r = new SplittableRandom(3);
        float[] base = grid(r, 9, 0);
        float[][] models = {grid(r, 9, 0), grid(r, 9, 0)};
        // density 0.1 of 9 elements: int(0.9) = 0 (mergekit asserts)
        List<Map<String, Object>> per = List.of(Map.of("weight", 1.0, "density", 0.1), Map.of("weight", 1.0, "density", 1.0));
        Result res = run(Ties.SPEC, Map.of(), dims, base, models, per, -1, 0);
        assertEquals(1, res.notes().size(), "one note for the dropped model");
        assertTrue(res.notes().get(0).contains(TENSOR));
        double[] exp = new double[9];
        for (int i = 0; i < 9; i++) exp[i] = models[1][i]; // only model 1 remains, normalized by its own weight
        for (int i = 0; i < 9; i++) if (models[1][i] == base[i]) exp[i] = base[i];
        assertClose(exp, res.out(), "ties with k = 0");
    }

    @Test
    void breadcrumbsWithGammaZeroKeepsTheDensityFraction() {
        long[] dims = {40};
        SplittableRandom r = new SplittableRandom(4);
        float[] base = new float[40];
        float[][] models = {grid(r, 40, 0)};
        Result res = run(Breadcrumbs.SPEC, Map.of(), dims, base, models, List.of(Map.of("weight", 1.0, "density", 0.25, "gamma", 0.0)), -1, 0);
        long kept = 0;
        for (float v : res.out()) if (v != 0) kept++;
        assertEquals(10, kept, "gamma 0 keeps int(0.25*40) entries (mergekit would keep none)");
        assertClose(Ref.keepRanks(d(models[0]), 0, 10, false), res.out(), "breadcrumbs gamma 0");
    }

    @Test
    void dellaRejectsEpsilonOutsideTheDensityRangeAndDareRejectsUnknownRescale() {
        float[] base = new float[4];
        float[][] models = {{1, 2, 3, 4}};
        ConfigException e = assertThrows(ConfigException.class, () -> run(Della.SPEC, Map.of(), new long[] {4}, base, models,
                List.of(Map.of("weight", 1.0, "density", 0.9, "epsilon", 0.15)), -1, 0));
        assertTrue(e.getMessage().contains("epsilon"));
        ConfigException e2 = assertThrows(ConfigException.class, () -> run(DareLinear.SPEC, Map.of("rescale", "l2"), new long[] {4}, base, models,
                List.of(Map.of("weight", 1.0, "density", 0.5)), -1, 0));
        assertTrue(e2.getMessage().contains("rescale"));
    }
}
