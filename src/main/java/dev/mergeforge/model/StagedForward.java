package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.arch.Architecture;
import dev.mergeforge.arch.Components;
import dev.mergeforge.arch.Role;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.TensorView;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * {@link LlamaModel}'s forward pass over a fixed set of sequences, fed its weights one stage at a
 * time by a caller that holds nothing else: the embeddings ({@link #start}), then each decoder layer
 * in order ({@link #layer}), then the final norm and lm_head ({@link #finish}). Every sequence goes
 * through a stage before the next stage's weights are asked for, so each stage's weights are read
 * once and may be dropped as soon as its call returns; what is held in between is the residual
 * stream of every sequence, [tokens, hidden] float32 each. This is the pass of a merged candidate
 * evaluated layer by layer (docs/protocol.md, {@code merge_eval}): each stage's tensors are merged
 * just before it runs.
 *
 * <p>The arithmetic is LlamaModel's, step for step (the same embedding, decoder layer, final norm and
 * lm_head code), so the logits equal those of a {@link LlamaModel} opened on the same tensors with
 * {@code keepLayers}, bit for bit.
 *
 * <p>Lifetime: the views a stage is given are read during that call only.
 */
public final class StagedForward {
    private final JsonNode configJson;
    private final ModelConfig config;
    private final String name;
    private final Parallel par;
    private final DecoderLayer layer;
    private final int bos;
    private int[][] sequences;
    private float[][] h;
    private int next = -1; // the next layer to run; -1 before start, layers() once every layer ran, -2 after finish

    /** Logits of one sequence, [len, vocab], handed over in sequence order. */
    @FunctionalInterface
    public interface Logits {
        void accept(int sequence, float[] logits);
    }

    /**
     * A pass of the model {@code config} (its config.json) whose tokenizer files are in
     * {@code tokenizerDir} (they say whether sequences start with BOS); {@code name} names it in messages.
     */
    public StagedForward(JsonNode config, String name, Path tokenizerDir, Parallel par) {
        this.configJson = config;
        this.config = ModelConfig.fromJson(config, name + "/config.json");
        this.name = name;
        this.par = par;
        this.layer = new DecoderLayer(this.config, par);
        this.bos = LlamaModel.tokenizerHasBos(tokenizerDir) ? this.config.bosTokenId() : -1;
    }

    public ModelConfig config() { return config; }

    /** As {@link LlamaModel#bosTokenId()}. */
    public int bosTokenId() { return bos; }

    /** The tensors {@link #start} reads: the token embeddings, and the learned positions of families that have them. */
    public List<String> embeddingNames() {
        Architecture a = config.arch();
        List<String> n = new ArrayList<>(List.of(a.globalName(Role.EMBEDDING)));
        if (config.parts().positions() == Components.Positions.LEARNED) n.add(a.globalName(Role.POSITION_EMBEDDING));
        return n;
    }

    /**
     * The tensors {@link #finish} reads, of those {@code has} says the model holds: the final norm
     * (and its bias), and lm_head or, for a tied head, the token embeddings.
     */
    public List<String> headNames(Predicate<String> has) {
        Architecture a = config.arch();
        String norm = a.globalName(Role.FINAL_NORM);
        List<String> n = new ArrayList<>(List.of(norm));
        String bias = biasOf(norm);
        if (has.test(bias)) n.add(bias);
        n.add(headName(has));
        return n;
    }

    private String headName(Predicate<String> has) {
        Architecture a = config.arch();
        String head = a.globalName(Role.HEAD);
        if (has.test(head)) return head;
        if (config.tieWordEmbeddings()) return a.globalName(Role.EMBEDDING);
        throw new CheckpointException(name + ": no " + head + " and tie_word_embeddings is false; the checkpoint is incomplete");
    }

    /** Embeds every sequence (the first stage) with the tensors {@link #embeddingNames} lists. */
    public void start(int[][] seqs, Map<String, TensorView> w) {
        if (next != -1) throw new IllegalStateException("the pass has started already");
        Architecture a = config.arch();
        TensorView embed = w.get(a.globalName(Role.EMBEDDING));
        require(embed, a.globalName(Role.EMBEDDING));
        Floats32.checkShape(embed, config.vocabSize(), config.hiddenSize());
        TensorView positions = null;
        if (config.parts().positions() == Components.Positions.LEARNED) {
            positions = w.get(a.globalName(Role.POSITION_EMBEDDING));
            require(positions, a.globalName(Role.POSITION_EMBEDDING));
            Floats32.checkShape(positions, config.variant().maxPositions(), config.hiddenSize());
        }
        float scale = LlamaModel.embedScale(config);
        this.sequences = seqs.clone();
        this.h = new float[seqs.length][];
        for (int b = 0; b < seqs.length; b++) h[b] = LlamaModel.embed(config, name, embed, positions, scale, seqs[b], 0, seqs[b].length, 0);
        next = 0;
    }

    /** Runs every sequence through decoder layer {@code i} (layers in order, after {@link #start}) with its tensors {@code w}. */
    public void layer(int i, Map<String, TensorView> w) {
        if (next < 0 || i != next) throw new IllegalStateException("layer " + i + " asked for, the pass is at " + next);
        LayerTensors t = LayerTensors.load(new MemoryWeights(configJson, w, name), config, i);
        int maxLen = Arrays.stream(sequences).mapToInt(s -> s.length).max().orElse(0);
        int kvd = config.kvDim();
        DecoderLayer.Scratch s = new DecoderLayer.Scratch(config, maxLen);
        float[] kc = new float[maxLen * kvd], vc = new float[maxLen * kvd];
        for (int b = 0; b < sequences.length; b++) layer.forward(t, h[b], sequences[b].length, 0, kc, vc, s, ActivationObserver.NONE);
        next++;
    }

    /**
     * The last stage, after every layer: final norm and lm_head (the tensors {@link #headNames}
     * lists, in {@code w}), handing each sequence's logits to {@code out} in order. Frees the
     * residual streams.
     */
    public void finish(Map<String, TensorView> w, Logits out) {
        if (next != config.layers()) throw new IllegalStateException("finish asked for after " + next + " of " + config.layers() + " layers");
        int hd = config.hiddenSize();
        Architecture a = config.arch();
        String normName = a.globalName(Role.FINAL_NORM);
        require(w.get(normName), normName);
        float[] norm = Floats32.read(w.get(normName), hd);
        TensorView biasView = w.get(biasOf(normName));
        float[] bias = biasView == null ? null : Floats32.read(biasView, hd);
        String headName = headName(w::containsKey);
        TensorView head = w.get(headName);
        Floats32.checkShape(head, config.vocabSize(), hd);
        // the head in float32 at once where LlamaModel (keepLayers) keeps it resident, else a slab at a time as it does
        float[] resident = LlamaModel.headSlabRows(config) == config.vocabSize() ? Floats32.read(head, config.vocabSize(), hd) : null;
        for (int b = 0; b < sequences.length; b++) {
            int n = sequences[b].length;
            float[] normed = new float[n * hd];
            // normed = final_norm(h)
            Norms.apply(config.parts().norm(), h[b], n, hd, norm, bias, config.rmsNormEps(), normed);
            h[b] = null;
            out.accept(b, LlamaModel.logits(par, config, head, resident, normed, n));
        }
        next = -2;
    }

    /** Floats of lm_head converted at once: the whole head where LlamaModel keeps it resident, else one slab. */
    public long headFloats() { return (long) LlamaModel.headSlabRows(config) * config.hiddenSize(); }

    /** About the floats of a decoder layer's working buffers per token (norm, attention and MLP outputs, q/k/v, MLP activations). */
    public long scratchFloatsPerToken() {
        return 3L * config.hiddenSize() + config.qDim() + 2L * config.kvDim() + 3L * Math.max(config.intermediateSize(), config.variant().expertIntermediate());
    }

    private void require(TensorView v, String tensor) {
        if (v == null) throw new IllegalArgumentException(name + ": stage without tensor '" + tensor + "'");
    }

    private static String biasOf(String weight) { return weight.substring(0, weight.length() - ".weight".length()) + ".bias"; }
}
