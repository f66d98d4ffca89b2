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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a mixture of experts from dense models (mergekit-moe, docs/moe.md): the base model's
 * attention, norms, embeddings and head; each expert model's MLP as one expert of every layer;
 * a router per layer from {@link GateVectors}. The output layout is a family descriptor's (Mixtral
 * from Llama or Mistral, Qwen3-MoE from Qwen3), so the names and config are what transformers loads.
 * Tensors are copied one at a time from the mapped inputs into the mapped output; the output
 * appears only when complete.
 */
public final class MoeBuilder {
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(MoeBuilder.class.getName());

    private MoeBuilder() {}

    /** The MoE layout a dense base family becomes, or a one-line error naming the supported pairs. */
    static Architecture outputFamily(Architecture base, String asked, String where) {
        Architecture out = base == Architectures.LLAMA || base == Architectures.MISTRAL ? Architectures.MIXTRAL
                : base == Architectures.QWEN3 ? Architectures.QWEN3_MOE : null;
        if (asked != null && (asked.equalsIgnoreCase("qwen2_moe") || asked.equals("Qwen2MoeForCausalLM"))) {
            throw new ConfigException(where + ": architecture '" + asked + "': the Qwen2-MoE layout (with its shared expert) is not built yet "
                    + "(supported: llama or mistral -> mixtral, qwen3 -> qwen3_moe); remove the key or name one of those");
        }
        if (out == null || (asked != null && !asked.equalsIgnoreCase(out.family()) && !out.classNames().contains(asked))) {
            throw new ConfigException(where + ": cannot build " + (asked == null ? "a mixture" : "'" + asked + "'") + " from a "
                    + (base == null ? "model without a descriptor" : base.family()) + " base (supported: llama or mistral -> mixtral, qwen3 -> qwen3_moe)");
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
            Architecture out = outputFamily(in, cfg.architecture(), where);
            List<Checkpoint> experts = new ArrayList<>();
            Map<String, Checkpoint> byRef = new LinkedHashMap<>(Map.of(cfg.baseModel(), base));
            for (int e = 0; e < cfg.experts().size(); e++) {
                String ref = cfg.experts().get(e).sourceModel();
                Checkpoint c = byRef.get(ref);
                if (c == null) {
                    c = Checkpoint.open(ref);
                    open.add(c);
                    byRef.put(ref, c);
                }
                if (Architectures.find(c.config()).orElse(null) != in) {
                    throw new ConfigException(where + ": experts[" + e + "] " + ref + " is not a " + in.family() + " model like the base; "
                            + "experts must share the base's architecture");
                }
                experts.add(c);
            }
            DType dtype = cfg.dtype() == null ? null : DType.parseUserName(cfg.dtype());
            if (cfg.dtype() != null && dtype == null) throw new ConfigException(where + ": dtype '" + cfg.dtype() + "' is not float32, float16 or bfloat16");
            float[][] gates = gates(cfg, base, par, seed);
            List<Integer> degenerate = cfg.gateMode().equals("random") ? List.of() : GateVectors.degenerateLayers(gates, experts.size(), 5.0);
            if (!degenerate.isEmpty()) {
                LOG.warning("layers " + degenerate + " have nearly dependent router rows (condition number > 5): the experts' prompts "
                        + "are too alike, so some experts will be underused; give them more distinct prompts");
            }
            write(cfg, base, experts, in, out, dtype, gates, target, overwrite, open);
            return target;
        } finally {
            for (Checkpoint c : open) c.close();
            par.shutdown();
        }
    }

    private static float[][] gates(MoeConfig cfg, Checkpoint base, Parallel par, long seed) {
        try (LlamaModel m = LlamaModel.open(base.dir(), par, false)) {
            if (cfg.gateMode().equals("random")) return GateVectors.compute(cfg, m, null, seed);
            try (TextTokenizer tok = TextTokenizer.open(base.dir())) {
                return GateVectors.compute(cfg, m, tok, seed);
            }
        }
    }

    private record Planned(String name, Checkpoint from, String source, DType dtype, Shape shape, double scale) {}

    private static void write(MoeConfig cfg, Checkpoint base, List<Checkpoint> experts, Architecture in, Architecture out, DType dtype,
                              float[][] gates, Path target, boolean overwrite, List<Checkpoint> open) {
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
                plan.add(new Planned(n, base, n, dtype == null ? v.dtype() : dtype, v.shape(), 1));
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
                plan.add(new Planned(out.layerName(layer, out.layerSpec(expertRole), e), c, n, dtype == null ? c.tensor(n).dtype() : dtype, v.shape(), scale));
            }
        }
        DType routerType = dtype == null ? base.tensor(in.globalName(Role.EMBEDDING)).dtype() : dtype;
        for (int l = 0; l < gates.length; l++) {
            plan.add(new Planned(out.layerName(l, out.layerSpec(Role.ROUTER), -1), null, null, routerType, Shape.of(experts.size(), hd), 1));
        }
        List<SafetensorsWriter.Entry> layout = new ArrayList<>();
        for (Planned p : plan) layout.add(new SafetensorsWriter.Entry(p.name(), p.dtype(), p.shape()));
        Map<String, String> meta = Map.of("format", "pt");
        List<Path> inputs = open.stream().map(Checkpoint::dir).toList();
        try (OutputDir dir = OutputDir.create(target, overwrite, inputs, SafetensorsWriter.fileSize(layout, meta))) {
            try (SafetensorsWriter w = new SafetensorsWriter(dir.temp().resolve("model.safetensors"), layout, meta)) {
                int layer = 0;
                for (Planned p : plan) {
                    MemorySegment slot = w.slot(p.name());
                    if (p.from() != null) TensorCopy.copy(p.from().tensor(p.source()), slot, p.dtype(), p.scale());
                    else TensorCopy.fromFloats(gates[layer++], slot, p.dtype());
                }
            }
            writeConfig(cfg, base, out, dtype, dir.temp());
            dir.commit();
        }
    }

    private static void writeConfig(MoeConfig cfg, Checkpoint base, Architecture out, DType dtype, Path dir) {
        ObjectNode c = base.config().deepCopy();
        c.putArray("architectures").add(out.classNames().getFirst());
        c.put("model_type", out.modelTypes().getFirst());
        int experts = cfg.experts().size();
        c.put("num_experts_per_tok", cfg.expertsPerToken());
        if (out == Architectures.MIXTRAL) {
            c.put("num_local_experts", experts);
            c.putNull("sliding_window");
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
