package dev.mergeforge.backend.java;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Combination;
import dev.mergeforge.backend.FusionLoops;
import dev.mergeforge.backend.HostChunkOps;
import dev.mergeforge.backend.KarcherLoops;
import dev.mergeforge.backend.KeepBitLoops;
import dev.mergeforge.backend.LaneRanks;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.backend.PortableOps;
import dev.mergeforge.backend.RankWindow;
import dev.mergeforge.backend.Reductions;
import dev.mergeforge.backend.SphereLoops;
import dev.mergeforge.backend.SphereSteps;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The reference chunk ops: plain Java loops split across threads at fixed boundaries, so results
 * do not depend on the thread count. Every other backend's chunk ops are tested against these, bit
 * for bit.
 */
public final class JavaChunkOps implements HostChunkOps {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Parallel par;

    /** @param par the worker threads (owned by the caller) */
    public JavaChunkOps(Parallel par) { this.par = par; }

    @Override public String name() { return "java"; }

    private static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    @Override
    public boolean load(TensorView src, long from, Tile dst) { return load(src, from, dst, true); }

    @Override
    public void reload(TensorView src, long from, Tile dst) { load(src, from, dst, false); }

    /** dst = float32(src[from..]); with {@code check}, whether some value is NaN or ±Inf (else false). */
    private boolean load(TensorView src, long from, Tile dst, boolean check) {
        long n = dst.size();
        if (from < 0 || from + n > src.numel()) throw new IllegalArgumentException("load " + src.name() + " [" + from + ", " + (from + n) + ") of " + src.numel());
        MemorySegment s = src.data(), d = dst.data();
        boolean[] bad = new boolean[1];
        Parallel.Body body = switch (src.dtype()) {
            case F32 -> (lo, hi) -> { for (long i = lo; i < hi; i++) d.setAtIndex(F, i, s.getAtIndex(F32LE, from + i)); };
            case BF16 -> (lo, hi) -> { for (long i = lo; i < hi; i++) d.setAtIndex(F, i, Floats.bf16ToFloat(s.getAtIndex(S16, from + i))); };
            case F16 -> (lo, hi) -> { for (long i = lo; i < hi; i++) d.setAtIndex(F, i, Floats.f16ToFloat(s.getAtIndex(S16, from + i))); };
            case F64 -> (lo, hi) -> { for (long i = lo; i < hi; i++) d.setAtIndex(F, i, (float) s.getAtIndex(F64LE, from + i)); };
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException(
                    "tensor " + src.name() + " in " + src.source() + " is " + src.dtype() + ", not a float type; it cannot be merged");
        };
        // NaN or ±Inf among the converted values, looked for in the range just written
        Parallel.Body checked = !check ? body : (lo, hi) -> {
            body.run(lo, hi);
            boolean b = false;
            for (long i = lo; i < hi; i++) b |= !Float.isFinite(d.getAtIndex(F, i));
            if (b) bad[0] = true;
        };
        par.forRange(n, checked);
        return bad[0];
    }

    @Override
    public void store(Tile src, DType dtype, MemorySegment dst) {
        long n = src.size();
        if (dst.byteSize() != n * dtype.byteSize()) throw new IllegalArgumentException("store " + src + " as " + dtype + " into " + dst.byteSize() + " bytes");
        MemorySegment s = src.data();
        switch (dtype) {
            case F32 -> par.forRange(n, (lo, hi) -> { for (long i = lo; i < hi; i++) dst.setAtIndex(F32LE, i, s.getAtIndex(F, i)); });
            case BF16 -> par.forRange(n, (lo, hi) -> { for (long i = lo; i < hi; i++) dst.setAtIndex(S16, i, Floats.floatToBf16(s.getAtIndex(F, i))); });
            case F16 -> par.forRange(n, (lo, hi) -> { for (long i = lo; i < hi; i++) dst.setAtIndex(S16, i, Floats.floatToF16(s.getAtIndex(F, i))); });
            case F64 -> par.forRange(n, (lo, hi) -> { for (long i = lo; i < hi; i++) dst.setAtIndex(F64LE, i, s.getAtIndex(F, i)); });
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException("cannot store a merged tensor as " + dtype);
        }
    }

    @Override
    public void sub(Tile a, Tile b, Tile out) {
        sameSize(a, b); sameSize(a, out);
        MemorySegment x = a.data(), y = b.data(), o = out.data();
        par.forRange(a.size(), (lo, hi) -> { for (long i = lo; i < hi; i++) o.setAtIndex(F, i, x.getAtIndex(F, i) - y.getAtIndex(F, i)); });
    }

    @Override
    public void add(Tile a, Tile b, Tile out) {
        sameSize(a, b); sameSize(a, out);
        MemorySegment x = a.data(), y = b.data(), o = out.data();
        par.forRange(a.size(), (lo, hi) -> { for (long i = lo; i < hi; i++) o.setAtIndex(F, i, x.getAtIndex(F, i) + y.getAtIndex(F, i)); });
    }

    @Override
    public void scale(Tile x, float s, Tile out) {
        sameSize(x, out);
        MemorySegment a = x.data(), o = out.data();
        par.forRange(x.size(), (lo, hi) -> { for (long i = lo; i < hi; i++) o.setAtIndex(F, i, s * a.getAtIndex(F, i)); });
    }

    @Override
    public void divide(Tile x, float d, Tile out) {
        sameSize(x, out);
        MemorySegment a = x.data(), o = out.data();
        par.forRange(x.size(), (lo, hi) -> { for (long i = lo; i < hi; i++) o.setAtIndex(F, i, a.getAtIndex(F, i) / d); });
    }

    @Override public void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) { PortableOps.disjointDivisor(par, weighted, w, sign, out); }

    @Override
    public void relax(Tile base, Tile merged, Combination.Relax r, long offset, Tile out) {
        sameSize(base, merged); sameSize(base, out);
        long n = base.size(), cols = r.cols();
        r.checkChunk(offset, n);
        float keep = 1f - r.omega();
        float[] imp = r.importance();
        MemorySegment b = base.data(), m = merged.data(), o = out.data();
        par.forRange(n, (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                long g = offset + i;
                int c = (int) switch (r.axis()) {
                    case COLUMNS -> g % cols;
                    case ROWS -> g / cols;
                    case ELEMENTS -> g;
                };
                // f = 1 - ((1 - omega) * I[c]); theta = theta_0 + (delta * f), the ends exact
                float f = 1f - (keep * imp[c]);
                float bi = b.getAtIndex(F, i), mi = m.getAtIndex(F, i);
                o.setAtIndex(F, i, f == 1f ? mi : (f == 0f ? bi : bi + ((mi - bi) * f)));
            }
        });
    }

    @Override public void keepWhereNonZero(Tile x, Tile ref, Tile out) { PortableOps.keepWhereNonZero(par, x, ref, out); }

    @Override public void nonZeroBits(Tile x, long from, long n, MemorySegment bits) { KeepBitLoops.nonZeroBits(x, from, n, bits); }

    @Override public void keepBits(Tile x, long from, long n, MemorySegment bits) { KeepBitLoops.keepBits(x, from, n, bits); }

    @Override public void mul(Tile a, Tile b, Tile out) { PortableOps.mul(par, a, b, out); }

    @Override public void div(Tile a, Tile b, Tile out) { PortableOps.div(par, a, b, out); }

    @Override public void abs(Tile x, Tile out) { PortableOps.abs(par, x, out); }

    @Override public void clamp(Tile x, float lo, float hi, Tile out) { PortableOps.clamp(par, x, lo, hi, out); }

    @Override public void fill(Tile x, float v) { PortableOps.fill(par, x, v); }

    @Override
    public void affine(Tile x, float a, float b, Tile out) {
        sameSize(x, out);
        MemorySegment s = x.data(), o = out.data();
        par.forRange(x.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float p = a * s.getAtIndex(F, i);
                o.setAtIndex(F, i, p + b);
            }
        });
    }

    @Override
    public void weightedSum(List<Tile> xs, float[] w, Tile out) {
        if (xs.isEmpty() || xs.size() != w.length) throw new IllegalArgumentException("weightedSum needs one weight per input, got " + xs.size() + " inputs and " + w.length + " weights");
        for (Tile t : xs) sameSize(t, out);
        MemorySegment[] in = xs.stream().map(Tile::data).toArray(MemorySegment[]::new);
        MemorySegment o = out.data();
        par.forRange(out.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float acc = w[0] * in[0].getAtIndex(F, i);
                for (int j = 1; j < in.length; j++) {
                    float p = w[j] * in[j].getAtIndex(F, i);
                    acc = acc + p;
                }
                o.setAtIndex(F, i, acc);
            }
        });
    }

    /** The definition, op by op ({@link ChunkOps#storedVarianceByOps}). */
    @Override
    public void storedVariance(TensorView base, List<TensorView> xs, long from, List<Tile> scratch, Tile var) {
        ChunkOps.storedVarianceByOps(this, base, xs, from, scratch, var);
    }

    /** The definition, op by op ({@link ChunkOps#tiesCombineByOps}). */
    @Override
    public void tiesCombine(Tile base, List<Tile> taus, float[] w, boolean normalize, boolean scaled, float lambda, Tile sign, Tile out) {
        ChunkOps.tiesCombineByOps(this, base, taus, w, normalize, scaled, lambda, sign, out);
    }

    /** The definition, op by op ({@link ChunkOps#disjointMeanByOps}). */
    @Override
    public void disjointMean(Tile base, List<Tile> taus, float[] w, float floor, Tile sign, Tile out) {
        ChunkOps.disjointMeanByOps(this, base, taus, w, floor, sign, out);
    }

    @Override
    public void sphere(Tile base, List<Tile> xs, SphereSteps steps, Tile mean, Tile tangent) {
        SphereLoops.check(base, xs, steps, mean, tangent);
        par.forRange(mean.size(), (lo, hi) -> SphereLoops.run(base, xs, steps, mean, tangent, lo, hi));
    }

    @Override
    public void deltaVariance(Tile base, List<Tile> xs, Tile var) {
        ChunkOps.checkDeltaVariance(base, xs, var);
        MemorySegment[] in = xs.stream().map(Tile::data).toArray(MemorySegment[]::new);
        MemorySegment b = base == null ? null : base.data(), v = var.data();
        float inv = 1f / in.length;
        par.forRange(var.size(), (lo, hi) -> {
            float[] tau = new float[in.length];
            for (long i = lo; i < hi; i++) {
                for (int j = 0; j < in.length; j++) {
                    float x = in[j].getAtIndex(F, i);
                    // τ_j = x_j - base
                    if (b != null) { x = x - b.getAtIndex(F, i); in[j].setAtIndex(F, i, x); }
                    tau[j] = x;
                }
                // μ = (1/N)·(τ_0 + τ_1 + …)
                float sum = tau[0];
                for (int j = 1; j < tau.length; j++) sum = sum + tau[j];
                float mean = inv * sum;
                // var = (τ_0 - μ)² + (τ_1 - μ)² + …
                float d = tau[0] - mean, acc = d * d;
                for (int j = 1; j < tau.length; j++) {
                    d = tau[j] - mean;
                    float sq = d * d;
                    acc = acc + sq;
                }
                v.setAtIndex(F, i, acc);
            }
        });
    }

    @Override
    public void lerp(Tile a, Tile b, float t, Tile out) {
        sameSize(a, b); sameSize(a, out);
        float u = 1f - t;
        MemorySegment x = a.data(), y = b.data(), o = out.data();
        par.forRange(a.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float p = u * x.getAtIndex(F, i);
                float q = t * y.getAtIndex(F, i);
                o.setAtIndex(F, i, p + q);
            }
        });
    }

    @Override
    public void electSign(List<Tile> weighted, Tile sign) {
        for (Tile t : weighted) sameSize(t, sign);
        MemorySegment[] in = weighted.stream().map(Tile::data).toArray(MemorySegment[]::new);
        MemorySegment o = sign.data();
        par.forRange(sign.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float s = in[0].getAtIndex(F, i);
                for (int j = 1; j < in.length; j++) s = s + in[j].getAtIndex(F, i);
                o.setAtIndex(F, i, s >= 0f ? 1f : -1f);
            }
        });
    }

    @Override
    public void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out) {
        if (weighted.size() != w.length) throw new IllegalArgumentException("disjointMerge needs one weight per input");
        for (Tile t : weighted) sameSize(t, out);
        sameSize(sign, out);
        MemorySegment[] in = weighted.stream().map(Tile::data).toArray(MemorySegment[]::new);
        MemorySegment sg = sign.data(), o = out.data();
        par.forRange(out.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float s = sg.getAtIndex(F, i);
                float acc = 0f, div = 0f;
                for (int j = 0; j < in.length; j++) {
                    float v = in[j].getAtIndex(F, i);
                    float sv = v > 0f ? 1f : (v < 0f ? -1f : 0f);
                    if (sv == s) {
                        acc = acc + v;
                        div = div + w[j];
                    }
                }
                if (normalize) acc = acc / (div == 0f ? 1f : div);
                o.setAtIndex(F, i, acc);
            }
        });
    }

    /** A per-element double term of a reduction (chunk index). */
    @FunctionalInterface
    private interface Term { double at(long i); }

    /**
     * Feeds terms [0, n) of a chunk at tensor index offset into acc: runs cut at block edges, summed
     * in parallel in stripes (run 0 continuing acc's open stripes), a run that ends at a block edge
     * closed by the tree, added in order.
     */
    private void reduce(long n, long offset, BlockSum acc, Term term) {
        if (n == 0) return;
        long first = Math.min(n, Reductions.BLOCK - offset % Reductions.BLOCK);
        long runs = 1 + Reductions.blocks(n - first);
        if (runs > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("chunk too large for one reduction: " + n);
        double[] sums = new double[(int) runs];
        double[] start = acc.stripes(), last = new double[Reductions.STRIPES];
        par.forRange(runs, Math.max(1, Parallel.CHUNK / Reductions.BLOCK), (r0, r1) -> {
            for (long r = r0; r < r1; r++) {
                long lo = r == 0 ? 0 : first + (r - 1) * Reductions.BLOCK, hi = r == 0 ? first : Math.min(n, lo + Reductions.BLOCK);
                double[] s = r == 0 ? start : new double[Reductions.STRIPES];
                // chunk index i is tensor index offset + i: stripe (offset + i) % 64
                Reductions.addTerms(s, lo, hi, -offset, term::at);
                if ((offset + hi) % Reductions.BLOCK == 0) sums[(int) r] = Reductions.tree(s);
                else System.arraycopy(s, 0, last, 0, Reductions.STRIPES);   // only the last run can stay open
            }
        });
        acc.addChunk(offset, n, sums, last);
    }

    @Override
    public void sumAbs(Tile x, long offset, BlockSum acc) {
        MemorySegment a = x.data();
        reduce(x.size(), offset, acc, i -> Math.abs((double) a.getAtIndex(F, i)));
    }

    @Override
    public void sumSquares(Tile x, long offset, BlockSum acc) {
        MemorySegment a = x.data();
        reduce(x.size(), offset, acc, i -> {
            double v = a.getAtIndex(F, i);
            return v * v;
        });
    }

    @Override
    public void dot(Tile x, Tile y, long offset, BlockSum acc) {
        sameSize(x, y);
        MemorySegment a = x.data(), b = y.data();
        reduce(x.size(), offset, acc, i -> (double) a.getAtIndex(F, i) * (double) b.getAtIndex(F, i));
    }

    @Override
    public void absHistogram(Tile x, int high, long[] hist) {
        int bins = high < 0 ? 1 << 15 : 1 << 16;
        if (hist.length != bins) throw new IllegalArgumentException("histogram of " + hist.length + " bins, need " + bins);
        MemorySegment s = x.data();
        par.forRange(x.size(), (lo, hi) -> {
            long[] h = new long[bins];
            boolean any = false;
            for (long i = lo; i < hi; i++) {
                int a = s.getAtIndex(I, i) & 0x7fffffff;
                if (high < 0) { h[a >>> 16]++; any = true; }
                else if ((a >>> 16) == high) { h[a & 0xffff]++; any = true; }
            }
            if (any) synchronized (hist) { for (int b = 0; b < bins; b++) hist[b] += h[b]; }
        });
    }

    @Override
    public void keepRanks(Tile x, RankWindow w, long[] seen) {
        MemorySegment s = x.data();
        long n = x.size(), chunk = Parallel.CHUNK;
        if (w.all()) return;
        if (w.none()) {
            par.forRange(n, (lo, hi) -> { for (long i = lo; i < hi; i++) s.setAtIndex(F, i, 0f); });
            return;
        }
        int pieces = (int) ((n + chunk - 1) / chunk);
        long[] eqUp = new long[pieces], eqDn = new long[pieces];
        // how many equal to each end lie in each piece, then where each piece starts counting
        par.forRange(n, chunk, (lo, hi) -> {
            long cu = 0, cd = 0;
            for (long i = lo; i < hi; i++) {
                int a = s.getAtIndex(I, i) & 0x7fffffff;
                if (a == w.upper()) cu++;
                if (a == w.lower()) cd++;
            }
            eqUp[(int) (lo / chunk)] = cu;
            eqDn[(int) (lo / chunk)] = cd;
        });
        long[] startUp = new long[pieces], startDn = new long[pieces];
        long u = seen[0], d = seen[1];
        for (int p = 0; p < pieces; p++) {
            startUp[p] = u; startDn[p] = d;
            u += eqUp[p]; d += eqDn[p];
        }
        par.forRange(n, chunk, (lo, hi) -> {
            long cu = startUp[(int) (lo / chunk)], cd = startDn[(int) (lo / chunk)];
            for (long i = lo; i < hi; i++) {
                int a = s.getAtIndex(I, i) & 0x7fffffff;
                if (!w.keeps(a, cu, cd)) s.setAtIndex(F, i, 0f);
                if (a == w.upper()) cu++;
                if (a == w.lower()) cd++;
            }
        });
        seen[0] = u;
        seen[1] = d;
    }

    @Override public void laneDots(Tile a, Tile b, Lanes lanes, double[] out) { PortableOps.laneDots(par, a, b, lanes, out); }

    @Override
    public void carriedLaneDots(Tile x, Tile y, Lanes lanes, long first, BlockSum[] acc) {
        sameSize(x, y);
        if (lanes.numel() != x.size() || acc.length < lanes.count() || first < 0) {
            throw new IllegalArgumentException("carriedLaneDots: " + x + ", " + lanes + " from " + first + ", " + acc.length + " sums");
        }
        for (long v = 0, n = lanes.count(); v < n; v++) {
            if (acc[(int) v].next() != first) throw new IllegalStateException("lane " + v + " fed out of order: element " + first + ", expected " + acc[(int) v].next());
        }
        MemorySegment a = x.data(), b = y.data();
        long len = lanes.length();
        par.forRange(lanes.count(), Math.max(1, Parallel.CHUNK / Math.max(1, len)), (v0, v1) -> {
            for (long v = v0; v < v1; v++) {
                BlockSum s = acc[(int) v];
                final long lane = v;
                // runs of the lane cut where its blocks end, each continuing the open block's stripes
                for (long k = 0; k < len; ) {
                    long at = first + k, end = Math.min(len, k + Reductions.BLOCK - at % Reductions.BLOCK);
                    double[] p = s.stripes();
                    // element k of the chunk's lane is element first + k of the lane: stripe (first + k) % 64
                    Reductions.addTerms(p, k, end, -first, j -> {
                        long i = lanes.index(lane, j);
                        return (double) a.getAtIndex(F, i) * (double) b.getAtIndex(F, i);
                    });
                    s.addRun(at, end - k, p);
                    k = end;
                }
            }
        });
    }

    @Override public void laneScale(Tile x, float[] s, Lanes lanes, Tile out) { PortableOps.laneScale(par, x, s, lanes, out); }

    @Override
    public void laneRanks(Tile x, Lanes lanes, Tile out) { LaneRanks.run(par, x, lanes, out); }

    @Override
    public void dropByProbability(Tile x, Tile p, long offset, long key) {
        sameSize(x, p);
        MemorySegment a = x.data(), pr = p.data();
        par.forRange(x.size(), (lo, hi) -> {
            Philox.Cursor draws = new Philox.Cursor(key);
            for (long i = lo; i < hi; i++) {
                if (draws.uniform24(offset + i) >= Philox.threshold24(pr.getAtIndex(F, i))) a.setAtIndex(F, i, 0f);
            }
        });
    }

    /** The definition, op by op ({@link ChunkOps#dellaDropByOps}). */
    @Override
    public void dellaDrop(Tile x, Lanes lanes, float slope, float top, long offset, long key, Tile scratch) {
        ChunkOps.dellaDropByOps(this, x, lanes, slope, top, offset, key, scratch);
    }

    @Override
    public void dropRandom(Tile x, long offset, float density, long key) {
        MemorySegment a = x.data();
        long thr = Philox.threshold24(density);
        par.forRange(x.size(), (lo, hi) -> {
            Philox.Cursor draws = new Philox.Cursor(key);
            for (long i = lo; i < hi; i++) if (draws.uniform24(offset + i) >= thr) a.setAtIndex(F, i, 0f);
        });
    }

    @Override public void rowKl(Tile base, Tile other, long cols, double[] kl) { FusionLoops.rowKl(par, base, other, cols, kl); }

    @Override public void fusionImportance(Tile base, Tile other, long cols, float[] kl, Tile imp) { FusionLoops.importance(par, base, other, cols, kl, imp); }

    @Override public void orderHistogram(Tile x, int high, long[] hist) { FusionLoops.orderHistogram(par, x, high, hist); }

    @Override public void fusionCombine(Tile base, Tile other, long cols, float[] kl, float t, Tile out) { FusionLoops.combine(par, base, other, cols, kl, t, out); }

    @Override
    public void karcherMean(List<Tile> xs, float[] scales, List<Tile> units, float[] w, float f, Tile u) {
        KarcherLoops.mean(par, xs, scales, units, w, f, u);
    }

    @Override
    public void karcherTangent(List<Tile> units, Tile u, float[] minusCos, float[] coef, Tile t) {
        KarcherLoops.tangent(par, units, u, minusCos, coef, t);
    }

    @Override
    public void karcherMeanTangent(List<Tile> xs, float[] scales, float[] w, float f, int[] terms, float[] minusCos, float[] coef, Tile t) {
        KarcherLoops.meanTangent(par, xs, scales, w, f, terms, minusCos, coef, t);
    }
}
