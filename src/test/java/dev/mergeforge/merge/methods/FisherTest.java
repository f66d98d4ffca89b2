package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Fisher-weighted averaging against the formula evaluated here in double. */
class FisherTest {
    static final JavaBackend BE = new JavaBackend(2);

    @AfterAll static void close() { BE.close(); }

    static Tile run(Fisher f, List<float[]> thetas, List<float[]> fishers, double[] w, double[] norms) {
        List<Tile> models = new ArrayList<>(), stats = new ArrayList<>();
        List<Params> params = new ArrayList<>();
        for (int i = 0; i < thetas.size(); i++) {
            models.add(Tile.ofArray(thetas.get(i).clone()));
            stats.add(Tile.ofArray(fishers.get(i).clone()));
            params.add(new Params(Map.of("weight", w[i], MethodSpec.FISHER_NORM_PARAM, norms[i]), "test"));
        }
        Tile out = Tile.ofArray(new float[thetas.getFirst().length]);
        try (TilePool pool = new TilePool()) {
            f.merge(new MergeContext(BE, pool, 0, s -> { }), new MergeInputs("t", null, models, params, -1, 0, stats), out);
        }
        return out;
    }

    static float[] random(int n, Random r, boolean positive) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = positive ? (float) Math.abs(r.nextGaussian()) * 1e-3f : (float) r.nextGaussian();
        return x;
    }

    @Test
    void identicalFishersGiveTheWeightedAverage() {
        Random r = new Random(7);
        int n = 1000;
        float[] f = random(n, r, true);
        List<float[]> th = List.of(random(n, r, false), random(n, r, false), random(n, r, false));
        double[] w = {0.2, 1.0, 3.0};
        for (boolean normalize : new boolean[] {true, false}) {
            Tile got = run(new Fisher(normalize, 1e-6), th, List.of(f, f, f), w, new double[] {2.5, 2.5, 2.5});
            for (int e = 0; e < n; e++) {
                double expect = (w[0] * th.get(0)[e] + w[1] * th.get(1)[e] + w[2] * th.get(2)[e]) / (w[0] + w[1] + w[2]);
                assertEquals(expect, got.get(e), 1e-5, "element " + e);
            }
        }
    }

    @Test
    void generalCaseFollowsTheFormula() {
        Random r = new Random(8);
        int n = 777;
        List<float[]> th = List.of(random(n, r, false), random(n, r, false));
        List<float[]> fs = List.of(random(n, r, true), random(n, r, true));
        double[] w = {1.0, 0.5}, norms = {0.3, 4.0};
        double eps = 1e-6;
        for (boolean normalize : new boolean[] {true, false}) {
            Tile got = run(new Fisher(normalize, eps), th, fs, w, norms);
            double inv = 1 / norms[0] + 1 / norms[1];
            for (int e = 0; e < n; e++) {
                double num = 0, den = 0;
                for (int i = 0; i < 2; i++) {
                    // c_i = (1/‖F_i‖) / Σ_j 1/‖F_j‖ when normalize, else 1
                    double c = normalize ? (1 / norms[i]) / inv : 1;
                    double a = c * w[i] * ((double) fs.get(i)[e] + (float) eps);
                    num += a * th.get(i)[e];
                    den += a;
                }
                assertEquals(num / den, got.get(e), 1e-5 * (1 + Math.abs(num / den)), "element " + e + " normalize " + normalize);
            }
        }
    }
}
