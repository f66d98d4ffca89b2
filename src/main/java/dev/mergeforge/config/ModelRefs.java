package dev.mergeforge.config;

import java.util.Map;

/**
 * Checks a model reference as mergekit's ModelReference spells it: {@code path}, {@code path@revision},
 * {@code path+lora}, or a mapping {@code {model: path, lora: ..., override_architecture: ...}}.
 * A LoRA reference stays {@code model+lora} (applied while reading: docs/io.md, "LoRA adapters");
 * a hub revision is kept as {@code repo@revision}, which {@link dev.mergeforge.io.Checkpoint#open}
 * reads from the local cache.
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
        // org/name@revision is read from the local Hugging Face cache's snapshot of that revision (docs/io.md)
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
            String repo = check(p.get("path"), path + ".model.path", problems);
            Object rev = p.get("revision");
            if (repo == null) return null;
            if (rev == null) return withLora(repo, lora);
            if (!(rev instanceof String r) || r.isBlank() || repo.indexOf('@') >= 0) {
                problems.add(path + ".model.revision", "must be a branch, tag or commit (a string) for a path without '@', got '" + rev + "'");
                return null;
            }
            return withLora(repo + "@" + r, lora);
        }
        return withLora(check(inner, path + ".model", problems), lora);
    }
}
