package dev.mergeforge.config;

import java.util.Map;

/**
 * Checks a model reference as mergekit's ModelReference spells it: {@code path}, {@code path@revision},
 * {@code path+lora}, or a mapping {@code {model: path, lora: ..., override_architecture: ...}}.
 * We merge full checkpoints only, so a LoRA is refused with the fix; a hub revision is kept as
 * {@code repo@revision}, which {@link dev.mergeforge.io.Checkpoint#open} reads from the local cache.
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
        // org/name@revision is read from the local Hugging Face cache's snapshot of that revision (docs/io.md)
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
            String repo = check(p.get("path"), path + ".model.path", problems);
            Object rev = p.get("revision");
            if (rev == null || repo == null) return repo;
            if (!(rev instanceof String r) || r.isBlank() || repo.indexOf('@') >= 0) {
                problems.add(path + ".model.revision", "must be a branch, tag or commit (a string) for a path without '@', got '" + rev + "'");
                return null;
            }
            return repo + "@" + r;
        }
        return check(inner, path + ".model", problems);
    }
}
