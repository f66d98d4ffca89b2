package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Combination;
import dev.mergeforge.backend.FusionLoops;
import dev.mergeforge.backend.HostChunkOps;
import dev.mergeforge.backend.KarcherLoops;
import dev.mergeforge.backend.KeepBitLoops;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.RankWindow;
import dev.mergeforge.backend.Reductions;
import dev.mergeforge.backend.SphereLoops;
import dev.mergeforge.backend.SphereSteps;
import dev.mergeforge.bindings.MergeOps;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The native backend's chunk ops: every op runs in libmergeops on the library's worker pool.
 * Conversion, sub/add/scale, weightedSum, lerp, sign election and the disjoint merge go through the
 * {@link NativeBackend} that owns this object; the chunk-only ops (maps, reductions continuing a
 * block begun in the previous chunk, |x| histograms, the rank window with carried tie counts, lane
 * ops, Philox drops at an element offset) call their own entry points (native/src/chunk.c,
 * lanes.c, reduce.c, dropout.c) — all but carriedLaneDots, still a loop here. Each segment is checked by {@link Staging} before the call, sizes
 * as the Java reference checks them. Independent of the Java reference it is tested against.
 */
final class NativeChunkOps implements HostChunkOps {
    private static final long F32 = 4;
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private final NativeBackend nb;

    NativeChunkOps(NativeBackend nb) { this.nb = nb; }

    @Override public String name() { return "native"; }

    private static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    @Override
    public boolean load(TensorView src, long from, Tile dst) {
        return nb.loadChecked(slice(src, from, dst.size()), dst);
    }

    @Override
    public void reload(TensorView src, long from, Tile dst) { nb.load(slice(src, from, dst.size()), dst); }

    /** Elements [from, from + n) of src as a view of their own (bounds checked with the reference's message). */
    private static TensorView slice(TensorView src, long from, long n) {
        long b = src.dtype().byteSize();
        if (from < 0 || from + n > src.numel()) throw new IllegalArgumentException("load " + src.name() + " [" + from + ", " + (from + n) + ") of " + src.numel());
        return new TensorView(src.name(), src.dtype(), Shape.of(n), src.data().asSlice(from * b, n * b), src.source());
    }

    @Override public void store(Tile src, DType dtype, MemorySegment dst) { nb.store(src, dtype, dst); }

    @Override public void sub(Tile a, Tile b, Tile out) { nb.sub(a, b, out); }

    @Override public void add(Tile a, Tile b, Tile out) { nb.add(a, b, out); }

    @Override public void scale(Tile x, float s, Tile out) { nb.scale(x, s, out); }

    @Override public void divide(Tile x, float d, Tile out) { map(MergeOps.MO_MAP_DIVIDE(), "divide", x, null, d, 0f, out); }

    @Override public void mul(Tile a, Tile b, Tile out) { map(MergeOps.MO_MAP_MUL(), "mul", a, b, 0f, 0f, out); }

    @Override public void div(Tile a, Tile b, Tile out) { map(MergeOps.MO_MAP_DIV(), "div", a, b, 0f, 0f, out); }

    @Override public void abs(Tile x, Tile out) { map(MergeOps.MO_MAP_ABS(), "abs", x, null, 0f, 0f, out); }

    @Override
    public void clamp(Tile x, float lo, float hi, Tile out) {
        if (!(lo <= hi)) throw new IllegalArgumentException("clamp bounds " + lo + " > " + hi);
        // comparisons, not min/max: -0.0 against a bound of 0 stays -0.0, and NaN fails both and is kept
        map(MergeOps.MO_MAP_CLAMP(), "clamp", x, null, lo, hi, out);
    }

    @Override public void fill(Tile x, float v) { map(MergeOps.MO_MAP_FILL(), "fill", null, null, v, 0f, x); }

    @Override public void affine(Tile x, float a, float b, Tile out) { map(MergeOps.MO_MAP_AFFINE(), "affine", x, null, a, b, out); }

    /** mo_relax over the chunk's rows, given the importance of the channels the chunk lies on (docs/aim.md). */
    @Override
    public void relax(Tile base, Tile merged, Combination.Relax r, long offset, Tile out) {
        sameSize(base, merged); sameSize(base, out);
        long n = base.size();
        Combination.Relax.Window w = r.window(offset, n);
        if (n == 0) return;
        MemorySegment imp = MemorySegment.ofArray(r.importance()).asSlice(w.firstChannel() * F32, w.channels() * F32);
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_relax(st.in(base.data(), n * F32, "relax base"), st.in(merged.data(), n * F32, "relax merged"),
                    st.in(imp, w.channels() * F32, "relax importance"), w.channels(), r.omega(), NativeBackend.axis(r.axis()), w.cols(),
                    st.out(out.data(), n * F32, "relax out"), n, nb.nativeThreads()), "relax");
            st.commit();
        }
    }

    @Override public void keepWhereNonZero(Tile x, Tile ref, Tile out) { map(MergeOps.MO_MAP_KEEP_NONZERO(), "keepWhereNonZero", x, ref, 0f, 0f, out); }

    /** out = op(x, y; s, t) in one native pass (x or y null where the op reads none); sizes checked as the reference does. */
    private void map(int op, String what, Tile x, Tile y, float s, float t, Tile out) {
        if (x != null) sameSize(x, out);
        if (y != null) { sameSize(x, y); sameSize(x, out); }
        long n = out.size();
        try (Staging st = new Staging()) {
            MemorySegment xs = x == null ? MemorySegment.NULL : st.in(x.data(), n * F32, what + " x");
            MemorySegment ys = y == null ? MemorySegment.NULL : st.in(y.data(), n * F32, what + " y");
            MemorySegment os = st.out(out.data(), n * F32, what + " out");
            NativeBackend.ok(MergeOps.mo_map(op, xs, ys, s, t, os, n, nb.nativeThreads()), what);
            st.commit();
        }
    }

    @Override
    public void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) {
        if (weighted.size() != w.length) throw new IllegalArgumentException("disjointDivisor needs one weight per input");
        for (Tile t : weighted) sameSize(t, out);
        sameSize(sign, out);
        long n = out.size();
        try (Staging st = new Staging()) {
            MemorySegment[] in = new MemorySegment[w.length];
            for (int j = 0; j < in.length; j++) in[j] = st.in(weighted.get(j).data(), n * F32, "disjointDivisor input " + j);
            NativeBackend.ok(MergeOps.mo_disjoint_divisor(st.addresses(in), st.floats(w), w.length, st.in(sign.data(), n * F32, "disjointDivisor sign"),
                    st.out(out.data(), n * F32, "disjointDivisor out"), n, nb.nativeThreads()), "disjointDivisor");
            st.commit();
        }
    }

    @Override public void weightedSum(List<Tile> xs, float[] w, Tile out) { nb.weightedSum(xs, w, out); }

    /** One native sweep over the stored bytes (mo_stored_variance): no float32 chunk of any input is written; scratch stays untouched. */
    @Override
    public void storedVariance(TensorView base, List<TensorView> xs, long from, List<Tile> scratch, Tile var) {
        ChunkOps.checkStoredVariance(base, xs, from, scratch, var);
        long n = var.size();
        try (Staging st = new Staging()) {
            MemorySegment[] segs = new MemorySegment[xs.size()];
            int[] dtypes = new int[xs.size()];
            for (int j = 0; j < segs.length; j++) {
                TensorView x = xs.get(j);
                dtypes[j] = NativeBackend.loadableDType(x);
                segs[j] = st.in(slice(x, from, n).data(), n * x.dtype().byteSize(), "tensor " + x.name());
            }
            MemorySegment b = base == null ? MemorySegment.NULL : st.in(slice(base, from, n).data(), n * base.dtype().byteSize(), "tensor " + base.name());
            int bt = base == null ? 0 : NativeBackend.loadableDType(base);
            NativeBackend.ok(MergeOps.mo_stored_variance(st.addresses(segs), st.ints(dtypes), segs.length, b, bt,
                    st.out(var.data(), n * F32, "storedVariance var"), n, NativeBackend.nanMode(), nb.nativeThreads()), "storedVariance");
            st.commit();
        }
    }

    /** One native sweep (mo_ties_combine): the task vectors and the sign tile are read only, never written. */
    @Override
    public void tiesCombine(Tile base, List<Tile> taus, float[] w, boolean normalize, boolean scaled, float lambda, Tile sign, Tile out) {
        ChunkOps.checkDisjointMean(base, taus, w, sign, out);
        long n = out.size();
        try (Staging st = new Staging()) {
            MemorySegment[] segs = new MemorySegment[taus.size()];
            for (int j = 0; j < segs.length; j++) segs[j] = st.in(taus.get(j).data(), n * F32, "tiesCombine task vector " + j);
            MemorySegment b = st.in(base.data(), n * F32, "tiesCombine base");
            NativeBackend.ok(MergeOps.mo_ties_combine(st.addresses(segs), st.floats(w), segs.length, b, normalize ? 1 : 0, scaled ? 1 : 0, lambda,
                    st.out(out.data(), n * F32, "tiesCombine out"), n, nb.nativeThreads()), "tiesCombine");
            st.commit();
        }
    }

    /** One native sweep (mo_disjoint_mean): the task vectors and the sign tile are read only, never written. */
    @Override
    public void disjointMean(Tile base, List<Tile> taus, float[] w, float floor, Tile sign, Tile out) {
        ChunkOps.checkDisjointMean(base, taus, w, sign, out);
        long n = out.size();
        try (Staging st = new Staging()) {
            MemorySegment[] segs = new MemorySegment[taus.size()];
            for (int j = 0; j < segs.length; j++) segs[j] = st.in(taus.get(j).data(), n * F32, "disjointMean task vector " + j);
            MemorySegment b = st.in(base.data(), n * F32, "disjointMean base");
            NativeBackend.ok(MergeOps.mo_disjoint_mean(st.addresses(segs), st.floats(w), segs.length, b, floor,
                    st.out(out.data(), n * F32, "disjointMean out"), n, nb.nativeThreads()), "disjointMean");
            st.commit();
        }
    }

    @Override
    public void deltaVariance(Tile base, List<Tile> xs, Tile var) {
        ChunkOps.checkDeltaVariance(base, xs, var);
        long n = var.size();
        try (Staging st = new Staging()) {
            MemorySegment[] segs = new MemorySegment[xs.size()];
            for (int j = 0; j < segs.length; j++) segs[j] = st.inOut(xs.get(j).data(), n * F32, "deltaVariance input " + j);
            MemorySegment b = base == null ? MemorySegment.NULL : st.in(base.data(), n * F32, "deltaVariance base");
            NativeBackend.ok(MergeOps.mo_delta_variance(st.addresses(segs), b, segs.length, st.out(var.data(), n * F32, "deltaVariance var"),
                    n, nb.nativeThreads()), "deltaVariance");
            st.commit();
        }
    }

    @Override
    public void sphere(Tile base, List<Tile> xs, SphereSteps steps, Tile mean, Tile tangent) {
        SphereLoops.check(base, xs, steps, mean, tangent);
        long n = mean.size();
        boolean tangents = steps.level().compareTo(SphereSteps.Level.TANGENTS) >= 0;
        try (Staging st = new Staging()) {
            MemorySegment[] segs = new MemorySegment[xs.size()];
            for (int j = 0; j < segs.length; j++) segs[j] = st.inOut(xs.get(j).data(), n * F32, "sphere input " + j);
            MemorySegment b = base == null ? MemorySegment.NULL : st.in(base.data(), n * F32, "sphere base");
            // a tangent tile that is the first input shares its staged copy
            MemorySegment t = !tangents ? MemorySegment.NULL : tangent == xs.getFirst() ? segs[0] : st.out(tangent.data(), n * F32, "sphere tangent");
            NativeBackend.ok(MergeOps.mo_sphere(st.addresses(segs), b, segs.length, steps.level().ordinal(), st.floats(steps.packed()),
                    st.out(mean.data(), n * F32, "sphere mean"), t, n, nb.nativeThreads()), "sphere");
            st.commit();
        }
    }

    @Override public void lerp(Tile a, Tile b, float t, Tile out) { nb.lerp(a, b, t, out); }

    @Override public void electSign(List<Tile> weighted, Tile sign) { nb.electSign(weighted, sign); }

    @Override public void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out) { nb.disjointMerge(weighted, w, sign, normalize, out); }

    /**
     * Feeds the chunk's runs (cut at the tensor's block edges) into acc: from one native call the
     * sums of the runs that end at a block edge and the open stripes after the last run, added in order.
     */
    private void reduce(int kind, String what, Tile x, Tile y, long offset, BlockSum acc) {
        if (y != null) sameSize(x, y);
        long n = x.size();
        if (n == 0) return;
        long first = Math.min(n, Reductions.BLOCK - offset % Reductions.BLOCK);
        long runs = 1 + Reductions.blocks(n - first);
        double[] sums = new double[Math.toIntExact(runs)], open = acc.stripes();
        try (Staging st = new Staging()) {
            MemorySegment p = st.doubles(runs), o = st.doubles(Reductions.STRIPES);
            MemorySegment.copy(open, 0, o, ValueLayout.JAVA_DOUBLE, 0, open.length);
            NativeBackend.ok(MergeOps.mo_block_sums(kind, st.in(x.data(), n * F32, what + " x"), y == null ? MemorySegment.NULL : st.in(y.data(), n * F32, what + " y"),
                    n, offset, o, p, nb.nativeThreads()), what);
            MemorySegment.copy(p, ValueLayout.JAVA_DOUBLE, 0, sums, 0, sums.length);
            MemorySegment.copy(o, ValueLayout.JAVA_DOUBLE, 0, open, 0, open.length);
        }
        acc.addChunk(offset, n, sums, open);
    }

    @Override public void sumAbs(Tile x, long offset, BlockSum acc) { reduce(MergeOps.MO_REDUCE_SUM_ABS(), "sumAbs", x, null, offset, acc); }

    @Override public void sumSquares(Tile x, long offset, BlockSum acc) { reduce(MergeOps.MO_REDUCE_SUM_SQUARES(), "sumSquares", x, null, offset, acc); }

    @Override public void dot(Tile x, Tile y, long offset, BlockSum acc) { reduce(MergeOps.MO_REDUCE_DOT(), "dot", x, y, offset, acc); }

    @Override
    public void absHistogram(Tile x, int high, long[] hist) {
        int bins = high < 0 ? 1 << 15 : 1 << 16;
        if (hist.length != bins) throw new IllegalArgumentException("histogram of " + hist.length + " bins, need " + bins);
        // a high bin no |x| can have counts nothing
        if (high >= 1 << 15) return;
        long n = x.size();
        if (n == 0) return;
        try (Staging st = new Staging()) {
            MemorySegment h = HISTOGRAM.get();
            MemorySegment.copy(hist, 0, h, ValueLayout.JAVA_LONG, 0, bins);
            NativeBackend.ok(MergeOps.mo_abs_histogram(st.in(x.data(), n * F32, "absHistogram x"), n, high, h, nb.nativeThreads()), "absHistogram");
            MemorySegment.copy(h, ValueLayout.JAVA_LONG, 0, hist, 0, bins);
        }
    }

    /**
     * The native copy of the histogram being counted, per calling thread and kept from call to call
     * (the largest, 2^16 bins): a pass histograms every chunk of every model, and half a megabyte
     * taken fresh for each call cost its zeroing and first touch as much as the copy itself.
     */
    private static final ThreadLocal<MemorySegment> HISTOGRAM = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(ValueLayout.JAVA_LONG, 1 << 16));

    @Override
    public void keepRanks(Tile x, RankWindow w, long[] seen) {
        if (w.all()) return;
        if (w.none()) { fill(x, 0f); return; }
        long n = x.size();
        try (Staging st = new Staging()) {
            MemorySegment s = st.longs(new long[] {seen[0], seen[1]});
            NativeBackend.ok(MergeOps.mo_keep_ranks(st.inOut(x.data(), n * F32, "keepRanks x"), n, w.hasUpper() ? 1 : 0, w.upper(), w.skipUpper(),
                    w.lower(), w.keepLower(), s, nb.nativeThreads()), "keepRanks");
            st.commit();
            seen[0] = s.getAtIndex(ValueLayout.JAVA_LONG, 0);
            seen[1] = s.getAtIndex(ValueLayout.JAVA_LONG, 1);
        }
    }

    @Override
    public void laneDots(Tile a, Tile b, Lanes lanes, double[] out) {
        if (a.size() != b.size() || lanes.numel() != a.size() || out.length < lanes.count()) throw new IllegalArgumentException("laneDots: " + a + ", " + b + ", " + lanes);
        long n = a.size(), count = lanes.count();
        if (count == 0) return;
        try (Staging st = new Staging()) {
            MemorySegment d = st.doubles(count);
            NativeBackend.ok(MergeOps.mo_lane_dots(st.in(a.data(), n * F32, "laneDots a"), st.in(b.data(), n * F32, "laneDots b"),
                    lanes.outer(), lanes.length(), lanes.inner(), d, nb.nativeThreads()), "laneDots");
            MemorySegment.copy(d, ValueLayout.JAVA_DOUBLE, 0, out, 0, Math.toIntExact(count));
        }
    }

    @Override
    public void carriedLaneDots(Tile a, Tile b, Lanes lanes, long first, BlockSum[] acc) {
        if (a.size() != b.size() || lanes.numel() != a.size() || acc.length < lanes.count() || first < 0) {
            throw new IllegalArgumentException("carriedLaneDots: " + a + ", " + b + ", " + lanes + " from " + first);
        }
        for (long v = 0, n = lanes.count(); v < n; v++) {
            if (acc[(int) v].next() != first) throw new IllegalStateException("lane " + v + " fed out of order: element " + first + ", expected " + acc[(int) v].next());
        }
        MemorySegment x = a.data(), y = b.data();
        for (long v = 0, n = lanes.count(); v < n; v++) {
            BlockSum s = acc[(int) v];
            // element k of the lane is element first + k of the whole lane (stripe (first + k) % 64): a run ends where its block does
            double[] run = s.stripes();
            long runStart = first;
            for (long k = 0, len = lanes.length(); k < len; k++) {
                long at = first + k;
                if (at > runStart && at % Reductions.BLOCK == 0) {
                    s.addRun(runStart, at - runStart, run);
                    run = s.stripes();
                    runStart = at;
                }
                long i = lanes.index(v, k);
                run[(int) (at % Reductions.STRIPES)] += (double) x.getAtIndex(F, i) * (double) y.getAtIndex(F, i);
            }
            s.addRun(runStart, first + lanes.length() - runStart, run);
        }
    }

    @Override
    public void laneScale(Tile x, float[] s, Lanes lanes, Tile out) {
        if (x.size() != out.size() || lanes.numel() != x.size() || s.length < lanes.count()) throw new IllegalArgumentException("laneScale: " + x + ", " + lanes);
        long n = x.size();
        if (n == 0) return;
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_lane_scale(st.in(x.data(), n * F32, "laneScale x"), st.floats(s), lanes.outer(), lanes.length(), lanes.inner(),
                    st.out(out.data(), n * F32, "laneScale out"), nb.nativeThreads()), "laneScale");
            st.commit();
        }
    }

    @Override
    public void laneRanks(Tile x, Lanes lanes, Tile out) {
        if (x.size() != out.size() || lanes.numel() != x.size()) throw new IllegalArgumentException("laneRanks: " + x + ", " + out + " and lanes " + lanes + " disagree");
        if (x.size() > 0 && x.data().asOverlappingSlice(out.data()).isPresent()) throw new IllegalArgumentException("laneRanks output must not alias its input");
        if (lanes.length() > (1L << 24)) throw new IllegalArgumentException("lane of " + lanes.length() + " elements is too long for float ranks");
        long n = x.size();
        if (n == 0) return;
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_lane_ranks(st.in(x.data(), n * F32, "laneRanks x"), lanes.outer(), lanes.length(), lanes.inner(),
                    st.out(out.data(), n * F32, "laneRanks out"), nb.nativeThreads()), "laneRanks");
            st.commit();
        }
    }

    /**
     * One native op (mo_della_drop, most elements decided without their rank) for lanes that are rows
     * (inner 1) of at most {@link #DELLA_ROW_MAX} elements; other lanes by the definition, op by op
     * (native too). BENCHMARKS.md, "DELLA's drop in one op": per element, one thread, the op takes about
     * half the time of the three on rows of 1280–3392 and 0.8 of it on rows of 8192; on rows of 28672
     * (the 70B slice's down_proj) more elements need their exact rank and the three ops are faster.
     */
    @Override
    public void dellaDrop(Tile x, Lanes lanes, float slope, float top, long offset, long key, Tile scratch) {
        if (lanes.inner() != 1 || lanes.length() > DELLA_ROW_MAX) {
            ChunkOps.dellaDropByOps(this, x, lanes, slope, top, offset, key, scratch);
            return;
        }
        if (lanes.numel() != x.size()) throw new IllegalArgumentException("dellaDrop: " + x + " and lanes " + lanes + " disagree");
        long n = x.size();
        if (n == 0) return;
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_della_drop(st.inOut(x.data(), n * F32, "dellaDrop x"), lanes.outer(), lanes.length(), slope, top,
                    offset, key, nb.nativeThreads()), "dellaDrop");
            st.commit();
        }
    }

    /** The longest row given to mo_della_drop (which takes up to 2^20, with ~40 bytes of scratch an element a worker). */
    static final long DELLA_ROW_MAX = 8192;

    @Override
    public void dropByProbability(Tile x, Tile p, long offset, long key) {
        sameSize(x, p);
        long n = x.size();
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_drop_by_probability(st.inOut(x.data(), n * F32, "dropByProbability x"), st.in(p.data(), n * F32, "dropByProbability p"),
                    n, offset, key, nb.nativeThreads()), "dropByProbability");
            st.commit();
        }
    }

    @Override
    public void nonZeroBits(Tile x, long from, long n, MemorySegment bits) {
        KeepBitLoops.check(x, from, n, bits);
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_nonzero_bits(st.in(x.data().asSlice(from * F32, n * F32), n * F32, "nonZeroBits x"), n,
                    st.out(bits, KeepBitLoops.words(n) * 8, "nonZeroBits bits"), nb.nativeThreads()), "nonZeroBits");
            st.commit();
        }
    }

    @Override
    public void keepBits(Tile x, long from, long n, MemorySegment bits) {
        KeepBitLoops.check(x, from, n, bits);
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_keep_bits(st.inOut(x.data().asSlice(from * F32, n * F32), n * F32, "keepBits x"), n,
                    st.in(bits, KeepBitLoops.words(n) * 8, "keepBits bits"), nb.nativeThreads()), "keepBits");
            st.commit();
        }
    }

    @Override
    public void dropRandom(Tile x, long offset, float density, long key) {
        long n = x.size();
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_drop_at(st.inOut(x.data(), n * F32, "dropRandom x"), n, offset, density, key, nb.nativeThreads()), "dropRandom");
            st.commit();
        }
    }

    // ---- Arcee Fusion (native/src/fusion.c; the bits of FusionLoops)

    @Override
    public void rowKl(Tile base, Tile other, long cols, double[] kl) {
        long rows = FusionLoops.checkRows(base, other, cols, kl.length), n = base.size();
        if (rows == 0) return;
        try (Staging st = new Staging()) {
            MemorySegment k = st.doubles(rows);
            NativeBackend.ok(MergeOps.mo_row_kl(st.in(base.data(), n * F32, "rowKl base"), st.in(other.data(), n * F32, "rowKl other"),
                    rows, cols, k, nb.nativeThreads()), "rowKl");
            MemorySegment.copy(k, ValueLayout.JAVA_DOUBLE, 0, kl, 0, (int) rows);
        }
    }

    @Override
    public void fusionImportance(Tile base, Tile other, long cols, float[] kl, Tile imp) {
        FusionLoops.checkRows(base, other, cols, kl.length);
        if (imp.size() != base.size()) throw new IllegalArgumentException("size mismatch: " + base + " vs " + imp);
        long n = base.size();
        if (n == 0) return;
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_fusion_importance(st.in(base.data(), n * F32, "fusionImportance base"), st.in(other.data(), n * F32, "fusionImportance other"),
                    n, cols, st.floats(kl), st.out(imp.data(), n * F32, "fusionImportance imp"), nb.nativeThreads()), "fusionImportance");
            st.commit();
        }
    }

    @Override
    public void orderHistogram(Tile x, int high, long[] hist) {
        FusionLoops.checkHistogram(high, hist);
        long n = x.size();
        if (n == 0) return;
        try (Staging st = new Staging()) {
            MemorySegment h = HISTOGRAM.get();
            MemorySegment.copy(hist, 0, h, ValueLayout.JAVA_LONG, 0, FusionLoops.BINS);
            NativeBackend.ok(MergeOps.mo_order_histogram(st.in(x.data(), n * F32, "orderHistogram x"), n, high, h, nb.nativeThreads()), "orderHistogram");
            MemorySegment.copy(h, ValueLayout.JAVA_LONG, 0, hist, 0, FusionLoops.BINS);
        }
    }

    @Override
    public void fusionCombine(Tile base, Tile other, long cols, float[] kl, float t, Tile out) {
        FusionLoops.checkRows(base, other, cols, kl.length);
        if (out.size() != base.size()) throw new IllegalArgumentException("size mismatch: " + base + " vs " + out);
        long n = base.size();
        if (n == 0) return;
        try (Staging st = new Staging()) {
            NativeBackend.ok(MergeOps.mo_fusion_combine(st.in(base.data(), n * F32, "fusionCombine base"), st.in(other.data(), n * F32, "fusionCombine other"),
                    n, cols, st.floats(kl), t, st.out(out.data(), n * F32, "fusionCombine out"), nb.nativeThreads()), "fusionCombine");
            st.commit();
        }
    }

    // ---------------------------------------------------------------- Karcher mean (native/src/karcher.c)

    @Override
    public void karcherMean(List<Tile> xs, float[] scales, List<Tile> units, float[] w, float f, Tile u) {
        KarcherLoops.checkMean(xs, scales, units, w, u);
        long n = u.size();
        boolean keep = !units.isEmpty();
        try (Staging st = new Staging()) {
            MemorySegment[] in = new MemorySegment[xs.size()], un = new MemorySegment[xs.size()];
            for (int p = 0; p < in.length; p++) {
                if (!keep) {
                    in[p] = st.in(xs.get(p).data(), n * F32, "karcherMean input " + p);
                } else if (units.get(p) == xs.get(p)) {
                    // a unit written over its input: one segment
                    in[p] = un[p] = st.inOut(xs.get(p).data(), n * F32, "karcherMean input " + p);
                } else {
                    in[p] = st.in(xs.get(p).data(), n * F32, "karcherMean input " + p);
                    un[p] = st.out(units.get(p).data(), n * F32, "karcherMean unit " + p);
                }
            }
            NativeBackend.ok(MergeOps.mo_karcher_mean(st.addresses(in), st.floats(scales), keep ? st.addresses(un) : MemorySegment.NULL, st.floats(w), in.length, f,
                    st.out(u.data(), n * F32, "karcherMean u"), n, nb.nativeThreads()), "karcherMean");
            st.commit();
        }
    }

    @Override
    public void karcherTangent(List<Tile> units, Tile u, float[] minusCos, float[] coef, Tile t) {
        KarcherLoops.checkTangent(units, u, minusCos, coef, t);
        long n = t.size();
        try (Staging st = new Staging()) {
            MemorySegment[] un = new MemorySegment[units.size()];
            for (int p = 0; p < un.length; p++) un[p] = st.in(units.get(p).data(), n * F32, "karcherTangent unit " + p);
            NativeBackend.ok(MergeOps.mo_karcher_tangent(st.addresses(un), st.in(u.data(), n * F32, "karcherTangent u"), st.floats(minusCos),
                    st.floats(coef), un.length, st.out(t.data(), n * F32, "karcherTangent t"), n, nb.nativeThreads()), "karcherTangent");
            st.commit();
        }
    }

    @Override
    public void karcherMeanTangent(List<Tile> xs, float[] scales, float[] w, float f, int[] terms, float[] minusCos, float[] coef, Tile t) {
        KarcherLoops.checkMeanTangent(xs, scales, w, terms, minusCos, coef, t);
        long n = t.size();
        try (Staging st = new Staging()) {
            MemorySegment[] in = new MemorySegment[xs.size()];
            for (int p = 0; p < in.length; p++) in[p] = st.in(xs.get(p).data(), n * F32, "karcherMeanTangent input " + p);
            NativeBackend.ok(MergeOps.mo_karcher_mean_tangent(st.addresses(in), st.floats(scales), st.floats(w), in.length, f, st.ints(terms),
                    st.floats(minusCos), st.floats(coef), terms.length, st.out(t.data(), n * F32, "karcherMeanTangent t"), n, nb.nativeThreads()),
                    "karcherMeanTangent");
            st.commit();
        }
    }
}
