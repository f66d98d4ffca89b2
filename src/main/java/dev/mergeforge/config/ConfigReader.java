package dev.mergeforge.config;

import dev.mergeforge.arch.UnknownArchitecture;
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

/**
 * Reads a mergekit YAML config (mergekit 0.1.x semantics) plus our {@code aim:} and
 * {@code calibration:} keys into a validated {@link MergeConfig}. Every problem in the file is
 * reported together in one {@link ConfigException}: "file: N problems: path: what; path: what".
 * See docs/config.md for the keys, the precedence and the differences from mergekit.
 */
public final class ConfigReader {
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
     * weights (embeddings), and {@code postT} for post weights (final norm, lm_head): 0 as mergekit
     * 0.1.2–0.1.4 (the default; a side effect of its multi-module refactor), 1 as mergekit ≤ 0.1.1 —
     * the config's {@code post_weights_t}. The planner passes the layer and pre/post role its model's
     * architecture descriptor gives ({@code dev.mergeforge.arch}). Slices configs use
     * {@link MergeConfig#sliceLayer} instead (t restarts in every slice).
     *
     * @param layer the decoder layer index, or negative for a tensor outside the layers
     * @param pre   for a tensor outside the layers: true before them (embeddings), false after
     */
    public static double layerT(int layer, boolean pre, int numLayers, double postT) {
        // a tensor outside the layers needs no layer count (a config.json counting 0 layers still plans its embeddings and head)
        if (layer < 0) return pre ? 0.0 : postT;
        if (layer >= numLayers) throw new IllegalArgumentException("layer " + layer + " is outside 0.." + (numLayers - 1));
        // t = layer/(numLayers−1), 1 for a single layer (mergekit plan_slice)
        return numLayers > 1 ? (double) layer / (numLayers - 1) : 1.0;
    }

    /** {@link #layerT(int, boolean, int, double)} with post weights at mergekit 0.1.2+'s t = 0. */
    public static double layerT(int layer, boolean pre, int numLayers) {
        return layerT(layer, pre, numLayers, 0.0);
    }

    /**
     * {@link #layerT(int, boolean, int, double)} for a tensor named in the common Hugging Face style
     * when no model is at hand ({@link UnknownArchitecture}'s conventions): the layer is read from the
     * name when {@code layer} is negative.
     */
    public static double layerT(String tensorName, int layer, int numLayers, double postT) {
        UnknownArchitecture names = new UnknownArchitecture("(by name)", null);
        int idx = layer >= 0 ? layer : names.layerOf(tensorName);
        if (idx >= numLayers && numLayers >= 1) {
            throw new IllegalArgumentException("layer " + idx + " of tensor '" + tensorName + "' is outside 0.." + (numLayers - 1));
        }
        return layerT(idx, names.isPre(tensorName), numLayers, postT);
    }

    /** {@link #layerT(String, int, int, double)} with post weights at t = 0. */
    public static double layerT(String tensorName, int layer, int numLayers) {
        return layerT(tensorName, layer, numLayers, 0.0);
    }
}
