package dev.mergeforge.moe;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The router rows' condition number against closed forms: orthonormal rows, two rows at a known angle, dependent rows. */
class GateConditionTest {
    @Test
    void conditionNumberOfRouterRows() {
        int hd = 8;
        float[] ortho = new float[3 * hd];
        for (int e = 0; e < 3; e++) ortho[e * hd + e] = 1;
        assertEquals(1.0, GateVectors.condition(ortho, 3, hd), 1e-12);
        for (double angle : new double[] {0.1, 0.5, 1.2}) {
            // unit rows at angle a: Gram [[1, cos a], [cos a, 1]], eigenvalues 1 ± cos a
            float[] two = new float[2 * hd];
            two[0] = 1;
            two[hd] = (float) Math.cos(angle);
            two[hd + 1] = (float) Math.sin(angle);
            double c = Math.cos((float) angle);
            assertEquals(Math.sqrt((1 + c) / (1 - c)), GateVectors.condition(two, 2, hd), 1e-4 * Math.sqrt((1 + c) / (1 - c)));
        }
        Random r = new Random(1);
        float[] dep = new float[3 * hd];
        for (int j = 0; j < hd; j++) {
            dep[j] = (float) r.nextGaussian();
            dep[hd + j] = (float) r.nextGaussian();
            dep[2 * hd + j] = dep[j] + dep[hd + j];
        }
        assertTrue(GateVectors.condition(dep, 3, hd) > 1e3, "dependent rows");
        assertEquals(List.of(1), GateVectors.degenerateLayers(new float[][] {ortho, dep}, 3, 5.0));
    }
}
