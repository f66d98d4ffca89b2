package dev.mergeforge.arch;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One model family as data (mergekit describes architectures the same way): the weights before
 * the layers, the per-layer template, the weights after the layers, each with its {@link Role};
 * how config.json names the sizes; per-layer config lists; head tying; and the forward-pass
 * {@link Components}, or null for a family we merge but do not run.
 *
 * @param family         short name used in messages ("llama", "gpt2")
 * @param classNames     the {@code architectures} values that select it
 * @param modelTypes     the {@code model_type} values that select it when {@code architectures} is absent
 * @param layerPrefix    the text before a layer index in layer tensor names ({@code model.layers.})
 * @param storedInOut    true when every linear is stored (in, out) (GPT-2's Conv1D), false for (out, in)
 * @param tiedByDefault  whether the head is tied when config.json does not say
 * @param layerLists     config.json keys holding one entry per layer ({@code layer_types}); slices rewrite them
 * @param forward        the forward pass's pieces, or null when the family is not run here
 */
public record Architecture(String family, List<String> classNames, List<String> modelTypes, String layerPrefix,
                           ConfigKeys keys, List<WeightSpec> pre, List<WeightSpec> layer, List<WeightSpec> post,
                           boolean storedInOut, boolean tiedByDefault, List<String> layerLists, Components forward)
        implements TensorRoles {
    public Architecture {
        classNames = List.copyOf(classNames);
        modelTypes = List.copyOf(modelTypes);
        pre = List.copyOf(pre);
        layer = List.copyOf(layer);
        post = List.copyOf(post);
        layerLists = List.copyOf(layerLists);
        if (!layerPrefix.endsWith(".")) throw new IllegalArgumentException(family + ": layer prefix must end in '.'");
    }

    /** Compiled name patterns (layer prefixes, expert templates), shared by every descriptor. */
    private static final Map<String, Pattern> PATTERNS = new java.util.concurrent.ConcurrentHashMap<>();

    private Pattern layerPattern() {
        return PATTERNS.computeIfAbsent("layer:" + layerPrefix, k -> Pattern.compile("^" + Pattern.quote(layerPrefix) + "(\\d+)\\.(.+)$"));
    }

    private static Pattern expertPattern(String template) {
        return PATTERNS.computeIfAbsent("expert:" + template, k -> Pattern.compile(Pattern.quote(template).replace("{e}", "\\E\\d+\\Q")));
    }

    /** The weight's own name when {@code name} is its bias. */
    private static String owner(String name) {
        return name.endsWith(".bias") ? name.substring(0, name.length() - 5) + ".weight" : name;
    }

    /** The spec a stored tensor (weight or its bias) belongs to, or null when the descriptor does not list it. */
    public WeightSpec specOf(String tensorName) {
        String n = owner(tensorName);
        for (WeightSpec s : pre) if (s.name().equals(n)) return s;
        for (WeightSpec s : post) if (s.name().equals(n)) return s;
        Matcher m = layerPattern().matcher(n);
        if (!m.matches()) return null;
        String rest = m.group(2);
        for (WeightSpec s : layer) {
            if (s.role().isExpert() ? expertPattern(s.name()).matcher(rest).matches() : s.name().equals(rest)) return s;
        }
        return null;
    }

    @Override
    public int layerOf(String name) {
        Matcher m = layerPattern().matcher(name);
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    @Override
    public String withLayer(String name, int layer) {
        Matcher m = layerPattern().matcher(name);
        if (!m.matches()) throw new IllegalArgumentException(name + " is not a layer tensor of " + family);
        return layerPrefix + layer + "." + m.group(2);
    }

    @Override
    public boolean isPre(String name) {
        String n = owner(name);
        return pre.stream().anyMatch(s -> s.name().equals(n));
    }

    @Override
    public boolean isEmbedding(String name) {
        WeightSpec s = specOf(name);
        return s != null && s.role().isEmbedding();
    }

    @Override
    public boolean isHead(String name) {
        WeightSpec s = specOf(name);
        return s != null && s.role() == Role.HEAD;
    }

    @Override
    public boolean isVocab(String name) {
        WeightSpec s = specOf(name);
        return s != null && (s.role() == Role.EMBEDDING || s.role() == Role.HEAD);
    }

    /** The family's Conv1D layout applies to its layer linears; embedding tables and an untied head are nn.Linear / nn.Embedding (out, in). */
    @Override
    public boolean storedInOut(String name) { return storedInOut && !isHead(name) && !isEmbedding(name); }

    @Override
    public boolean tiedHead(JsonNode config) {
        JsonNode t = config == null ? null : config.get("tie_word_embeddings");
        return t != null && !t.isNull() ? t.asBoolean() : tiedByDefault;
    }

    @Override
    public List<String> layerCountKeys() { return keys.layers(); }

    /** True when this family has a forward pass here (calibration, eval, AIM with calibration, RegMean's Grams). */
    public boolean runnable() { return forward != null; }

    /** The full name of a pre or post weight with this role, or null when the family has none. */
    public String globalName(Role role) {
        for (WeightSpec s : pre) if (s.role() == role) return s.name();
        for (WeightSpec s : post) if (s.role() == role) return s.name();
        return null;
    }

    /** The per-layer spec with this role, or null when the family's layers have none. */
    public WeightSpec layerSpec(Role role) {
        for (WeightSpec s : layer) if (s.role() == role) return s;
        return null;
    }

    /** Layer {@code i}'s name of a per-layer spec (expert −1 for non-expert weights). */
    public String layerName(int i, WeightSpec s, int expert) {
        return layerPrefix + i + "." + (expert >= 0 ? s.forExpert(expert) : s.name());
    }

    /**
     * The linears of layer {@code i} in forward order with the input they read, experts expanded;
     * the first linear of each input stores the Gram the others share.
     */
    public Map<String, String> layerLinearInputs(int i, int experts) {
        Map<String, String> out = new LinkedHashMap<>();
        for (WeightSpec s : layer) {
            if (s.input().isEmpty()) continue;
            if (s.role().isExpert()) {
                for (int e = 0; e < experts; e++) out.put(layerName(i, s, e), s.input() + "#" + e);
            } else {
                out.put(layerName(i, s, -1), s.input());
            }
        }
        return out;
    }

    /** The names of every per-layer weight spec of one role list, for tests and messages. */
    public List<String> layerNames(int i) {
        List<String> out = new ArrayList<>();
        for (WeightSpec s : layer) out.add(layerPrefix + i + "." + s.name());
        return out;
    }
}
