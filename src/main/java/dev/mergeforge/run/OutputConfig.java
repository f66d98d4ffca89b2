package dev.mergeforge.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.arch.Architecture;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.arch.TensorRoles;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.config.Slice;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.tensor.DType;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The output's config.json: the reference model's, with the output dtype under every key
 * transformers reads and, for {@code slices:} merges, the decoder stack rewritten to follow the
 * slices — the layer count (the key the family's descriptor names) and every per-layer list (the
 * descriptor's {@code layerLists}, plus any other list one entry per layer long, and the generic keys of
 * {@link LayerConfigKeys}), entry o taken from the source layer output layer o came from; a family whose
 * sliding pattern is implicit ({@code ConfigKeys.Windows}) gets it written out first. The one place that rewrites config.json;
 * docs/io.md describes the result.
 */
final class OutputConfig {
    private OutputConfig() {}

    /**
     * The rewritten config. {@code sourceLayers} maps each output layer to the reference model's
     * layer it comes from (null for a {@code models:} merge: the stack is unchanged).
     */
    static ObjectNode rewrite(JsonNode input, List<Integer> sourceLayers, DType outDtype) {
        ObjectNode conf = input.deepCopy();
        setDtype(conf, outDtype);
        if (sourceLayers != null) {
            restack(conf, sourceLayers, "config.json");
            for (String k : LayerConfigKeys.NESTED) {
                if (conf.get(k) instanceof ObjectNode nested) restack(nested, sourceLayers, "config.json " + k);
            }
        }
        return conf;
    }

    /**
     * For a slices config: the layer of the reference model each output layer comes from (the
     * reference model's own source in each slice when it is one, else the slice's first source).
     */
    static List<Integer> sourceLayers(MergeConfig cfg, String referenceModel) {
        if (!cfg.hasSlices()) return null;
        List<Integer> out = new ArrayList<>();
        for (Slice s : cfg.slices()) {
            int j = 0;
            for (int i = 0; i < s.sources().size(); i++) if (s.sources().get(i).model().equals(referenceModel)) { j = i; break; }
            for (int o = 0; o < s.length(); o++) out.add(s.sources().get(j).layerStart() + o);
        }
        return out;
    }

    /** torch_dtype (transformers 4) and dtype (transformers 5), at the top and in nested configs that carry one. */
    private static void setDtype(ObjectNode conf, DType out) {
        conf.put("torch_dtype", out.torchName());
        conf.put("dtype", out.torchName());
        for (Iterator<Map.Entry<String, JsonNode>> it = conf.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!(e.getValue() instanceof ObjectNode nested)) continue;
            boolean carries = nested.has("torch_dtype") || nested.has("dtype");
            if (carries || LayerConfigKeys.NESTED.contains(e.getKey())) {
                nested.put("torch_dtype", out.torchName());
                nested.put("dtype", out.torchName());
            }
        }
    }

    /** Rewrites one config level whose decoder stack the slices rebuild; a level without a layer count is left alone. */
    private static void restack(ObjectNode c, List<Integer> src, String where) {
        TensorRoles roles = Architectures.roles(c);
        String countKey = null;
        for (String k : roles.layerCountKeys()) if (c.has(k) && c.get(k).canConvertToInt()) { countKey = k; break; }
        if (countKey == null) return;
        int inLayers = c.get(countKey).asInt();
        for (int s : src) {
            if (s < 0 || s >= inLayers) {
                throw new ConfigException(where + ": slices take layer " + s + " but " + countKey + " is " + inLayers
                        + "; fix the slices' layer_range");
            }
        }
        Architecture arch = roles instanceof Architecture a ? a : null;
        if (!c.has("layer_types") && arch != null && arch.keys().windows().dependsOnLayer(c)) {
            // the family's implicit pattern made explicit, so each output layer keeps its source layer's attention
            ArrayNode a = c.putArray("layer_types");
            for (boolean sliding : arch.keys().windows().implicit(c, inLayers)) a.add(sliding ? LayerConfigKeys.SLIDING : LayerConfigKeys.FULL);
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = c.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String k = e.getKey();
            if (!(e.getValue() instanceof ArrayNode list) || LayerConfigKeys.NOT_PER_LAYER.contains(k)) continue;
            if (LayerConfigKeys.INDEX_LISTS.contains(k)) e.setValue(remapIndices(list, src));
            else if (arch != null && arch.layerLists().contains(k) && list.size() != inLayers) {
                throw new ConfigException(where + ": " + k + " has " + list.size() + " entries for " + countKey + " " + inLayers
                        + "; fix config.json so it has one entry per layer");
            } else if (list.size() == inLayers) e.setValue(follow(list, src));
        }
        if (c.has(LayerConfigKeys.FIRST_DENSE)) moeLayout(c, src, where);
        c.put(countKey, src.size());
    }

    /** out[o] = in[src[o]]. */
    private static ArrayNode follow(ArrayNode in, List<Integer> src) {
        ArrayNode out = in.arrayNode();
        for (int s : src) out.add(in.get(s).deepCopy());
        return out;
    }

    /** The output layers whose source layer is listed. */
    private static ArrayNode remapIndices(ArrayNode in, List<Integer> src) {
        java.util.Set<Integer> listed = new java.util.HashSet<>();
        for (JsonNode n : in) listed.add(n.asInt());
        ArrayNode out = in.arrayNode();
        for (int o = 0; o < src.size(); o++) if (listed.contains(src.get(o))) out.add(o);
        return out;
    }

    /**
     * DeepSeek's dense/MoE layout is two numbers, not a list: layer i is MoE iff i ≥ k and
     * i % freq = 0. The new k counts the leading dense output layers; a stack those two numbers
     * cannot express (a dense layer after a MoE one) is refused.
     */
    private static void moeLayout(ObjectNode c, List<Integer> src, String where) {
        int k = c.get(LayerConfigKeys.FIRST_DENSE).asInt();
        int freq = Math.max(1, c.path(LayerConfigKeys.MOE_FREQ).asInt(1));
        int newK = 0;
        while (newK < src.size() && !isMoe(src.get(newK), k, freq)) newK++;
        for (int o = 0; o < src.size(); o++) {
            if (isMoe(src.get(o), k, freq) != isMoe(o, newK, freq)) {
                throw new ConfigException(where + ": output layer " + o + " is " + (isMoe(src.get(o), k, freq) ? "an MoE" : "a dense")
                        + " layer (source layer " + src.get(o) + "), which " + LayerConfigKeys.FIRST_DENSE + "/" + LayerConfigKeys.MOE_FREQ
                        + " cannot express after the layers before it; order the slices so dense layers come first");
            }
        }
        c.put(LayerConfigKeys.FIRST_DENSE, newK);
    }

    private static boolean isMoe(int layer, int firstDense, int freq) { return layer >= firstDense && layer % freq == 0; }
}
