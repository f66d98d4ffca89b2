package dev.mergeforge.calib;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.model.cuda.CudaForward;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.model.ForwardPass;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.tensor.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * Computes a model's RegMean Gram file (docs/data-informed.md) on its own calibration data:
 * the blocks run through the model layer by layer, {@link GramStats} accumulates XᵀX per Linear
 * input and streams each finished layer into the output file, so memory holds one layer's Grams.
 * Blocks are whole (no padding), so every token counts. Results are cached like
 * {@link Calibrator}'s, under a key that says "gram".
 */
public final class GramCalibrator {
    private static final Logger LOG = Logger.getLogger(GramCalibrator.class.getName());
    /** Metadata key: JSON object {weight name: stored name} of Linears that share a stored Gram. */
    public static final String SHARED_INPUTS = "shared_inputs";
    /** Metadata key: total tokens each Gram was averaged over. */
    public static final String TOKENS = "tokens";

    private GramCalibrator() {}

    /** The Gram file of {@code modelDir} on {@code data} (null: self-sampled), written to {@code out}. */
    public static Path calibrate(Path modelDir, Path data, Calibrator.Settings s, Path out) {
        Path src = run(modelDir, data, s);
        if (src.equals(out)) return out;
        try {
            Files.copy(src, out, StandardCopyOption.REPLACE_EXISTING);
            if (s.cacheDir() == null) Files.delete(src);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
        return out;
    }

    /** Computes (or finds in the cache) the Gram file and returns its path (a temporary file when there is no cache). */
    public static Path run(Path modelDir, Path data, Calibrator.Settings s) {
        CudaForward.checkDevice(s.device());   // before data is read or sampled
        Parallel par = new Parallel(s.threads());
        try (LlamaModel model = LlamaModel.open(modelDir, par, data == null)) {
            TokenBlocks blocks = null;
            String dataKey;
            if (data != null) {
                blocks = Calibrator.loadData(modelDir, data, model.config().bosTokenId(), s);
                dataKey = "gram:data:" + blocks.fingerprint() + ":" + blocks.seqLen();
            } else {
                dataKey = "gram:self:" + s.seed() + ":" + (s.seqLen() > 0 ? s.seqLen() : 512);
            }
            Path target;
            try {
                if (s.cacheDir() != null) {
                    Files.createDirectories(s.cacheDir());
                    target = s.cacheDir().resolve("gram-" + Calibrator.cacheKey(modelDir, dataKey, s) + ".safetensors");
                    if (Files.isRegularFile(target)) {
                        LOG.info("Gram statistics for " + modelDir + " found in cache " + target);
                        return target;
                    }
                } else {
                    target = Files.createTempFile("mergeforge-gram-", ".safetensors");
                    Files.delete(target);
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot prepare " + s.cacheDir() + " or a temporary file: " + e.getMessage(), e);
            }
            if (blocks == null) {
                int len = s.seqLen() > 0 ? s.seqLen() : 512;
                LOG.warning("no calibration data given: sampling " + s.samples() + " blocks of " + len
                        + " tokens from " + modelDir + " itself (seed " + s.seed() + ")");
                blocks = SelfSampler.sample(model, s.samples(), len, s.seed());
            }
            TokenBlocks calib = blocks;
            return CudaForward.apply(model, s.device(), f -> {
                write(model, f, calib, target);
                return target;
            });
        } finally {
            par.shutdown();
        }
    }

    /** Runs the blocks through an open model on the CPU and writes the Gram file atomically to {@code out}. */
    public static void write(LlamaModel model, TokenBlocks blocks, Path out) { write(model, model, blocks, out); }

    /**
     * The same with the forward pass on {@code fwd}. On a GPU the module inputs are copied back and
     * the Grams summed on the host (GramStats), so only the forward pass itself is accelerated.
     */
    public static void write(LlamaModel model, ForwardPass fwd, TokenBlocks blocks, Path out) {
        List<GramStats.Entry> entries = GramStats.entries(model.config());
        List<SafetensorsWriter.Entry> layout = new ArrayList<>();
        for (GramStats.Entry e : entries) layout.add(new SafetensorsWriter.Entry(e.name(), DType.F32, e.shape()));
        Path tmp = out.resolveSibling(out.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        long t0 = System.nanoTime();
        try {
            Files.deleteIfExists(tmp);
            try (SafetensorsWriter w = new SafetensorsWriter(tmp, layout, metadata(model, blocks))) {
                GramStats g = new GramStats(model.config(), model.parallel(), w::slot);
                fwd.observe(blocks.blocks(), g);
                g.finish();
            }
            Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write Gram file " + out + ": " + e.getMessage(), e);
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        LOG.info(String.format("Gram statistics of %s on %d tokens in %.2f s", model.name(), blocks.tokens(), secs));
    }

    static Map<String, String> metadata(LlamaModel model, TokenBlocks blocks) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(StatsFile.FORMAT, Calibrator.FORMAT);
        meta.put(StatsFile.STAT, "gram");
        meta.put(StatsFile.MODEL, model.name());
        meta.put(StatsFile.FINGERPRINT, blocks.fingerprint());
        meta.put(StatsFile.SAMPLES, Integer.toString(blocks.samples()));
        meta.put(StatsFile.SEQ_LEN, Integer.toString(blocks.seqLen()));
        meta.put(TOKENS, Long.toString(blocks.tokens()));
        meta.put("data", blocks.source());
        try {
            meta.put(SHARED_INPUTS, new ObjectMapper().writeValueAsString(GramStats.sharedInputs(model.config())));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        return meta;
    }
}
