package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.KeepBits;
import dev.mergeforge.merge.chunk.RankSelection;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * The generalized task-arithmetic family ({@link TaskVectors}) as passes over chunks, with the
 * same bits as the whole-tensor path: τ_j = θ_j − θ₀ is recomputed from the stored inputs in every
 * pass. Passes, each only when some model needs it:
 * <ol>
 *   <li>magnitudes: the high-bit histogram of |τ_j| for magnitude selections;</li>
 *   <li>selection: the low-bit histograms at each selected rank (exact k-th magnitude);</li>
 *   <li>rescale: ‖τ_j‖₁ before and ‖τ̂_j‖₁ after the sparsification, both of the same chunk (so
 *       DELLA, which selects nothing, reads its inputs twice, not three times);</li>
 *   <li>combine: sparsify, rescale, then the weighted sum or the TIES disjoint sum, λ, + θ₀.</li>
 * </ol>
 */
final class TaskVectorPasses {
    private TaskVectorPasses() {}

    /** How each task vector is sparsified. */
    sealed interface Sparsifier {}

    /** No sparsification. */
    record None() implements Sparsifier {}

    /** mergekit's {@code magnitude}: keep the ⌊d·n⌋ largest |τ|. */
    record Magnitude(boolean rescale) implements Sparsifier {}

    /** mergekit's {@code magnitude_outliers}: drop the ⌊γ·n⌋ largest and the smallest, ⌊d·n⌋ remain. */
    record Outliers(boolean rescale) implements Sparsifier {}

    /** mergekit's {@code bernoulli} (DARE): keep each entry with probability d. */
    record Random(Backend.Rescale mode) implements Sparsifier {}

    /** mergekit's {@code della_magprune}: per row, keep rank r with probability (d + ε) − 2ε·r/(L−1). */
    record Della(boolean rescale) implements Sparsifier {}

    /** One task vector's sparsification, with what its passes find. */
    private static final class Model {
        final int index;
        final float weight;
        boolean touched;            // density < 1: the sparsification applies
        RankSelection select;       // magnitude / outliers
        float density;              // random
        Lanes lanes;                // della: the tensor's rows (lanes along axis 1)
        float slope, top;           // della: p = top + slope · rank
        long key;                   // random
        Backend.Rescale rescale = Backend.Rescale.NONE;
        final BlockSum before = new BlockSum(), after = new BlockSum();
        float factor = 1f;
        boolean scaled;             // the L1 factor applies
        final long[] seen = new long[2], seenRescale = new long[2];   // tie counts carried through the combine / rescale pass
        boolean bits;               // della: the rescale pass wrote its keep bits (slot: this model's place in the list)

        Model(int index, float weight) { this.index = index; this.weight = weight; }
    }

    /**
     * The program of {@link TaskVectors#merge} for one tensor.
     *
     * @param consensus TIES sign election and disjoint sum instead of the weighted sum
     */
    static ChunkProgram program(TensorSetup in, String method, Sparsifier sparsifier, boolean consensus, boolean normalize, double lambda) {
        if (!in.hasBase()) {
            throw new ConfigException(method + " needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        }
        int[] idx = in.nonBase();
        if (idx.length == 0) {
            // no task vectors: the base itself
            return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.base(), 1f, out));
        }
        float[] w = Weights.of(in.params(), idx, "weight");
        List<Model> models = new ArrayList<>();
        for (int k = 0; k < idx.length; k++) models.add(setup(in, idx[k], w[k], sparsifier));
        // DELLA ranks within rows: chunks hold whole slabs of rows (a 1-D tensor is one row)
        Lanes rows = Lanes.along(in.shape(), 1);
        long align = sparsifier instanceof Della ? Math.max(1, rows.length() * rows.inner()) : 1;
        // DELLA's keep decisions, made once in the rescale pass and read back by the combine (a row ranked once per model)
        KeepBits kept = new KeepBits(in.tensor());
        List<ChunkProgram.Pass> passes = List.of(magnitudes(models), selection(models), rescale(models, in.numel(), kept));
        ChunkProgram.Combine combine = new Combining(models, w, consensus, normalize, lambda, kept);
        return new ChunkProgram(align, consensus || sparsifier instanceof Della ? 1 : 0, passes, combine);
    }

    /** What one model's sparsification needs, from its parameters; logs the notes the whole-tensor path logs. */
    private static Model setup(TensorSetup in, int j, float weight, Sparsifier s) {
        Model m = new Model(j, weight);
        double density = in.params().get(j).number("density", 1.0);
        long n = in.numel();
        switch (s) {
            case None none -> { }
            case Magnitude mag -> {
                if (density >= 1) break;
                m.touched = true;
                // k = int(d * n)
                long k = (long) (density * n);
                if (k == 0) {
                    in.note(in.tensor() + ": density " + density + " of " + n + " elements keeps nothing of model " + j
                            + "; its task vector is dropped for this tensor");
                    m.select = new RankSelection(n, 0, 0);
                    break;
                }
                m.select = new RankSelection(n, 0, k);
                if (mag.rescale()) m.rescale = Backend.Rescale.L1;
            }
            case Outliers out -> {
                if (density >= 1) break;
                m.touched = true;
                double gamma = in.params().get(j).number("gamma", 0.01);
                // target = int(d n), top = int(γ n), bot = n - target - top; bot < 0 moves the excess to top
                long target = (long) (density * n), top = (long) (gamma * n), bot = n - target - top;
                if (bot < 0) top += bot;
                if (target == 0) {
                    in.note(in.tensor() + ": density " + density + " of " + n + " elements keeps nothing of model " + j
                            + "; its task vector is dropped for this tensor");
                }
                m.select = new RankSelection(n, top, top + target);
                if (out.rescale()) m.rescale = Backend.Rescale.L1;
            }
            case Della d -> {
                if (density >= 1) break;
                double epsilon = in.params().get(j).number("epsilon", 0.15);
                if (density + epsilon >= 1 || density - epsilon <= 0) {
                    throw new ConfigException(in.params().get(j).where() + ": della needs density ± epsilon inside (0, 1), got density "
                            + density + " and epsilon " + epsilon + " for tensor " + in.tensor() + "; lower epsilon");
                }
                m.touched = true;
                m.lanes = Lanes.along(in.shape(), 1);
                long len = m.lanes.length();
                // p = (d + ε) − r · 2ε/(len − 1); a row of one element keeps with p = d
                m.slope = len > 1 ? (float) (-2 * epsilon / (len - 1)) : 0f;
                m.top = len > 1 ? (float) (density + epsilon) : (float) density;
                m.key = Philox.key(in.seed(), in.tensor(), j);
                if (d.rescale()) m.rescale = Backend.Rescale.L1;
            }
            case Random r -> {
                if (density >= 1) break;
                m.touched = true;
                m.density = (float) density;
                m.key = Philox.key(in.seed(), in.tensor(), j);
                m.rescale = r.mode();
            }
        }
        return m;
    }

    /** τ_j = θ_j − θ₀ over each non-base model's chunk tile (the base tile is never written). */
    private static List<Tile> taskVectors(ChunkOps ops, Chunk c, List<Model> models) {
        List<Tile> tvs = new ArrayList<>(models.size());
        for (Model m : models) {
            Tile t = c.model(m.index);
            // τ_j = θ_j − θ₀
            ops.sub(t, c.base(), t);
            tvs.add(t);
        }
        return tvs;
    }

    /** τ̂ = the sparsified τ of one chunk, rescaled once the factor is known. */
    private static void sparsify(ChunkOps ops, Chunk c, Model m, Tile t, long[] seen) {
        if (!m.touched) return;
        if (m.select != null) {
            ops.keepRanks(t, m.select.window(), seen);
        } else if (m.lanes != null) {
            // the chunk's whole rows: ranks within each, keep probabilities, the drop
            Lanes rows = new Lanes(c.size() / (m.lanes.length() * m.lanes.inner()), m.lanes.length(), m.lanes.inner());
            ops.dellaDrop(t, rows, m.slope, m.top, c.offset(), m.key, c.scratch(0));
        } else {
            ops.dropRandom(t, c.offset(), m.density, m.key);
        }
        switch (m.rescale) {
            case NONE -> { }
            case DENSITY -> ops.divide(t, m.density, t);
            case L1 -> { if (m.scaled) ops.scale(t, m.factor, t); }
        }
    }

    /** Pass 1: the high-bit histograms. */
    private static ChunkProgram.Pass magnitudes(List<Model> models) {
        return new ChunkProgram.Pass() {
            @Override public boolean needed() { return models.stream().anyMatch(m -> m.select != null && m.select.needsPasses()); }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                List<Tile> tvs = taskVectors(ops, c, models);
                for (int k = 0; k < models.size(); k++) {
                    Model m = models.get(k);
                    if (m.select != null && m.select.needsPasses()) m.select.high(ops, tvs.get(k));
                }
            }

            @Override public void end() {
                for (Model m : models) if (m.select != null && m.select.needsPasses()) m.select.endHigh();
            }
        };
    }

    /** Pass 2: the low-bit histograms at the selected ranks, giving each window. */
    private static ChunkProgram.Pass selection(List<Model> models) {
        return new ChunkProgram.Pass() {
            @Override public boolean needed() { return models.stream().anyMatch(m -> m.select != null && m.select.needsPasses()); }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                List<Tile> tvs = taskVectors(ops, c, models);
                for (int k = 0; k < models.size(); k++) {
                    Model m = models.get(k);
                    if (m.select != null && m.select.needsPasses()) m.select.low(ops, tvs.get(k));
                }
            }

            @Override public void end() {
                for (Model m : models) if (m.select != null && m.select.needsPasses()) m.select.endLow();
            }
        };
    }

    /**
     * Pass 3: ‖τ‖₁ and ‖τ̂‖₁ around the sparsification, giving the L1 factor ‖τ‖₁/‖τ̂‖₁ unless either is
     * below 1e-7. On a tensor of several chunks, DELLA's keep decisions go to {@code kept}, one bit per
     * element and model, so the combine applies them instead of ranking each row again (a tensor of
     * one chunk resumes from the tiles instead).
     */
    private static ChunkProgram.Pass rescale(List<Model> models, long numel, KeepBits kept) {
        return new ChunkProgram.Pass() {
            @Override public boolean needed() { return models.stream().anyMatch(m -> m.rescale == Backend.Rescale.L1); }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                boolean several = c.size() < numel;
                List<Tile> tvs = taskVectors(ops, c, models);
                for (int k = 0; k < models.size(); k++) {
                    Model m = models.get(k);
                    if (m.rescale != Backend.Rescale.L1) continue;
                    ops.sumAbs(tvs.get(k), c.offset(), m.before);
                    sparsify(ops, c, m, tvs.get(k), m.seenRescale);
                    ops.sumAbs(tvs.get(k), c.offset(), m.after);
                    if (several && m.lanes != null) {
                        kept.write(ops, c.offset(), k, tvs.get(k));
                        m.bits = true;
                    }
                }
            }

            @Override public void end() {
                for (Model m : models) {
                    if (m.rescale != Backend.Rescale.L1) continue;
                    double before = m.before.value(), after = m.after.value();
                    m.scaled = !(before < 1e-7 || after < 1e-7);
                    m.factor = (float) (before / after);
                }
            }

            @Override public void close() { kept.close(); }
        };
    }

    /**
     * The combine pass: sparsify, rescale, then the weighted sum or the TIES disjoint sum, λ, + θ₀.
     * Resumable: on a tensor of one chunk, the rescale pass (the last, when it runs) has left the
     * models it sparsified as τ̂_j and the others as τ_j in the chunk's tiles.
     */
    private record Combining(List<Model> models, float[] w, boolean consensus, boolean normalize, double lambda, KeepBits kept)
            implements ChunkProgram.Resumable {
        @Override public void chunk(ChunkOps ops, Chunk c, Tile out) {
            List<Tile> tvs = taskVectors(ops, c, models);
            for (int k = 0; k < models.size(); k++) {
                Model m = models.get(k);
                Tile t = tvs.get(k);
                if (m.bits) {
                    // τ̂ = τ where the rescale pass kept it, else +0.0 (its decisions, bit for bit), then · ‖τ‖₁/‖τ̂‖₁
                    kept.apply(ops, c.offset(), k, t);
                    if (m.scaled) ops.scale(t, m.factor, t);
                } else {
                    sparsify(ops, c, m, t, m.seen);
                }
            }
            merge(ops, c, tvs, out);
        }

        @Override public boolean canResume() { return models.stream().anyMatch(m -> m.rescale == Backend.Rescale.L1); }

        @Override public void resume(ChunkOps ops, Chunk c, Tile out) {
            List<Tile> tvs = new ArrayList<>(models.size());
            for (Model m : models) {
                Tile t = c.model(m.index);
                // τ̂ = τ̂ · ‖τ‖₁/‖τ̂‖₁ where the rescale pass sparsified it; the others sparsified now, as chunk() does
                if (m.rescale == Backend.Rescale.L1) {
                    if (m.scaled) ops.scale(t, m.factor, t);
                } else {
                    sparsify(ops, c, m, t, m.seen);
                }
                tvs.add(t);
            }
            merge(ops, c, tvs, out);
        }

        private void merge(ChunkOps ops, Chunk c, List<Tile> tvs, Tile out) {
            if (consensus) {
                // W_j = w_j · τ̂_j; s = sign(Σ_j W_j), 0 → +; Δ = Σ_j W_j [sign W_j = s] (/ Σ_j w_j [sign W_j = s], 0 → 1);
                // Δ = λ Δ; θ = θ₀ + Δ — one op (the scratch tile holds the sign where a backend runs the separate ops)
                ops.tiesCombine(c.base(), tvs, w, normalize, lambda != 1, (float) lambda, c.scratch(0), out);
                return;
            }
            // Δ = Σ_j w_j τ̂_j
            ops.weightedSum(tvs, w, out);
            // Δ = Δ / Σ_j w_j   (|Σw| < 1e-8 → 1)
            if (normalize) ops.scale(out, TaskVectors.normalizer(w), out);
            // Δ = λ Δ
            if (lambda != 1) ops.scale(out, (float) lambda, out);
            // θ = θ₀ + Δ
            ops.add(c.base(), out, out);
        }
    }
}
