package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The passes RAM and RAM+ share, element by element on host memory (no tile beyond the output):
 * an optional counting pass (RAM+'s per-model shared/unique counts), then the combine pass. The
 * whole-tensor path runs them over whole tiles (these loops: the oracle); {@link #program} runs the
 * same operations over chunks, a block of elements at a time on arrays ({@link RamBlocks}; the counts
 * are integers, so summing them chunk by chunk changes nothing: the same bytes).
 */
final class RamPass {
    private static final Parallel PAR = new Parallel(0);

    private RamPass() {}

    /** {@code plus} = {r, alpha} for RAM+, null for RAM. */
    static void merge(MergeContext ctx, MergeInputs in, Tile out, String method, float eps, float[] plus) {
        Tile base = TaskVectors.base(in, method);
        List<Tile> ms = new ArrayList<>();
        for (int j : in.nonBase()) ms.add(in.models().get(j));
        int n = ms.size();
        // the loops below read and write tile memory themselves, not through the backend's ops
        ctx.hostAccess(List.of(base), ms, List.of(out));
        float[] lambda = ones(n);
        if (plus != null) {
            AtomicLongArray shared = new AtomicLongArray(n), unique = new AtomicLongArray(n);
            count(base, ms, eps, shared, unique);
            lambda = lambda(shared, unique, eps, plus);
        }
        combine(base, ms, eps, lambda, out);
    }

    /** The same loops as passes over chunks of any cut: RAM+'s counting pass, then the combine. */
    static ChunkProgram program(TensorSetup in, String method, float eps, float[] plus) {
        if (!in.hasBase()) throw new ConfigException(method + " needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        int[] idx = in.nonBase();
        int n = idx.length;
        float[][] lambda = {ones(n)};
        AtomicLongArray shared = new AtomicLongArray(n), unique = new AtomicLongArray(n);
        ChunkProgram.Pass counts = new ChunkProgram.Pass() {
            @Override public boolean needed() { return plus != null; }
            @Override public void chunk(ChunkOps ops, Chunk c) {
                List<Tile> ms = models(c, idx);
                ops.onHost(inputs(c.base(), ms), List.of(), () -> RamBlocks.count(c.base(), ms, eps, shared, unique));
            }
            @Override public void end() { lambda[0] = lambda(shared, unique, eps, plus); }
        };
        // both steps are host loops over the chunk's memory, so each runs inside ops.onHost; a tensor of
        // one chunk resumes from the tiles the counting pass left: the inputs, which it does not write
        ChunkProgram.Resumable combine = new ChunkProgram.Resumable() {
            @Override public boolean canResume() { return true; }
            @Override public void resume(ChunkOps ops, Chunk c, Tile out) { chunk(ops, c, out); }
            @Override public void chunk(ChunkOps ops, Chunk c, Tile out) {
                List<Tile> ms = models(c, idx);
                ops.onHost(inputs(c.base(), ms), List.of(out), () -> RamBlocks.combine(c.base(), ms, eps, lambda[0], out));
            }
        };
        return new ChunkProgram(1, 0, List.of(counts), combine);
    }

    private static List<Tile> inputs(Tile base, List<Tile> ms) {
        List<Tile> all = new ArrayList<>(ms.size() + 1);
        all.add(base);
        all.addAll(ms);
        return all;
    }

    private static List<Tile> models(Chunk c, int[] idx) {
        List<Tile> ms = new ArrayList<>(idx.length);
        for (int j : idx) ms.add(c.model(j));
        return ms;
    }

    private static float[] ones(int n) {
        float[] x = new float[n];
        Arrays.fill(x, 1f);
        return x;
    }

    /** Adds S_i = #positions model i shares (c > 1) and U_i = #positions only model i changed (c = 1). */
    private static void count(Tile base, List<Tile> ms, float eps, AtomicLongArray shared, AtomicLongArray unique) {
        int n = ms.size();
        PAR.forRange(base.size(), (lo, hi) -> {
            long[] s = new long[n], u = new long[n];
            for (long e = lo; e < hi; e++) {
                float b = base.get(e);
                int c = 0;
                for (Tile m : ms) if (Math.abs(m.get(e) - b) > eps) c++;
                if (c == 0) continue;
                for (int i = 0; i < n; i++) {
                    if (Math.abs(ms.get(i).get(e) - b) > eps) { if (c > 1) s[i]++; else u[i]++; }
                }
            }
            for (int i = 0; i < n; i++) { shared.addAndGet(i, s[i]); unique.addAndGet(i, u[i]); }
        });
    }

    private static float[] lambda(AtomicLongArray shared, AtomicLongArray unique, float eps, float[] plus) {
        float[] lambda = new float[shared.length()];
        for (int i = 0; i < lambda.length; i++) {
            // ρ_i = S_i / max(U_i, ε); λ_i = 1 + r·clamp(ρ_i, 0, α)
            float rho = (float) shared.get(i) / Math.max((float) unique.get(i), eps);
            lambda[i] = 1f + plus[0] * Math.min(Math.max(rho, 0f), plus[1]);
        }
        return lambda;
    }

    private static void combine(Tile base, List<Tile> ms, float eps, float[] lambda, Tile out) {
        int n = ms.size();
        PAR.forRange(out.size(), (lo, hi) -> {
            for (long e = lo; e < hi; e++) {
                float b = base.get(e);
                int c = 0;
                for (Tile m : ms) if (Math.abs(m.get(e) - b) > eps) c++;
                // Δ = Σ_i τ_i·[|τ_i| > ε]·(λ_i if c = 1, 1/c if c > 1)
                float sum = 0f;
                for (int i = 0; i < n; i++) {
                    float tv = ms.get(i).get(e) - b;
                    if (!(Math.abs(tv) > eps)) continue;
                    sum += c == 1 ? tv * lambda[i] : tv / c;
                }
                // θ = θ₀ + Δ
                out.set(e, b + sum);
            }
        });
    }
}
