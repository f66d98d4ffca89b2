package dev.mergeforge.model;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.backend.Parallel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** calib-bench's product counts: the linear layers' and attention's multiply-adds, counted by hand here. */
class ProductMeterTest {
    // our own pool: ForwardPassTest shuts its shared one down after its tests
    private static final Parallel PAR = new Parallel(2);

    @AfterAll
    static void stop() { PAR.shutdown(); }

    @TempDir Path dir;

    @Test
    void countsTwoFlopsPerMultiplyAddOfEveryLinearAndOfAttentionOnTheGemm() throws IOException {
        TinyModel m = ForwardPassTest.qwen2();
        Path d = m.write(dir, DType.F32);
        int[][] seqs = ForwardPassTest.sequences(m.vocab(), 6, 20, 7);
        ProductMeter.Reading r;
        ModelConfig c;
        try (LlamaModel model = LlamaModel.open(d, PAR, false)) {
            c = model.config();
            ProductMeter.start();
            model.hiddenStates(seqs, ActivationObserver.NONE);
            r = ProductMeter.stop();
        }
        long h = c.hiddenSize(), perToken = h * c.qDim() + 2 * h * c.kvDim() + c.qDim() * h + 3 * h * c.intermediateSize();
        assertEquals(2 * perToken * c.layers() * (20 + 7), r.linear().flops());
        assertTrue(r.linear().nanos() > 0, "time counted");
        // the 20-token block runs attention on the GEMM (one tile: 20 queries × 20 keys, two products per head); 7 tokens do not
        long attention = AttentionProducts.use(20) ? 2L * 2 * 20 * c.headDim() * 20 * c.heads() * c.layers() : 0;
        assertEquals(attention, r.attention().flops());
        assertEquals(r.linear().flops() + r.attention().flops(), r.total().flops());
        // off again: nothing more is counted
        ProductMeter.start();
        ProductMeter.Reading none = ProductMeter.stop();
        assertEquals(0, none.total().flops());
    }
}
