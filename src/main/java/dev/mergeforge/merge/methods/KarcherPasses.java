package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.KeptFloats;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@link Karcher}'s mean as passes over chunks (docs/methods.md, "Passes over chunks"). The iterate u
 * is a whole-tensor vector, computed chunk by chunk with the float32 ops of the whole-tensor path in
 * the same order — so the same bits — and every norm and dot is a {@link BlockSum} in the canonical
 * order, so the convergence test sees the very numbers of the whole-tensor path. Passes: ‖x_i‖; the
 * mean's norm ‖Σ a_i u_i‖; then per step (one repeating pass in three phases) the dots u·u_i, ‖T‖
 * (stop when &lt; tol), ‖cos‖T‖ u + sin‖T‖ T/‖T‖‖; the combine scales the final u.
 *
 * <p>The step's last phase keeps each chunk of u as it advanced it (before the renormalisation, whose
 * factor the pass is still summing), and every later pass reads it back and renormalises it: so a
 * step costs one step of elementwise work, as on the whole tensor. A tensor of several chunks keeps
 * them in a temporary file ({@link KeptFloats}, n·4 bytes, memory that does not grow with the
 * tensor); a tensor of one chunk keeps u in its scratch tile 0, which no load overwrites.
 */
final class KarcherPasses {
    private final Karcher method;
    /** Models (the listed base included), and inputs: the models then the base when it is not listed. */
    private final int models, inputs;
    private final long numel;
    /** The iterate of each chunk after the last step, before its renormalisation (a tensor of several chunks). */
    private final KeptFloats kept;
    /** A tensor of one chunk: scratch 0 holds the iterate after the last step, renormalised already. */
    private boolean renormalised;
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

    private KarcherPasses(Karcher method, TensorSetup in, int models, int inputs) {
        this.method = method;
        this.models = models;
        this.inputs = inputs;
        this.numel = in.numel();
        this.kept = new KeptFloats(in.tensor());
        this.acc = sums(inputs);
    }

    /** The program for one tensor: every model, then the base when the config does not list it. */
    static ChunkProgram program(Karcher method, TensorSetup in) {
        int m = in.params().size();
        boolean baseAppended = in.hasBase() && in.baseIndex() < 0;
        int n = m + (baseAppended ? 1 : 0);
        if (n == 1) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.model(0), 1f, out));
        KarcherPasses p = new KarcherPasses(method, in, m, n);
        // scratch: u, T, one unused since T is one sweep (kept so the chunk sizes stay as they were), the base's unit (the base chunk is read-only)
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
                // ‖Σ a_i u_i‖² (the units, not kept, and their sum in one sweep; the factor 1 leaves every value as it is)
                Tile u = c.scratch(0);
                ops.karcherMean(unitInputs(c), scales, List.of(), weights, 1f, u);
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
                if (phase == Phase.TANGENT_NORM && steps.isEmpty() && normU >= method.tol()) {
                    // ‖T‖² at the first iterate: units, u and T in one sweep, only T written
                    ops.sumSquares(firstTangent(ops, c, pending), c.offset(), acc[0]);
                    return;
                }
                List<Tile> us = unitTiles(c);
                Tile u = iterate(ops, c, us);
                switch (phase) {
                    // cos θ_i = u·u_i
                    case DOTS -> { for (int p = 0; p < us.size(); p++) ops.dot(u, us.get(p), c.offset(), acc[p]); }
                    // ‖T‖²
                    case TANGENT_NORM -> ops.sumSquares(tangent(ops, c, us, u, pending), c.offset(), acc[0]);
                    // ‖cos‖T‖ u + sin‖T‖ T/‖T‖‖²
                    case NEXT_NORM -> {
                        advance(ops, u, tangent(ops, c, us, u, pending), pending);
                        keep(ops, c, u);
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

            @Override public void close() { kept.close(); }
        };
    }

    private void combine(ChunkOps ops, Chunk c, Tile out) {
        // no input with a norm above tol: zeros
        if (units.length == 0) { ops.fill(out, 0f); return; }
        // out = (Σ ‖x_i‖/N) u (the units only for the first iterate, and only there: a step's is kept)
        ops.scale(iterate(ops, c, List.of()), (float) Karcher.meanNorm(norms), out);
    }

    /** The inputs taking part, in the order of their units. */
    private List<Tile> unitInputs(Chunk c) {
        List<Tile> xs = new ArrayList<>(units.length);
        for (int i : units) xs.add(input(c, i));
        return xs;
    }

    /** Where the units u_i = x_i/‖x_i‖ go: the models' chunks (in place), the base's in scratch 3 (its chunk is read-only). */
    private List<Tile> unitTiles(Chunk c) {
        List<Tile> us = new ArrayList<>(units.length);
        for (int i : units) us.add(i < models ? input(c, i) : c.scratch(3));
        return us;
    }

    /**
     * The units into {@code us} (none when it is empty: not kept) and the chunk of the iterate after
     * the steps found so far, in scratch 0.
     */
    private Tile iterate(ChunkOps ops, Chunk c, List<Tile> us) {
        Tile u = c.scratch(0);
        if (steps.isEmpty()) {
            // u_i = x_i/‖x_i‖; u = Σ a_i u_i, normalised (or the first unit when that is ~0): one sweep
            boolean degenerate = normU < method.tol();
            ops.karcherMean(unitInputs(c), scales, us, weights, degenerate ? 1f : (float) (1 / normU), u);
            if (degenerate) {
                // u = 1·u_0 (the first unit into u itself where the units are not kept)
                if (us.isEmpty()) ops.scale(input(c, units[0]), scales[0], u);
                ops.scale(us.isEmpty() ? u : us.get(0), 1f, u);
            }
            return u;
        }
        for (int p = 0; p < us.size(); p++) ops.scale(input(c, units[p]), scales[p], us.get(p));
        // u as the last step advanced it (keep), then renormalised: the bits of replaying every step
        if (c.size() < numel) kept.read(ops, c.offset(), 0, u);
        else if (renormalised) return u;
        Step last = steps.getLast();
        if (last.rescale) ops.scale(u, last.inverse, u);
        renormalised = true;
        return u;
    }

    /** Keeps the chunk of u as this step advanced it, before its renormalisation, for the passes after this one. */
    private void keep(ChunkOps ops, Chunk c, Tile u) {
        if (c.size() < numel) kept.write(ops, c.offset(), 0, u);
        else renormalised = false;
    }

    /**
     * T = Σ a_i θ_i/sin θ_i · (u_i − cos θ_i · u) of one step, in scratch 1, over the terms not skipped
     * (one sweep, {@link ChunkOps#karcherTangent}: the bits of T = 0, then per term tmp = weightedSum(u_i, u;
     * 1, −cos θ_i) and T = weightedSum(T, tmp; 1, c_i)).
     */
    private static Tile tangent(ChunkOps ops, Chunk c, List<Tile> us, Tile u, Step s) {
        List<Tile> taking = new ArrayList<>(us.size());
        float[] minusCos = new float[us.size()], coef = new float[us.size()];
        for (int p = 0; p < us.size(); p++) {
            Karcher.Term term = s.terms[p];
            if (term.skip()) continue;
            minusCos[taking.size()] = -term.cos();
            coef[taking.size()] = term.coef();
            taking.add(us.get(p));
        }
        Tile t = c.scratch(1);
        ops.karcherTangent(taking, u, Arrays.copyOf(minusCos, taking.size()), Arrays.copyOf(coef, taking.size()), t);
        return t;
    }

    /** T at the first iterate (normalised, not degenerate) from the inputs, in scratch 1: {@link #tangent}'s bits. */
    private Tile firstTangent(ChunkOps ops, Chunk c, Step s) {
        int[] terms = new int[units.length];
        float[] minusCos = new float[units.length], coef = new float[units.length];
        int n = 0;
        for (int p = 0; p < units.length; p++) {
            Karcher.Term term = s.terms[p];
            if (term.skip()) continue;
            terms[n] = p;
            minusCos[n] = -term.cos();
            coef[n++] = term.coef();
        }
        Tile t = c.scratch(1);
        ops.karcherMeanTangent(unitInputs(c), scales, weights, (float) (1 / normU), Arrays.copyOf(terms, n), Arrays.copyOf(minusCos, n),
                Arrays.copyOf(coef, n), t);
        return t;
    }

    /** u = cos‖T‖ u + sin‖T‖/‖T‖ · T (before the renormalisation). */
    private static void advance(ChunkOps ops, Tile u, Tile t, Step s) {
        ops.scale(u, s.cos, u);
        ops.weightedSum(List.of(u, t), new float[] {1f, s.sin}, u);
    }
}
