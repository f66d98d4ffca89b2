package dev.mergeforge.config;

import java.util.List;

/**
 * One parameter value as written in a mergekit config, before it is evaluated for a tensor.
 * Evaluation follows mergekit's {@code evaluate_setting} exactly:
 * <ul>
 *   <li>a scalar is itself;</li>
 *   <li>a list of numbers (booleans count as 0/1, as in Python) is a gradient: piecewise-linear
 *       interpolation at position {@code t·(n−1)};</li>
 *   <li>a list of other scalars is indexed at {@code ⌊t·(n−1)⌋};</li>
 *   <li>a list of {@code {filter, value}} takes the first entry whose filter is absent, {@code "*"},
 *       or a substring of the tensor name, and evaluates its value; no match gives null so the
 *       next level of precedence is asked.</li>
 * </ul>
 */
public sealed interface Setting {

    /** The value for one tensor at interpolation position t in [0, 1], or null when no filter matched. */
    Object evaluate(String tensorName, double t);

    private static void checkT(double t) {
        if (!(t >= 0 && t <= 1)) throw new IllegalArgumentException("t must be in [0, 1], got " + t);
    }

    /** A single value: Double, Boolean or String. */
    record Scalar(Object value) implements Setting {
        public Scalar {
            if (!(value instanceof Double || value instanceof Boolean || value instanceof String)) {
                throw new IllegalArgumentException("a scalar setting is a Double, Boolean or String, got " + value);
            }
        }

        @Override public Object evaluate(String tensorName, double t) { return value; }
    }

    /** A list of numbers interpolated across layers. */
    record Gradient(List<Double> points) implements Setting {
        public Gradient {
            points = List.copyOf(points);
            if (points.isEmpty()) throw new IllegalArgumentException("a gradient needs at least one point");
        }

        @Override public Object evaluate(String tensorName, double t) {
            checkT(t);
            int n = points.size();
            // scaled = t·(n−1); i0 = ⌊scaled⌋; i1 = min(n−1, i0+1); frac = scaled − i0
            double scaled = t * (n - 1);
            int i0 = (int) scaled;
            int i1 = Math.min(n - 1, i0 + 1);
            double frac = scaled - i0;
            // value = (1−frac)·p[i0] + frac·p[i1]
            return (1 - frac) * points.get(i0) + frac * points.get(i1);
        }
    }

    /** A list of non-numeric values, one picked by position. */
    record Indexed(List<Object> values) implements Setting {
        public Indexed {
            values = List.copyOf(values);
            if (values.isEmpty()) throw new IllegalArgumentException("an indexed list needs at least one value");
        }

        @Override public Object evaluate(String tensorName, double t) {
            checkT(t);
            // index = ⌊t·(n−1)⌋
            return values.get((int) (t * (values.size() - 1)));
        }
    }

    /** One {@code {filter, value}} entry; a null filter (or "*") matches every tensor. */
    record Conditional(String filter, Setting value) {
        public Conditional {
            if (value == null || value instanceof Filtered) {
                throw new IllegalArgumentException("a filter's value is a scalar or a list, got " + value);
            }
        }

        /** mergekit's rule: no filter or "*" always matches; otherwise a non-empty tensor name containing it. */
        public boolean matches(String tensorName) {
            if (filter == null || filter.equals("*")) return true;
            return tensorName != null && !tensorName.isEmpty() && tensorName.contains(filter);
        }
    }

    /** A list of conditionals, first match wins. */
    record Filtered(List<Conditional> conditions) implements Setting {
        public Filtered {
            conditions = List.copyOf(conditions);
            if (conditions.isEmpty()) throw new IllegalArgumentException("a filter list needs at least one entry");
        }

        @Override public Object evaluate(String tensorName, double t) {
            for (Conditional c : conditions) {
                if (c.matches(tensorName)) return c.value().evaluate(tensorName, t);
            }
            return null;
        }
    }
}
