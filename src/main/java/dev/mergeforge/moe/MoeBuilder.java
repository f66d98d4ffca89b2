package dev.mergeforge.moe;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.arch.Architecture;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.arch.Role;
import dev.mergeforge.arch.WeightSpec;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.config.MoeConfig;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.OutputDir;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a mixture of experts from dense models (mergekit-moe, docs/moe.md): the base model's
 * attention, norms, embeddings and head; each expert model's MLP as one expert of every layer;
 * a router per layer from {@link GateVectors}. The output layout is a family descriptor's (Mixtral
 * from Llama or Mistral, Qwen3-MoE from Qwen3, Qwen2-MoE with its shared expert from Llama, Mistral
 * or Qwen2), so the names and config are what transformers loads.
 * Tensors are copied one at a time from the mapped inputs into the mapped output; the output
 * appears only when complete.
 */
public final class MoeBuilder {
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(MoeBuilder.class.getName());

    private MoeBuilder() {}

    private static final String SUPPORTED = "supported: llama or mistral -> mixtral, qwen3 -> qwen3_moe, "
            + "llama, mistral or qwen2 with one shared expert -> qwen2_moe";

    /** The MoE layout a dense base family becomes, or a one-line error naming the supported pairs. */
    static Architecture outputFamily(Architecture base, String asked, boolean shared, String where) {
        boolean askedQwen2 = asked != null && (asked.equalsIgnoreCase(Architectures.QWEN2_MOE.family())
                || Architectures.QWEN2_MOE.classNames().contains(asked));
        if (askedQwen2 && !shared) {
            throw new ConfigException(where + ": architecture '" + asked + "' needs exactly one entry in shared_experts (its shared expert); "
                    + "add one or remove the architecture key");
        }
        Architecture out = shared
                ? (base == Architectures.LLAMA || base == Architectures.MISTRAL || base == Architectures.QWEN2 ? Architectures.QWEN2_MOE : null)
                : base == Architectures.LLAMA || base == Architectures.MISTRAL ? Architectures.MIXTRAL
                : base == Architectures.QWEN3 ? Architectures.QWEN3_MOE : null;
        if (out == null || (asked != null && !asked.equalsIgnoreCase(out.family()) && !out.classNames().contains(asked))) {
            throw new ConfigException(where + ": cannot build " + (asked == null ? "a mixture" : "'" + asked + "'")
                    + (shared ? " with a shared expert" : "") + " from a "
                    + (base == null ? "model without a descriptor" : base.family()) + " base (" + SUPPORTED + ")");
        }
        return out;
    }

    /** Writes the mixture to {@code target}; returns it. */
    public static Path build(MoeConfig cfg, String where, Path target, boolean overwrite, int threads, long seed) {
        List<Checkpoint> open = new ArrayList<>();
        Parallel par = new Parallel(threads);
        try {
            Checkpoint base = Checkpoint.open(cfg.baseModel());
            open.add(base);
            Architecture in = Architectures.find(base.config()).orElse(null);
            Architecture out = outputFamily(in, cfg.architecture(), !cfg.sharedExperts().isEmpty(), where);
            List<Checkpoint> experts = new ArrayList<>();
            Map<String, Checkpoint> byRef = new LinkedHashMap<>(Map.of(cfg.baseModel(), base));
            List<MoeConfig.Expert> all = new ArrayList<>(cfg.experts());
            all.addAll(cfg.sharedExperts());
            for (int e = 0; e < all.size(); e++) {
                String ref = all.get(e).sourceModel();
                String name = e < cfg.experts().size() ? "experts[" + e + "]" : "shared_experts[" + (e - cfg.experts().size()) + "]";
                Checkpoint c = byRef.get(ref);
                if (c == null) {
                    c = Checkpoint.open(ref);
                    open.add(c);
                    byRef.put(ref, c);
                }
                if (Architectures.find(c.config()).orElse(null) != in) {
                    throw new ConfigException(where + ": " + name + " " + ref + " is not a " + in.family() + " model like the base; "
                            + "experts must share the base's architecture");
                }
                if (e < cfg.experts().size()) experts.add(c);
            }
            DType dtype = cfg.dtype() == null ? null : DType.parseUserName(cfg.dtype());
            if (cfg.dtype() != null && dtype == null) throw new ConfigException(where + ": dtype '" + cfg.dtype() + "' is not float32, float16 or bfloat16");
            float[][][] routers = gates(cfg, base, par, seed);
            float[][] gates = routers[0];
            List<Integer> degenerate = cfg.gateMode().equals("random") ? List.of() : GateVectors.degenerateLayers(gates, experts.size(), 5.0);
            if (!degenerate.isEmpty()) {
                LOG.warning("layers " + degenerate + " have nearly dependent router rows (condition number > 5): the experts' prompts "
                        + "are too alike, so some experts will be underused; give them more distinct prompts");
            }
            Checkpoint shared = cfg.sharedExperts().isEmpty() ? null : byRef.get(cfg.sharedExperts().getFirst().sourceModel());
            write(cfg, base, experts, shared, in, out, dtype, gates, routers[1], target, overwrite, open);
            return target;
        } finally {
            for (Checkpoint c : open) c.close();
            par.shutdown();
        }
    }

    /** [0] the routers, [1] the shared expert's gates (null without one). */
    private static float[][][] gates(MoeConfig cfg, Checkpoint base, Parallel par, long seed) {
        try (LlamaModel m = LlamaModel.open(base.dir(), par, false)) {
            if (cfg.gateMode().equals("random")) return GateVectors.computeAll(cfg, m, null, seed);
            try (TextTokenizer tok = TextTokenizer.open(base.dir())) {
                return GateVectors.computeAll(cfg, m, tok, seed);
            }
        }
    }

    /** One output tensor: copied from {@code source} of {@code from} (scaled), or written from {@code values}. */
    private record Planned(String name, Checkpoint from, String source, DType dtype, Shape shape, double scale, float[] values) {
        static Planned copy(String name, Checkpoint from, String source, DType dtype, Shape shape, double scale) {
            return new Planned(name, from, source, dtype, shape, scale, null);
        }

        static Planned of(String name, float[] values, DType dtype, Shape shape) {
            return new Planned(name, null, null, dtype, shape, 1, values);
        }
    }

    private static void write(MoeConfig cfg, Checkpoint base, List<Checkpoint> experts, Checkpoint shared, Architecture in, Architecture out,
                              DType dtype, float[][] gates, float[][] sharedGates, Path target, boolean overwrite, List<Checkpoint> open) {
        List<Planned> plan = new ArrayList<>();
        int hd = gates[0].length / experts.size();
        for (String n : base.names()) {
            TensorView v = base.tensor(n);
            WeightSpec s = in.specOf(n);
            Role expertRole = s == null ? null : switch (s.role()) {
                case GATE -> Role.EXPERT_GATE;
                case UP -> Role.EXPERT_UP;
                case DOWN -> Role.EXPERT_DOWN;
                default -> null;
            };
            if (expertRole == null) {
                plan.add(Planned.copy(n, base, n, dtype == null ? v.dtype() : dtype, v.shape(), 1));
                if (out == Architectures.QWEN2_MOE && s != null && EnumSet.of(Role.Q, Role.K, Role.V).contains(s.role())
                        && !n.endsWith(".bias") && !base.contains(biasOf(n))) {
                    // Qwen2-MoE's q/k/v projections carry biases: zeros where the base has none (as mergekit-moe writes)
                    plan.add(Planned.of(biasOf(n), new float[(int) v.shape().dim(0)], dtype == null ? v.dtype() : dtype, Shape.of(v.shape().dim(0))));
                }
                continue;
            }
            if (n.endsWith(".bias")) throw new CheckpointException(base.ref() + ": " + n + ": MLP biases have no place in " + out.family() + "'s experts");
            int layer = in.layerOf(n);
            for (int e = 0; e < experts.size(); e++) {
                Checkpoint c = experts.get(e);
                if (!c.contains(n) || !c.tensor(n).shape().equals(v.shape())) {
                    throw new CheckpointException(c.ref() + ": tensor '" + n + "' is missing or not " + v.shape() + " as in the base; experts must have the base's shapes");
                }
                double scale = expertRole == Role.EXPERT_DOWN ? cfg.experts().get(e).residualScale() : 1;
                plan.add(Planned.copy(out.layerName(layer, out.layerSpec(expertRole), e), c, n, dtype == null ? c.tensor(n).dtype() : dtype, v.shape(), scale));
            }
            if (shared != null) {
                if (!shared.contains(n) || !shared.tensor(n).shape().equals(v.shape())) {
                    throw new CheckpointException(shared.ref() + ": tensor '" + n + "' is missing or not " + v.shape()
                            + " as in the base; the shared expert must have the base's shapes");
                }
                Role sharedRole = switch (expertRole) {
                    case EXPERT_GATE -> Role.SHARED_GATE;
                    case EXPERT_UP -> Role.SHARED_UP;
                    default -> Role.SHARED_DOWN;
                };
                double scale = sharedRole == Role.SHARED_DOWN ? cfg.sharedExperts().getFirst().residualScale() : 1;
                plan.add(Planned.copy(out.layerName(layer, out.layerSpec(sharedRole), -1), shared, n,
                        dtype == null ? shared.tensor(n).dtype() : dtype, v.shape(), scale));
            }
        }
        DType routerType = dtype == null ? base.tensor(in.globalName(Role.EMBEDDING)).dtype() : dtype;
        for (int l = 0; l < gates.length; l++) {
            plan.add(Planned.of(out.layerName(l, out.layerSpec(Role.ROUTER), -1), gates[l], routerType, Shape.of(experts.size(), hd)));
            if (sharedGates != null) {
                plan.add(Planned.of(out.layerName(l, out.layerSpec(Role.SHARED_EXPERT_GATE), -1), sharedGates[l], routerType, Shape.of(1, hd)));
            }
        }
        List<SafetensorsWriter.Entry> layout = new ArrayList<>();
        for (Planned p : plan) layout.add(new SafetensorsWriter.Entry(p.name(), p.dtype(), p.shape()));
        Map<String, String> meta = Map.of("format", "pt");
        List<Path> inputs = open.stream().map(Checkpoint::dir).toList();
        try (OutputDir dir = OutputDir.create(target, overwrite, inputs, SafetensorsWriter.fileSize(layout, meta))) {
            try (SafetensorsWriter w = new SafetensorsWriter(dir.temp().resolve("model.safetensors"), layout, meta)) {
                for (Planned p : plan) {
                    MemorySegment slot = w.slot(p.name());
                    if (p.from() != null) TensorCopy.copy(p.from().tensor(p.source()), slot, p.dtype(), p.scale());
                    else TensorCopy.fromFloats(p.values(), slot, p.dtype());
                }
            }
            writeConfig(cfg, base, out, dtype, dir.temp());
            dir.commit();
        }
    }

    private static String biasOf(String weight) { return weight.substring(0, weight.length() - ".weight".length()) + ".bias"; }

    private static void writeConfig(MoeConfig cfg, Checkpoint base, Architecture out, DType dtype, Path dir) {
        ObjectNode c = base.config().deepCopy();
        c.putArray("architectures").add(out.classNames().getFirst());
        c.put("model_type", out.modelTypes().getFirst());
        int experts = cfg.experts().size();
        c.put("num_experts_per_tok", cfg.expertsPerToken());
        if (out == Architectures.MIXTRAL) {
            c.put("num_local_experts", experts);
            c.putNull("sliding_window");
        } else if (out == Architectures.QWEN2_MOE) {
            // mergekit-moe's Qwen2-MoE config (docs/moe.md): the shared expert and the routed ones as wide as the base's MLP
            int inter = c.path("intermediate_size").asInt();
            c.put("num_experts", experts);
            c.put("decoder_sparse_step", 1);
            c.put("norm_topk_prob", true);
            c.put("use_sliding_window", false);
            c.putNull("sliding_window");
            c.put("moe_intermediate_size", inter);
            c.put("shared_expert_intermediate_size", inter);
            c.putArray("mlp_only_layers");
        } else {
            c.put("num_experts", experts);
            c.put("decoder_sparse_step", 1);
            c.put("norm_topk_prob", true);
            c.put("moe_intermediate_size", c.path("intermediate_size").asInt());
            c.putArray("mlp_only_layers");
        }
        if (dtype != null) c.put(c.has("dtype") ? "dtype" : "torch_dtype", dtype.torchName());
        try {
            Files.writeString(dir.resolve("config.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(c) + "\n");
            for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")) {
                Path p = base.dir().resolve(f);
                if (Files.isRegularFile(p)) Files.copy(p, dir.resolve(f));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the mixture's config in " + dir + ": " + e.getMessage(), e);
        }
    }
}
