package dev.mergeforge.config;

import java.util.Map;

/**
 * Checks a model reference as mergekit's ModelReference spells it: {@code path}, {@code path@revision},
 * {@code path+lora}, or a mapping {@code {model: path, lora: ..., override_architecture: ...}}.
 * We merge local full checkpoints only, so a LoRA or a hub revision is refused with the fix.
 */
final class ModelRefs {
    private ModelRefs() {}

    /** The model path, or null after recording a problem. */
    static String check(Object raw, String path, Problems problems) {
        if (raw instanceof Map<?, ?> m) return mapping(m, path, problems);
        if (!(raw instanceof String s) || s.isBlank()) {
            problems.add(path, "must be a model directory (a string), got " + (raw == null ? "nothing" : "'" + raw + "'"));
            return null;
        }
        int plus = s.indexOf('+');
        if (plus >= 0) {
            String model = s.substring(0, plus), lora = s.substring(plus + 1);
            problems.add(path, "'" + s + "' asks for LoRA adapter '" + lora + "' on '" + model
                    + "' (mergekit's model+lora syntax); mergeforge merges full checkpoints only: merge the adapter into its model first (peft merge_and_unload) and list that directory");
            return null;
        }
        if (s.indexOf('@') >= 0) {
            problems.add(path, "'" + s + "' names a hub revision (model@revision); mergeforge reads local directories only: download that revision and give its directory");
            return null;
        }
        return s;
    }

    private static String mapping(Map<?, ?> m, String path, Problems problems) {
        for (Object k : m.keySet()) {
            if (!"model".equals(k) && !"lora".equals(k) && !"override_architecture".equals(k)) {
                problems.add(path + "." + k, "unknown key in a model reference; valid keys: model, lora, override_architecture");
                return null;
            }
        }
        if (m.get("lora") != null) {
            problems.add(path + ".lora", "LoRA adapter '" + m.get("lora") + "' is not supported; mergeforge merges full checkpoints only: merge the adapter into its model first (peft merge_and_unload) and list that directory");
            return null;
        }
        if (m.get("override_architecture") != null) {
            problems.add(path + ".override_architecture", "is not supported; fix the architectures entry in the model's config.json instead");
            return null;
        }
        Object inner = m.get("model");
        if (inner instanceof Map<?, ?> p) {
            // mergekit's ModelPath mapping: {path, revision}
            if (p.get("revision") != null) {
                problems.add(path + ".model.revision", "hub revisions are not supported; mergeforge reads local directories only: download that revision and give its directory");
                return null;
            }
            return check(p.get("path"), path + ".model.path", problems);
        }
        return check(inner, path + ".model", problems);
    }
}
