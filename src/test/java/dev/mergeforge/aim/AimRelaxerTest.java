package dev.mergeforge.aim;

import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AimRelaxerTest {
    static final JavaBackend BE = new JavaBackend(2);

    @TempDir Path dir;

    @AfterAll static void close() { BE.close(); }

    /** Writes a stats file with the given vectors (float32). */
    Path stats(Map<String, float[]> vectors) {
        Path p = dir.resolve("stats.safetensors");
        List<SafetensorsWriter.Entry> entries = vectors.entrySet().stream()
                .map(e -> new SafetensorsWriter.Entry(e.getKey(), DType.F32, Shape.of(e.getValue().length))).toList();
        try (SafetensorsWriter w = new SafetensorsWriter(p, entries, Map.of("stat", "act_mean"))) {
            vectors.forEach((k, v) -> {
                var slot = w.slot(k);
                for (int i = 0; i < v.length; i++) slot.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, v[i]);
            });
        }
        return p;
    }

    static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    /** The relaxation in double, straight from docs/aim.md ("The relaxation"), input channel given by a function of (row, col). */
    static double[] reference(float[] base, float[] merged, float[] s, double omega, int rows, int cols, boolean conv1d) {
        double max = 0;
        for (float v : s) max = Math.max(max, v);
        double[] out = new double[base.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int i = r * cols + c;
                double imp = s[conv1d ? r : c] / max;
                out[i] = base[i] + (merged[i] - base[i]) * (1 - (1 - omega) * imp);
            }
        }
        return out;
    }

    @Test
    void linearWeightsRelaxAlongColumnsLikeTheDoubleReference() {
        Random r = new Random(1);
        int rows = 7, cols = 13;
        float[] s = new float[cols];
        for (int j = 0; j < cols; j++) s[j] = (float) Math.abs(r.nextGaussian()) + 0.01f;
        Path p = stats(Map.of("model.layers.0.mlp.down_proj.weight", s));
        float[] base = random(r, rows * cols), merged = random(r, rows * cols);
        for (double omega : new double[] {0.0, 0.2, 0.4, 1.0}) {
            try (AimRelaxer aim = new AimRelaxer(p, AimRelaxer.Settings.of(omega), false, false)) {
                Tile b = Tile.ofArray(Shape.of(rows, cols), base.clone()), m = Tile.ofArray(Shape.of(rows, cols), merged.clone());
                aim.apply(BE, "model.layers.0.mlp.down_proj.weight", b.shape(), b, m);
                double[] ref = reference(base, merged, s, omega, rows, cols, false);
                for (int i = 0; i < ref.length; i++) assertEquals(ref[i], m.get(i), 1e-6, "omega " + omega + " element " + i);
            }
        }
    }

    @Test
    void omegaOneIsExactlyThePlainMergeAndOmegaZeroGivesTheBaseOnTheTopChannel() {
        Random r = new Random(2);
        int rows = 5, cols = 8;
        float[] s = {0.1f, 0.5f, 3.0f, 0.2f, 0.0f, 1.0f, 2.0f, 0.3f}; // channel 2 is the most important
        Path p = stats(Map.of("model.layers.1.self_attn.q_proj.weight", s));
        float[] base = random(r, rows * cols), merged = random(r, rows * cols);
        try (AimRelaxer one = new AimRelaxer(p, AimRelaxer.Settings.of(1.0), false, false);
             AimRelaxer zero = new AimRelaxer(p, AimRelaxer.Settings.of(0.0), false, false)) {
            Tile b = Tile.ofArray(Shape.of(rows, cols), base.clone()), m = Tile.ofArray(Shape.of(rows, cols), merged.clone());
            one.apply(BE, "model.layers.1.self_attn.q_proj.weight", b.shape(), b, m);
            for (int i = 0; i < merged.length; i++) assertEquals(Float.floatToRawIntBits(merged[i]), Float.floatToRawIntBits(m.get(i)));
            Tile m0 = Tile.ofArray(Shape.of(rows, cols), merged.clone());
            zero.apply(BE, "model.layers.1.self_attn.q_proj.weight", b.shape(), b, m0);
            for (int row = 0; row < rows; row++) {
                assertEquals(base[row * cols + 2], m0.get(row * cols + 2), 0.0, "top channel keeps the base exactly");
                assertEquals(merged[row * cols + 4], m0.get(row * cols + 4), 0.0, "unused channel keeps all of the delta");
            }
        }
    }

    @Test
    void conv1dWeightsRelaxAlongRowsAndNormsElementwise() {
        Random r = new Random(3);
        int rows = 6, cols = 9; // GPT-2 Conv1D: (in = 6, out = 9)
        float[] sIn = new float[rows], sNorm = new float[cols];
        for (int j = 0; j < rows; j++) sIn[j] = j + 1;
        for (int j = 0; j < cols; j++) sNorm[j] = (float) Math.abs(r.nextGaussian());
        Map<String, float[]> v = new LinkedHashMap<>();
        v.put("transformer.h.0.mlp.c_fc.weight", sIn);
        v.put("transformer.h.0.ln_1.weight", sNorm);
        Path p = stats(v);
        float[] base = random(r, rows * cols), merged = random(r, rows * cols);
        try (AimRelaxer aim = new AimRelaxer(p, AimRelaxer.Settings.of(0.4), true, true)) {
            Tile b = Tile.ofArray(Shape.of(rows, cols), base.clone()), m = Tile.ofArray(Shape.of(rows, cols), merged.clone());
            aim.apply(BE, "transformer.h.0.mlp.c_fc.weight", b.shape(), b, m);
            double[] ref = reference(base, merged, sIn, 0.4, rows, cols, true);
            for (int i = 0; i < ref.length; i++) assertEquals(ref[i], m.get(i), 1e-6);
            float[] nb = random(r, cols), nm = random(r, cols);
            Tile b1 = Tile.ofArray(nb.clone()), m1 = Tile.ofArray(nm.clone());
            aim.apply(BE, "transformer.h.0.ln_1.weight", b1.shape(), b1, m1);
            double[] ref1 = reference(nb, nm, sNorm, 0.4, 1, cols, false);
            for (int i = 0; i < cols; i++) assertEquals(ref1[i], m1.get(i), 1e-6);
        }
    }

    @Test
    void embeddingsBiasesTiedHeadAndFilteredTensorsAreUntouched() {
        Path p = stats(Map.of("lm_head.weight", new float[] {1, 2}, "model.layers.0.self_attn.q_proj.bias", new float[] {1, 2},
                "model.embed_tokens.weight", new float[] {1, 2}, "model.layers.0.mlp.up_proj.weight", new float[] {1, 2}));
        try (AimRelaxer tied = new AimRelaxer(p, AimRelaxer.Settings.of(0.4), false, true);
             AimRelaxer filtered = new AimRelaxer(p, new AimRelaxer.Settings(0.4, AimRelaxer.Scaling.IDENTITY, 1, List.of(), List.of("mlp")), false, false)) {
            assertFalse(tied.applies("lm_head.weight"));
            assertFalse(tied.applies("model.embed_tokens.weight"));
            assertFalse(tied.applies("model.layers.0.self_attn.q_proj.bias"));
            assertTrue(tied.applies("model.layers.0.mlp.up_proj.weight"));
            assertFalse(filtered.applies("model.layers.0.mlp.up_proj.weight"));
            assertTrue(filtered.applies("lm_head.weight"));
        }
    }

    @Test
    void powerScalingRaisesTheImportance() {
        float[] s = {1, 2, 4};
        Path p = stats(Map.of("model.norm.weight", s));
        try (AimRelaxer aim = new AimRelaxer(p, new AimRelaxer.Settings(0.5, AimRelaxer.Scaling.POWER, 2.0, List.of(), List.of()), false, false)) {
            Tile b = Tile.ofArray(0, 0, 0), m = Tile.ofArray(1, 1, 1);
            aim.apply(BE, "model.norm.weight", b.shape(), b, m);
            for (int j = 0; j < 3; j++) {
                double imp = Math.pow(s[j] / 4.0, 2);
                assertEquals(1 - 0.5 * imp, m.get(j), 1e-6);
            }
        }
    }

    @Test
    void aStatisticOfTheWrongLengthNamesTheTensorAndTheFile() {
        Path p = stats(Map.of("model.layers.0.mlp.down_proj.weight", new float[] {1, 2, 3}));
        try (AimRelaxer aim = new AimRelaxer(p, AimRelaxer.Settings.of(0.4), false, false)) {
            Tile b = Tile.ofArray(Shape.of(2, 4), new float[8]), m = Tile.ofArray(Shape.of(2, 4), new float[8]);
            CheckpointException e = assertThrows(CheckpointException.class, () -> aim.apply(BE, "model.layers.0.mlp.down_proj.weight", b.shape(), b, m));
            assertTrue(e.getMessage().contains("model.layers.0.mlp.down_proj.weight") && e.getMessage().contains("stats.safetensors")
                    && e.getMessage().contains("4 input channels"), e.getMessage());
        }
    }

    @Test
    void settingsRejectOmegaOutsideTheUnitInterval() {
        assertThrows(dev.mergeforge.errors.ConfigException.class, () -> AimRelaxer.Settings.of(1.5));
        assertThrows(dev.mergeforge.errors.ConfigException.class, () -> AimRelaxer.Settings.of(-0.1));
    }
}
