package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.RefPhilox;

import java.util.Arrays;
import java.util.Comparator;

/**
 * Straightforward double-precision references of every method, written from mergekit's maths with
 * plain loops and a sort-based top-k. Independent of the production code (only the Philox key
 * derivation, a hash, is shared through the caller).
 */
final class Ref {
    private Ref() {}

    enum Rescale { NONE, DENSITY, L1 }

    // ------------------------------------------------------------ helpers

    /** Indices sorted by |x| descending, ties lower index first (plain sort). */
    static Integer[] orderDesc(double[] x, int[] idx) {
        Integer[] o = Arrays.stream(idx).boxed().toArray(Integer[]::new);
        Arrays.sort(o, Comparator.<Integer>comparingDouble(i -> -Math.abs(x[i])).thenComparingInt(i -> i));
        return o;
    }

    static int[] all(int n) { int[] a = new int[n]; for (int i = 0; i < n; i++) a[i] = i; return a; }

    /** Vectors along axis dim of a row-major tensor of the given dims (rank ≤ 1: one vector). */
    static int[][] vectors(long[] dims, int dim) {
        int n = 1;
        for (long d : dims) n *= (int) d;
        if (dims.length <= 1) return new int[][] {all(n)};
        int outer = 1, inner = 1, len = (int) dims[dim];
        for (int i = 0; i < dim; i++) outer *= (int) dims[i];
        for (int i = dim + 1; i < dims.length; i++) inner *= (int) dims[i];
        int[][] v = new int[outer * inner][len];
        for (int o = 0; o < outer; o++) for (int j = 0; j < inner; j++) for (int k = 0; k < len; k++) {
            v[o * inner + j][k] = o * len * inner + k * inner + j;
        }
        return v;
    }

    static double l1(double[] x) { double s = 0; for (double v : x) s += Math.abs(v); return s; }

    static double dot(double[] a, double[] b) { double s = 0; for (int i = 0; i < a.length; i++) s += a[i] * b[i]; return s; }

    static double norm(double[] a) { return Math.sqrt(dot(a, a)); }

    static double[] sub(double[] a, double[] b) { double[] o = new double[a.length]; for (int i = 0; i < a.length; i++) o[i] = a[i] - b[i]; return o; }

    static void rescaleL1(double[] orig, double[] masked) {
        double before = l1(orig), after = l1(masked);
        if (before < 1e-7 || after < 1e-7) return;
        for (int i = 0; i < masked.length; i++) masked[i] *= before / after;
    }

    // ------------------------------------------------------------ sparsifiers (mergekit sparsify.py)

    static double[] magnitude(double[] tv, double d, boolean rescale) {
        if (d >= 1) return tv.clone();
        int k = (int) (d * tv.length);
        return keepRanks(tv, 0, k, rescale);
    }

    static double[] keepRanks(double[] tv, int from, int to, boolean rescale) {
        Integer[] o = orderDesc(tv, all(tv.length));
        double[] out = new double[tv.length];
        for (int r = from; r < to; r++) out[o[r]] = tv[o[r]];
        if (rescale) rescaleL1(tv, out);
        return out;
    }

    static double[] outliers(double[] tv, double d, double gamma, boolean rescale) {
        if (d >= 1) return tv.clone();
        int n = tv.length, target = (int) (d * n), top = (int) (gamma * n), bot = n - target - top;
        if (bot < 0) { top += bot; bot = 0; }
        // keep ranks [top, n - bot) of the descending order (γ·n = 0 keeps the top target: our fix)
        return keepRanks(tv, top, n - bot, rescale);
    }

    static double[] random(double[] tv, double d, long key, Rescale mode) {
        if (d >= 1) return tv.clone();
        float df = (float) d;
        double[] out = new double[tv.length];
        for (int i = 0; i < tv.length; i++) {
            if (RefPhilox.keep(key, i, df)) out[i] = mode == Rescale.DENSITY ? tv[i] / df : tv[i];
        }
        if (mode == Rescale.L1) rescaleL1(tv, out);
        return out;
    }

    static double[] della(double[] tv, long[] dims, double d, double eps, long key, boolean rescale) {
        if (d >= 1) return tv.clone();
        double[] out = new double[tv.length];
        for (int[] lane : vectors(dims, 1)) {
            Integer[] o = orderDesc(tv, lane);
            int len = lane.length;
            for (int r = 0; r < len; r++) {
                // asc rank a = len-1-r; p = (d-ε) + 2ε·a/(len-1)
                double p = len > 1 ? (d - eps) + 2 * eps * (len - 1 - r) / (len - 1) : d;
                if (RefPhilox.keep(key, o[r], p)) out[o[r]] = tv[o[r]];
            }
        }
        if (rescale) rescaleL1(tv, out);
        return out;
    }

    // ------------------------------------------------------------ generalized task arithmetic

    /** θ₀ + λ·combine(τ̂): weighted sum (normalized by Σw) or TIES disjoint sum. */
    static double[] gta(double[] base, double[][] sparseTvs, double[] w, boolean consensus, boolean normalize, double lambda) {
        int n = base.length, m = sparseTvs.length;
        double[] out = new double[n];
        double wsum = 0;
        for (double x : w) wsum += x;
        for (int i = 0; i < n; i++) {
            double acc = 0, div = 0;
            if (consensus) {
                double s = 0;
                for (int j = 0; j < m; j++) s += w[j] * sparseTvs[j][i];
                double sign = s >= 0 ? 1 : -1;
                for (int j = 0; j < m; j++) {
                    double W = w[j] * sparseTvs[j][i];
                    if (Math.signum(W) == sign) { acc += W; div += w[j]; }
                }
                if (normalize) acc /= div == 0 ? 1 : div;
            } else {
                for (int j = 0; j < m; j++) acc += w[j] * sparseTvs[j][i];
                if (normalize) acc /= Math.abs(wsum) < 1e-8 ? 1 : wsum;
            }
            out[i] = base[i] + lambda * acc;
        }
        return out;
    }

    // ------------------------------------------------------------ the other methods

    static double[] linear(double[][] models, double[] w, boolean normalize) {
        double[] out = new double[models[0].length];
        double ws = 0;
        for (double x : w) ws += x;
        for (int i = 0; i < out.length; i++) {
            double s = 0;
            for (int j = 0; j < models.length; j++) s += w[j] * models[j][i];
            out[i] = normalize && ws != 0 ? s / ws : s;
        }
        return out;
    }

    static double[] slerp(double[] a, double[] b, double t) {
        double na = norm(a), nb = norm(b);
        double ea = na > 1e-8 ? na : 1, eb = nb > 1e-8 ? nb : 1;
        double cos = dot(a, b) / (ea * eb);
        double[] out = new double[a.length];
        if (Math.abs(cos) > 0.9995) {
            for (int i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
            return out;
        }
        double th = Math.acos(cos);
        for (int i = 0; i < a.length; i++) out[i] = (Math.sin((1 - t) * th) * a[i] + Math.sin(t * th) * b[i]) / Math.sin(th);
        return out;
    }

    static double[] nuslerp(double[] base, double[] m0, double[] m1, double w0, double w1, long[] dims, boolean rowWise, boolean flatten) {
        double t = Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
        double[] v0 = base == null ? m0 : sub(m0, base), v1 = base == null ? m1 : sub(m1, base);
        int[][] vecs = flatten ? new int[][] {all(m0.length)} : vectors(dims, rowWise ? 0 : dims.length - 1);
        double[] out = new double[m0.length];
        for (int[] vec : vecs) {
            double n0 = 0, n1 = 0, d = 0;
            for (int i : vec) { n0 += v0[i] * v0[i]; n1 += v1[i] * v1[i]; d += v0[i] * v1[i]; }
            n0 = Math.max(Math.sqrt(n0), 1e-7);
            n1 = Math.max(Math.sqrt(n1), 1e-7);
            double th = Math.acos(Math.max(-1, Math.min(1, d / (n0 * n1))));
            for (int i : vec) {
                out[i] = Math.abs(Math.sin(th)) < 1e-8 ? (1 - t) * v0[i] + t * v1[i]
                        : (Math.sin((1 - t) * th) * v0[i] + Math.sin(t * th) * v1[i]) / Math.sin(th);
                if (base != null) out[i] += base[i];
            }
        }
        return out;
    }

    static double[] multislerp(double[] base, double[][] models, double[] weights, boolean normalizeWeights, double eps) {
        int m = models.length, n = models[0].length;
        if (m == 1) return models[0].clone();
        double[][] x = new double[m][];
        for (int j = 0; j < m; j++) x[j] = base == null ? models[j].clone() : sub(models[j], base);
        double[] w = weights.clone();
        if (normalizeWeights) { double s = 0; for (double v : w) s += v; for (int j = 0; j < m; j++) w[j] /= s; }
        double[] norms = new double[m];
        double[][] u = new double[m][n];
        double[] mean = new double[n];
        for (int j = 0; j < m; j++) {
            norms[j] = norm(x[j]);
            for (int i = 0; i < n; i++) { u[j][i] = x[j][i] / (norms[j] + eps); mean[i] += w[j] * u[j][i]; }
        }
        double mn = norm(mean);
        double[] out = new double[n];
        if (mn < eps) {
            for (int i = 0; i < n; i++) out[i] = x[0][i] * w[0] + x[1][i] * w[1] + (base == null ? 0 : base[i]);
            return out;
        }
        for (int i = 0; i < n; i++) mean[i] /= mn;
        double[] tr = new double[n];
        for (int j = 0; j < m; j++) {
            double d = dot(u[j], mean);
            for (int i = 0; i < n; i++) tr[i] += w[j] * (u[j][i] - d * mean[i]);
        }
        double tn = norm(tr) + eps, avg = 0;
        for (int j = 0; j < m; j++) avg += norms[j] * w[j];
        for (int i = 0; i < n; i++) out[i] = (mean[i] * Math.cos(tn) + tr[i] * Math.sin(tn) / tn) * avg + (base == null ? 0 : base[i]);
        return out;
    }

    static double[] karcher(double[][] xs, int maxIter, double tol) {
        int m = xs.length, n = xs[0].length;
        if (m == 1) return xs[0].clone();
        double a = 1.0 / m;
        double[] norms = new double[m];
        java.util.List<double[]> units = new java.util.ArrayList<>();
        for (int j = 0; j < m; j++) {
            norms[j] = norm(xs[j]);
            if (norms[j] > tol) {
                double[] u = new double[n];
                for (int i = 0; i < n; i++) u[i] = xs[j][i] / norms[j];
                units.add(u);
            }
        }
        if (units.isEmpty()) return new double[n];
        double na = 1.0 / units.size();
        double[] u = new double[n];
        for (double[] ui : units) for (int i = 0; i < n; i++) u[i] += na * ui[i];
        double nu = norm(u);
        if (nu < tol) u = units.get(0).clone(); else for (int i = 0; i < n; i++) u[i] /= nu;
        for (int it = 0; it < maxIter; it++) {
            double[] T = new double[n];
            for (double[] ui : units) {
                double d = Math.max(-1, Math.min(1, dot(u, ui)));
                double th = Math.acos(d);
                if (th < tol) continue;
                for (int i = 0; i < n; i++) T[i] += na * (th / Math.sin(th)) * (ui[i] - d * u[i]);
            }
            double nT = norm(T);
            if (nT < tol) break;
            for (int i = 0; i < n; i++) u[i] = Math.cos(nT) * u[i] + Math.sin(nT) * T[i] / nT;
            double un = norm(u);
            if (un > tol) for (int i = 0; i < n; i++) u[i] /= un;
        }
        double s = 0;
        for (double nr : norms) s += a * nr;
        for (int i = 0; i < n; i++) u[i] *= s;
        return u;
    }

    static double[] modelStock(double[] base, double[][] ws, long[] dims, boolean filterWise) {
        int m = ws.length, n = base.length;
        int[][] vecs = filterWise ? vectors(dims, Math.max(0, dims.length - 1)) : new int[][] {all(n)};
        double[] out = new double[n];
        for (int[] vec : vecs) {
            double cs = 0;
            int pairs = 0;
            for (int i = 0; i < m; i++) for (int j = i + 1; j < m; j++) {
                double d = 0, ni = 0, nj = 0;
                for (int k : vec) {
                    double a = ws[i][k] - base[k], b = ws[j][k] - base[k];
                    d += a * b; ni += a * a; nj += b * b;
                }
                cs += Math.max(-1, Math.min(1, d / Math.max(Math.sqrt(ni) * Math.sqrt(nj), 1e-6)));
                pairs++;
            }
            double c = cs / pairs, t = m * c / (1 + (m - 1) * c);
            for (int k : vec) {
                double avg = 0;
                for (double[] w : ws) avg += w[k];
                out[k] = t * avg / m + (1 - t) * base[k];
            }
        }
        return out;
    }

    static double[] nearswap(double[] a, double[] b, double t) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            double w = Math.max(0, Math.min(1, t / Math.max(Math.abs(a[i] - b[i]), 1e-6)));
            out[i] = w * b[i] + (1 - w) * a[i];
        }
        return out;
    }

    static double[] sce(double[] base, double[][] models, double topk) {
        int m = models.length, n = base.length;
        double[][] tv = new double[m][];
        for (int j = 0; j < m; j++) tv[j] = sub(models[j], base);
        if (topk < 1) {
            double[] var = new double[n];
            int nnz = 0;
            for (int i = 0; i < n; i++) {
                double mu = 0;
                for (int j = 0; j < m; j++) mu += tv[j][i] / m;
                for (int j = 0; j < m; j++) var[i] += (tv[j][i] - mu) * (tv[j][i] - mu) / m;
                if (var[i] != 0) nnz++;
            }
            int k = (int) ((float) nnz * (float) topk); // torch: int(count * density), the product in float32
            Integer[] o = orderDesc(var, all(n));
            boolean[] keep = new boolean[n];
            for (int r = 0; r < k; r++) keep[o[r]] = true;
            for (int j = 0; j < m; j++) for (int i = 0; i < n; i++) if (!keep[i]) tv[j][i] = 0;
        }
        double[] w = new double[m];
        double ws = 0;
        for (int j = 0; j < m; j++) { w[j] = dot(tv[j], tv[j]) / n; ws += w[j]; }
        for (int j = 0; j < m; j++) w[j] = Math.abs(ws) < 1e-6 ? 1.0 / m : w[j] / ws;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < m; j++) s += tv[j][i];
            double sign = s >= 0 ? 1 : -1, acc = 0, div = 0;
            for (int j = 0; j < m; j++) if (Math.signum(tv[j][i]) == sign) { acc += w[j] * tv[j][i]; div += w[j]; }
            out[i] = base[i] + acc / Math.max(div, 1e-6);
        }
        return out;
    }
}
