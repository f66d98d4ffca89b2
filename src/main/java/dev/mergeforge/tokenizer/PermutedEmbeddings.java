package dev.mergeforge.tokenizer;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.DerivedTensors;
import dev.mergeforge.io.Elements;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Shape;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * An embedding or output-head tensor of every model that feeds one merged tensor, with its rows
 * laid out in the merged vocabulary, as mergekit 0.1.4's PermutedEmbeddings lays them out
 * (docs/config.md, "Tokenizers and vocabularies"). For a model and output token:
 * <ul>
 *   <li>the model's own row of that token, unless the token's rule says {@code force};</li>
 *   <li>else the token's default row: its rule's source if the config gives one; else the row of
 *       the only model that has the token; else the base model's row if the base has it; else the
 *       mean of the rows of the models that have it; a zero row if none has it;</li>
 *   <li>rows past the vocabulary ({@code pad_to_multiple_of}) are the mean of the model's rows above.</li>
 * </ul>
 * Each result is a derived view ({@link DerivedTensors}) computed row by row when the merge reads it.
 */
public final class PermutedEmbeddings {
    private static final Logger LOG = Logger.getLogger(PermutedEmbeddings.class.getName());

    private PermutedEmbeddings() {}

    /** One default row: a zero row (empty), or the mean of (participant, row) pairs. */
    private record Default(List<int[]> rows) {}

    /**
     * The permuted views of tensor {@code name}, one per participant (model reference to its view
     * of that tensor, base first when there is one).
     *
     * @param vocabs the participants' own vocabularies (for {@code model_token} sources given by token)
     */
    public static Map<String, TensorView> views(DerivedTensors derived, String name, OutputVocab ov, TokenSettings ts, String baseRef,
                                                Map<String, TensorView> sources, Map<String, Vocab> vocabs) {
        List<String> refs = new ArrayList<>(sources.keySet());
        TensorView first = sources.get(refs.getFirst());
        long cols = first.shape().rank() == 2 ? first.shape().dim(1) : -1;
        for (String r : refs) {
            TensorView v = sources.get(r);
            if (v.shape().rank() != 2 || v.shape().dim(1) != cols) {
                throw new CheckpointException("tensor '" + name + "' has shape " + v.shape() + " in " + v.source() + " but " + first.shape() + " in "
                        + first.source() + "; embedding widths must match to merge vocabularies");
            }
            int[] perm = ov.perms().get(r);
            if (perm == null) throw new IllegalStateException("no vocabulary permutation for " + r);
            long rows = v.shape().dim(0);
            for (int i = 0; i < perm.length; i++) {
                if (perm[i] >= rows) {
                    throw new CheckpointException("tensor '" + name + "' has " + rows + " rows in " + v.source() + " but " + r + "'s tokenizer puts token '"
                            + ov.tokens().get(i) + "' at row " + perm[i] + " (config.json vocab_size is larger than the tensor); fix vocab_size in its config.json");
                }
            }
        }
        int n = ov.size(), padded = ts.paddedSize(n);
        if (padded == n && ts.tokens().isEmpty() && refs.stream().allMatch(r -> identity(ov.perms().get(r), sources.get(r).shape().dim(0)))) {
            return sources; // every model already has the merged vocabulary's rows in its order
        }
        Default[] defaults = new Default[n];
        boolean[] force = new boolean[n];
        List<String> inNone = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String tok = ov.tokens().get(i);
            TokenSettings.TokenRule rule = ts.tokens().get(tok);
            if (rule != null) {
                defaults[i] = fromRule(tok, i, rule.source(), refs, ov, sources, vocabs);
                force[i] = rule.force();
                continue;
            }
            boolean someLack = false;
            List<int[]> present = new ArrayList<>();
            for (int j = 0; j < refs.size(); j++) {
                int row = ov.perms().get(refs.get(j))[i];
                if (row >= 0) present.add(new int[] {j, row});
                else someLack = true;
            }
            if (!someLack) continue; // every model has its own row: no default is read
            if (present.isEmpty()) inNone.add(tok);
            int b = baseRef == null ? -1 : refs.indexOf(baseRef);
            if (present.size() > 1 && b >= 0 && ov.perms().get(baseRef)[i] >= 0) present = List.of(new int[] {b, ov.perms().get(baseRef)[i]});
            defaults[i] = new Default(present);
        }
        if (!inNone.isEmpty()) {
            LOG.warning(inNone.size() + " tokens are in none of the models feeding " + name + " (first: " + String.join(", ", inNone.subList(0, Math.min(5, inNone.size())))
                    + "); their rows are zero");
        }
        Map<String, TensorView> out = new LinkedHashMap<>();
        for (int j = 0; j < refs.size(); j++) {
            String ref = refs.get(j);
            TensorView own = sources.get(ref);
            int[] perm = ov.perms().get(ref);
            List<TensorView> srcViews = refs.stream().map(sources::get).toList();
            Rows rows = new Rows(derived, own, perm, force, defaults, srcViews, n, (int) cols);
            out.put(ref, derived.create(name, own.dtype(), Shape.of(padded, cols), own.source() + " (rows in the merged vocabulary)", rows::fill));
        }
        return out;
    }

    private static boolean identity(int[] perm, long rows) {
        if (perm.length != rows) return false;
        for (int i = 0; i < perm.length; i++) if (perm[i] != i) return false;
        return true;
    }

    private static Default fromRule(String tok, int id, TokenSettings.Source s, List<String> refs, OutputVocab ov,
                                    Map<String, TensorView> sources, Map<String, Vocab> vocabs) {
        String key = "tokenizer.tokens['" + tok + "'].source";
        return switch (s) {
            case TokenSettings.Source.Zero z -> new Default(List.of());
            case TokenSettings.Source.Model m -> {
                int j = participant(refs, m.model(), key);
                int row = ov.perms().get(m.model())[id];
                if (row < 0) throw new ConfigException(key + ": token '" + tok + "' is not in " + m.model() + "'s vocabulary; take its row from a model that has it");
                yield new Default(List.<int[]>of(new int[] {j, row}));
            }
            case TokenSettings.Source.ModelToken mt -> {
                int j = participant(refs, mt.model(), key);
                int row;
                if (mt.tokenId() != null) {
                    row = mt.tokenId();
                } else {
                    Integer r = vocabs.get(mt.model()).ids().get(mt.token());
                    if (r == null) throw new ConfigException(key + ".token: '" + mt.token() + "' is not in " + mt.model() + "'s vocabulary; check its spelling in tokenizer.json");
                    row = r;
                }
                long rows = sources.get(mt.model()).shape().dim(0);
                if (row < 0 || row >= rows) throw new ConfigException(key + ": row " + row + " is outside " + mt.model() + "'s " + rows + " rows; give an id below " + rows);
                yield new Default(List.<int[]>of(new int[] {j, row}));
            }
        };
    }

    private static int participant(List<String> refs, String model, String key) {
        int j = refs.indexOf(model);
        if (j < 0) throw new ConfigException(key + ": model '" + model + "' is not one of the merged models (" + String.join(", ", refs) + "); name one of them");
        return j;
    }

    /**
     * One model's rows in the merged vocabulary, computed for any range of elements: each row gathered
     * from its source rows on demand (own, default or padding), the bits of computing the whole tensor
     * row by row. Padding rows are the mean of the n rows above, whose column sums (in double, rows in
     * order, each value as stored) are computed once, when a padding row is first read.
     */
    /** Rows gathered between two drops of the sources' pages ({@code Rows.dropSources}). */
    static final int DROP_ROWS = 256;

    /**
     * Bytes of stored source pages a permuted view of rows of {@code rowBytes} keeps mapped at most
     * while it computes: {@link #DROP_ROWS} rows, each with the pages the kernel maps around it.
     * The memory budget counts it for a tensor with computed inputs (run/MemoryBudget).
     */
    public static long mappedSourceBytes(long rowBytes) { return DROP_ROWS * (rowBytes + 2 * dev.mergeforge.io.Madvise.FAULT_AROUND); }

    private static final class Rows {
        private final DerivedTensors derived;
        private final TensorView own;
        private final int[] perm;
        private final boolean[] force;
        private final Default[] defaults;
        private final List<TensorView> srcs;
        private final int n, cols;
        private double[] padSums;

        Rows(DerivedTensors derived, TensorView own, int[] perm, boolean[] force, Default[] defaults, List<TensorView> srcs, int n, int cols) {
            this.derived = derived;
            this.own = own;
            this.perm = perm;
            this.force = force;
            this.defaults = defaults;
            this.srcs = srcs;
            this.n = n;
            this.cols = cols;
        }

        /** Elements [from, from + count) into dst, row by row. */
        void fill(long from, long count, MemorySegment dst) {
            Scratch s = new Scratch(cols);
            for (long i = from / cols, last = (from + count - 1) / cols; i <= last; i++) {
                long at = i * cols;
                int j0 = (int) (Math.max(from, at) - at), j1 = (int) (Math.min(from + count, at + cols) - at);
                row((int) i, j0, j1, dst, at + j0 - from, s);
                if ((i + 1) % DROP_ROWS == 0) dropSources();
            }
            dropSources();
        }

        /**
         * Drops the stored sources' pages from this process (they stay in the page cache): a gather
         * in another order than the source's leaves the pages the kernel mapped around each row it
         * read (fault-around), which dropping each row's own pages does not reach. Done every
         * {@link #DROP_ROWS} rows and after each range, so the pages mapped stay near
         * {@link #mappedSourceBytes} whatever the range (a whole window, or the padding rows' sums over
         * every row, mapped up to the whole source before).
         */
        private void dropSources() {
            for (TensorView v : srcs) if (v.data().isMapped()) dev.mergeforge.io.Madvise.dontNeed(v.data());
        }

        /** One row's default sum and one source row's bytes (of any float dtype), reused across the rows of a call. */
        private record Scratch(double[] acc, MemorySegment part) {
            Scratch(int cols) { this(new double[cols], MemorySegment.ofArray(new long[cols])); }
        }

        /** Columns [j0, j1) of row i, written at element {@code to} of dst. */
        private void row(int i, int j0, int j1, MemorySegment dst, long to, Scratch scratch) {
            long es = own.dtype().byteSize();
            if (i >= n) {
                // padding row: the mean of the n rows above
                double[] sum = padSums();
                for (int c = j0; c < j1; c++) Elements.put(dst, own.dtype(), to + c - j0, sum[c] / n);
            } else if (perm[i] >= 0 && !force[i]) {
                // own row: the stored bytes as they are
                derived.read(own, (long) perm[i] * cols + j0, j1 - j0, dst.asSlice(to * es, (j1 - j0) * es));
            } else {
                // default row: mean of its source rows (empty: zero), computed in double
                double[] acc = scratch.acc();
                java.util.Arrays.fill(acc, 0, j1 - j0, 0.0);
                List<int[]> rows = defaults[i].rows();
                for (int[] s : rows) {
                    TensorView src = srcs.get(s[0]);
                    MemorySegment part = scratch.part();
                    derived.read(src, (long) s[1] * cols + j0, j1 - j0, part);
                    for (int c = 0; c < j1 - j0; c++) acc[c] += 1.0 * Elements.get(part, src.dtype(), c);
                }
                for (int c = 0; c < j1 - j0; c++) Elements.put(dst, own.dtype(), to + c, rows.isEmpty() ? 0.0 : acc[c] / rows.size());
            }
        }

        /** Column sums of rows 0..n-1 as stored, in row order (once). */
        private synchronized double[] padSums() {
            if (padSums != null) return padSums;
            double[] sum = new double[cols];
            MemorySegment buf = MemorySegment.ofArray(new long[cols]);
            Scratch s = new Scratch(cols);
            for (int i = 0; i < n; i++) {
                row(i, 0, cols, buf, 0, s);
                for (int c = 0; c < cols; c++) sum[c] += Elements.get(buf, own.dtype(), c);
                if ((i + 1) % DROP_ROWS == 0) dropSources();
            }
            dropSources();
            return padSums = sum;
        }
    }
}
