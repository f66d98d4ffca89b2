package dev.mergeforge.config;

import java.util.Map;

/**
 * Checks a model reference as mergekit's ModelReference spells it: {@code path}, {@code path@revision},
 * {@code path+lora}, or a mapping {@code {model: path, lora: ..., override_architecture: ...}}.
 * A LoRA reference stays {@code model+lora} (applied while reading: docs/io.md, "LoRA adapters");
 * a hub revision is refused with the fix.
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
        if (plus >= 0 && (plus == 0 || plus == s.length() - 1 || s.indexOf('+', plus + 1) >= 0)) {
            problems.add(path, "'" + s + "' is not model+adapter (mergekit's LoRA syntax: one '+' between the base model and the adapter directory); fix the reference");
            return null;
        }
        if (s.indexOf('@') >= 0) {
            problems.add(path, "'" + s + "' names a hub revision (model@revision); mergeforge reads local directories only: download that revision and give its directory");
            return null;
        }
        return s;
    }

    /** {@code {model, lora}} as the equivalent string reference model+lora. */
    private static String withLora(String model, Object lora) {
        return model == null || lora == null ? model : model + "+" + lora;
    }

    private static String mapping(Map<?, ?> m, String path, Problems problems) {
        for (Object k : m.keySet()) {
            if (!"model".equals(k) && !"lora".equals(k) && !"override_architecture".equals(k)) {
                problems.add(path + "." + k, "unknown key in a model reference; valid keys: model, lora, override_architecture");
                return null;
            }
        }
        Object lora = m.get("lora");
        if (lora != null && !(lora instanceof String l && !l.isBlank() && !l.contains("+"))) {
            problems.add(path + ".lora", "must be a LoRA adapter directory (a string), got '" + lora + "'");
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
            return withLora(check(p.get("path"), path + ".model.path", problems), lora);
        }
        return withLora(check(inner, path + ".model", problems), lora);
    }
}
