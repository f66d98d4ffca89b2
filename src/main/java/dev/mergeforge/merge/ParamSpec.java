package dev.mergeforge.merge;

/**
 * One parameter a method accepts.
 *
 * @param name     config spelling
 * @param type     value type; a STRING parameter also accepts a YAML true/false (read back as
 *                 "true"/"false"), for mergekit flags we extend with named modes (DARE's {@code rescale})
 * @param dflt     default value (Double, Boolean or String), or null when required
 * @param min      smallest allowed number (inclusive), NaN for none
 * @param max      largest allowed number (inclusive), NaN for none
 * @param minOpen  true when min itself is not allowed, e.g. density in (0, 1]
 * @param doc      one line for `mergeforge methods`
 */
public record ParamSpec(String name, Type type, Object dflt, double min, double max, boolean minOpen, String doc) {
    public enum Type { NUMBER, FLAG, STRING }

    public static ParamSpec number(String name, Double dflt, String doc) {
        return new ParamSpec(name, Type.NUMBER, dflt, Double.NaN, Double.NaN, false, doc);
    }

    public static ParamSpec number(String name, Double dflt, double min, double max, boolean minOpen, String doc) {
        return new ParamSpec(name, Type.NUMBER, dflt, min, max, minOpen, doc);
    }

    public static ParamSpec flag(String name, boolean dflt, String doc) {
        return new ParamSpec(name, Type.FLAG, dflt, Double.NaN, Double.NaN, false, doc);
    }

    public boolean required() { return dflt == null; }

    /** Null when v is acceptable, else what is wrong with it (for a message that names the key). */
    public String check(Object v) {
        return switch (type) {
            case NUMBER -> {
                if (!(v instanceof Number n)) yield "must be a number, got '" + v + "'";
                double d = n.doubleValue();
                if (!Double.isFinite(d)) yield "must be finite, got " + d;
                if (!Double.isNaN(min) && (minOpen ? d <= min : d < min)) yield "must be " + (minOpen ? "> " : ">= ") + min + ", got " + d;
                if (!Double.isNaN(max) && d > max) yield "must be <= " + max + ", got " + d;
                yield null;
            }
            case FLAG -> v instanceof Boolean ? null : "must be true or false, got '" + v + "'";
            case STRING -> v instanceof String || v instanceof Boolean ? null : "must be a name or true/false, got '" + v + "'";
        };
    }
}
