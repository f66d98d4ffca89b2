package dev.mergeforge.backend.java;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.LaneRanks;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.backend.PortableOps;
import dev.mergeforge.backend.Reductions;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The reference backend: plain Java loops over the tiles, split across threads at fixed chunk
 * boundaries. Every other backend is tested against this one, bit for bit.
 */
public class JavaBackend implements Backend {
    static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble F64LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    protected final Parallel par;
    private final JavaChunkOps chunkOps;

    /** @param threads worker threads; 0 or less means one per core */
    public JavaBackend(int threads) {
        this.par = new Parallel(threads);
        this.chunkOps = new JavaChunkOps(par);
    }

    @Override public java.util.Optional<dev.mergeforge.backend.ChunkOps> chunkOps() { return java.util.Optional.of(chunkOps); }

    public JavaBackend() { this(0); }

    @Override public String name() { return "java"; }

    public int threads() { return par.threads(); }

    static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    // ---------------------------------------------------------------- conversion

    @Override
    public void load(TensorView src, Tile dst) {
        if (src.numel() != dst.size()) throw new IllegalArgumentException("load " + src.name() + ": " + src.numel() + " elements into " + dst);
        MemorySegment s = src.data(), d = dst.data();
        switch (src.dtype()) {
            case F32 -> par.forRange(dst.size(), (lo, hi) -> {
                for (long i = lo; i < hi; i++) d.setAtIndex(F, i, s.getAtIndex(F32LE, i));
            });
            case BF16 -> par.forRange(dst.size(), (lo, hi) -> {
                for (long i = lo; i < hi; i++) d.setAtIndex(F, i, Floats.bf16ToFloat(s.getAtIndex(S16, i)));
            });
            case F16 -> par.forRange(dst.size(), (lo, hi) -> {
                for (long i = lo; i < hi; i++) d.setAtIndex(F, i, Floats.f16ToFloat(s.getAtIndex(S16, i)));
            });
            case F64 -> par.forRange(dst.size(), (lo, hi) -> {
                for (long i = lo; i < hi; i++) d.setAtIndex(F, i, (float) s.getAtIndex(F64LE, i));
            });
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException(
                    "tensor " + src.name() + " in " + src.source() + " is " + src.dtype() + ", not a float type; it cannot be merged");
        }
    }

    @Override
    public void store(Tile src, DType dtype, MemorySegment dst) {
        long n = src.size();
        if (dst.byteSize() != n * dtype.byteSize()) throw new IllegalArgumentException("store " + src + " as " + dtype + " into " + dst.byteSize() + " bytes");
        MemorySegment s = src.data();
        switch (dtype) {
            case F32 -> par.forRange(n, (lo, hi) -> {
                for (long i = lo; i < hi; i++) dst.setAtIndex(F32LE, i, s.getAtIndex(F, i));
            });
            case BF16 -> par.forRange(n, (lo, hi) -> {
                for (long i = lo; i < hi; i++) dst.setAtIndex(S16, i, Floats.floatToBf16(s.getAtIndex(F, i)));
            });
            case F16 -> par.forRange(n, (lo, hi) -> {
                for (long i = lo; i < hi; i++) dst.setAtIndex(S16, i, Floats.floatToF16(s.getAtIndex(F, i)));
            });
            case F64 -> par.forRange(n, (lo, hi) -> {
                for (long i = lo; i < hi; i++) dst.setAtIndex(F64LE, i, s.getAtIndex(F, i));
            });
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException("cannot store a merged tensor as " + dtype);
        }
    }

    // ---------------------------------------------------------------- elementwise

    @Override
    public void sub(Tile a, Tile b, Tile out) {
        sameSize(a, b); sameSize(a, out);
        MemorySegment x = a.data(), y = b.data(), o = out.data();
        par.forRange(a.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) o.setAtIndex(F, i, x.getAtIndex(F, i) - y.getAtIndex(F, i));
        });
    }

    @Override
    public void add(Tile a, Tile b, Tile out) {
        sameSize(a, b); sameSize(a, out);
        MemorySegment x = a.data(), y = b.data(), o = out.data();
        par.forRange(a.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) o.setAtIndex(F, i, x.getAtIndex(F, i) + y.getAtIndex(F, i));
        });
    }

    @Override
    public void scale(Tile x, float s, Tile out) {
        sameSize(x, out);
        MemorySegment a = x.data(), o = out.data();
        par.forRange(x.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) o.setAtIndex(F, i, s * a.getAtIndex(F, i));
        });
    }

    @Override
    public void axpy(float alpha, Tile x, Tile y) {
        sameSize(x, y);
        MemorySegment a = x.data(), o = y.data();
        par.forRange(x.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float p = alpha * a.getAtIndex(F, i);
                o.setAtIndex(F, i, o.getAtIndex(F, i) + p);
            }
        });
    }

    @Override
    public void weightedSum(List<Tile> xs, float[] w, Tile out) {
        chunkOps.weightedSum(xs, w, out); // one body for the tile and the chunk path
    }

    @Override
    public void lerp(Tile a, Tile b, float t, Tile out) {
        chunkOps.lerp(a, b, t, out); // one body for the tile and the chunk path
    }

    // ---------------------------------------------------------------- reductions

    /** A per-element double term of a reduction. */
    @FunctionalInterface
    protected interface Term { double at(long i); }

    /** Sums term(i) over [0, n) in the canonical block order of {@link Reductions}. */
    protected double reduce(long n, Term term) {
        long nb = Reductions.blocks(n);
        if (nb > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("tensor too large for one reduction: " + n);
        double[] partial = new double[(int) nb];
        par.forRange(nb, Math.max(1, Parallel.CHUNK / Reductions.BLOCK), (b0, b1) -> {
            for (long b = b0; b < b1; b++) {
                long lo = b * Reductions.BLOCK, hi = Math.min(n, lo + Reductions.BLOCK);
                partial[(int) b] = Reductions.block(lo, hi, term::at);
            }
        });
        return Reductions.combine(partial);
    }

    @Override
    public double sumAbs(Tile x) {
        MemorySegment a = x.data();
        return reduce(x.size(), i -> Math.abs((double) a.getAtIndex(F, i)));
    }

    @Override
    public double sumSquares(Tile x) {
        MemorySegment a = x.data();
        return reduce(x.size(), i -> {
            double v = a.getAtIndex(F, i);
            return v * v;
        });
    }

    @Override
    public double dot(Tile x, Tile y) {
        sameSize(x, y);
        MemorySegment a = x.data(), b = y.data();
        return reduce(x.size(), i -> (double) a.getAtIndex(F, i) * (double) b.getAtIndex(F, i));
    }

    // ---------------------------------------------------------------- sparsification

    @Override
    public void keepRankRange(Tile x, long from, long to) {
        RankSelect.keepRankRange(par, x, from, to);
    }

    @Override
    public void dropRescale(Tile x, float density, long key, Rescale mode) {
        MemorySegment a = x.data();
        long n = x.size();
        double before = mode == Rescale.L1 ? sumAbs(x) : 0.0;
        long thr = Philox.threshold24(density);
        par.forRange(n, (lo, hi) -> {
            Philox.Cursor draws = new Philox.Cursor(key);
            for (long i = lo; i < hi; i++) {
                long u = draws.uniform24(i);
                if (u >= thr) a.setAtIndex(F, i, 0f);
            }
        });
        switch (mode) {
            case NONE -> { }
            case DENSITY -> par.forRange(n, (lo, hi) -> {
                for (long i = lo; i < hi; i++) a.setAtIndex(F, i, a.getAtIndex(F, i) / density);
            });
            case L1 -> {
                double after = sumAbs(x);
                if (!(before < 1e-7 || after < 1e-7)) {
                    float f = (float) (before / after);
                    scale(x, f, x);
                }
            }
        }
    }

    // ---------------------------------------------------------------- TIES

    @Override
    public void electSign(List<Tile> weighted, Tile sign) {
        chunkOps.electSign(weighted, sign); // one body for the tile and the chunk path
    }

    @Override
    public void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out) {
        chunkOps.disjointMerge(weighted, w, sign, normalize, out); // one body for the tile and the chunk path
    }

    // ---------------------------------------------------------------- ops with portable reference loops (run on our threads)

    @Override public void mul(Tile a, Tile b, Tile out) { PortableOps.mul(par, a, b, out); }

    @Override public void div(Tile a, Tile b, Tile out) { PortableOps.div(par, a, b, out); }

    @Override public void abs(Tile x, Tile out) { PortableOps.abs(par, x, out); }

    @Override public void clamp(Tile x, float lo, float hi, Tile out) { PortableOps.clamp(par, x, lo, hi, out); }

    @Override public void affine(Tile x, float a, float b, Tile out) { PortableOps.affine(par, x, a, b, out); }

    @Override public void fill(Tile x, float v) { PortableOps.fill(par, x, v); }

    @Override public void keepWhereNonZero(Tile x, Tile ref, Tile out) { PortableOps.keepWhereNonZero(par, x, ref, out); }

    @Override public long countNonZero(Tile x) { return PortableOps.countNonZero(par, x); }

    @Override public void laneDots(Tile a, Tile b, Lanes lanes, double[] out) { PortableOps.laneDots(par, a, b, lanes, out); }

    @Override public void laneScale(Tile x, float[] s, Lanes lanes, Tile out) { PortableOps.laneScale(par, x, s, lanes, out); }

    @Override public void laneRanks(Tile x, Lanes lanes, Tile out) { LaneRanks.run(par, x, lanes, out); }

    @Override public void dropByProbability(Tile x, Tile p, long key, Rescale mode) { PortableOps.dropByProbability(par, x, p, key, mode); }

    @Override public void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) { PortableOps.disjointDivisor(par, weighted, w, sign, out); }

    // ---------------------------------------------------------------- AIM

    @Override
    public void relax(Tile base, Tile merged, Tile importance, float omega, Axis axis, Tile out) {
        sameSize(base, merged); sameSize(base, out);
        long n = base.size(), cols = base.cols();
        long channels = axis.channels(n, cols);
        if (importance.size() != channels) {
            throw new IllegalArgumentException("importance has " + importance.size() + " channels, tensor " + base.shape() + " has " + channels + " along " + axis);
        }
        float keep = 1f - omega;
        MemorySegment b = base.data(), m = merged.data(), im = importance.data(), o = out.data();
        par.forRange(n, (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                long c = switch (axis) {
                    case COLUMNS -> i % cols;
                    case ROWS -> i / cols;
                    case ELEMENTS -> i;
                };
                float f = 1f - (keep * im.getAtIndex(F, c));
                float bi = b.getAtIndex(F, i), mi = m.getAtIndex(F, i);
                float d = mi - bi;
                // the ends are exact: f = 1 keeps the merge, f = 0 restores the base
                o.setAtIndex(F, i, f == 1f ? mi : (f == 0f ? bi : bi + (d * f)));
            }
        });
    }

    @Override
    public void close() { par.shutdown(); }
}
