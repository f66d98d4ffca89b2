package dev.mergeforge.config;

import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.DType;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A validated merge configuration (mergekit's YAML plus our {@code aim:} and {@code calibration:}).
 * Exactly one of {@code models} and {@code slices} is non-empty.
 *
 * <p>Parameter precedence for one tensor, first defined value wins (mergekit's ConfigReader):
 * slice source parameters &gt; slice parameters &gt; model parameters &gt; top-level {@code parameters:}
 * &gt; the method's default. A filter list with no matching entry counts as not defined at that level.
 *
 * @param method          the merge method
 * @param baseModel       top-level {@code base_model}, or null
 * @param models          {@code models:} in file order (empty for a slices config)
 * @param globalParams    top-level {@code parameters:} (empty when absent)
 * @param dtype           {@code dtype}, or null (then the base model's)
 * @param outDtype        {@code out_dtype}, or null (then dtype)
 * @param tokenizerSource {@code tokenizer_source} (or {@code tokenizer.source}): "base", "union" or a model; null when absent
 * @param slices          {@code slices:} in file order (empty for a models config)
 * @param aim             the {@code aim:} block, or null when AIM is off
 * @param calibration     the top-level {@code calibration:} block, or null
 * @param raw             the YAML as read, for the model card and the resolved-config copy in the output
 */
public record MergeConfig(MethodSpec method, String baseModel, List<ModelEntry> models, ParamTable globalParams,
                          DType dtype, DType outDtype, String tokenizerSource, List<Slice> slices,
                          AimSettings aim, CalibrationSettings calibration, Map<String, Object> raw) {
    public MergeConfig {
        if (method == null) throw new IllegalArgumentException("method must not be null");
        models = List.copyOf(models);
        slices = List.copyOf(slices);
        if (models.isEmpty() == slices.isEmpty()) throw new IllegalArgumentException("exactly one of models and slices must be non-empty");
        if (globalParams == null) throw new IllegalArgumentException("globalParams must not be null; use ParamTable.empty");
        raw = raw == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(raw));
    }

    /** True for a {@code slices:} config. */
    public boolean hasSlices() { return !slices.isEmpty(); }

    /** Index in {@code models} of the entry that is the base model, or -1. */
    public int baseIndex() {
        for (int i = 0; i < models.size(); i++) if (models.get(i).model().equals(baseModel)) return i;
        return -1;
    }

    /** The method's global parameters for one tensor: top-level parameters, then defaults. */
    public Params globalParams(String tensorName, double t) {
        return resolve(method.global(), List.of(globalParams), tensorName, t, "tensor '" + tensorName + "'");
    }

    /** The method's per-model parameters of models[i] for one tensor: models[i].parameters, then top-level, then defaults. */
    public Params modelParams(int modelIndex, String tensorName, double t) {
        ModelEntry m = models.get(modelIndex);
        return resolve(method.perModel(), List.of(m.params(), globalParams), tensorName, t,
                "tensor '" + tensorName + "' of models[" + modelIndex + "] '" + m.model() + "'");
    }

    /** The method's global parameters inside slices[slice]: slice parameters, then top-level, then defaults. */
    public Params sliceGlobalParams(int slice, String tensorName, double t) {
        return resolve(method.global(), List.of(slices.get(slice).params(), globalParams), tensorName, t,
                "tensor '" + tensorName + "' of slices[" + slice + "]");
    }

    /**
     * Per-model parameters of slices[slice].sources[source]: source, slice, top-level, defaults.
     * Like mergekit, pass the source model's own tensor name (its layer index is layerStart + offset),
     * so filters match the input name.
     */
    public Params sliceSourceParams(int slice, int source, String tensorName, double t) {
        Slice s = slices.get(slice);
        SliceSource src = s.sources().get(source);
        return resolve(method.perModel(), List.of(src.params(), s.params(), globalParams), tensorName, t,
                "tensor '" + tensorName + "' of slices[" + slice + "].sources[" + source + "] '" + src.model() + "'");
    }

    /** The base model of slices[slice]: its own base_model, else the top-level one (may be null). */
    public String sliceBaseModel(int slice) {
        String b = slices.get(slice).baseModel();
        return b != null ? b : baseModel;
    }

    /**
     * Where gradients are evaluated on post-layer weights (final norm, lm_head): 0 by default, as
     * mergekit 0.1.2+ does; 1 with {@code post_weights_t: 1}, as mergekit 0.1.0-0.1.1 did
     * (docs/config.md). Pre-layer weights (embeddings) are always at t = 0.
     */
    public double postWeightsT() {
        return raw.get(ConfigKeys.POST_WEIGHTS_T) instanceof Number n ? n.doubleValue() : 0.0;
    }

    /** Number of output layers of a slices config (sum of the slice lengths). */
    public int numOutputLayers() {
        return slices.stream().mapToInt(Slice::length).sum();
    }

    /**
     * Where output layer {@code outLayer} of a slices config comes from, with mergekit's t (position
     * inside its own slice). Pre weights (embeddings) come from slices[0] at t = 0, post weights
     * (final norm, lm_head) from the last slice at t = {@link #postWeightsT()} (0 unless post_weights_t: 1) — see {@link ConfigReader#layerT}.
     */
    public SliceLayer sliceLayer(int outLayer) {
        if (outLayer < 0) throw new IllegalArgumentException("output layer must be >= 0, got " + outLayer);
        int first = 0;
        for (int s = 0; s < slices.size(); s++) {
            Slice sl = slices.get(s);
            if (outLayer < first + sl.length()) {
                int offset = outLayer - first;
                // t = offset/(len−1), 1 for a one-layer slice (mergekit plan_slice)
                double t = sl.length() > 1 ? (double) offset / (sl.length() - 1) : 1.0;
                List<Integer> src = new ArrayList<>();
                for (SliceSource ss : sl.sources()) src.add(ss.layerStart() + offset);
                return new SliceLayer(outLayer, s, offset, t, src);
            }
            first += sl.length();
        }
        throw new IllegalArgumentException("output layer " + outLayer + " is past the last slice (" + first + " layers)");
    }

    private static Params resolve(List<ParamSpec> specs, List<ParamTable> levels, String tensorName, double t, String where) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (ParamSpec p : specs) {
            Object v = null;
            for (ParamTable level : levels) {
                v = level.evaluate(p.name(), tensorName, t);
                if (v != null) break;
            }
            if (v == null) v = p.dflt();
            if (v != null) out.put(p.name(), typed(p, v));
        }
        return new Params(out, where);
    }

    /** Numbers as Double; a flag written as a gradient is true where it evaluates non-zero (Python truthiness). */
    private static Object typed(ParamSpec p, Object v) {
        return switch (p.type()) {
            case NUMBER -> v instanceof Number n ? n.doubleValue() : v;
            case FLAG -> v instanceof Number n ? n.doubleValue() != 0 : v;
            case STRING -> v.toString();
        };
    }
}
