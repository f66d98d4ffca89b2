package dev.mergeforge.config;

import dev.mergeforge.merge.ParamSpec;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns the YAML value of one parameter into a {@link Setting}, checking every value it can take
 * (each gradient point, each filter's value) against the method's {@link ParamSpec}. Checking the
 * points suffices for ranges: an interpolated value is a convex combination of two points.
 *
 * <p>Coercions that mergekit's pydantic models also apply: a quoted number ("0.5") is a number;
 * for a true/false parameter, 0 and 1 mean false and true.
 */
final class SettingParser {
    private final Problems problems;

    SettingParser(Problems problems) { this.problems = problems; }

    /** Parses one {@code parameters:} block; unknown names are the caller's business. */
    ParamTable table(Map<String, Object> raw, String path, Map<String, ParamSpec> specs) {
        Map<String, Setting> out = new LinkedHashMap<>();
        for (var e : raw.entrySet()) {
            ParamSpec spec = specs.get(e.getKey());
            if (spec == null) continue;
            Setting s = setting(e.getValue(), path + "." + e.getKey(), spec);
            if (s != null) out.put(e.getKey(), s);
        }
        return new ParamTable(out, path);
    }

    /** The setting, or null after recording a problem. */
    Setting setting(Object raw, String path, ParamSpec spec) {
        if (raw == null) {
            problems.add(path, "has no value; give a value, a list (gradient) or a list of {filter, value}");
            return null;
        }
        if (raw instanceof Map<?, ?> m) {
            // mergekit's schema admits a lone {filter, value} but its evaluator then fails; we read it as a one-entry list
            Setting.Conditional c = conditional(m, path, spec);
            return c == null ? null : new Setting.Filtered(List.of(c));
        }
        if (raw instanceof List<?> list) return list(list, path, spec, true);
        Object v = leaf(raw, path, spec);
        return v == null ? null : new Setting.Scalar(v);
    }

    private Setting list(List<?> list, String path, ParamSpec spec, boolean filtersAllowed) {
        if (list.isEmpty()) {
            problems.add(path, "is an empty list; give a value or at least one list entry");
            return null;
        }
        long maps = list.stream().filter(e -> e instanceof Map).count();
        if (maps > 0) {
            if (!filtersAllowed) {
                problems.add(path, "a filter's value cannot itself hold filters; give a number or a list of numbers");
                return null;
            }
            if (maps != list.size()) {
                problems.add(path, "mixes {filter, value} entries with plain values; write every entry as {filter, value} (omit filter for the fallback)");
                return null;
            }
            List<Setting.Conditional> conds = new ArrayList<>();
            boolean ok = true;
            for (int i = 0; i < list.size(); i++) {
                Setting.Conditional c = conditional((Map<?, ?>) list.get(i), path + "[" + i + "]", spec);
                if (c == null) ok = false; else conds.add(c);
            }
            return ok ? new Setting.Filtered(conds) : null;
        }
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i) instanceof List || list.get(i) == null) {
                problems.add(path + "[" + i + "]", "must be a single value, got " + (list.get(i) == null ? "nothing" : "a nested list"));
                return null;
            }
        }
        List<Object> values = new ArrayList<>();
        for (Object e : list) values.add(spec.type() == ParamSpec.Type.NUMBER ? numericString(e) : e);
        boolean numeric = values.stream().allMatch(e -> e instanceof Number || e instanceof Boolean);
        boolean ok = true;
        for (int i = 0; i < values.size(); i++) {
            if (leaf(values.get(i), path + "[" + i + "]", spec) == null) ok = false;
        }
        if (!ok) return null;
        if (numeric) {
            // mergekit interpolates any all-number list; Python counts booleans as 0/1
            List<Double> pts = new ArrayList<>();
            for (Object e : values) pts.add(e instanceof Boolean b ? (b ? 1.0 : 0.0) : ((Number) e).doubleValue());
            return new Setting.Gradient(pts);
        }
        return new Setting.Indexed(values);
    }

    private Setting.Conditional conditional(Map<?, ?> m, String path, ParamSpec spec) {
        boolean ok = true;
        for (Object k : m.keySet()) {
            if (!"filter".equals(k) && !"value".equals(k)) {
                problems.add(path + "." + k, "unknown key in a filter entry; valid keys: filter, value");
                ok = false;
            }
        }
        Object f = m.get("filter");
        if (f != null && !(f instanceof String)) {
            problems.add(path + ".filter", "must be a substring of tensor names (a string), got '" + f + "'; quote it");
            ok = false;
        }
        if (!m.containsKey("value") || m.get("value") == null) {
            problems.add(path + ".value", "is missing; every filter entry needs a value");
            return null;
        }
        Object raw = m.get("value");
        Setting value;
        if (raw instanceof Map) {
            problems.add(path + ".value", "a filter's value cannot itself be a {filter, value}; give a number or a list of numbers");
            return null;
        } else if (raw instanceof List<?> l) {
            value = list(l, path + ".value", spec, false);
        } else {
            Object v = leaf(raw, path + ".value", spec);
            value = v == null ? null : new Setting.Scalar(v);
        }
        return ok && value != null ? new Setting.Conditional((String) f, value) : null;
    }

    /** One value normalised to Double, Boolean or String and checked by the spec; null after a problem. */
    private Object leaf(Object raw, String path, ParamSpec spec) {
        Object v = switch (spec.type()) {
            case NUMBER -> numericString(raw);
            case FLAG -> raw instanceof Number n && (n.doubleValue() == 0 || n.doubleValue() == 1) ? (Object) (n.doubleValue() == 1) : raw;
            case STRING -> raw;
        };
        if (spec.type() == ParamSpec.Type.NUMBER && v instanceof Number n && !(v instanceof Double)) v = n.doubleValue();
        String why = spec.check(v);
        if (why != null) {
            problems.add(path, why + fix(spec));
            return null;
        }
        return v instanceof Number n ? (Object) n.doubleValue() : v;
    }

    private static Object numericString(Object raw) {
        if (raw instanceof String s) {
            try {
                return Double.parseDouble(s.trim());
            } catch (NumberFormatException ignored) {
                return raw;
            }
        }
        return raw;
    }

    private static String fix(ParamSpec spec) {
        return switch (spec.type()) {
            case NUMBER -> {
                boolean lo = !Double.isNaN(spec.min()), hi = !Double.isNaN(spec.max());
                if (lo && hi) yield " (" + spec.name() + " must be in " + (spec.minOpen() ? "(" : "[") + spec.min() + ", " + spec.max() + "])";
                if (lo) yield " (" + spec.name() + " must be " + (spec.minOpen() ? "> " : ">= ") + spec.min() + ")";
                if (hi) yield " (" + spec.name() + " must be <= " + spec.max() + ")";
                yield " (" + spec.name() + " takes a finite number)";
            }
            case FLAG -> " (" + spec.name() + " takes true or false)";
            case STRING -> " (" + spec.name() + " takes a name)";
        };
    }
}
