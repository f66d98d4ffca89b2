package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The passes RAM and RAM+ share, element by element on host memory (no tile beyond the output):
 * an optional counting pass (RAM+'s per-model shared/unique counts), then the combine pass.
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
        float[] lambda = new float[n];
        java.util.Arrays.fill(lambda, 1f);
        if (plus != null) {
            // S_i = #positions model i shares (c > 1), U_i = #positions only model i changed (c = 1)
            AtomicLongArray shared = new AtomicLongArray(n), unique = new AtomicLongArray(n);
            PAR.forRange(out.size(), (lo, hi) -> {
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
            for (int i = 0; i < n; i++) {
                // ρ_i = S_i / max(U_i, ε); λ_i = 1 + r·clamp(ρ_i, 0, α)
                float rho = (float) shared.get(i) / Math.max((float) unique.get(i), eps);
                lambda[i] = 1f + plus[0] * Math.min(Math.max(rho, 0f), plus[1]);
            }
        }
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
