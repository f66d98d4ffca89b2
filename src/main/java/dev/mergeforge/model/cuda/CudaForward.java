package dev.mergeforge.model.cuda;

import dev.mergeforge.backend.cuda.CublasGemm;
import dev.mergeforge.backend.cuda.CudaBackend;
import dev.mergeforge.backend.cuda.CudaContext;
import dev.mergeforge.backend.cuda.Device;
import dev.mergeforge.backend.cuda.DeviceBuffer;
import dev.mergeforge.backend.cuda.DeviceBufferPool;
import dev.mergeforge.backend.cuda.DeviceOps;
import dev.mergeforge.backend.cuda.ForwardOps;
import dev.mergeforge.backend.cuda.Gemm;
import dev.mergeforge.backend.cuda.cublas.Cublas;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.model.ActivationObserver;
import dev.mergeforge.model.ForwardPass;
import dev.mergeforge.model.LayerWeights;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.ModelConfig;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Function;
import java.util.logging.Logger;

/**
 * The Llama-family forward pass of {@link LlamaModel} on a GPU, for calibration (and logits): the
 * same steps as {@code DecoderLayer} with the products on cuBLAS ({@link Gemm}) and the rest on
 * kernels/calib.cu. Layer by layer like the CPU pass: one decoder layer's weights (converted to
 * float32 on the host) are uploaded at a time, and all sequences go through it before the next.
 * The hidden states of all sequences stay on the device when they fit in the memory budget;
 * otherwise they stay on the host and are streamed through in chunks of whole sequences.
 *
 * <p>Module inputs go to the observer: an {@link dev.mergeforge.model.AbsSumObserver} (the AIM
 * statistic) gets per-layer float64 sums made on the device; any other observer gets the rows,
 * copied back per chunk (module by module, sequence after sequence within a layer).
 *
 * <p>Owns its buffer pool and, when made by {@link #open}, the CUDA context and cuBLAS handle.
 * Not thread-safe.
 */
public final class CudaForward implements ForwardPass, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(CudaForward.class.getName());
    /** Device memory left out of the plan: cuBLAS's workspace, allocation rounding, the driver. */
    static final long RESERVE_BYTES = 768L << 20;
    /** lm_head rows are uploaded in slabs of at most this many floats. */
    static final long LM_HEAD_SLAB_FLOATS = 8L << 20;

    private final LlamaModel model;
    private final ModelConfig c;
    private final Device dev;
    private final DeviceBufferPool pool;
    private final DeviceOps ops;
    private final ForwardOps fops;
    private final Gemm gemm;
    private final long budgetBytes;
    private final boolean ownsDevice;

    /**
     * Opens GPU {@code device} for {@code model}'s forward pass; the plan may use the device memory
     * free now less {@link #RESERVE_BYTES}. Throws with the reason when CUDA or cuBLAS cannot run here.
     */
    public static CudaForward open(LlamaModel model, int device) {
        Optional<String> why = unavailableReason();
        if (why.isPresent()) throw new MergeforgeException("--device cuda:" + device + " is unavailable: " + why.get());
        CudaContext ctx = new CudaContext(device);
        Gemm g = null;
        try {
            g = new CublasGemm();
            return new CudaForward(model, ctx, g, Math.max(0, ctx.freeBytes() - RESERVE_BYTES), true);
        } catch (RuntimeException e) {
            if (g != null) g.close();
            ctx.close();
            throw e;
        }
    }

    /**
     * The GPU index of a {@code --device} value of the forward pass: empty for "cpu", N for
     * "cuda:N" (0 for "cuda"); anything else is a ConfigException naming the value.
     */
    public static OptionalInt parseDevice(String device) {
        if (device == null || !device.matches("cpu|cuda(:[0-9]{1,4})?")) {
            throw new ConfigException("--device " + device + ": expected cpu, cuda or cuda:N (N the GPU index nvidia-smi shows)");
        }
        return device.equals("cpu") ? OptionalInt.empty() : OptionalInt.of(CudaBackend.deviceIndex(device));
    }

    /** Throws unless {@code device} is valid and, for a GPU, usable here (one line: why, and --device cpu). */
    public static void checkDevice(String device) {
        if (parseDevice(device).isEmpty()) return;
        unavailableReason().ifPresent(why -> {
            throw new MergeforgeException("--device " + device + " is unavailable: " + why);
        });
    }

    /** body on the forward pass of {@code device}: the CPU model itself, or a GPU pass opened and closed around it. */
    public static <R> R apply(LlamaModel model, String device, Function<ForwardPass, R> body) {
        OptionalInt gpu = parseDevice(device);
        if (gpu.isEmpty()) return body.apply(model);
        try (CudaForward f = open(model, gpu.getAsInt())) {
            return body.apply(f);
        }
    }

    /** Empty when the forward pass can run on a GPU here, else a one-line reason that suggests --device cpu. */
    public static Optional<String> unavailableReason() {
        Optional<String> r = CudaBackend.unavailableReason().or(Cublas::unavailableReason);
        return r.map(s -> s.contains("--backend java") ? s.replace("--backend java", "--device cpu") : s + ", or use --device cpu");
    }

    /** The pass on any {@link Device} and {@link Gemm} (tests: the kernel emulator and a host GEMM). */
    CudaForward(LlamaModel model, Device dev, Gemm gemm, long budgetBytes, boolean ownsDevice) {
        this.model = model;
        this.c = model.config();
        checkSupported(c, model.name());
        this.dev = dev;
        this.pool = new DeviceBufferPool(dev);
        this.ops = new DeviceOps(dev, pool);
        this.fops = new ForwardOps(dev);
        this.gemm = gemm;
        this.budgetBytes = budgetBytes;
        this.ownsDevice = ownsDevice;
    }

    /** The families whose forward pass the kernels implement (Llama layout, one window for all layers). */
    static final java.util.List<String> COVERED = java.util.List.of("llama", "mistral", "qwen2");

    /** Throws naming the model unless the kernels handle its family and shape (head_dim up to the attention kernel's 256). */
    static void checkSupported(ModelConfig c, String name) {
        if (!COVERED.contains(c.arch().family())) {
            throw new ConfigException(name + ": the CUDA forward pass covers " + String.join(", ", COVERED) + ", not "
                    + c.arch().family() + "; use --device cpu");
        }
        if (c.headDim() > ForwardOps.MAX_HEAD_DIM) {
            throw new ConfigException(name + ": head_dim " + c.headDim() + " is larger than the CUDA attention kernel's "
                    + ForwardOps.MAX_HEAD_DIM + "; use --device cpu");
        }
    }

    @Override
    public String describe() { return dev.describe(); }

    @Override
    public synchronized float[][] hiddenStates(int[][] sequences, ActivationObserver obs) {
        float[][] out = new float[sequences.length][];
        run(sequences, obs, Output.HIDDEN, out);
        return out;
    }

    @Override
    public synchronized float[][] logits(int[][] sequences) {
        float[][] out = new float[sequences.length][];
        run(sequences, ActivationObserver.NONE, Output.LOGITS, out);
        return out;
    }

    @Override
    public synchronized void observe(int[][] sequences, ActivationObserver obs) { run(sequences, obs, Output.NONE, null); }

    /** What a run copies back per sequence: nothing, lm_head's input, or the logits. */
    enum Output { NONE, HIDDEN, LOGITS }

    private void run(int[][] seqs, ActivationObserver obs, Output output, float[][] out) {
        if (seqs.length == 0) return;
        dev.makeCurrent();
        ForwardPlan plan = ForwardPlan.make(c, seqs, budgetBytes, output == Output.LOGITS);
        LOG.info("forward pass on " + dev.describe() + ": " + plan);
        List<DeviceBuffer> held = new ArrayList<>();
        try {
            Work w = new Work(plan, held);
            float[][] hostH = plan.resident() ? null : new float[seqs.length][];
            int[] pos = new int[(int) plan.totalTokens()];
            for (int b = 0; b < seqs.length; b++) {
                // h = embed_tokens[ids]; each token's position in its sequence
                float[] e = model.embed(seqs[b], 0, seqs[b].length);
                if (plan.resident()) dev.upload(MemorySegment.ofArray(e), rows(w.h, plan.starts()[b], seqs[b].length, c.hiddenSize()));
                else hostH[b] = e;
                for (int t = 0; t < seqs[b].length; t++) pos[plan.starts()[b] + t] = t;
            }
            dev.upload(MemorySegment.ofArray(pos), w.pos);
            for (int i = 0; i < c.layers(); i++) {
                LayerWeights lw = model.layerWeights(i);
                List<DeviceBuffer> layerHeld = new ArrayList<>();
                try (DeviceObservation ob = new DeviceObservation(obs, dev, pool, fops, seqs)) {
                    DeviceLayer dl = new DeviceLayer(lw, layerHeld);
                    for (ForwardPlan.Chunk ch : plan.chunks()) {
                        DeviceBuffer h = chunkIn(plan, w, ch, seqs, hostH);
                        layer(dl, h, ch, w, ob);
                        chunkOut(plan, w, h, ch, seqs, hostH);
                    }
                    ob.finish();
                } finally {
                    for (DeviceBuffer b : layerHeld) pool.release(b);
                }
            }
            finalNorm(plan, w, seqs, hostH, obs, output, out);
            dev.sync();
        } finally {
            for (DeviceBuffer b : held) pool.release(b);
        }
    }

    /** The chunk's hidden states on the device: a slice of the resident buffer, or uploaded from the host. */
    private DeviceBuffer chunkIn(ForwardPlan plan, Work w, ForwardPlan.Chunk ch, int[][] seqs, float[][] hostH) {
        int hd = c.hiddenSize();
        if (plan.resident()) return rows(w.h, ch.rowOf(ch.first()), ch.tokens(), hd);
        for (int b = ch.first(); b < ch.end(); b++) {
            dev.upload(MemorySegment.ofArray(hostH[b]), rows(w.h, ch.rowOf(b) - ch.row0(), seqs[b].length, hd));
        }
        return w.h;
    }

    private void chunkOut(ForwardPlan plan, Work w, DeviceBuffer h, ForwardPlan.Chunk ch, int[][] seqs, float[][] hostH) {
        if (plan.resident()) return;
        for (int b = ch.first(); b < ch.end(); b++) {
            dev.download(rows(h, ch.rowOf(b) - ch.row0(), seqs[b].length, c.hiddenSize()), MemorySegment.ofArray(hostH[b]));
        }
    }

    /** Rows [row0, row0 + n) of a [rows, width] float32 buffer. */
    static DeviceBuffer rows(DeviceBuffer b, long row0, long n, long width) { return b.slice(4 * row0 * width, 4 * n * width); }

    /** One decoder layer over a chunk's rows, h [rows, hidden] updated in place (DecoderLayer.forward's steps). */
    private void layer(DeviceLayer w, DeviceBuffer h, ForwardPlan.Chunk ch, Work s, DeviceObservation ob) {
        int hd = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), f = c.intermediateSize(), rows = ch.tokens();
        DeviceBuffer pos = s.pos.slice(4L * ch.row0(), 4L * rows);
        String p = c.arch().layerPrefix() + w.index + ".";
        ob.see(h, ch, hd, p + "input_layernorm.weight");
        // xn = h / sqrt(mean(h²) + eps) ⊙ g
        fops.rmsNorm(h, w.inputNorm, c.rmsNormEps(), hd, s.xn, rows);
        ob.see(s.xn, ch, hd, p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight");
        // q = xn·Wqᵀ + bq, k = xn·Wkᵀ + bk, v = xn·Wvᵀ + bv
        linear(s.xn, rows, hd, w.q, qd, w.qBias, s.q);
        linear(s.xn, rows, hd, w.k, kvd, w.kBias, s.k);
        linear(s.xn, rows, hd, w.v, kvd, w.vBias, s.v);
        // rotate q and k by their positions in their sequences
        fops.rope(s.q, s.cos, s.sin, pos, c.heads(), c.headDim(), rows);
        fops.rope(s.k, s.cos, s.sin, pos, c.kvHeads(), c.headDim(), rows);
        fops.attention(s.q, s.k, s.v, pos, c.heads(), c.kvHeads(), c.headDim(), c.slidingWindow(), s.scale, s.attn, rows);
        ob.see(s.attn, ch, qd, p + "self_attn.o_proj.weight");
        // h += attn·Woᵀ + bo
        linear(s.attn, rows, qd, w.o, hd, w.oBias, s.tmp);
        ops.add(h, s.tmp, h, (long) rows * hd);
        ob.see(h, ch, hd, p + "post_attention_layernorm.weight");
        fops.rmsNorm(h, w.postNorm, c.rmsNormEps(), hd, s.xn, rows);
        ob.see(s.xn, ch, hd, p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight");
        linear(s.xn, rows, hd, w.gate, f, w.gateBias, s.gate);
        linear(s.xn, rows, hd, w.up, f, w.upBias, s.up);
        // a = silu(gate) ⊙ up
        fops.siluMul(s.gate, s.up, (long) rows * f);
        ob.see(s.gate, ch, f, p + "mlp.down_proj.weight");
        // h += a·Wdᵀ + bd
        linear(s.gate, rows, f, w.down, hd, w.downBias, s.tmp);
        ops.add(h, s.tmp, h, (long) rows * hd);
    }

    /** y = x·Wᵀ (+ b) for x [rows, in], W [out, in]. */
    private void linear(DeviceBuffer x, int rows, int in, DeviceBuffer w, int out, DeviceBuffer bias, DeviceBuffer y) {
        gemm.linear(x, w, y, rows, in, out, out);
        if (bias != null) fops.biasAdd(y, bias, out, (long) rows * out);
    }

    /** The final norm (observed before and after, as model.norm and lm_head) and what the caller asked for. */
    private void finalNorm(ForwardPlan plan, Work w, int[][] seqs, float[][] hostH, ActivationObserver obs, Output output,
                           float[][] out) {
        int hd = c.hiddenSize(), vocab = c.vocabSize();
        DeviceBuffer g = upload(model.finalNormWeight(), w.held);
        LmHead lm = output == Output.LOGITS ? new LmHead(w.held) : null;
        try (DeviceObservation ob = new DeviceObservation(obs, dev, pool, fops, seqs)) {
            for (ForwardPlan.Chunk ch : plan.chunks()) {
                DeviceBuffer h = chunkIn(plan, w, ch, seqs, hostH);
                ob.see(h, ch, hd, "model.norm.weight");
                fops.rmsNorm(h, g, c.rmsNormEps(), hd, w.xn, ch.tokens());
                ob.see(w.xn, ch, hd, "lm_head.weight");
                switch (output) {
                    case NONE -> { }
                    case HIDDEN -> {
                        for (int b = ch.first(); b < ch.end(); b++) {
                            out[b] = new float[seqs[b].length * hd];
                            dev.download(rows(w.xn, ch.rowOf(b) - ch.row0(), seqs[b].length, hd), MemorySegment.ofArray(out[b]));
                        }
                    }
                    case LOGITS -> {
                        lm.logits(w.xn, ch.tokens(), w.logits);
                        for (int b = ch.first(); b < ch.end(); b++) {
                            out[b] = new float[seqs[b].length * vocab];
                            dev.download(rows(w.logits, ch.rowOf(b) - ch.row0(), seqs[b].length, vocab), MemorySegment.ofArray(out[b]));
                        }
                    }
                }
            }
            ob.finish();
        }
    }

    /** lm_head on the device: resident when it fits one slab, else uploaded slab by slab for each chunk. */
    private final class LmHead {
        private final int slabRows;
        private final DeviceBuffer slab;
        private final float[] host;
        private int loadedRow0 = -1;

        LmHead(List<DeviceBuffer> held) {
            int hd = c.hiddenSize(), vocab = c.vocabSize();
            slabRows = (int) Math.max(1, Math.min(vocab, LM_HEAD_SLAB_FLOATS / hd));
            host = new float[slabRows * hd];
            slab = keep(pool.borrow(4L * slabRows * hd, "lm_head slab"), held);
        }

        /** logits [rows, vocab] = x·lm_headᵀ for x [rows, hidden]. */
        void logits(DeviceBuffer x, int rows, DeviceBuffer logits) {
            int hd = c.hiddenSize(), vocab = c.vocabSize();
            for (int r0 = 0; r0 < vocab; r0 += slabRows) {
                int n = Math.min(slabRows, vocab - r0);
                if (loadedRow0 != r0) {
                    model.lmHeadRows(r0, n, host);
                    dev.upload(MemorySegment.ofArray(host).asSlice(0, 4L * n * hd), slab);
                    loadedRow0 = r0;
                }
                // logits[:, r0 + o] = x · slab[o]
                gemm.linear(x, slab, logits.slice(4L * r0, logits.capacity - 4L * r0), rows, hd, n, vocab);
            }
        }
    }

    /** One layer's weights on the device (biases null when absent). */
    private final class DeviceLayer {
        final int index;
        final DeviceBuffer inputNorm, q, qBias, k, kBias, v, vBias, o, oBias, postNorm, gate, gateBias, up, upBias, down, downBias;

        DeviceLayer(LayerWeights w, List<DeviceBuffer> held) {
            index = w.index();
            inputNorm = upload(w.inputNorm(), held);
            q = upload(w.q(), held);
            qBias = upload(w.qBias(), held);
            k = upload(w.k(), held);
            kBias = upload(w.kBias(), held);
            v = upload(w.v(), held);
            vBias = upload(w.vBias(), held);
            o = upload(w.o(), held);
            oBias = upload(w.oBias(), held);
            postNorm = upload(w.postNorm(), held);
            gate = upload(w.gate(), held);
            gateBias = upload(w.gateBias(), held);
            up = upload(w.up(), held);
            upBias = upload(w.upBias(), held);
            down = upload(w.down(), held);
            downBias = upload(w.downBias(), held);
        }
    }

    /** A device copy of a float array (null for null), released with {@code held}. */
    private DeviceBuffer upload(float[] a, List<DeviceBuffer> held) {
        if (a == null) return null;
        DeviceBuffer b = keep(pool.borrow(4L * a.length, "weights"), held);
        dev.upload(MemorySegment.ofArray(a), b);
        return b;
    }

    private static DeviceBuffer keep(DeviceBuffer b, List<DeviceBuffer> held) {
        held.add(b);
        return b;
    }

    /** The working buffers of a run, sized by the plan for its largest chunk. */
    private final class Work {
        final List<DeviceBuffer> held;
        final DeviceBuffer h, xn, tmp, q, k, v, attn, gate, up, pos, cos, sin, logits;
        final float scale;

        Work(ForwardPlan plan, List<DeviceBuffer> held) {
            this.held = held;
            long t = plan.chunkTokens();
            int hd = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), f = c.intermediateSize();
            h = buffer(4L * hd * (plan.resident() ? plan.totalTokens() : t), "hidden states");
            xn = buffer(4L * hd * t, "normed activations");
            tmp = buffer(4L * hd * t, "projection output");
            q = buffer(4L * qd * t, "queries");
            k = buffer(4L * kvd * t, "keys");
            v = buffer(4L * kvd * t, "values");
            attn = buffer(4L * qd * t, "attention output");
            gate = buffer(4L * f * t, "MLP gate");
            up = buffer(4L * f * t, "MLP up");
            pos = buffer(4L * plan.totalTokens(), "positions");
            logits = plan.logits() ? buffer(4L * c.vocabSize() * t, "logits") : null;
            float[][] tables = model.ropeTables(plan.maxLen());
            cos = upload(tables[0], held);
            sin = upload(tables[1], held);
            // scale = 1/sqrt(d), rounded to float32 as DecoderLayer does
            scale = (float) (1.0 / Math.sqrt(c.headDim()));
        }

        private DeviceBuffer buffer(long bytes, String what) { return keep(pool.borrow(bytes, what), held); }
    }

    @Override
    public void close() {
        try {
            pool.close();
            gemm.close();
        } finally {
            if (ownsDevice) dev.close();
        }
    }
}
