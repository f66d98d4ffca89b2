package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Backend.Axis;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.random;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;

/**
 * TIES sign election and disjoint merge, and AIM relaxation on all three axes: NativeBackend
 * against JavaBackend bit for bit, and against a double reference that rounds as the contract says.
 */
class NativeTiesRelaxTest {
    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    private static final float[] W = {0.5f, 1.25f, -0.75f};

    /** Three task vectors where many entries are zero, so signs and zeros both occur. */
    private static float[][] weighted(int n) {
        float[][] in = {random(11, n), random(12, n), random(13, n)};
        for (int i = 0; i < n; i += 5) in[i % 3][i] = 0f;
        return in;
    }

    private static float[] electRef(float[][] in, int n) {
        float[] ref = new float[n];
        for (int i = 0; i < n; i++) {
            // s = x0 + x1 + x2 left to right in float32; +1 if s >= 0 else -1
            float s = in[0][i];
            for (int j = 1; j < in.length; j++) s = (float) ((double) s + in[j][i]);
            ref[i] = s >= 0 ? 1f : -1f;
        }
        return ref;
    }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void electSignAndDisjointMerge(Case c) {
        int n = (int) c.n();
        float[][] in = weighted(n);
        float[] sign = electRef(in, n);
        float[][] ref = new float[2][n];
        for (int i = 0; i < n; i++) {
            double acc = 0, div = 0;
            for (int j = 0; j < 3; j++) {
                float v = in[j][i];
                // kept iff sign(v) (0 for zero) equals the elected sign
                if (Math.signum(v) == sign[i]) {
                    acc = (float) (acc + v);
                    div = (float) (div + W[j]);
                }
            }
            ref[0][i] = (float) acc;
            ref[1][i] = (float) (acc / (div == 0 ? 1 : div));
        }
        Backend[] bs = {java(), nat(c)};
        float[][] signs = new float[2][], plain = new float[2][], norm = new float[2][];
        for (int k = 0; k < 2; k++) {
            try (Arena arena = Arena.ofShared()) {
                List<Tile> ts = new ArrayList<>();
                for (float[] v : in) ts.add(tile(arena, v));
                Tile s = tile(arena, new float[n]), out = tile(arena, new float[n]);
                bs[k].electSign(ts, s);
                signs[k] = s.toArray();
                bs[k].disjointMerge(ts, W, s, false, out);
                plain[k] = out.toArray();
                bs[k].disjointMerge(ts, W, s, true, out);
                norm[k] = out.toArray();
                // output aliasing the first input
                bs[k].disjointMerge(ts, W, s, true, ts.get(0));
                assertBits(norm[k], ts.get(0).toArray(), "disjointMerge into its input, " + bs[k].name() + ", " + c);
            }
        }
        assertBits(signs[0], signs[1], "electSign native vs java, " + c);
        assertBits(sign, signs[1], "electSign native vs reference, " + c);
        assertBits(plain[0], plain[1], "disjointMerge native vs java, " + c);
        assertBits(ref[0], plain[1], "disjointMerge native vs reference, " + c);
        assertBits(norm[0], norm[1], "disjointMerge(normalize) native vs java, " + c);
        assertBits(ref[1], norm[1], "disjointMerge(normalize) native vs reference, " + c);
    }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void relax(Case c) {
        int n = (int) c.n();
        // an odd column count that divides n where one exists, else a vector
        int cols = n % 7 == 0 ? 7 : n % 3 == 0 ? 3 : n;
        Shape shape = Shape.of(n / cols, cols);
        float[] base = random(21, n), merged = random(22, n);
        float omega = 0.3f;
        for (Axis axis : Axis.values()) {
            int channels = switch (axis) {
                case COLUMNS -> cols;
                case ROWS -> n / cols;
                case ELEMENTS -> n;
            };
            float[] imp = new float[channels];
            java.util.SplittableRandom r = new java.util.SplittableRandom(23);
            for (int k = 0; k < channels; k++) imp[k] = (float) r.nextDouble();
            float[] ref = new float[n];
            float keep = (float) (1.0 - omega);
            for (int i = 0; i < n; i++) {
                int ch = switch (axis) {
                    case COLUMNS -> i % cols;
                    case ROWS -> i / cols;
                    case ELEMENTS -> i;
                };
                // f = 1 - ((1 - omega) * imp[c]); out = base + ((merged - base) * f)
                float f = (float) (1.0 - (float) ((double) keep * imp[ch]));
                float d = (float) ((double) merged[i] - base[i]);
                ref[i] = (float) ((double) base[i] + (float) ((double) d * f));
            }
            Backend[] bs = {java(), nat(c)};
            float[][] res = new float[2][];
            for (int k = 0; k < 2; k++) {
                try (Arena arena = Arena.ofShared()) {
                    Tile b = tile(arena, shape, base), m = tile(arena, shape, merged), im = tile(arena, imp);
                    bs[k].relax(b, m, im, omega, axis, m); // out aliasing merged
                    res[k] = m.toArray();
                }
            }
            assertBits(res[0], res[1], "relax " + axis + " native vs java, " + c);
            assertBits(ref, res[1], "relax " + axis + " native vs reference, " + c);
        }
    }
}
