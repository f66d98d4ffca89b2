package dev.mergeforge.config;

import dev.mergeforge.errors.ConfigException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A mergekit-moe config (mergekit 0.1.x semantics, docs/moe.md): a base model whose attention,
 * norms and embeddings the mixture keeps, and expert models whose MLPs become its experts, routed
 * by gate vectors made from each expert's prompts.
 *
 * @param gateMode        hidden (last token's residual stream), hidden_avg (mean over tokens),
 *                        cheap_embed (mean token embedding), random (seeded Gaussian)
 * @param dtype           output dtype name (null: each tensor keeps its source dtype)
 * @param architecture    output family (mixtral, qwen2_moe, qwen3_moe), null to choose from the base's family
 * @param sharedExperts   the shared expert (at most one: Qwen2-MoE's), empty for none
 */
public record MoeConfig(String baseModel, List<Expert> experts, String gateMode, String dtype, int expertsPerToken,
                        String architecture, List<Expert> sharedExperts) {
    /** One expert: its model and the prompts that should route to it (or away from it). */
    public record Expert(String sourceModel, List<String> positivePrompts, List<String> negativePrompts, double residualScale) {
        public Expert {
            positivePrompts = List.copyOf(positivePrompts);
            negativePrompts = List.copyOf(negativePrompts);
        }
    }

    public static final Set<String> GATE_MODES = Set.of("hidden", "hidden_avg", "hidden_last", "cheap_embed", "random");

    public MoeConfig {
        experts = List.copyOf(experts);
        sharedExperts = List.copyOf(sharedExperts);
    }

    /** Reads and validates a config file; every problem is one line naming the file and the key. */
    public static MoeConfig read(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read the MoE config (" + e.getMessage() + "); check the path");
        }
        return parse(text, file.toString());
    }

    public static MoeConfig parse(String yaml, String src) {
        Map<String, Object> root = YamlSource.load(yaml, src);
        for (String k : root.keySet()) {
            if (!Set.of("base_model", "experts", "gate_mode", "dtype", "experts_per_token", "shared_experts", "architecture").contains(k)) {
                throw new ConfigException(src + ": unknown key '" + k + "' (valid: base_model, experts, shared_experts, gate_mode, dtype, experts_per_token, architecture)");
            }
        }
        String base = text(root, "base_model", src, true);
        String mode = root.containsKey("gate_mode") ? text(root, "gate_mode", src, true) : "hidden";
        if (!GATE_MODES.contains(mode)) {
            throw new ConfigException(src + ": gate_mode '" + mode + "' is not supported (hidden, hidden_avg, hidden_last, cheap_embed, random)");
        }
        Object k = root.getOrDefault("experts_per_token", 2);
        if (!(k instanceof Integer perToken) || perToken < 1) throw new ConfigException(src + ": experts_per_token must be an integer >= 1, got " + k);
        if (!(root.get("experts") instanceof List<?> list) || list.isEmpty()) {
            throw new ConfigException(src + ": experts: give a list of {source_model, positive_prompts}");
        }
        List<Expert> experts = experts(list, "experts", mode, src);
        Object sharedList = root.get("shared_experts");
        if (sharedList != null && !(sharedList instanceof List<?>)) {
            throw new ConfigException(src + ": shared_experts must be a list of {source_model, positive_prompts}");
        }
        List<Expert> shared = sharedList == null ? List.of() : experts((List<?>) sharedList, "shared_experts", mode, src);
        if (shared.size() > 1) {
            throw new ConfigException(src + ": shared_experts: the Qwen2-MoE layout has exactly one shared expert, got " + shared.size()
                    + "; keep one");
        }
        if (experts.size() < perToken) {
            throw new ConfigException(src + ": experts_per_token " + perToken + " exceeds the " + experts.size() + " experts");
        }
        if (!mode.equals("random") && experts.stream().allMatch(e -> e.positivePrompts().equals(experts.getFirst().positivePrompts())
                && e.negativePrompts().equals(experts.getFirst().negativePrompts()))) {
            throw new ConfigException(src + ": every expert has the same prompts, so the router cannot tell them apart; give each expert its own positive_prompts");
        }
        String arch = root.containsKey("architecture") ? text(root, "architecture", src, true) : null;
        String dtype = root.containsKey("dtype") ? text(root, "dtype", src, true) : null;
        return new MoeConfig(base, experts, mode, dtype, perToken, arch, shared);
    }

    /** One list of experts ({@code experts} or {@code shared_experts}), each checked. */
    private static List<Expert> experts(List<?> list, String key, String mode, String src) {
        List<Expert> experts = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            String where = src + ": " + key + "[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> m)) throw new ConfigException(where + " must be a mapping with source_model");
            for (Object name : m.keySet()) {
                if (!Set.of("source_model", "positive_prompts", "negative_prompts", "residual_scale", "noise_scale").contains(String.valueOf(name))) {
                    throw new ConfigException(where + ": unknown key '" + name + "' (valid: source_model, positive_prompts, negative_prompts, residual_scale)");
                }
            }
            if (m.get("noise_scale") != null) {
                throw new ConfigException(where + ".noise_scale: random noise on expert weights is not supported; remove it");
            }
            Object rs = m.get("residual_scale");
            if (rs != null && !(rs instanceof Number)) throw new ConfigException(where + ".residual_scale must be a number, got " + rs);
            String model = m.get("source_model") instanceof String s ? s : null;
            if (model == null) throw new ConfigException(where + ": source_model (a model path or id) is missing");
            List<String> pos = prompts(m.get("positive_prompts"), where + ".positive_prompts");
            if (pos.isEmpty() && !mode.equals("random")) {
                throw new ConfigException(where + ".positive_prompts: gate_mode " + mode + " needs at least one prompt per expert"
                        + (key.equals("shared_experts") ? " (a shared expert without prompts is DeepSeek-MoE's layout, which mergeforge does not build)" : ""));
            }
            experts.add(new Expert(model, pos, prompts(m.get("negative_prompts"), where + ".negative_prompts"),
                    rs == null ? 1.0 : ((Number) rs).doubleValue()));
        }
        return experts;
    }

    private static List<String> prompts(Object v, String where) {
        if (v == null) return List.of();
        if (!(v instanceof List<?> l)) throw new ConfigException(where + " must be a list of strings");
        List<String> out = new ArrayList<>();
        for (Object o : l) {
            if (!(o instanceof String s)) throw new ConfigException(where + " must be a list of strings, got " + o);
            out.add(s);
        }
        return out;
    }

    private static String text(Map<String, Object> m, String key, String src, boolean required) {
        Object v = m.get(key);
        if (v instanceof String s && !s.isBlank()) return s;
        if (v == null && !required) return null;
        throw new ConfigException(src + ": " + key + " must be a non-empty string, got " + v);
    }
}
