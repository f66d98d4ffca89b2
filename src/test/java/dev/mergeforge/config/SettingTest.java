package dev.mergeforge.config;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class SettingTest {

    /** Independent piecewise-linear interpolation over evenly spaced knots at 0, 1/(n-1), ..., 1. */
    static double handGradient(double[] p, double t) {
        if (p.length == 1) return p[0];
        double x = t * (p.length - 1);
        int k = (int) Math.floor(x);
        if (k >= p.length - 1) return p[p.length - 1];
        double u = x - k;
        return p[k] + u * (p[k + 1] - p[k]);
    }

    @Test
    void gradientMatchesHandInterpolationAcrossT() {
        double[][] cases = {{0, 0.5, 0.3, 0.7, 1}, {1, 0.7, 0.1}, {0, 0.3, 0.7, 1}, {2.5}, {-1, 3}};
        for (double[] p : cases) {
            List<Double> pts = java.util.Arrays.stream(p).boxed().toList();
            Setting g = new Setting.Gradient(pts);
            for (int i = 0; i <= 40; i++) {
                double t = i / 40.0;
                assertEquals(handGradient(p, t), (Double) g.evaluate("x", t), 1e-12, "t=" + t + " points " + pts);
            }
        }
    }

    @Test
    void gradientHitsKnotsExactlyAtLayerPositions() {
        // 5 points over 5 layers: layer i sits on knot i
        Setting g = new Setting.Gradient(List.of(0.0, 0.5, 0.3, 0.7, 1.0));
        double[] expect = {0, 0.5, 0.3, 0.7, 1};
        for (int layer = 0; layer < 5; layer++) {
            assertEquals(expect[layer], (Double) g.evaluate("x", ConfigReader.layerT("model.layers." + layer + ".mlp.up_proj.weight", layer, 5)), 1e-12);
        }
        // midway between knots 1 and 2 of the 3-point gradient at t = 0.75: 0.7 + 0.5·(0.1 − 0.7) = 0.4
        assertEquals(0.4, (Double) new Setting.Gradient(List.of(1.0, 0.7, 0.1)).evaluate("x", 0.75), 1e-12);
    }

    @Test
    void indexedListPicksFloorPosition() {
        Setting s = new Setting.Indexed(List.of("a", "b", "c"));
        // index = floor(t·2)
        assertEquals("a", s.evaluate("x", 0.0));
        assertEquals("a", s.evaluate("x", 0.49));
        assertEquals("b", s.evaluate("x", 0.5));
        assertEquals("b", s.evaluate("x", 0.99));
        assertEquals("c", s.evaluate("x", 1.0));
    }

    @Test
    void filtersFirstMatchWinsAndWildcardMatchesAll() {
        Setting s = new Setting.Filtered(List.of(
                new Setting.Conditional("self_attn", new Setting.Scalar(0.1)),
                new Setting.Conditional("mlp", new Setting.Scalar(0.2)),
                new Setting.Conditional("attn", new Setting.Scalar(0.3)),
                new Setting.Conditional(null, new Setting.Scalar(0.9))));
        assertEquals(0.1, s.evaluate("model.layers.0.self_attn.q_proj.weight", 0));
        assertEquals(0.2, s.evaluate("model.layers.0.mlp.up_proj.weight", 0));
        assertEquals(0.3, s.evaluate("transformer.h.0.attn.c_attn.weight", 0));
        assertEquals(0.9, s.evaluate("model.norm.weight", 0));
        Setting star = new Setting.Filtered(List.of(new Setting.Conditional("*", new Setting.Scalar(0.5))));
        assertEquals(0.5, star.evaluate("anything", 0));
        assertEquals(0.5, star.evaluate(null, 0));
    }

    @Test
    void filterWithoutMatchGivesNullAndNamedFilterNeverMatchesEmptyName() {
        Setting s = new Setting.Filtered(List.of(new Setting.Conditional("mlp", new Setting.Scalar(0.2))));
        assertNull(s.evaluate("model.layers.0.self_attn.q_proj.weight", 0));
        assertNull(s.evaluate("", 0));
        assertNull(s.evaluate(null, 0));
    }

    @Test
    void filterValueMayBeAGradient() {
        Setting s = new Setting.Filtered(List.of(
                new Setting.Conditional("mlp", new Setting.Gradient(List.of(1.0, 0.5, 0.7, 0.3, 0.0))),
                new Setting.Conditional(null, new Setting.Scalar(0.5))));
        double[] p = {1, 0.5, 0.7, 0.3, 0};
        for (double t : new double[] {0, 0.1, 0.25, 0.6, 1}) {
            assertEquals(handGradient(p, t), (Double) s.evaluate("model.layers.3.mlp.down_proj.weight", t), 1e-12);
            assertEquals(0.5, s.evaluate("model.layers.3.self_attn.o_proj.weight", t));
        }
    }

    @Test
    void tOutsideUnitIntervalIsAProgrammingError() {
        Setting g = new Setting.Gradient(List.of(0.0, 1.0));
        assertThrows(IllegalArgumentException.class, () -> g.evaluate("x", 1.5));
        assertThrows(IllegalArgumentException.class, () -> g.evaluate("x", -0.1));
        assertThrows(IllegalArgumentException.class, () -> new Setting.Gradient(List.of()));
        assertThrows(IllegalArgumentException.class, () -> new Setting.Scalar(3));
    }
}
