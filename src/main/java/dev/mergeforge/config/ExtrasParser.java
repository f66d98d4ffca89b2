package dev.mergeforge.config;

import dev.mergeforge.tensor.DType;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Reads the keys around the merge itself: dtypes, tokenizer, and our aim: and calibration: blocks. */
final class ExtrasParser {
    private final Problems problems;

    ExtrasParser(Problems problems) { this.problems = problems; }

    DType dtype(Object raw, String key) {
        if (raw == null) return null;
        DType d = raw instanceof String s ? DType.parseUserName(s.startsWith("torch.") ? s.substring(6) : s) : null;
        if (d == null) problems.add(key, "unknown dtype '" + raw + "'; use bfloat16, float16 or float32 (also bf16, fp16, fp32)");
        return d;
    }

    /** tokenizer_source, or tokenizer.source (default "union" when the block is given), or null. */
    String tokenizerSource(Object source, Object block) {
        if (source != null && block != null) {
            problems.add("tokenizer_source", "give tokenizer_source or a tokenizer: block, not both (mergekit refuses both too); keep one");
            return null;
        }
        if (block != null) {
            Map<String, Object> m = map(block, "tokenizer");
            if (m == null) return null;
            unknownKeys(m, "tokenizer", ConfigKeys.TOKENIZER);
            return m.get("source") == null ? "union" : tokenizerRef(m.get("source"), "tokenizer.source");
        }
        return source == null ? null : tokenizerRef(source, "tokenizer_source");
    }

    private String tokenizerRef(Object raw, String path) {
        if ("union".equals(raw) || "base".equals(raw)) return (String) raw;
        return ModelRefs.check(raw, path, problems);
    }

    /** The aim: block; {@code aim: true} or an empty block means every default, false or null means off. */
    AimSettings aim(Object raw) {
        if (raw == null || Boolean.FALSE.equals(raw)) return null;
        if (Boolean.TRUE.equals(raw)) return AimSettings.defaults();
        Map<String, Object> m = map(raw, "aim");
        if (m == null) return null;
        int before = problems.size();
        unknownKeys(m, "aim", ConfigKeys.AIM);
        double omega = number(m, "aim.omega", "omega", AimSettings.DEFAULT_OMEGA);
        if (!(omega >= 0 && omega <= 1)) problems.add("aim.omega", "must be in [0, 1], got " + omega + " (the share of the delta kept on the most important channel; 0.4 is the paper's default)");
        String stats = string(m, "aim.stats", "stats");
        CalibrationSettings cal = m.get("calibration") == null ? null : calibration(m.get("calibration"), "aim.calibration");
        if (stats != null && m.get("calibration") != null) problems.add("aim.stats", "give aim.stats or aim.calibration, not both; stats are reused as they are");
        String scaling = m.get("scaling") == null ? "identity" : string(m, "aim.scaling", "scaling");
        if (scaling != null && !AimSettings.SCALINGS.contains(scaling)) problems.add("aim.scaling", "unknown scaling '" + scaling + "'; use identity or power");
        double power = number(m, "aim.power", "power", 1);
        if (!(power > 0)) problems.add("aim.power", "must be > 0, got " + power);
        if (m.containsKey("power") && !"power".equals(scaling)) problems.add("aim.power", "is only used with scaling: power; add scaling: power or remove power");
        List<String> include = strings(m, "aim.include", "include"), exclude = strings(m, "aim.exclude", "exclude");
        if (problems.size() > before) return null;
        return new AimSettings(omega, stats, cal, scaling, power, include, exclude);
    }

    CalibrationSettings calibration(Object raw, String path) {
        Map<String, Object> m = map(raw, path);
        if (m == null) return null;
        int before = problems.size();
        unknownKeys(m, path, ConfigKeys.CALIBRATION);
        String data = string(m, path + ".data", "data"), stats = string(m, path + ".stats", "stats");
        if (data != null && stats != null) problems.add(path, "give data (to compute statistics) or stats (to reuse them), not both");
        Integer samples = count(m, path + ".samples", "samples"), seqLen = count(m, path + ".seq_len", "seq_len");
        if (problems.size() > before) return null;
        return new CalibrationSettings(data, stats, samples, seqLen);
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> map(Object raw, String path) {
        if (raw instanceof Map<?, ?> m) return (Map<String, Object>) m;
        problems.add(path, "must be a mapping of keys, got a " + YamlSource.kind(raw));
        return null;
    }

    void unknownKeys(Map<?, ?> m, String path, List<String> valid) {
        for (Object k : m.keySet()) {
            if (!valid.contains(String.valueOf(k))) problems.add(path + "." + k, "unknown key; valid keys here: " + String.join(", ", valid));
        }
    }

    private double number(Map<String, Object> m, String path, String key, double dflt) {
        Object v = m.get(key);
        if (v == null) return dflt;
        if (v instanceof Number n && Double.isFinite(n.doubleValue())) return n.doubleValue();
        problems.add(path, "must be a finite number, got '" + v + "'");
        return dflt;
    }

    private String string(Map<String, Object> m, String path, String key) {
        Object v = m.get(key);
        if (v == null) return null;
        if (v instanceof String s && !s.isBlank()) return s;
        problems.add(path, "must be a file path or name (a string), got '" + v + "'; quote it");
        return null;
    }

    private Integer count(Map<String, Object> m, String path, String key) {
        Object v = m.get(key);
        if (v == null) return null;
        if ((v instanceof Integer || v instanceof Long) && ((Number) v).longValue() > 0 && ((Number) v).longValue() <= Integer.MAX_VALUE) {
            return ((Number) v).intValue();
        }
        problems.add(path, "must be a whole number > 0, got '" + v + "'");
        return null;
    }

    private List<String> strings(Map<String, Object> m, String path, String key) {
        Object v = m.get(key);
        if (v == null) return List.of();
        List<?> l = v instanceof List<?> list ? list : List.of(v);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < l.size(); i++) {
            if (l.get(i) instanceof String s && !s.isEmpty()) out.add(s);
            else problems.add(path + "[" + i + "]", "must be a tensor-name substring (a string), got '" + l.get(i) + "'");
        }
        return out;
    }
}
