package dev.mergeforge.model;

import dev.mergeforge.arch.Role;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A layer converted into a finished layer's arrays ({@link SpareArrays}) holds exactly what a fresh
 * conversion holds, in every family's layout (Conv1D weights transposed on load, biases, experts),
 * and a forward pass that recycles its layers gives the bits of one that keeps them all.
 */
class SpareArraysTest {
    private static final Parallel PAR = new Parallel(2);

    @AfterAll
    static void stop() { PAR.shutdown(); }

    @Test
    void takesOnlyArraysOfTheExactLengthAndRefillDropsTheRest() {
        SpareArrays s = new SpareArrays();
        float[] a = new float[6], b = new float[9];
        s.give(a);
        s.give(b);
        assertSame(b, s.take(9));
        float[] c = s.take(9);
        assertNotSame(b, c);
        assertEquals(9, c.length);
        assertSame(a, s.take(6));
    }

    @Test
    void aLayerLoadedIntoTheFinishedLayersArraysEqualsAFreshLoadInEveryFamily() {
        for (String family : ArchFixtures.FAMILIES) {
            try (WeightSource src = SafetensorsWeights.open(ArchFixtures.dir(family))) {
                ModelConfig c = ModelConfig.fromJson(src.config(), family + "/config.json");
                LayerTensors first = LayerTensors.load(src, c, 0);
                Set<float[]> firstArrays = Collections.newSetFromMap(new IdentityHashMap<>());
                firstArrays.addAll(arrays(first));
                SpareArrays spare = new SpareArrays();
                spare.refill(first);
                LayerTensors recycled = LayerTensors.load(src, c, 1, spare);
                LayerTensors fresh = LayerTensors.load(src, c, 1);
                List<float[]> got = arrays(recycled), want = arrays(fresh);
                assertEquals(want.size(), got.size(), family);
                for (int k = 0; k < want.size(); k++) assertArrayEquals(want.get(k), got.get(k), family + " array " + k);
                // the test means something only if the second layer really took the first one's arrays
                assertTrue(got.stream().anyMatch(firstArrays::contains), family + ": nothing was recycled");
            }
        }
    }

    @Test
    void aPassThatRecyclesItsLayersGivesTheBitsOfOneThatKeepsThem(@TempDir Path dir) throws IOException {
        TinyModel m = new TinyModel("qwen2");
        m.hidden = 12; m.inter = 28; m.layers = 5; m.heads = 3; m.kv = 3; m.headDim = 4; m.vocab = 18;
        m.eps = 1e-6; m.theta = 1e6; m.tied = true;
        m.build(5, true, false).write(dir, DType.BF16);
        int[][] seqs = ForwardPassTest.sequences(m.vocab, 3, 9, 20, 5);
        float[][] kept;
        try (LlamaModel model = LlamaModel.open(dir, PAR, true)) {
            kept = model.hiddenStates(seqs, ActivationObserver.NONE);
        }
        try (LlamaModel model = LlamaModel.open(dir, PAR, false)) {
            for (int round = 0; round < 2; round++) {
                float[][] got = model.hiddenStates(seqs, ActivationObserver.NONE);
                for (int b = 0; b < seqs.length; b++) assertArrayEquals(kept[b], got[b], "round " + round + " sequence " + b);
            }
        }
    }

    /** Every array of a layer in a fixed order: weights and biases by role, then experts. */
    private static List<float[]> arrays(LayerTensors t) {
        List<float[]> out = new ArrayList<>();
        for (Role r : Role.values()) {
            if (t.has(r)) out.add(t.w(r));
            if (t.b(r) != null) out.add(t.b(r));
        }
        for (float[][] e : t.experts) for (float[] x : e) if (x != null) out.add(x);
        return out;
    }
}
