package dev.mergeforge.config;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MethodRegistry;
import dev.mergeforge.merge.MethodSpec;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads a mergekit YAML config (mergekit 0.1.x semantics) plus our {@code aim:} and
 * {@code calibration:} keys into a validated {@link MergeConfig}. Every problem in the file is
 * reported together in one {@link ConfigException}: "file: N problems: path: what; path: what".
 * See docs/config.md for the keys, the precedence and the differences from mergekit.
 */
public final class ConfigReader {
    private static final Pattern LAYER = Pattern.compile("(?:^|\\.)(?:layers|layer|h|blocks|block)\\.(\\d+)\\.");

    private ConfigReader() {}

    /** Reads and validates a config file against the registered methods. */
    public static MergeConfig read(Path yamlFile) {
        String text;
        try {
            text = Files.readString(yamlFile, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new ConfigException(yamlFile + ": config file not found; check the path");
        } catch (IOException e) {
            throw new ConfigException(yamlFile + ": cannot read the config (" + e.getMessage() + "); check the path and permissions", e);
        }
        return parse(text, yamlFile.toString());
    }

    /** Parses config text; {@code sourceName} prefixes every message (a file name, or e.g. "&lt;stdin&gt;"). */
    public static MergeConfig parse(String yaml, String sourceName) {
        return parse(yaml, sourceName, MethodRegistry.all());
    }

    /** Parses config text against the given methods instead of the registry (for tests and embedders). */
    public static MergeConfig parse(String yaml, String sourceName, List<MethodSpec> methods) {
        Map<String, MethodSpec> byName = new LinkedHashMap<>();
        for (MethodSpec m : methods) byName.put(m.name(), m);
        Map<String, Object> root = YamlSource.load(yaml, sourceName);
        return new ConfigParser(new Problems(sourceName), byName).parse(root);
    }

    /**
     * mergekit's interpolation position t for one tensor of a {@code models:} config (one slice over
     * all layers): layer/(numLayers−1) for a layer tensor (1 when there is one layer), 0 for pre
     * weights (embeddings) and for post weights (final norm, lm_head), as mergekit 0.1.2–0.1.4 do —
     * see {@link #layerT(String, int, int, double)} for mergekit 0.1.0–0.1.1's t = 1 on post weights.
     */
    public static double layerT(String tensorName, int layer, int numLayers) {
        return layerT(tensorName, layer, numLayers, 0.0);
    }

    /**
     * As {@link #layerT(String, int, int)}, with post weights at {@code postT} (the config's
     * {@code post_weights_t}: 0, or 1 as mergekit ≤ 0.1.1).
     *
     * <p>{@code layer} is the decoder layer index, or negative for a tensor outside the layers; then
     * the index is read from the name ({@code .layers.N.}, {@code .h.N.}, {@code .layer.N.},
     * {@code .blocks.N.}) and, failing that, a name containing "embed", "wte" or "wpe" is a pre
     * weight and anything else a post weight. Slices configs use {@link MergeConfig#sliceLayer}
     * instead (t restarts in every slice).
     */
    public static double layerT(String tensorName, int layer, int numLayers, double postT) {
        if (numLayers < 1) throw new IllegalArgumentException("numLayers must be >= 1, got " + numLayers);
        int idx = layer >= 0 ? layer : layerIndexOf(tensorName);
        if (idx >= numLayers) {
            throw new IllegalArgumentException("layer " + idx + " of tensor '" + tensorName + "' is outside 0.." + (numLayers - 1));
        }
        if (idx >= 0) {
            // t = layer/(numLayers−1), 1 for a single layer (mergekit plan_slice)
            return numLayers > 1 ? (double) idx / (numLayers - 1) : 1.0;
        }
        // mergekit 0.1.2+ plans pre and post weights with its module-level reader, whose t is 0
        return isPreWeight(tensorName) ? 0.0 : postT;
    }

    /** The decoder layer index in a tensor name, or -1 when the tensor is outside the layers. */
    public static int layerIndexOf(String tensorName) {
        Matcher m = LAYER.matcher(tensorName);
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** True for tensors before the layers (token and position embeddings). */
    public static boolean isPreWeight(String tensorName) {
        String n = tensorName.toLowerCase(java.util.Locale.ROOT);
        // GPT-NeoX calls its output head embed_out: that one is a post weight
        return (n.contains("embed") && !n.contains("embed_out")) || n.contains("wte.") || n.contains("wpe.");
    }
}
