package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.linalg.CpuDenseSolver;
import dev.mergeforge.linalg.SpdSolver;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.HostArrays;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.io.Elements;
import dev.mergeforge.io.Madvise;
import dev.mergeforge.linalg.Blas;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;
import java.util.Locale;

/**
 * RegMean (Jin et al. 2023, "Dataless Knowledge Fusion by Merging Weights of Language Models",
 * arXiv 2212.09849), docs/data-informed.md "What is computed". For every nn.Linear weight W [out, in] with per-model Grams
 * Gᵢ = XᵢᵀXᵢ/tokens [in, in]:
 * G̃ᵢ = αGᵢ + (1−α)diag(Gᵢ) and W* = [(Σwᵢ G̃ᵢ + ρ·mean(diag)·I)⁻¹ · Σwᵢ G̃ᵢWᵢᵀ]ᵀ, the
 * minimiser of Σᵢ wᵢ‖XᵢWᵀ − XᵢWᵢᵀ‖² for α = 1, ρ = 0. Solved in float64 by Cholesky
 * ({@link SpdSolver}); the products and the solve run on the GPU with cuBLAS/cuSOLVER under
 * {@code --backend cuda} ({@link Backend#denseSolver()}), else on the CPU. A matrix that is not
 * positive definite falls back to a basic least-squares solution by pivoted Cholesky on the CPU,
 * with a note. Every other tensor (embeddings, norms, biases) is Σwᵢθᵢ/Σwᵢ. The base model,
 * when given, is not merged (it is there for AIM).
 *
 * <p>Like the paper's code, the (1−α) shrink applies to each model's Gram before the sum and
 * ρ·mean(diag) is added after it; α = 0 gives a per-input-channel weighted average of the rows.
 *
 * <p>A weight stored (in, out) (GPT-2's Conv1D, {@code storedInOut}; the planner sets it from the
 * architecture descriptor through {@link MethodSpec#STORED_IN_OUT_PARAM}) holds V = Wᵀ, so the
 * same formula reads V* = W*ᵀ = A⁻¹ · Σwᵢ G̃ᵢVᵢ: the stored tensor is the right-hand side and the
 * solution as they are, with no transpose (docs/data-informed.md).
 *
 * <p>As passes over chunks ({@link ChunkedMethod}, docs/data-informed.md "Memory"): a weight
 * (out, in) streams in chunks of whole rows, its output rows; each chunk's rows are solved against
 * the one factor of A, made when the first chunk needs it ({@link SpdSolver.Factored}), and
 * written. The float64 factor and one model's shrunk Gram (16·in² bytes, 24·in² with OpenBLAS's
 * copy of the matrix it works on) are held outside the memory budget ({@link ChunkProgram#heldBytes}):
 * the plan states them; everything else follows the budget. The Grams are read from their files as
 * each chunk needs them, never copied whole in float32. Solves run on the CPU; a weight stored
 * (in, out) takes the whole-tensor path (its rows are input channels), which uses the backend's
 * dense solver. Tensors without Grams are the weighted average as one combine pass.
 *
 * @param storedInOut true when the weights are stored (in, out) rather than nn.Linear's (out, in)
 */
public record RegMean(double alpha, double ridge, boolean storedInOut) implements ChunkedMethod {
    private static final Parallel PAR = new Parallel(0);

    public static final MethodSpec SPEC = new MethodSpec("regmean",
            "per Linear: W* = [(sum w_i G~_i + ridge*mean(diag)*I)^-1 sum w_i G~_i W_i^T]^T, Grams from each model's data; else weighted average",
            "https://arxiv.org/abs/2212.09849", MethodSpec.BaseUse.OPTIONAL, 1, Integer.MAX_VALUE,
            List.of(ParamSpec.number("alpha", 0.9, 0, 1, false, "share of the Gram's off-diagonal kept (G~ = alpha*G + (1-alpha)*diag(G))"),
                    ParamSpec.number("ridge", 0.0, 0, Double.NaN, false, "add ridge * mean(diag) to the diagonal of the summed Gram")),
            List.of(ParamSpec.number("weight", 1.0, 0, Double.NaN, false, "weight of this model, >= 0")),
            g -> new RegMean(g.number("alpha", 0.9), g.number("ridge", 0.0), g.flag(MethodSpec.STORED_IN_OUT_PARAM, false)),
            MethodSpec.Stats.GRAM);

    /** RegMean on nn.Linear weights stored (out, in). */
    public RegMean(double alpha, double ridge) { this(alpha, ridge, false); }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        float[] w = Weights.of(in, "weight");
        if (!in.hasStats()) {
            // θ* = Σ w_i θ_i / Σ w_i
            ctx.backend().weightedSum(in.models(), w, out);
            float sum = Weights.sum(w);
            if (sum != 0f) ctx.backend().scale(out, 1f / sum, out);
            return;
        }
        if (out.shape().rank() != 2) throw new CheckpointException(notLinear(in.tensor(), out.shape()));
        // n = in, rows = out: W [out, in], or V = Wᵀ [in, out] when stored (in, out)
        int rows = Math.toIntExact(out.shape().dim(storedInOut ? 1 : 0)), n = Math.toIntExact(out.shape().dim(storedInOut ? 0 : 1));
        DenseSolver solver = solver(ctx.backend());
        // the float64 solve reads and writes tile memory itself, not through the backend's ops
        ctx.hostAccess(in.models(), in.stats(), List.of(out));
        double[] b = new double[n * rows];
        for (int i = 0; i < w.length; i++) {
            if (w[i] == 0f) continue;
            double[] g = shrunkGram(in.stats().get(i), n);
            double[] wt = storedInOut ? asDoubles(in.models().get(i), n, rows) : transpose(in.models().get(i), rows, n);
            // B += w_i·G~_i·W_iᵀ   [in, out]
            solver.addProduct(w[i], g, n, wt, b, rows);
        }
        // X = (Σ w_i G~_i + ρ·mean(diag)·I)⁻¹ · B
        SpdSolver.Outcome o = SpdSolver.solve(() -> system(in, w, n), n, b, rows, solver, PAR);
        if (!o.positiveDefinite()) ctx.note(notPositiveDefinite(in.tensor(), o, n));
        if (storedInOut) {
            // V* = W*ᵀ = X, already in the stored (in, out) layout
            PAR.forRange(n, 64, (lo, hi) -> {
                for (long j = lo; j < hi; j++) for (int r = 0; r < rows; r++) out.set(j * rows + r, (float) b[(int) j * rows + r]);
            });
            return;
        }
        // W* = Xᵀ
        PAR.forRange(rows, 64, (lo, hi) -> {
            for (long r = lo; r < hi; r++) for (int j = 0; j < n; j++) out.set(r * n + j, (float) b[j * rows + (int) r]);
        });
    }

    private static String notLinear(String tensor, Shape shape) {
        return "regmean: tensor '" + tensor + "' has shape " + shape + " but a Gram; Grams belong to 2-D Linear weights only";
    }

    private String notPositiveDefinite(String tensor, SpdSolver.Outcome o, int n) {
        return String.format(Locale.ROOT, "regmean: '%s': the summed Gram is not positive definite (pivot %d of %d, rank %d); "
                + "used a least-squares solution instead; set ridge > 0 (e.g. 1e-4) to regularise", tensor, o.badPivot(), n, o.rank());
    }

    /**
     * The passes: a weight (out, in) with Grams as row chunks solved against one factor; a tensor
     * without Grams as the weighted average; null (the whole-tensor path) for a weight stored (in, out).
     */
    @Override
    public ChunkProgram program(TensorSetup in) {
        float[] w = Weights.of(in.params(), Weights.allBut(in.params().size(), -1), "weight");
        if (in.stats().isEmpty()) {
            float sum = Weights.sum(w);
            return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> {
                // θ* = Σ w_i θ_i / Σ w_i
                ops.weightedSum(c.models(), w, out);
                if (sum != 0f) ops.scale(out, 1f / sum, out);
            });
        }
        if (in.shape().rank() != 2) throw new CheckpointException(notLinear(in.tensor(), in.shape()));
        if (storedInOut) return null;
        int n = Math.toIntExact(in.shape().dim(1));
        RowSolves solves = new RowSolves(in, w, n);
        // per element of a chunk: B and the transposed rows in float64, and OpenBLAS's copies of both while it multiplies
        return new ChunkProgram(n, 0, List.of(), solves::chunk, false, gramBytes(n), Blas.available() ? 32 : 16);
    }

    /** Bytes the row-chunked solve holds outside the budget: the float64 factor, one shrunk Gram and OpenBLAS's copy of the matrix it works on. */
    public static long gramBytes(long in) {
        return (Blas.available() ? 3L : 2L) * 8L * in * in;
    }

    /**
     * One weight's solves chunk by chunk: A factored when the first chunk needs it, then per chunk of
     * rc rows B = Σ w_i G~_i W_iᵀ [in, rc], X = A⁻¹B, W* rows = Xᵀ. The same products and solves as
     * {@link #merge} on columns [r0, r0 + rc) of its B: each column is computed alone, in the same order.
     */
    private final class RowSolves {
        private final TensorSetup in;
        private final float[] w;
        private final int n;
        /** The weight's output rows, and how many are solved: after the last, the arrays go back to the merge for the next Linear. */
        private final long rows;
        private long solved;
        private SpdSolver.Factored factor;
        /** One model's G~ [in, in]; a chunk's right-hand sides B and one model's rows transposed [in, rows] (sized by the first, largest chunk). */
        private double[] g, rhs, rowsT;
        /** Every array taken from the merge's {@link HostArrays} (A, which the factor holds, too). */
        private final List<double[]> taken = new java.util.ArrayList<>();

        RowSolves(TensorSetup in, float[] w, int n) {
            this.in = in;
            this.w = w;
            this.n = n;
            this.rows = in.shape().dim(0);
        }

        void chunk(ChunkOps ops, Chunk c, Tile out) {
            int rc = Math.toIntExact(c.size() / n);
            // the float64 solve reads and writes chunk memory itself, not through the ops
            ops.onHost(c.models(), List.of(out), () -> solveRows(c.models(), rc, out));
            solved += rc;
            if (solved == rows) giveBack();
        }

        private double[] take(int length) {
            double[] a = in.arrays().take(length);
            taken.add(a);
            return a;
        }

        /** After the last row: the factor, G~ and the chunk arrays go back to the merge (the next Linear of this width reuses them). */
        private void giveBack() {
            factor = null;
            g = rhs = rowsT = null;
            for (double[] a : taken) in.arrays().give(a);
            taken.clear();
        }

        private void solveRows(List<Tile> models, int rc, Tile out) {
            if (factor == null) {
                // A = Σ w_i G~_i + ρ·mean(diag)·I, factored once for every chunk of rows
                factor = SpdSolver.factor(this::system, n, PAR);
                if (!factor.outcome().positiveDefinite()) in.note(notPositiveDefinite(in.tensor(), factor.outcome(), n));
                g = take(n * n);
            }
            DenseSolver solver = new CpuDenseSolver(PAR);
            if (rhs == null || rhs.length < n * rc) {
                rhs = take(Math.multiplyExact(n, rc));
                rowsT = take(rhs.length);
            }
            double[] b = rhs, wt = rowsT;
            java.util.Arrays.fill(b, 0, n * rc, 0.0);
            for (int i = 0; i < w.length; i++) {
                if (w[i] == 0f) continue;
                shrunkGram(in.stats().get(i), g);
                transposeInto(models.get(i), rc, n, wt);
                // B += w_i·G~_i·W_iᵀ   [in, rc]
                solver.addProduct(w[i], g, n, wt, b, rc);
            }
            // X = A⁻¹·B
            factor.solve(b, rc);
            // W* = Xᵀ
            PAR.forRange(rc, 64, (lo, hi) -> {
                for (long r = lo; r < hi; r++) for (int j = 0; j < n; j++) out.set(r * n + j, (float) b[j * rc + (int) r]);
            });
        }

        /** A = Σ w_i G~_i + ρ·mean(diag)·I from the Gram files, float64. */
        private double[] system() {
            double[] a = take(n * n);
            java.util.Arrays.fill(a, 0.0);
            for (int i = 0; i < w.length; i++) {
                if (w[i] == 0f) continue;
                TensorView gv = in.stats().get(i);
                double wi = w[i];
                readGram(gv, (r, c, v) -> a[r * n + c] += wi * (r == c ? v : alpha * v));
            }
            if (ridge > 0) {
                double mean = 0;
                for (int r = 0; r < n; r++) mean += a[r * n + r];
                mean /= n;
                for (int r = 0; r < n; r++) a[r * n + r] += ridge * mean;
            }
            return a;
        }

        /** G~ = αG + (1−α)diag(G) as float64, from the Gram file. */
        private void shrunkGram(TensorView gv, double[] into) {
            readGram(gv, (r, c, v) -> into[r * n + c] = r == c ? v : alpha * v);
        }

        /**
         * Visits every value of a Gram as float32 widened (as the whole-tensor path loads it), rows in
         * parallel; a NaN or ±Inf is an error naming the file. The file's pages are dropped behind the reading rows.
         */
        private void readGram(TensorView gv, GramCell cell) {
            java.lang.foreign.MemorySegment seg = gv.data();
            DType dt = gv.dtype();
            long[] bad = {-1};
            long rowBytes = (long) n * dt.byteSize();
            PAR.forRange(n, 64, (lo, hi) -> {
                for (int r = (int) lo; r < hi; r++) {
                    for (int c = 0; c < n; c++) {
                        float v = (float) Elements.get(seg, dt, (long) r * n + c);
                        if (!Float.isFinite(v)) synchronized (bad) { bad[0] = bad[0] < 0 ? (long) r * n + c : Math.min(bad[0], (long) r * n + c); }
                        cell.accept(r, c, v);
                    }
                }
                // the rows' pages leave this process as soon as they are read (a Gram of in = 8192 is 268 MB mapped)
                if (seg.isMapped()) Madvise.dontNeed(seg.asSlice(lo * rowBytes, (hi - lo) * rowBytes));
            });
            if (seg.isMapped()) Madvise.dontNeed(seg);
            if (bad[0] >= 0) {
                throw new CheckpointException("regmean: Gram '" + gv.name() + "' in " + gv.source() + " has a non-finite value ("
                        + Elements.get(seg, dt, bad[0]) + ") at element " + bad[0] + " (for tensor '" + in.tensor() + "'); recompute it with"
                        + " `mergeforge calibrate MODEL --stat gram`");
            }
        }
    }

    @FunctionalInterface
    private interface GramCell {
        void accept(int r, int c, double v);
    }

    /** The backend's device solver (cuBLAS/cuSOLVER under --backend cuda), else the CPU's; the least-squares fallback is always the CPU's. */
    static DenseSolver solver(Backend backend) {
        return backend.denseSolver().orElseGet(() -> new CpuDenseSolver(PAR));
    }

    /** A = Σ w_i G~_i + ρ·mean(diag)·I, float64. */
    private double[] system(MergeInputs in, float[] w, int n) {
        double[] a = new double[n * n];
        for (int i = 0; i < w.length; i++) {
            if (w[i] == 0f) continue;
            Tile g = in.stats().get(i);
            double wi = w[i];
            PAR.forRange(n, 64, (lo, hi) -> {
                for (int r = (int) lo; r < hi; r++) {
                    for (int c = 0; c < n; c++) {
                        double v = g.get((long) r * n + c);
                        // G~ = αG off the diagonal, G on it
                        a[r * n + c] += wi * (r == c ? v : alpha * v);
                    }
                }
            });
        }
        if (ridge > 0) {
            double mean = 0;
            for (int r = 0; r < n; r++) mean += a[r * n + r];
            mean /= n;
            for (int r = 0; r < n; r++) a[r * n + r] += ridge * mean;
        }
        return a;
    }

    /** G~ = αG + (1−α)diag(G) as float64. */
    private double[] shrunkGram(Tile g, int n) {
        double[] out = new double[n * n];
        PAR.forRange(n, 64, (lo, hi) -> {
            for (int r = (int) lo; r < hi; r++) {
                for (int c = 0; c < n; c++) {
                    double v = g.get((long) r * n + c);
                    out[r * n + c] = r == c ? v : alpha * v;
                }
            }
        });
        return out;
    }

    /** V [in, out] as float64 from a weight already stored (in, out). */
    private static double[] asDoubles(Tile v, int n, int rows) {
        double[] t = new double[n * rows];
        PAR.forRange(n, 64, (lo, hi) -> {
            for (int j = (int) lo; j < hi; j++) for (int r = 0; r < rows; r++) t[j * rows + r] = v.get((long) j * rows + r);
        });
        return t;
    }

    /** Wᵀ [in, rows] as float64 from W [rows, in], into the first in·rows elements of {@code t}. */
    private static void transposeInto(Tile w, int rows, int n, double[] t) {
        PAR.forRange(n, 64, (lo, hi) -> {
            for (int j = (int) lo; j < hi; j++) for (int r = 0; r < rows; r++) t[j * rows + r] = w.get((long) r * n + j);
        });
    }

    /** Wᵀ [in, out] as float64 from W [out, in]. */
    private static double[] transpose(Tile w, int rows, int n) {
        double[] t = new double[n * rows];
        PAR.forRange(n, 64, (lo, hi) -> {
            for (int j = (int) lo; j < hi; j++) for (int r = 0; r < rows; r++) t[j * rows + r] = w.get((long) r * n + j);
        });
        return t;
    }
}
