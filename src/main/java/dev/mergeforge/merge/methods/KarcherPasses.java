package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@link Karcher}'s mean as passes over chunks (docs/methods.md, "Passes over chunks"). The iterate u
 * is a whole-tensor vector that is never held: each pass recomputes its chunk of u from the chunk's
 * inputs and the scalars the passes before it found, with the float32 ops of the whole-tensor path in
 * the same order — so the same bits — and every norm and dot is a {@link BlockSum} in the canonical
 * order, so the convergence test sees the very numbers of the whole-tensor path. Passes: ‖x_i‖; the
 * mean's norm ‖Σ a_i u_i‖; then per step (one repeating pass in three phases) the dots u·u_i, ‖T‖
 * (stop when &lt; tol), ‖cos‖T‖ u + sin‖T‖ T/‖T‖‖; the combine recomputes the final u and scales it.
 * The price of memory that does not grow with the tensor: a pass in step k recomputes the k steps
 * before it (about 1.5·k² steps of elementwise work for k steps, against k).
 */
final class KarcherPasses {
    private final Karcher method;
    /** Models (the listed base included), and inputs: the models then the base when it is not listed. */
    private final int models, inputs;
    private BlockSum[] acc;
    private double[] norms;
    private int[] units;
    private float[] scales, weights;
    private double normU;
    private final List<Step> steps = new ArrayList<>();
    private Step pending;
    private Phase phase = Phase.DOTS;
    private boolean converged;

    private enum Phase { DOTS, TANGENT_NORM, NEXT_NORM }

    /** One step's scalars: each unit's term, then cos‖T‖ and sin‖T‖/‖T‖, then whether and by what u is renormalised. */
    private static final class Step {
        Karcher.Term[] terms;
        float cos, sin, inverse;
        boolean rescale;
    }

    private KarcherPasses(Karcher method, int models, int inputs) {
        this.method = method;
        this.models = models;
        this.inputs = inputs;
        this.acc = sums(inputs);
    }

    /** The program for one tensor: every model, then the base when the config does not list it. */
    static ChunkProgram program(Karcher method, TensorSetup in) {
        int m = in.params().size();
        boolean baseAppended = in.hasBase() && in.baseIndex() < 0;
        int n = m + (baseAppended ? 1 : 0);
        if (n == 1) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.model(0), 1f, out));
        KarcherPasses p = new KarcherPasses(method, m, n);
        // scratch: u, T, the term being added, the base's unit (the base chunk is read-only)
        return new ChunkProgram(1, baseAppended ? 4 : 3, List.of(p.norms(), p.mean(), p.steps()), p::combine);
    }

    private static BlockSum[] sums(int k) {
        BlockSum[] s = new BlockSum[k];
        for (int i = 0; i < k; i++) s[i] = new BlockSum();
        return s;
    }

    private Tile input(Chunk c, int i) { return i < models ? c.model(i) : c.base(); }

    private ChunkProgram.Pass norms() {
        return new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                // ‖x_i‖²
                for (int i = 0; i < inputs; i++) ops.sumSquares(input(c, i), c.offset(), acc[i]);
            }

            @Override public void end() {
                norms = new double[inputs];
                int[] part = new int[inputs];
                int count = 0;
                for (int i = 0; i < inputs; i++) {
                    norms[i] = Math.sqrt(acc[i].value());
                    // only the inputs with ‖x_i‖ > tol take part
                    if (norms[i] > method.tol()) part[count++] = i;
                }
                units = Arrays.copyOf(part, count);
                scales = new float[count];
                for (int p = 0; p < count; p++) scales[p] = (float) (1 / norms[units[p]]);
                if (count > 0) weights = Karcher.unitWeights(inputs, count);
                acc = sums(1);
            }
        };
    }

    private ChunkProgram.Pass mean() {
        return new ChunkProgram.Pass() {
            @Override public boolean needed() { return units.length > 0; }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                // ‖Σ a_i u_i‖²
                Tile u = c.scratch(0);
                ops.weightedSum(units(ops, c), weights, u);
                ops.sumSquares(u, c.offset(), acc[0]);
            }

            @Override public void end() {
                normU = Math.sqrt(acc[0].value());
                acc = sums(units.length);
            }
        };
    }

    private ChunkProgram.Pass steps() {
        return new ChunkProgram.Pass() {
            @Override public boolean needed() {
                return units.length > 0 && (phase != Phase.DOTS || (!converged && steps.size() < method.maxIter()));
            }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                List<Tile> us = units(ops, c);
                Tile u = iterate(ops, c, us);
                switch (phase) {
                    // cos θ_i = u·u_i
                    case DOTS -> { for (int p = 0; p < us.size(); p++) ops.dot(u, us.get(p), c.offset(), acc[p]); }
                    // ‖T‖²
                    case TANGENT_NORM -> ops.sumSquares(tangent(ops, c, us, u, pending), c.offset(), acc[0]);
                    // ‖cos‖T‖ u + sin‖T‖ T/‖T‖‖²
                    case NEXT_NORM -> {
                        advance(ops, u, tangent(ops, c, us, u, pending), pending);
                        ops.sumSquares(u, c.offset(), acc[0]);
                    }
                }
            }

            @Override public void end() {
                switch (phase) {
                    case DOTS -> {
                        pending = new Step();
                        pending.terms = new Karcher.Term[units.length];
                        for (int p = 0; p < units.length; p++) pending.terms[p] = method.term(acc[p].value(), weights[p]);
                        phase = Phase.TANGENT_NORM;
                    }
                    case TANGENT_NORM -> {
                        double normT = Math.sqrt(acc[0].value());
                        if (normT < method.tol()) {
                            converged = true;
                            pending = null;
                            phase = Phase.DOTS;
                        } else {
                            pending.cos = (float) Math.cos(normT);
                            pending.sin = (float) (Math.sin(normT) / normT);
                            phase = Phase.NEXT_NORM;
                        }
                    }
                    case NEXT_NORM -> {
                        double un = Math.sqrt(acc[0].value());
                        pending.rescale = un > method.tol();
                        pending.inverse = (float) (1 / un);
                        steps.add(pending);
                        pending = null;
                        phase = Phase.DOTS;
                    }
                }
                acc = sums(phase == Phase.DOTS ? units.length : 1);
            }

            @Override public boolean again() { return true; }
        };
    }

    private void combine(ChunkOps ops, Chunk c, Tile out) {
        // no input with a norm above tol: zeros
        if (units.length == 0) { ops.fill(out, 0f); return; }
        // out = (Σ ‖x_i‖/N) u
        ops.scale(iterate(ops, c, units(ops, c)), (float) Karcher.meanNorm(norms), out);
    }

    /** u_i = x_i/‖x_i‖ of the inputs taking part, in the models' chunks (the base's in scratch 3). */
    private List<Tile> units(ChunkOps ops, Chunk c) {
        List<Tile> us = new ArrayList<>(units.length);
        for (int p = 0; p < units.length; p++) {
            int i = units[p];
            Tile x = input(c, i), u = i < models ? x : c.scratch(3);
            ops.scale(x, scales[p], u);
            us.add(u);
        }
        return us;
    }

    /** The chunk of the iterate after the steps found so far, in scratch 0. */
    private Tile iterate(ChunkOps ops, Chunk c, List<Tile> us) {
        Tile u = c.scratch(0);
        // u = Σ a_i u_i, normalised (or the first unit when that is ~0)
        ops.weightedSum(us, weights, u);
        if (normU < method.tol()) ops.scale(us.get(0), 1f, u);
        else ops.scale(u, (float) (1 / normU), u);
        for (Step s : steps) {
            advance(ops, u, tangent(ops, c, us, u, s), s);
            if (s.rescale) ops.scale(u, s.inverse, u);
        }
        return u;
    }

    /** T = Σ a_i θ_i/sin θ_i · (u_i − cos θ_i · u) of one step, in scratch 1 (axpy as weightedSum(y, x; 1, α): the same rounding). */
    private static Tile tangent(ChunkOps ops, Chunk c, List<Tile> us, Tile u, Step s) {
        Tile t = c.scratch(1), tmp = c.scratch(2);
        ops.fill(t, 0f);
        for (int p = 0; p < us.size(); p++) {
            Karcher.Term term = s.terms[p];
            if (term.skip()) continue;
            // tmp = u_i − cos θ_i · u
            ops.weightedSum(List.of(us.get(p), u), new float[] {1f, -term.cos()}, tmp);
            // T = T + c_i · tmp
            ops.weightedSum(List.of(t, tmp), new float[] {1f, term.coef()}, t);
        }
        return t;
    }

    /** u = cos‖T‖ u + sin‖T‖/‖T‖ · T (before the renormalisation). */
    private static void advance(ChunkOps ops, Tile u, Tile t, Step s) {
        ops.scale(u, s.cos, u);
        ops.weightedSum(List.of(u, t), new float[] {1f, s.sin}, u);
    }
}
