package dev.mergeforge.config;

import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Validates one loaded YAML document into a {@link MergeConfig}, recording every problem before
 * failing once. Structure follows mergekit's MergeConfiguration; semantic checks (base model,
 * model counts, required parameters, duplicates) use the method's {@link MethodSpec}.
 */
final class ConfigParser {
    private final Problems problems;
    private final Map<String, MethodSpec> methods;
    private final SettingParser settings;
    private final ExtrasParser extras;
    private MethodSpec method;
    private boolean baseGiven;

    ConfigParser(Problems problems, Map<String, MethodSpec> methods) {
        this.problems = problems;
        this.methods = methods;
        this.settings = new SettingParser(problems);
        this.extras = new ExtrasParser(problems);
    }

    MergeConfig parse(Map<String, Object> root) {
        for (String k : root.keySet()) {
            if (ConfigKeys.REFUSED.containsKey(k)) problems.add(k, ConfigKeys.REFUSED.get(k));
            else if (!ConfigKeys.TOP_LEVEL.contains(k)) problems.add(k, "unknown top-level key; valid keys: " + String.join(", ", ConfigKeys.TOP_LEVEL));
        }
        method = method(root.get("merge_method"));
        baseGiven = root.get("base_model") != null;
        String base = baseGiven ? ModelRefs.check(root.get("base_model"), "base_model", problems) : null;
        Map<String, Object> topRaw = paramsRaw(root.get("parameters"), "parameters");
        ParamTable top = table(topRaw, "parameters", true);

        boolean hasModels = root.get("models") != null, hasSlices = root.get("slices") != null;
        List<ModelEntry> models = new ArrayList<>();
        List<Slice> slices = new ArrayList<>();
        if (hasModels == hasSlices) {
            problems.add(hasModels ? "slices" : "models", hasModels
                    ? "give models: or slices:, not both; mergekit accepts exactly one"
                    : "is missing; list the models to merge under models: (or layer ranges under slices:)");
        } else if (hasModels) {
            models = models(root.get("models"), base, topRaw);
        } else {
            slices = slices(root.get("slices"), base, topRaw);
        }
        if (method != null && hasSlices != hasModels) requiredGlobals(topRaw, slices);

        var dtype = extras.dtype(root.get("dtype"), "dtype");
        var outDtype = extras.dtype(root.get("out_dtype"), "out_dtype");
        String tok = extras.tokenizerSource(root.get("tokenizer_source"), root.get("tokenizer"));
        Object chat = root.get("chat_template");
        if (chat != null && !(chat instanceof String)) problems.add("chat_template", "must be a template name or Jinja text (a string), got '" + chat + "'");
        Object postT = root.get(ConfigKeys.POST_WEIGHTS_T);
        if (postT != null && !(postT instanceof Number n && (n.doubleValue() == 0 || n.doubleValue() == 1))) {
            problems.add(ConfigKeys.POST_WEIGHTS_T, "must be 0 (mergekit 0.1.2+, the default) or 1 (mergekit 0.1.0-0.1.1), got '" + postT + "'");
        }
        AimSettings aim = extras.aim(root.get("aim"));
        CalibrationSettings cal = root.get("calibration") == null ? null : extras.calibration(root.get("calibration"), "calibration");

        problems.throwIfAny();
        return new MergeConfig(method, base, models, top, dtype, outDtype, tok, slices, aim, cal, root);
    }

    private MethodSpec method(Object raw) {
        String valid = String.join(", ", methods.keySet());
        if (raw == null) {
            problems.add("merge_method", "is missing; add merge_method: <name> (valid: " + valid + ")");
            return null;
        }
        MethodSpec m = methods.get(String.valueOf(raw));
        if (m == null) problems.add("merge_method", "unknown method '" + raw + "'; valid methods: " + valid);
        return m;
    }

    private List<ModelEntry> models(Object raw, String base, Map<String, Object> topRaw) {
        List<ModelEntry> out = new ArrayList<>();
        if (!(raw instanceof List<?> list)) {
            problems.add("models", "must be a list of entries like '- model: <directory>', got a " + YamlSource.kind(raw));
            return out;
        }
        if (list.isEmpty()) {
            problems.add("models", "is empty; list at least one model");
            return out;
        }
        Map<String, Integer> seen = new HashMap<>();
        int counted = 0;
        for (int i = 0; i < list.size(); i++) {
            String path = "models[" + i + "]";
            Map<String, Object> m = extras.map(list.get(i), path);
            if (m == null) { counted++; continue; }
            extras.unknownKeys(m, path, ConfigKeys.MODEL);
            String model = m.containsKey("model") ? ModelRefs.check(m.get("model"), path + ".model", problems) : null;
            if (!m.containsKey("model")) problems.add(path + ".model", "is missing; add model: <directory>");
            Map<String, Object> pRaw = paramsRaw(m.get("parameters"), path + ".parameters");
            ParamTable params = table(pRaw, path + ".parameters", false);
            CalibrationSettings cal = m.get("calibration") == null ? null : extras.calibration(m.get("calibration"), path + ".calibration");
            if (model == null) {
                counted++; // already reported; count it so the model-count check does not add a second, misleading problem
                continue;
            }
            Integer first = seen.putIfAbsent(model, i);
            if (first != null) {
                problems.add(path + ".model", "'" + model + "' is listed twice (also models[" + first
                        + "]); list each model once (mergekit would silently merge it once, with the first entry's parameters)");
            }
            boolean exempt = isBase(model, base);
            if (!exempt) counted++;
            requiredPerModel(path, exempt, List.of(pRaw, topRaw), path + ".parameters");
            out.add(new ModelEntry(model, params, cal));
        }
        if (method != null) {
            checkBase(base, "base_model", base != null && !seen.containsKey(base), baseGiven);
            checkCount(counted, "models");
        }
        return out;
    }

    private List<Slice> slices(Object raw, String base, Map<String, Object> topRaw) {
        List<Slice> out = new ArrayList<>();
        if (!(raw instanceof List<?> list) || list.isEmpty()) {
            problems.add("slices", "must be a non-empty list of entries like '- sources: [...]'");
            return out;
        }
        for (int s = 0; s < list.size(); s++) {
            String path = "slices[" + s + "]";
            Map<String, Object> m = extras.map(list.get(s), path);
            if (m == null) continue;
            extras.unknownKeys(m, path, ConfigKeys.SLICE);
            String sliceBase = m.get("base_model") == null ? null : ModelRefs.check(m.get("base_model"), path + ".base_model", problems);
            String effBase = sliceBase != null ? sliceBase : base;
            Object rw = m.get("residual_weight");
            if (rw != null && !(rw instanceof Number)) problems.add(path + ".residual_weight", "must be a number, got '" + rw + "'");
            Map<String, Object> sRaw = paramsRaw(m.get("parameters"), path + ".parameters");
            ParamTable sParams = table(sRaw, path + ".parameters", true);
            List<SliceSource> sources = sources(m.get("sources"), path, effBase, sRaw, topRaw);
            if (sources == null) continue;
            out.add(new Slice(sources, sliceBase, sParams));
            if (method != null) {
                boolean baseMissingFromSources = effBase != null && sources.stream().noneMatch(x -> x.model().equals(effBase));
                checkBase(effBase, sliceBase != null ? path + ".base_model" : "base_model", baseMissingFromSources,
                        baseGiven || m.get("base_model") != null);
            }
        }
        return out;
    }

    /** The sources of one slice, or null when the slice cannot be built. */
    private List<SliceSource> sources(Object raw, String slicePath, String base, Map<String, Object> sRaw, Map<String, Object> topRaw) {
        String path = slicePath + ".sources";
        if (!(raw instanceof List<?> list) || list.isEmpty()) {
            problems.add(path, "must be a non-empty list of entries like '- model: <directory>' with 'layer_range: [start, end]'");
            return null;
        }
        List<SliceSource> out = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        int counted = 0;
        boolean ok = true;
        for (int j = 0; j < list.size(); j++) {
            String p = path + "[" + j + "]";
            Map<String, Object> m = extras.map(list.get(j), p);
            if (m == null) { ok = false; continue; }
            extras.unknownKeys(m, p, ConfigKeys.SOURCE);
            String model = m.containsKey("model") ? ModelRefs.check(m.get("model"), p + ".model", problems) : null;
            if (!m.containsKey("model")) problems.add(p + ".model", "is missing; add model: <directory>");
            int[] range = layerRange(m.get("layer_range"), p + ".layer_range");
            Map<String, Object> pRaw = paramsRaw(m.get("parameters"), p + ".parameters");
            ParamTable params = table(pRaw, p + ".parameters", false);
            if (model == null || range == null) { ok = false; continue; }
            Integer first = seen.putIfAbsent(model, j);
            if (first != null) {
                problems.add(p + ".model", "'" + model + "' is listed twice in this slice (also sources[" + first
                        + "]); list each model once per slice (mergekit would silently use it once)");
            }
            boolean exempt = isBase(model, base);
            if (!exempt) counted++;
            requiredPerModel(p, exempt, List.of(pRaw, sRaw, topRaw), p + ".parameters");
            out.add(new SliceSource(model, range[0], range[1], params));
        }
        if (!ok) return null;
        for (SliceSource s : out) {
            if (s.length() != out.getFirst().length()) {
                problems.add(path, "all sources of a slice must span the same number of layers, got " + out.getFirst().length()
                        + " (" + out.getFirst().model() + ") and " + s.length() + " (" + s.model() + "); fix the layer_range values");
                return null;
            }
        }
        if (method != null) checkCount(counted, path);
        return out;
    }

    private int[] layerRange(Object raw, String path) {
        if (raw == null) {
            problems.add(path, "is missing; add layer_range: [start, end] (end exclusive)");
            return null;
        }
        if (raw instanceof List<?> l && l.size() == 2 && l.get(0) instanceof Integer a && l.get(1) instanceof Integer b) {
            if (a >= 0 && b > a) return new int[] {a, b};
            problems.add(path, "must be [start, end] with 0 <= start < end (end exclusive), got [" + a + ", " + b + "]");
            return null;
        }
        problems.add(path, "must be two whole numbers [start, end] (end exclusive), got '" + raw + "'");
        return null;
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> paramsRaw(Object raw, String path) {
        if (raw == null) return Map.of();
        if (raw instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (var e : ((Map<Object, Object>) m).entrySet()) out.put(String.valueOf(e.getKey()), e.getValue());
            return out;
        }
        problems.add(path, "must be a mapping of parameter names to values, got a " + YamlSource.kind(raw));
        return Map.of();
    }

    /** Checks names against the method and parses the values; top/slice levels take global and per-model names. */
    private ParamTable table(Map<String, Object> raw, String path, boolean shared) {
        if (method == null) return ParamTable.empty(path);
        Map<String, ParamSpec> allowed = new LinkedHashMap<>();
        for (ParamSpec p : method.perModel()) allowed.put(p.name(), p);
        Map<String, ParamSpec> globals = new LinkedHashMap<>();
        for (ParamSpec p : method.global()) globals.put(p.name(), p);
        if (shared) globals.forEach(allowed::putIfAbsent);
        for (String k : raw.keySet()) {
            if (allowed.containsKey(k)) continue;
            if (globals.containsKey(k)) {
                problems.add(path + "." + k, "'" + k + "' is a global parameter of " + method.name()
                        + " and cannot be set per model (mergekit ignores it there); move it to the top-level parameters:");
            } else {
                problems.add(path + "." + k, "unknown parameter of " + method.name() + "; valid here: "
                        + (allowed.isEmpty() ? "none" : String.join(", ", allowed.keySet())));
            }
        }
        return settings.table(raw, path, allowed);
    }

    private boolean isBase(String model, String base) {
        return method != null && method.base() != MethodSpec.BaseUse.UNUSED && model.equals(base);
    }

    private void requiredPerModel(String entry, boolean exempt, List<Map<String, Object>> levels, String fixPath) {
        if (method == null || exempt) return;
        for (ParamSpec p : method.perModel()) {
            if (!p.required() || levels.stream().anyMatch(l -> l.containsKey(p.name()))) continue;
            problems.add(fixPath + "." + p.name(), "is required by " + method.name() + " for " + entry
                    + "; add " + p.name() + ": to " + fixPath + " or to the top-level parameters:");
        }
    }

    private void requiredGlobals(Map<String, Object> topRaw, List<Slice> slices) {
        for (ParamSpec p : method.global()) {
            if (!p.required() || topRaw.containsKey(p.name())) continue;
            boolean allSlices = !slices.isEmpty() && slices.stream().allMatch(s -> s.params().has(p.name()));
            if (!allSlices) problems.add("parameters." + p.name(), "is required by " + method.name() + "; add " + p.name() + ": under parameters:");
        }
    }

    /** {@code given}: a base_model key was written (a bad value was already reported). */
    private void checkBase(String base, String path, boolean notListed, boolean given) {
        switch (method.base()) {
            case REQUIRED -> {
                if (base == null && !given) problems.add(path, "is missing; " + method.name() + " needs a base model: add base_model: <directory>");
            }
            case UNUSED -> {
                if (base != null && notListed) problems.add(path, method.name() + " does not use a base model; remove base_model: (or list '" + base + "' under models: with its parameters)");
            }
            case OPTIONAL -> { }
        }
    }

    private void checkCount(int n, String path) {
        String besides = method.base() == MethodSpec.BaseUse.UNUSED ? "" : " besides the base model";
        if (n < method.minModels()) {
            problems.add(path, method.name() + " merges at least " + method.minModels() + " model(s)" + besides + ", got " + n + "; add models");
        } else if (n > method.maxModels()) {
            problems.add(path, method.name() + " merges at most " + method.maxModels() + " model(s)" + besides + ", got " + n + "; remove models");
        }
    }
}
