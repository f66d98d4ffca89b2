package dev.mergeforge.calib;

import dev.mergeforge.arch.Role;
import dev.mergeforge.arch.TensorRoles;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.model.ActivationObserver;
import dev.mergeforge.model.ModelConfig;
import dev.mergeforge.tensor.Shape;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The RegMean statistic (Jin et al. 2023, arXiv 2212.09849): for the input X [tokens, in] of
 * every nn.Linear, G = XᵀX / tokens [in, in], keyed by the Linear's weight name. Linears that
 * read one input (q/k/v_proj; gate/up_proj) store one Gram under the first name; the others are
 * listed in {@link #sharedInputs}.
 *
 * <p>Precision: the products of one call (one sequence's tokens, at most seq_len of them) are
 * summed in float32 in token order; those per-sequence sums are added into a float64 total, and
 * the total is divided by the token count in float64 and rounded once to float32. So the result
 * does not depend on thread count, and rounding does not grow with the number of sequences.
 *
 * <p>Memory: a layer's Grams are held (as float64) only until the forward pass moves on to the
 * next layer; then they are written to their slots (via {@code sink}) and dropped.
 */
public final class GramStats implements ActivationObserver {
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(GramStats.class.getName());
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One stored Gram: the weight name it is keyed by and its width (in_features). */
    public record Entry(String name, int width) {
        public Shape shape() { return Shape.of(width, width); }
    }

    private final TensorRoles roles;
    private final Map<String, Integer> widths = new LinkedHashMap<>();
    private final Map<String, String> shared;
    private final Parallel par;
    private final Function<String, MemorySegment> sink;
    private final Map<String, double[]> acc = new LinkedHashMap<>();
    private final Map<String, Long> tokens = new LinkedHashMap<>();
    private final Map<String, Object> lastInput = new LinkedHashMap<>();
    private final List<String> written = new ArrayList<>();

    /** @param sink the little-endian float32 slot [width, width] of a stored Gram's name */
    public GramStats(ModelConfig c, Parallel par, Function<String, MemorySegment> sink) {
        this.roles = c.arch();
        for (Entry e : entries(c)) widths.put(e.name(), e.width());
        this.shared = sharedInputs(c);
        this.par = par;
        this.sink = sink;
    }

    /** The stored Grams of a model, layer by layer in its descriptor's order, then an untied head. */
    public static List<Entry> entries(ModelConfig c) {
        List<Entry> out = new ArrayList<>();
        for (int i = 0; i < c.layers(); i++) {
            java.util.Set<String> seen = new java.util.HashSet<>();
            for (var e : c.arch().layerLinearInputs(i, c.variant().experts()).entrySet()) {
                if (seen.add(e.getValue())) out.add(new Entry(e.getKey(), c.inputWidth(c.arch().specOf(e.getKey()).role())));
            }
        }
        if (!c.tieWordEmbeddings()) out.add(new Entry(c.arch().globalName(Role.HEAD), c.hiddenSize()));
        return out;
    }

    /**
     * {other weight name: the stored name whose Gram it shares}: the linears that read the same
     * input as an earlier one in the descriptor (k/v_proj → q_proj, up_proj → gate_proj, an
     * expert's up → its gate).
     */
    public static Map<String, String> sharedInputs(ModelConfig c) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < c.layers(); i++) {
            Map<String, String> firstByInput = new LinkedHashMap<>();
            for (var e : c.arch().layerLinearInputs(i, c.variant().experts()).entrySet()) {
                String stored = firstByInput.putIfAbsent(e.getValue(), e.getKey());
                if (stored != null) m.put(e.getKey(), stored);
            }
        }
        return m;
    }

    @Override
    public void accept(String weightName, float[] x, int offset, int n, int width) {
        String stored = shared.get(weightName);
        if (stored != null) {
            // the forward pass hands a shared input to each of its Linears in turn; check it is the same rows
            if (lastInput.get(stored) != x || !lastInput.get(stored + "#at").equals(offset + ":" + n)) {
                throw new IllegalStateException(weightName + " was expected to read the input of " + stored);
            }
            return;
        }
        Integer w = widths.get(weightName);
        if (w == null) return; // norms: not Linears
        if (w != width) throw new IllegalStateException(weightName + ": input width " + width + ", expected " + w);
        flushBefore(layerOf(weightName));
        lastInput.put(weightName, x);
        lastInput.put(weightName + "#at", offset + ":" + n);
        double[] g = acc.computeIfAbsent(weightName, k -> new double[width * width]);
        // G += Σ_t x_tᵀ·x_t  (float32 within the sequence, float64 across)
        addGram(par, x, offset, n, width, g);
        tokens.merge(weightName, (long) n, Long::sum);
    }

    /** Writes the Grams still held; returns the stored names written over the whole pass. */
    public List<String> finish() {
        flushBefore(Integer.MAX_VALUE);
        for (String name : widths.keySet()) {
            if (!written.contains(name)) throw new IllegalStateException("no input was observed for " + name);
        }
        for (String name : written) {
            if (tokens.getOrDefault(name, 0L) == 0) LOG.warning(name + ": no calibration token reached it (an expert the router never chose); its Gram is zeros");
        }
        return List.copyOf(written);
    }

    /** Tokens the named stored Gram was computed over. */
    public long tokens(String name) { return tokens.getOrDefault(name, 0L); }

    private void flushBefore(int layer) {
        for (var it = acc.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            if (layerOf(e.getKey()) >= layer) continue;
            write(e.getKey(), e.getValue(), tokens.getOrDefault(e.getKey(), 0L));
            written.add(e.getKey());
            it.remove();
        }
    }

    private void write(String name, double[] g, long n) {
        int w = widths.get(name);
        MemorySegment slot = sink.apply(name);
        // G[i][j] = G[j][i] = total[i][j] / tokens, from the lower triangle
        for (int i = 0; i < w; i++) {
            for (int j = 0; j <= i; j++) {
                // an expert no token reached: zeros, not 0/0
                float v = n == 0 ? 0f : (float) (g[i * w + j] / n);
                slot.setAtIndex(F32, (long) i * w + j, v);
                slot.setAtIndex(F32, (long) j * w + i, v);
            }
        }
    }

    /** Decoder layer of a weight name, Integer.MAX_VALUE - 1 after the layers (the head). */
    private int layerOf(String name) {
        int l = roles.layerOf(name);
        return l < 0 ? Integer.MAX_VALUE - 1 : l;
    }

    /**
     * g[i][j] += Σ_t x[t][i]·x[t][j] for j ≤ i (lower triangle; diagonal blocks also touch a few
     * upper entries, which are never read). 4×4 blocks of (i, j) with float32 sums over t.
     */
    static void addGram(Parallel par, float[] x, int offset, int n, int w, double[] g) {
        float[] xt = new float[w * n];
        // xt[i][t] = x[t][i]
        for (int t = 0; t < n; t++) for (int i = 0; i < w; i++) xt[i * n + t] = x[offset + t * w + i];
        int blocks = (w + 3) / 4;
        par.forRange(blocks, 4, (lo, hi) -> {
            for (int bi = (int) lo; bi < hi; bi++) {
                int i0 = bi * 4;
                for (int j0 = 0; j0 <= i0; j0 += 4) {
                    if (i0 + 4 <= w && j0 + 4 <= w) block4(xt, n, w, i0, j0, g);
                    else edge(xt, n, w, i0, j0, g);
                }
            }
        });
    }

    private static void block4(float[] xt, int n, int w, int i0, int j0, double[] g) {
        int a0 = i0 * n, a1 = a0 + n, a2 = a1 + n, a3 = a2 + n;
        int b0 = j0 * n, b1 = b0 + n, b2 = b1 + n, b3 = b2 + n;
        float s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        float s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (int t = 0; t < n; t++) {
            float u0 = xt[a0 + t], u1 = xt[a1 + t], u2 = xt[a2 + t], u3 = xt[a3 + t];
            float v0 = xt[b0 + t], v1 = xt[b1 + t], v2 = xt[b2 + t], v3 = xt[b3 + t];
            s00 += u0 * v0; s01 += u0 * v1; s02 += u0 * v2; s03 += u0 * v3;
            s10 += u1 * v0; s11 += u1 * v1; s12 += u1 * v2; s13 += u1 * v3;
            s20 += u2 * v0; s21 += u2 * v1; s22 += u2 * v2; s23 += u2 * v3;
            s30 += u3 * v0; s31 += u3 * v1; s32 += u3 * v2; s33 += u3 * v3;
        }
        int r0 = i0 * w + j0, r1 = r0 + w, r2 = r1 + w, r3 = r2 + w;
        g[r0] += s00; g[r0 + 1] += s01; g[r0 + 2] += s02; g[r0 + 3] += s03;
        g[r1] += s10; g[r1 + 1] += s11; g[r1 + 2] += s12; g[r1 + 3] += s13;
        g[r2] += s20; g[r2 + 1] += s21; g[r2 + 2] += s22; g[r2 + 3] += s23;
        g[r3] += s30; g[r3 + 1] += s31; g[r3 + 2] += s32; g[r3 + 3] += s33;
    }

    private static void edge(float[] xt, int n, int w, int i0, int j0, double[] g) {
        for (int i = i0; i < Math.min(w, i0 + 4); i++) {
            for (int j = j0; j < Math.min(w, j0 + 4); j++) {
                float s = 0;
                for (int t = 0; t < n; t++) s += xt[i * n + t] * xt[j * n + t];
                g[i * w + j] += s;
            }
        }
    }
}
