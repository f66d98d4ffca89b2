package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.arch.Architecture;
import dev.mergeforge.arch.Components;
import dev.mergeforge.arch.Role;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.tensor.TensorView;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;

/**
 * A decoder of any family with a forward pass here (see {@link dev.mergeforge.arch.Architectures}:
 * Llama 2/3, Mistral, Qwen2/3, Gemma 2/3, Phi-3, OLMo 2, GPT-2, GPT-NeoX, Mixtral, Qwen3-MoE;
 * Touvron et al. 2023, arXiv 2307.09288, for the Llama layout the others vary) read from a
 * Hugging Face directory, computed in float32 as transformers does, from the components its
 * family's descriptor names. (The class keeps its historical name.)
 *
 * <p>Memory: tensors stay in the memory-mapped safetensors files; a decoder layer is converted to
 * float32 only while it runs. {@link #hiddenStates} carries all sequences through one layer before
 * the next is used, so a model larger than RAM can be calibrated; when the heap allows six layers'
 * worth, the next layer converts on a loader thread meanwhile (two layers held). With {@code keepLayers}
 * converted layers (and lm_head) stay resident instead, which decoding needs to be fast.
 *
 * <p>Lifetime: owns the mapped files; close it when done.
 */
public final class LlamaModel implements ForwardPass, AutoCloseable {
    private static final long LM_HEAD_CHUNK_FLOATS = 8L << 20;
    /** Layers' worth of float32 the heap must allow before the next layer is loaded ahead. */
    private static final long AHEAD_HEAP_LAYERS = 6;

    private final WeightSource weights;
    private final ModelConfig config;
    private final Parallel par;
    private final DecoderLayer layer;
    private final LayerTensors[] resident;
    private final boolean keepLayers;
    private final TensorView embed;
    private final TensorView positions;
    private final float embedScale;
    private final TensorView lmHead;
    private final float[] finalNorm;
    private final float[] finalNormBias;
    private final int bos;
    private float[] lmHeadResident;

    private LlamaModel(WeightSource weights, Parallel par, boolean keepLayers, boolean tokenizerHasBos) {
        this.weights = weights;
        this.config = ModelConfig.fromJson(weights.config(), weights.describe() + "/config.json");
        this.par = par;
        this.keepLayers = keepLayers;
        Architecture arch = config.arch();
        this.layer = new DecoderLayer(config, par);
        this.resident = new LayerTensors[config.layers()];
        this.embed = weights.tensor(arch.globalName(Role.EMBEDDING));
        Floats32.checkShape(embed, config.vocabSize(), config.hiddenSize());
        String pos = arch.globalName(Role.POSITION_EMBEDDING);
        this.positions = config.parts().positions() == Components.Positions.LEARNED ? weights.tensor(pos) : null;
        if (positions != null) Floats32.checkShape(positions, config.variant().maxPositions(), config.hiddenSize());
        this.embedScale = embedScale(config);
        String head = arch.globalName(Role.HEAD);
        if (weights.contains(head)) {
            lmHead = weights.tensor(head);
        } else if (config.tieWordEmbeddings()) {
            lmHead = embed;
        } else {
            throw new CheckpointException(weights.describe() + ": no " + head + " and tie_word_embeddings is false; "
                    + "the checkpoint is incomplete");
        }
        Floats32.checkShape(lmHead, config.vocabSize(), config.hiddenSize());
        String norm = arch.globalName(Role.FINAL_NORM);
        this.finalNorm = Floats32.read(weights.tensor(norm), config.hiddenSize());
        String normBias = norm.substring(0, norm.length() - ".weight".length()) + ".bias";
        this.finalNormBias = weights.contains(normBias) ? Floats32.read(weights.tensor(normBias), config.hiddenSize()) : null;
        this.bos = tokenizerHasBos ? config.bosTokenId() : -1;
    }

    /** Gemma scales embeddings by √hidden, rounded to float32 as transformers does; other families by 1. */
    static float embedScale(ModelConfig config) {
        return config.parts().scaleEmbedding() ? (float) Math.sqrt(config.hiddenSize()) : 1f;
    }

    /** Opens a model directory (config.json + model.safetensors or a sharded index). */
    public static LlamaModel open(Path dir, Parallel par, boolean keepLayers) {
        WeightSource w = SafetensorsWeights.open(dir);
        try {
            return new LlamaModel(w, par, keepLayers, tokenizerHasBos(dir));
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    /**
     * A model whose tensors are already in memory ({@code tensors}, in their stored dtypes, valid
     * until this model is closed; closing it leaves them to their owner), with its config.json as
     * {@code config} and its tokenizer files in {@code tokenizerDir}; {@code name} names it in messages.
     */
    public static LlamaModel inMemory(JsonNode config, Map<String, TensorView> tensors, String name, Path tokenizerDir, Parallel par,
                                      boolean keepLayers) {
        return new LlamaModel(new MemoryWeights(config, tensors, name), par, keepLayers, tokenizerHasBos(tokenizerDir));
    }

    public ModelConfig config() { return config; }

    /**
     * The id that starts every sequence, or −1: config.json's {@code bos_token_id}, unless
     * tokenizer_config.json says {@code "bos_token": null} (Qwen2, whose config names a BOS id
     * its tokenizer never adds) or {@code "add_bos_token": false} (GPT-2, GPT-NeoX).
     */
    public int bosTokenId() { return bos; }

    static boolean tokenizerHasBos(Path dir) {
        Path tc = dir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(tc)) return true;
        try {
            JsonNode n = new ObjectMapper().readTree(tc.toFile());
            if (n == null) return true;
            if (n.has("add_bos_token") && n.get("add_bos_token").isBoolean() && !n.get("add_bos_token").asBoolean()) return false;
            return !n.has("bos_token") || !n.get("bos_token").isNull();
        } catch (IOException e) {
            throw new CheckpointException(tc + ": cannot read (" + e.getMessage() + "); fix or remove the file", e);
        }
    }

    /** The model directory, for messages and metadata. */
    public String name() { return weights.describe(); }

    public Parallel parallel() { return par; }

    /** Layer {@code i}'s weights in the Llama layout a device pass uploads (Llama, Mistral, Qwen2 only). */
    public LayerWeights layerWeights(int i) { return LayerWeights.of(layerTensors(i)); }

    /** Layer {@code i}'s weights in float32 by role (converted now unless kept resident). */
    LayerTensors layerTensors(int i) { return layerTensors(i, null); }

    /** {@link #layerTensors(int)}, a converted layer's arrays taken from {@code spare} where it has them (never for kept layers). */
    private LayerTensors layerTensors(int i, SpareArrays spare) {
        LayerTensors w = resident[i];
        if (w != null) return w;
        w = LayerTensors.load(weights, config, i, keepLayers ? null : spare);
        if (keepLayers) resident[i] = w;
        return w;
    }

    /** The final norm's weight in float32. */
    public float[] finalNormWeight() { return finalNorm.clone(); }

    /** Rows [r0, r0 + n) of lm_head (or the tied embeddings) as float32 into out[0..n·hidden). */
    public void lmHeadRows(int r0, int n, float[] out) {
        Floats32.copy(lmHead, (long) r0 * config.hiddenSize(), out, 0, n * config.hiddenSize());
    }

    /**
     * The rotary tables {cos, sin}, each [positions, head_dim/2]: entry (p, i) is cos/sin of
     * p·inv_freq[i], computed as the CPU forward pass computes it (so a device pass rotates alike).
     */
    public float[][] ropeTables(int positions) { return layer.rope().tables(positions); }

    /** h[t] = embed_tokens[ids[t]] for a sequence that starts at position 0. */
    public float[] embed(int[] ids, int from, int n) { return embed(ids, from, n, 0); }

    /** h[t] = embed[ids[t]]·scale (+ positions[pos0 + t] for learned positions), token t at position pos0 + t. */
    float[] embed(int[] ids, int from, int n, int pos0) { return embed(config, name(), embed, positions, embedScale, ids, from, n, pos0); }

    /** {@link #embed(int[], int, int, int)} from the given views (also the layer-by-layer pass's, {@link StagedForward}). */
    static float[] embed(ModelConfig config, String name, TensorView embed, TensorView positions, float embedScale, int[] ids, int from, int n,
                         int pos0) {
        int hd = config.hiddenSize();
        float[] h = new float[n * hd];
        float[] p = positions == null ? null : new float[hd];
        for (int t = 0; t < n; t++) {
            int id = ids[from + t];
            if (id < 0 || id >= config.vocabSize()) {
                throw new ConfigException(name + ": token id " + id + " is outside the vocabulary [0, " + config.vocabSize()
                        + "); the data was tokenized for another model");
            }
            Floats32.copy(embed, (long) id * hd, h, t * hd, hd);
            if (embedScale != 1f) for (int j = 0; j < hd; j++) h[t * hd + j] *= embedScale;
            if (p != null) {
                int at = pos0 + t;
                if (at >= config.variant().maxPositions()) {
                    throw new ConfigException(name + ": position " + at + " is beyond the " + config.variant().maxPositions()
                            + " learned positions; use sequences of at most that many tokens");
                }
                Floats32.copy(positions, (long) at * hd, p, 0, hd);
                // h = wte[id] + wpe[pos]
                for (int j = 0; j < hd; j++) h[t * hd + j] += p[j];
            }
        }
        return h;
    }

    /**
     * Runs every sequence through the whole decoder, one layer at a time, reporting each module's
     * input to {@code obs} (sequence after sequence within a layer). Returns, per sequence, the
     * final normed hidden states [len, hidden] (the input of lm_head).
     */
    @Override
    public float[][] hiddenStates(int[][] sequences, ActivationObserver obs) { return hiddenStates(sequences, obs, null); }

    /** Sees the residual stream of one sequence after a decoder layer. */
    public interface LayerOutputs {
        void accept(int layer, int sequence, float[] h);
    }

    /**
     * The residual stream entering each decoder layer for one sequence, [layers][len·hidden]: the
     * embeddings for layer 0, layer i−1's output for layer i (transformers' hidden_states[i]).
     */
    public float[][] layerInputs(int[] ids) {
        int layers = config.layers();
        float[][] out = new float[layers][];
        out[0] = embed(ids, 0, ids.length);
        hiddenStates(new int[][] {ids}, ActivationObserver.NONE, (i, b, h) -> {
            if (i + 1 < layers) out[i + 1] = h.clone();
        });
        return out;
    }

    /** {@link #hiddenStates(int[][], ActivationObserver)}, showing {@code after} each layer's output (may be null). */
    public float[][] hiddenStates(int[][] sequences, ActivationObserver obs, LayerOutputs after) {
        int hd = config.hiddenSize(), kvd = config.kvDim();
        int maxLen = Arrays.stream(sequences).mapToInt(s -> s.length).max().orElse(0);
        float[][] h = new float[sequences.length][];
        for (int b = 0; b < sequences.length; b++) h[b] = embed(sequences[b], 0, sequences[b].length);
        DecoderLayer.Scratch s = new DecoderLayer.Scratch(config, maxLen);
        float[] kc = new float[maxLen * kvd], vc = new float[maxLen * kvd];
        // a finished layer's arrays are refilled by a later layer's load (no fresh 4·params bytes per layer)
        SpareArrays spare = keepLayers ? null : new SpareArrays();
        LayerTensors w = layerTensors(0, spare);
        // layer i + 1 pages in and converts on a loader thread while layer i computes, when the heap
        // holds AHEAD_HEAP_LAYERS layers (two live, headroom for the collector); else one at a time
        boolean ahead = Runtime.getRuntime().maxMemory() >= AHEAD_HEAP_LAYERS * w.bytes();
        FutureTask<LayerTensors> next = null;
        try {
            for (int i = 0; i < config.layers(); i++) {
                if (i > 0) {
                    LayerTensors done = w;
                    if (next != null) {
                        w = join(next);
                        next = null;
                        if (spare != null) spare.refill(done);
                    } else {
                        if (spare != null) spare.refill(done);
                        w = layerTensors(i, spare);
                    }
                }
                next = ahead && i + 1 < config.layers() ? loadInBackground(i + 1, spare) : null;
                for (int b = 0; b < sequences.length; b++) {
                    layer.forward(w, h[b], sequences[b].length, 0, kc, vc, s, obs);
                    if (after != null) after.accept(i, b, h[b]);
                }
            }
        } finally {
            // never leave a loader reading the mapped files after an error (close() unmaps them)
            if (next != null) {
                next.cancel(false);
                try {
                    next.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (ExecutionException | java.util.concurrent.CancellationException ignored) {
                    // the error that matters is the one already propagating
                }
            }
        }
        for (int b = 0; b < sequences.length; b++) {
            int n = sequences[b].length;
            float[] out = new float[n * hd];
            finalNorm(h[b], n, out, obs);
            h[b] = out;
        }
        return h;
    }

    /** Starts converting layer {@code i} (into arrays from {@code spare}) on a daemon thread of its own (a layer takes milliseconds to seconds). */
    private FutureTask<LayerTensors> loadInBackground(int i, SpareArrays spare) {
        FutureTask<LayerTensors> task = new FutureTask<>(() -> layerTensors(i, spare));
        Thread.ofPlatform().daemon().name("mergeforge-layer-" + i).start(task);
        return task;
    }

    /** The loaded layer, or the loader's error as thrown (a CheckpointException naming the tensor stays one). */
    private static LayerTensors join(FutureTask<LayerTensors> task) {
        try {
            return task.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while loading a layer", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw new IllegalStateException(e.getCause());
        }
    }

    /** out = final_norm(h) for n rows, reporting the norm's and the head's inputs. */
    void finalNorm(float[] h, int n, float[] out, ActivationObserver obs) {
        int hd = config.hiddenSize();
        Architecture arch = config.arch();
        obs.accept(arch.globalName(Role.FINAL_NORM), h, 0, n, hd);
        Norms.apply(config.parts().norm(), h, n, hd, finalNorm, finalNormBias, config.rmsNormEps(), out);
        obs.accept(arch.globalName(Role.HEAD), out, 0, n, hd);
    }

    /** logits [tokens, vocab] = normed·lm_headᵀ, lm_head converted a slab of rows at a time. */
    public float[] logits(float[] normed, int tokens) {
        if (lmHeadResident == null && keepLayers && headSlabRows(config) == config.vocabSize()) {
            lmHeadResident = Floats32.read(lmHead, config.vocabSize(), config.hiddenSize());
        }
        return logits(par, config, lmHead, lmHeadResident, normed, tokens);
    }

    /** Rows of lm_head converted at a time: all of them when the whole head is at most one slab. */
    static int headSlabRows(ModelConfig config) {
        return (int) Math.max(1, Math.min(config.vocabSize(), LM_HEAD_CHUNK_FLOATS / config.hiddenSize()));
    }

    /** logits = normed·lm_headᵀ from {@code resident} (lm_head in float32) when given, else a slab of rows at a time. */
    static float[] logits(Parallel par, ModelConfig config, TensorView lmHead, float[] resident, float[] normed, int tokens) {
        int hd = config.hiddenSize(), vocab = config.vocabSize();
        float[] out = new float[tokens * vocab];
        if (resident != null) {
            MatMul.linear(par, normed, 0, tokens, hd, resident, 0, vocab, null, out, 0, vocab);
            return softcap(config, out);
        }
        int rows = headSlabRows(config);
        float[] slab = new float[rows * hd];
        for (int r0 = 0; r0 < vocab; r0 += rows) {
            int n = Math.min(rows, vocab - r0);
            Floats32.copy(lmHead, (long) r0 * hd, slab, 0, n * hd);
            // out[:, r0 + o] = normed · slab[o]
            MatMul.linear(par, normed, 0, tokens, hd, slab, 0, n, null, out, r0, vocab);
        }
        return softcap(config, out);
    }

    /** logits = cap·tanh(logits/cap) where the family caps them (Gemma 2's final_logit_softcapping). */
    private static float[] softcap(ModelConfig config, float[] logits) {
        float cap = (float) config.variant().finalSoftcap();
        if (cap > 0) for (int i = 0; i < logits.length; i++) logits[i] = (float) Math.tanh(logits[i] / cap) * cap;
        return logits;
    }

    /** Logits of every position of every sequence (each [len, vocab]). */
    @Override
    public float[][] logits(int[][] sequences) {
        float[][] h = hiddenStates(sequences, ActivationObserver.NONE);
        float[][] out = new float[h.length][];
        for (int b = 0; b < h.length; b++) out[b] = logits(h[b], sequences[b].length);
        return out;
    }

    /** A KV-cached decoding session for one sequence of at most {@code capacity} tokens. */
    public Decoding startDecoding(int capacity) { return new Decoding(this, capacity); }

    DecoderLayer decoderLayer() { return layer; }

    @Override
    public String describe() { return "cpu (" + par.threads() + " threads)"; }

    @Override
    public void close() {
        Arrays.fill(resident, null);
        lmHeadResident = null;
        weights.close();
    }
}
