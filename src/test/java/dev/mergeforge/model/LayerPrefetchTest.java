package dev.mergeforge.model;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.backend.Parallel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * hiddenStates loads layer i + 1 on a loader thread while layer i runs; the loader's errors reach
 * the caller as they are (that the layers are the right ones, ForwardPassTest's references check).
 */
class LayerPrefetchTest {
    // our own pool: ForwardPassTest shuts its shared one down after its tests
    private static final Parallel PAR = new Parallel(2);

    @AfterAll
    static void stop() { PAR.shutdown(); }

    @TempDir Path dir;

    @Test
    void aBadTensorInALaterLayerIsTheCheckpointErrorNamingItNotAWrappedOne() throws IOException {
        TinyModel m = ForwardPassTest.qwen2();
        String bad = "model.layers.2.mlp.down_proj.weight";
        long[] s = m.shapes.get(bad);
        m.shapes.put(bad, new long[] {s[1], s[0]});
        Path d = m.write(dir.resolve("bad"), DType.F32);
        int[][] seqs = ForwardPassTest.sequences(m.vocab(), 4, 20, 7);
        try (LlamaModel model = LlamaModel.open(d, PAR, false)) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> model.hiddenStates(seqs, ActivationObserver.NONE));
            assertTrue(e.getMessage().contains(bad) && e.getMessage().contains("shape"), e.getMessage());
        }
    }
}
