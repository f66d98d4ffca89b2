package dev.mergeforge.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.config.CalibrationSettings;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.Params;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The opened per-model statistics files of a data-informed merge (docs/data-informed.md), keyed
 * by model reference, and the rule that picks each tensor's statistic: Fisher — the tensor's own
 * name and shape; Gram — for a 2-D weight [out, in] (or [in, out] where the architecture
 * descriptor says it is stored (in, out), GPT-2's Conv1D), the [in, in] Gram stored under its name
 * or under the name {@code shared_inputs} maps it to; nothing for other tensors. Owns the files.
 */
final class ModelStats implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final MethodSpec.Stats kind;
    private final Map<String, SafetensorsFile> files = new LinkedHashMap<>();
    private final Map<String, Map<String, String>> shared = new LinkedHashMap<>();

    ModelStats(MethodSpec.Stats kind) { this.kind = kind; }

    MethodSpec.Stats kind() { return kind; }

    /** Opens the statistics of {@code model} (once per reference). */
    void add(Checkpoint model, CalibrationSettings settings, String where, StatsLocator locator) {
        if (files.containsKey(model.ref())) return;
        if (settings == null) {
            throw new ConfigException(where + ": " + (kind == MethodSpec.Stats.GRAM ? "regmean" : "fisher") + " needs statistics of "
                    + model.ref() + "; add calibration: {stats: FILE} or calibration: {data: FILE} under it or at the top level");
        }
        Path p = locator.locate(model, settings, kind, where + ".calibration");
        SafetensorsFile f = SafetensorsFile.open(p);
        files.put(model.ref(), f);
        shared.put(model.ref(), sharedInputs(f));
    }

    private static Map<String, String> sharedInputs(SafetensorsFile f) {
        String s = f.metadata().get("shared_inputs");
        Map<String, String> m = new LinkedHashMap<>();
        if (s == null) return m;
        try {
            JsonNode n = JSON.readTree(s);
            if (n == null || !n.isObject()) throw new IOException("not an object");
            for (var it = n.properties().iterator(); it.hasNext(); ) {
                var e = it.next();
                if (!e.getValue().isTextual()) throw new IOException("value of " + e.getKey() + " is not a name");
                m.put(e.getKey(), e.getValue().asText());
            }
        } catch (IOException e) {
            throw new CheckpointException(f.path() + ": metadata 'shared_inputs' is not a JSON object of names (" + e.getMessage()
                    + "); write it as {\"other_weight\": \"stored_weight\"}");
        }
        return m;
    }

    /**
     * The per-model statistic views of one weight (its inputs' own names), or empty when it has none;
     * {@code storedInOut}: the weight is stored (in, out), so its Gram is [dim 0, dim 0].
     */
    List<TensorView> views(List<String> refs, List<TensorView> inputs, boolean storedInOut) {
        List<TensorView> out = new ArrayList<>();
        for (int i = 0; i < inputs.size(); i++) {
            TensorView v = inputs.get(i), s = find(refs.get(i), v, storedInOut);
            if (s == null && kind == MethodSpec.Stats.FISHER) {
                throw new CheckpointException("Fisher file " + files.get(refs.get(i)).path() + " has no tensor '" + v.name()
                        + "'; every merged parameter of " + refs.get(i) + " needs its Fisher values");
            }
            out.add(s);
        }
        long found = out.stream().filter(x -> x != null).count();
        if (found == 0) return List.of();
        // a Gram of zeros (an MoE expert no calibration token reached) carries no information:
        // the tensor is merged as if it had no Grams (weighted average) rather than solved to zero
        if (kind == MethodSpec.Stats.GRAM && found == out.size() && out.stream().anyMatch(ModelStats::zeroGram)) return List.of();
        if (found < out.size()) {
            int have = out.indexOf(out.stream().filter(x -> x != null).findFirst().orElseThrow()), miss = out.indexOf(null);
            throw new CheckpointException("tensor '" + inputs.get(miss).name() + "' has a Gram in " + files.get(refs.get(have)).path()
                    + " but none in " + files.get(refs.get(miss)).path() + "; compute every model's Grams the same way");
        }
        return out;
    }

    /** True when a float32 Gram's diagonal is all zero (no token reached its linear). */
    private static boolean zeroGram(TensorView g) {
        if (g.dtype() != dev.mergeforge.tensor.DType.F32) return false;
        long n = g.shape().dim(0);
        var f32 = java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < n; i++) if (g.data().getAtIndex(f32, i * n + i) != 0f) return false;
        return true;
    }

    private TensorView find(String ref, TensorView w, boolean storedInOut) {
        SafetensorsFile f = files.get(ref);
        long[] d = w.shape().dims();
        return switch (kind) {
            case NONE -> null;
            case FISHER -> {
                if (!f.contains(w.name())) yield null;
                TensorView s = f.tensor(w.name());
                if (!s.shape().equals(w.shape())) {
                    throw new CheckpointException(f.path() + ": Fisher '" + w.name() + "' has shape " + s.shape() + " but the weight is "
                            + w.shape() + "; the Fisher file belongs to another model");
                }
                yield s;
            }
            case GRAM -> {
                if (d.length != 2) yield null;
                long in = storedInOut ? d[0] : d[1];
                String stored = f.contains(w.name()) ? w.name() : shared.get(ref).get(w.name());
                if (stored == null || !f.contains(stored)) yield null;
                TensorView s = f.tensor(stored);
                if (!s.shape().equals(dev.mergeforge.tensor.Shape.of(in, in))) {
                    throw new CheckpointException(f.path() + ": Gram '" + stored + "' for '" + w.name() + "' has shape " + s.shape()
                            + " but the weight is " + w.shape() + (storedInOut ? " stored (in, out)" : "") + ", so it needs [" + in + ", " + in
                            + "]; the stats file belongs to another model");
                }
                yield s;
            }
        };
    }

    /** Adds the Fisher file's model-wide norm to a model's parameters (FISHER only; checked when normalize is on). */
    Params withNorm(Params p, String ref, boolean normalize) {
        if (kind != MethodSpec.Stats.FISHER) return p;
        SafetensorsFile f = files.get(ref);
        String s = f.metadata().get("norm");
        double norm;
        try {
            norm = s == null ? Double.NaN : Double.parseDouble(s);
        } catch (NumberFormatException e) {
            norm = Double.NaN;
        }
        if (!(norm > 0 && Double.isFinite(norm))) {
            if (!normalize) return p;
            throw new CheckpointException(f.path() + ": metadata 'norm' is " + (s == null ? "missing" : "'" + s + "'")
                    + "; it must be the model-wide L2 norm of the Fisher (> 0), or set normalize: false");
        }
        Map<String, Object> v = new LinkedHashMap<>(p.values());
        v.put(MethodSpec.FISHER_NORM_PARAM, norm);
        return new Params(v, p.where());
    }

    @Override
    public void close() {
        for (SafetensorsFile f : files.values()) f.close();
        files.clear();
    }
}
