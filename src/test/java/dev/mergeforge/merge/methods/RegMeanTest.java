package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** RegMean against the least-squares merge and the diagonal-weighted average, computed here in double. */
class RegMeanTest {
    static final JavaBackend BE = new JavaBackend(2);

    @AfterAll static void close() { BE.close(); }

    static float[] gaussian(int n, Random r) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    /** G = XᵀX / tokens for X [tokens, in], in double, rounded to float. */
    static float[] gram(float[] x, int tokens, int in) {
        float[] g = new float[in * in];
        for (int i = 0; i < in; i++) for (int j = 0; j < in; j++) {
            double s = 0;
            for (int t = 0; t < tokens; t++) s += (double) x[t * in + i] * x[t * in + j];
            g[i * in + j] = (float) (s / tokens);
        }
        return g;
    }

    static Params weight(double w) { return new Params(Map.of("weight", w), "test"); }

    static Tile merge(RegMean m, List<float[]> ws, List<float[]> grams, double[] weights, int out, int in, List<String> notes) {
        List<Tile> models = new ArrayList<>(), stats = new ArrayList<>();
        List<Params> params = new ArrayList<>();
        for (int i = 0; i < ws.size(); i++) {
            models.add(Tile.ofArray(Shape.of(out, in), ws.get(i).clone()));
            stats.add(Tile.ofArray(Shape.of(in, in), grams.get(i).clone()));
            params.add(weight(weights[i]));
        }
        Tile o = Tile.ofArray(Shape.of(out, in), new float[out * in]);
        try (TilePool pool = new TilePool()) {
            m.merge(new MergeContext(BE, pool, 0, notes::add), new MergeInputs("w", null, models, params, -1, 0, stats), o);
        }
        return o;
    }

    /** W* = argmin Σ_i ‖X_i Wᵀ − X_i W_iᵀ‖²: the normal equations (Σ X_iᵀX_i) Wᵀ = Σ X_iᵀX_i W_iᵀ by Gaussian elimination. */
    static double[][] leastSquares(List<float[]> xs, int tokens, List<float[]> ws, int out, int in) {
        double[][] a = new double[in][in], b = new double[in][out];
        for (int m = 0; m < xs.size(); m++) {
            float[] x = xs.get(m), w = ws.get(m);
            for (int t = 0; t < tokens; t++) {
                for (int i = 0; i < in; i++) {
                    double xi = x[t * in + i];
                    for (int j = 0; j < in; j++) a[i][j] += xi * x[t * in + j];
                    for (int o = 0; o < out; o++) {
                        double y = 0;
                        for (int j = 0; j < in; j++) y += (double) x[t * in + j] * w[o * in + j];
                        b[i][o] += xi * y;
                    }
                }
            }
        }
        for (int c = 0; c < in; c++) {
            int p = c;
            for (int i = c + 1; i < in; i++) if (Math.abs(a[i][c]) > Math.abs(a[p][c])) p = i;
            double[] t = a[c]; a[c] = a[p]; a[p] = t;
            t = b[c]; b[c] = b[p]; b[p] = t;
            for (int i = 0; i < in; i++) {
                if (i == c) continue;
                double f = a[i][c] / a[c][c];
                for (int j = 0; j < in; j++) a[i][j] -= f * a[c][j];
                for (int o = 0; o < out; o++) b[i][o] -= f * b[c][o];
            }
        }
        double[][] w = new double[out][in];
        for (int i = 0; i < in; i++) for (int o = 0; o < out; o++) w[o][i] = b[i][o] / a[i][i];
        return w;
    }

    @Test
    void alphaOneEqualsTheLeastSquaresMerge() {
        int out = 7, in = 13, tokens = 40;
        Random r = new Random(1);
        List<float[]> xs = new ArrayList<>(), ws = new ArrayList<>(), gs = new ArrayList<>();
        for (int m = 0; m < 3; m++) {
            float[] x = gaussian(tokens * in, r);
            // give each model its own input scale per channel so the merge is not a plain average
            for (int t = 0; t < tokens; t++) for (int i = 0; i < in; i++) x[t * in + i] *= 0.2f + (float) ((i * (m + 1)) % 5);
            xs.add(x);
            ws.add(gaussian(out * in, r));
            gs.add(gram(x, tokens, in));
        }
        List<String> notes = new ArrayList<>();
        Tile got = merge(new RegMean(1.0, 0.0), ws, gs, new double[] {1, 1, 1}, out, in, notes);
        double[][] expect = leastSquares(xs, tokens, ws, out, in);
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) {
            assertEquals(expect[o][i], got.get((long) o * in + i), 2e-4 * (1 + Math.abs(expect[o][i])), "W*[" + o + "][" + i + "]");
        }
        assertTrue(notes.isEmpty(), notes.toString());
    }

    @Test
    void conv1dWeightsStoredInOutSolveTheTransposedSystem() {
        // GPT-2's Conv1D stores V = Wᵀ [in, out]; out != in so a transposition bug cannot pass
        int out = 6, in = 11, tokens = 40;
        Random r = new Random(7);
        List<float[]> xs = new ArrayList<>(), ws = new ArrayList<>(), vs = new ArrayList<>(), gs = new ArrayList<>();
        for (int m = 0; m < 2; m++) {
            float[] x = gaussian(tokens * in, r);
            for (int t = 0; t < tokens; t++) for (int i = 0; i < in; i++) x[t * in + i] *= 0.3f + (float) ((i * (m + 2)) % 4);
            xs.add(x);
            float[] w = gaussian(out * in, r), v = new float[in * out];
            for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) v[i * out + o] = w[o * in + i];
            ws.add(w);
            vs.add(v);
            gs.add(gram(x, tokens, in));
        }
        List<Tile> models = new ArrayList<>(), stats = new ArrayList<>();
        for (int m = 0; m < 2; m++) {
            models.add(Tile.ofArray(Shape.of(in, out), vs.get(m).clone()));
            stats.add(Tile.ofArray(Shape.of(in, in), gs.get(m).clone()));
        }
        Tile got = Tile.ofArray(Shape.of(in, out), new float[in * out]);
        List<String> notes = new ArrayList<>();
        try (TilePool pool = new TilePool()) {
            new RegMean(1.0, 0.0, true).merge(new MergeContext(BE, pool, 0, notes::add),
                    new MergeInputs("transformer.h.0.mlp.c_fc.weight", null, models, List.of(weight(1), weight(1)), -1, 0, stats), got);
        }
        // the (out, in) least-squares merge of the Linears W_i = V_iᵀ, stored back as W*ᵀ
        double[][] expect = leastSquares(xs, tokens, ws, out, in);
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) {
            assertEquals(expect[o][i], got.get((long) i * out + o), 2e-4 * (1 + Math.abs(expect[o][i])), "V*[" + i + "][" + o + "]");
        }
        assertTrue(notes.isEmpty(), notes.toString());
    }

    @Test
    void alphaZeroIsTheDiagonalWeightedAverage() {
        int out = 5, in = 9;
        Random r = new Random(2);
        List<float[]> ws = new ArrayList<>(), gs = new ArrayList<>();
        double[] weights = {0.5, 2.0};
        for (int m = 0; m < 2; m++) {
            ws.add(gaussian(out * in, r));
            gs.add(gram(gaussian(30 * in, r), 30, in));
        }
        Tile got = merge(new RegMean(0.0, 0.0), ws, gs, weights, out, in, new ArrayList<>());
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) {
            // W*[o][i] = Σ_m w_m G_m[i][i] W_m[o][i] / Σ_m w_m G_m[i][i]
            double num = 0, den = 0;
            for (int m = 0; m < 2; m++) {
                double d = weights[m] * gs.get(m)[i * in + i];
                num += d * ws.get(m)[o * in + i];
                den += d;
            }
            assertEquals(num / den, got.get((long) o * in + i), 1e-5, "W*[" + o + "][" + i + "]");
        }
    }

    @Test
    void ridgeAndAlphaFollowTheFormula() {
        int out = 4, in = 6;
        Random r = new Random(5);
        List<float[]> ws = List.of(gaussian(out * in, r), gaussian(out * in, r));
        List<float[]> gs = List.of(gram(gaussian(20 * in, r), 20, in), gram(gaussian(20 * in, r), 20, in));
        double alpha = 0.7, ridge = 0.3;
        double[] weights = {1.5, 0.5};
        Tile got = merge(new RegMean(alpha, ridge), ws, gs, weights, out, in, new ArrayList<>());
        // A = Σ w G~ + ρ·mean(diag)·I ; B = Σ w G~ Wᵀ ; W* = (A⁻¹B)ᵀ
        double[] a = new double[in * in], b = new double[in * out];
        for (int m = 0; m < 2; m++) for (int i = 0; i < in; i++) for (int j = 0; j < in; j++) {
            double g = gs.get(m)[i * in + j] * (i == j ? 1 : alpha);
            a[i * in + j] += weights[m] * g;
            for (int o = 0; o < out; o++) b[i * out + o] += weights[m] * g * ws.get(m)[o * in + j];
        }
        double mean = 0;
        for (int i = 0; i < in; i++) mean += a[i * in + i] / in;
        for (int i = 0; i < in; i++) a[i * in + i] += ridge * mean;
        double[] x = dev.mergeforge.linalg.SpdSolverTestAccess.gauss(a, in, b, out);
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) assertEquals(x[i * out + o], got.get((long) o * in + i), 1e-5);
    }

    @Test
    void aDeadInputChannelFallsBackToLeastSquaresAndSaysSo() {
        int out = 3, in = 5, tokens = 12;
        Random r = new Random(3);
        float[] x = gaussian(tokens * in, r);
        for (int t = 0; t < tokens; t++) x[t * in + 2] = 0f; // channel 2 never fires: G is singular
        List<float[]> xs = List.of(x), ws = List.of(gaussian(out * in, r));
        List<String> notes = new ArrayList<>();
        Tile got = merge(new RegMean(0.9, 0.0), ws, List.of(gram(x, tokens, in)), new double[] {1}, out, in, notes);
        assertEquals(1, notes.size(), notes.toString());
        assertTrue(notes.getFirst().contains("not positive definite") && notes.getFirst().contains("ridge"), notes.getFirst());
        // one model: any least-squares solution reproduces its outputs on its own inputs, X·W*ᵀ = X·Wᵀ
        for (int t = 0; t < tokens; t++) for (int o = 0; o < out; o++) {
            double y = 0, yStar = 0;
            for (int i = 0; i < in; i++) {
                y += (double) x[t * in + i] * ws.getFirst()[o * in + i];
                yStar += (double) x[t * in + i] * got.get((long) o * in + i);
            }
            assertEquals(y, yStar, 1e-4, "token " + t + " output " + o);
        }
        assertEquals(xs.size(), 1);
    }

    @Test
    void tensorsWithoutAGramAreTheWeightedAverage() {
        Tile a = Tile.ofArray(1f, 2f, 3f), b = Tile.ofArray(5f, -2f, 0.5f), o = Tile.ofArray(new float[3]);
        try (TilePool pool = new TilePool()) {
            new RegMean(0.9, 0).merge(new MergeContext(BE, pool, 0, s -> { }),
                    new MergeInputs("model.norm.weight", null, List.of(a, b), List.of(weight(1), weight(3)), -1, -1), o);
        }
        for (int i = 0; i < 3; i++) assertEquals((1 * a.get(i) + 3 * b.get(i)) / 4.0, o.get(i), 1e-6);
    }
}
