package dev.mergeforge.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.arch.Role;
import dev.mergeforge.arch.WeightSpec;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Qwen2-MoE's block (docs/architectures.md): routed experts as Qwen3-MoE's, plus a shared expert
 * every token passes through, scaled by sigmoid of its one-row gate. Checked against the block
 * written out plainly in double from transformers' Qwen2MoeSparseMoeBlock, with and without
 * norm_topk_prob, on random weights where the shared expert's width differs from the experts'.
 */
class SharedExpertTest {
    private static final int HIDDEN = 16, EXPERTS = 4, TOP_K = 2, EXPERT_INTER = 6, SHARED_INTER = 10, TOKENS = 7;

    private static ObjectNode config(boolean normTopK) {
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.putArray("architectures").add("Qwen2MoeForCausalLM");
        c.put("model_type", "qwen2_moe");
        c.put("hidden_size", HIDDEN);
        c.put("intermediate_size", 24);
        c.put("moe_intermediate_size", EXPERT_INTER);
        c.put("shared_expert_intermediate_size", SHARED_INTER);
        c.put("num_hidden_layers", 1);
        c.put("num_attention_heads", 2);
        c.put("num_key_value_heads", 1);
        c.put("num_experts", EXPERTS);
        c.put("num_experts_per_tok", TOP_K);
        c.put("norm_topk_prob", normTopK);
        c.put("decoder_sparse_step", 1);
        c.putArray("mlp_only_layers");
        c.put("vocab_size", 32);
        c.put("rms_norm_eps", 1e-6);
        c.put("use_sliding_window", false);
        c.put("hidden_act", "silu");
        return c;
    }

    @Test
    void theBlockIsTheRoutedSumPlusTheSigmoidGatedSharedExpert() {
        for (boolean normTopK : new boolean[] {false, true}) {
            ObjectNode json = config(normTopK);
            ModelConfig cfg = ModelConfig.fromJson(json, "t/config.json");
            assertEquals(SHARED_INTER, cfg.variant().sharedIntermediate());
            Random r = new Random(normTopK ? 7 : 3);
            Map<String, float[]> w = new HashMap<>();
            Parallel par = new Parallel(2);
            try (Arena arena = Arena.ofConfined()) {
                Map<String, TensorView> views = new HashMap<>();
                for (WeightSpec s : Architectures.QWEN2_MOE.layer()) {
                    int copies = s.role().isExpert() ? EXPERTS : 1;
                    for (int e = 0; e < copies; e++) {
                        String n = Architectures.QWEN2_MOE.layerName(0, s, s.role().isExpert() ? e : -1);
                        long[] d = LayerTensors.dims(cfg, s.role());
                        float[] x = new float[(int) (d.length == 1 ? d[0] : d[0] * d[1])];
                        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * 0.5);
                        w.put(n, x);
                        views.put(n, f32(arena, n, x, d));
                    }
                }
                LayerTensors t = LayerTensors.load(new MemoryWeights(json, views, "t"), cfg, 0);
                float[] x = new float[TOKENS * HIDDEN];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                float[] out = new float[TOKENS * HIDDEN];
                List<String> seen = new ArrayList<>();
                new FeedForward(cfg, par).forward(t, x, TOKENS, new FeedForward.Scratch(cfg, TOKENS), out,
                        (name, in, off, tokens, width) -> { if (name.contains("shared")) seen.add(name + ":" + tokens + "x" + width); });
                double[][] expect = reference(w, x, normTopK);
                for (int tk = 0; tk < TOKENS; tk++) {
                    for (int j = 0; j < HIDDEN; j++) {
                        double e = expect[tk][j];
                        assertEquals(e, out[tk * HIDDEN + j], 1e-5 * Math.max(1, Math.abs(e)), "norm_topk_prob " + normTopK + " token " + tk + " dim " + j);
                    }
                }
                String p = "model.layers.0.mlp.";
                assertEquals(List.of(p + "shared_expert.gate_proj.weight:7x16", p + "shared_expert.up_proj.weight:7x16",
                        p + "shared_expert_gate.weight:7x16", p + "shared_expert.down_proj.weight:7x10"), seen,
                        "the shared expert's linears see every token, the down projection its own width");
            } finally {
                par.shutdown();
            }
        }
    }

    /** transformers' Qwen2MoeSparseMoeBlock in double: softmax router, top-k (renormalised if asked), Σ experts, + sigmoid(g·x)·shared(x). */
    private static double[][] reference(Map<String, float[]> w, float[] x, boolean normTopK) {
        String p = "model.layers.0.mlp.";
        double[][] out = new double[TOKENS][HIDDEN];
        for (int t = 0; t < TOKENS; t++) {
            double[] xt = new double[HIDDEN];
            for (int j = 0; j < HIDDEN; j++) xt[j] = x[t * HIDDEN + j];
            double[] logit = matvec(w.get(p + "gate.weight"), xt, EXPERTS);
            double max = Double.NEGATIVE_INFINITY, z = 0;
            for (double l : logit) max = Math.max(max, l);
            double[] prob = new double[EXPERTS];
            for (int e = 0; e < EXPERTS; e++) z += prob[e] = Math.exp(logit[e] - max);
            for (int e = 0; e < EXPERTS; e++) prob[e] /= z;
            Integer[] order = {0, 1, 2, 3};
            java.util.Arrays.sort(order, (a, b) -> Double.compare(prob[b], prob[a]));
            double kept = 0;
            for (int k = 0; k < TOP_K; k++) kept += prob[order[k]];
            for (int k = 0; k < TOP_K; k++) {
                int e = order[k];
                double[] y = mlp(w, p + "experts." + e + ".", xt, EXPERT_INTER);
                double weight = normTopK ? prob[e] / kept : prob[e];
                for (int j = 0; j < HIDDEN; j++) out[t][j] += weight * y[j];
            }
            double g = matvec(w.get(p + "shared_expert_gate.weight"), xt, 1)[0];
            double[] s = mlp(w, p + "shared_expert.", xt, SHARED_INTER);
            for (int j = 0; j < HIDDEN; j++) out[t][j] += s[j] / (1 + Math.exp(-g));
        }
        return out;
    }

    /** down(silu(gate(x)) ⊙ up(x)). */
    private static double[] mlp(Map<String, float[]> w, String prefix, double[] x, int inter) {
        double[] g = matvec(w.get(prefix + "gate_proj.weight"), x, inter), u = matvec(w.get(prefix + "up_proj.weight"), x, inter);
        for (int i = 0; i < inter; i++) g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        return matvec(w.get(prefix + "down_proj.weight"), g, HIDDEN);
    }

    private static double[] matvec(float[] m, double[] x, int rows) {
        double[] y = new double[rows];
        for (int o = 0; o < rows; o++) for (int i = 0; i < x.length; i++) y[o] += m[o * x.length + i] * x[i];
        return y;
    }

    private static TensorView f32(Arena arena, String name, float[] x, long[] dims) {
        MemorySegment s = arena.allocate(4L * x.length, 8);
        for (int i = 0; i < x.length; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, x[i]);
        return new TensorView(name, DType.F32, Shape.of(dims), s, "test");
    }

    @Test
    void aSharedExpertWidthOnAFamilyWithoutOneIsRefusedNamingTheKey() {
        ObjectNode c = config(true);
        c.putArray("architectures").add("Qwen3MoeForCausalLM");
        c.put("model_type", "qwen3_moe");
        c.put("head_dim", 8);
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.fromJson(c, "q/config.json"));
        assertTrue(e.getMessage().startsWith("q/config.json: shared_expert_intermediate_size: qwen3_moe has no shared expert"), e.getMessage());
        assertTrue(Architectures.QWEN2_MOE.layerSpec(Role.SHARED_EXPERT_GATE) != null);
    }
}
