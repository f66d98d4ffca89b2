package dev.mergeforge.calib;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.model.cuda.CudaForward;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.model.ForwardPass;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * Computes the AIM statistic of a base model (Nobari et al. 2025, arXiv 2502.02421): runs the
 * calibration blocks through the model layer by layer and records mean |input| per input channel
 * of every weight-owning module except embeddings ({@link ActMeanStats}).
 *
 * <p>Results are cached in {@code cacheDir} under a key made of the model folder (path, and the
 * names, sizes and modification times of its config and weight files), the data fingerprint
 * (or the sampling seed) and the settings, so a sweep of merges calibrates once.
 */
public final class Calibrator {
    private static final Logger LOG = Logger.getLogger(Calibrator.class.getName());
    static final String FORMAT = "mergeforge-stats/1";
    /** Metadata key: comma-separated weights no calibration token reached (MoE experts); their statistic is zeros. */
    public static final String UNREACHED = "unreached";

    private Calibrator() {}

    /**
     * @param samples  number of blocks (default 128)
     * @param seqLen   tokens per block; 0 = automatic (see {@link CalibrationData#load})
     * @param seed     seed for self-sampled data
     * @param threads  worker threads for the forward pass; 0 = all cores
     * @param cacheDir where results are cached; null = no cache
     * @param device   where the forward pass runs: "cpu", "cuda" or "cuda:N" (GPU N; products on
     *                 cuBLAS). Self-sampling always runs on the CPU. The cache key holds the kind
     *                 (cpu or cuda, not the GPU index): the devices agree only to rounding, and a
     *                 CPU run must give the CPU's bits.
     */
    public record Settings(int samples, int seqLen, long seed, int threads, Path cacheDir, String device) {
        public Settings {
            if (samples <= 0) throw new ConfigException("calibration samples must be > 0, got " + samples);
            if (seqLen < 0 || seqLen == 1) throw new ConfigException("calibration seq_len must be >= 2 (or 0 for automatic), got " + seqLen);
            if (threads < 0) throw new ConfigException("threads must be >= 0, got " + threads);
            CudaForward.parseDevice(device);   // throws naming a bad value
        }

        public static Settings defaults() { return new Settings(128, 0, 42, 0, null, "cpu"); }

        public Settings withSamples(int n) { return new Settings(n, seqLen, seed, threads, cacheDir, device); }

        public Settings withSeqLen(int n) { return new Settings(samples, n, seed, threads, cacheDir, device); }

        public Settings withCacheDir(Path dir) { return new Settings(samples, seqLen, seed, threads, dir, device); }

        public Settings withThreads(int n) { return new Settings(samples, seqLen, seed, n, cacheDir, device); }

        public Settings withSeed(long n) { return new Settings(samples, seqLen, n, threads, cacheDir, device); }

        public Settings withDevice(String d) { return new Settings(samples, seqLen, seed, threads, cacheDir, d); }
    }

    /** The statistic of {@code modelDir} on {@code data} (null: self-sampled), from the cache when there. */
    public static StatsFile run(Path modelDir, Path data, Settings s) {
        CudaForward.checkDevice(s.device());   // before data is read or sampled
        Parallel par = new Parallel(s.threads());
        try (LlamaModel model = LlamaModel.open(modelDir, par, data == null)) {
            TokenBlocks blocks = null;
            String dataKey;
            if (data != null) {
                blocks = loadData(modelDir, data, model.bosTokenId(), s);
                dataKey = "data:" + blocks.fingerprint() + ":" + blocks.seqLen();
            } else {
                dataKey = "self:" + s.seed() + ":" + (s.seqLen() > 0 ? s.seqLen() : 512);
            }
            Path cached = s.cacheDir() == null ? null : s.cacheDir().resolve("act_mean-" + cacheKey(modelDir, dataKey, s) + ".safetensors");
            if (cached != null && Files.isRegularFile(cached)) {
                LOG.info("AIM statistic for " + modelDir + " found in cache " + cached);
                return StatsFile.read(cached);
            }
            if (blocks == null) {
                int len = s.seqLen() > 0 ? s.seqLen() : 512;
                LOG.warning("no calibration data given: sampling " + s.samples() + " blocks of " + len
                        + " tokens from " + modelDir + " itself (seed " + s.seed() + ")");
                blocks = SelfSampler.sample(model, s.samples(), len, s.seed());
            }
            TokenBlocks calib = blocks;
            StatsFile stats = CudaForward.apply(model, s.device(), f -> compute(model, f, calib));
            if (cached != null) {
                try {
                    Files.createDirectories(s.cacheDir());
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot create cache folder " + s.cacheDir() + ": " + e.getMessage(), e);
                }
                stats.write(cached);
            }
            return stats;
        } finally {
            par.shutdown();
        }
    }

    /** Runs {@link #run} and writes the stats file to {@code out}; returns {@code out}. */
    public static Path calibrate(Path modelDir, Path data, Settings s, Path out) {
        run(modelDir, data, s).write(out);
        return out;
    }

    /** The statistic alone: weight name -> mean |input| per input channel. */
    public static Map<String, float[]> actMeans(Path modelDir, Path data, Settings s) {
        return run(modelDir, data, s).vectors();
    }

    /** Runs the blocks through an open model on the CPU and packs the statistic with its metadata. */
    public static StatsFile compute(LlamaModel model, TokenBlocks blocks) { return compute(model, model, blocks); }

    /** The same with the forward pass on {@code fwd} (the model itself, or a GPU pass over it). */
    public static StatsFile compute(LlamaModel model, ForwardPass fwd, TokenBlocks blocks) {
        ActMeanStats stats = new ActMeanStats();
        long t0 = System.nanoTime();
        fwd.observe(blocks.blocks(), stats);
        double secs = (System.nanoTime() - t0) / 1e9;
        LOG.info(String.format("calibrated %s on %s, %d tokens in %.2f s (%.0f tokens/s)", model.name(), fwd.describe(),
                blocks.tokens(), secs, blocks.tokens() / secs));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(StatsFile.FORMAT, FORMAT);
        meta.put(StatsFile.STAT, "act_mean");
        meta.put(StatsFile.MODEL, model.name());
        meta.put(StatsFile.FINGERPRINT, blocks.fingerprint());
        meta.put(StatsFile.SAMPLES, Integer.toString(blocks.samples()));
        meta.put(StatsFile.SEQ_LEN, Integer.toString(blocks.seqLen()));
        meta.put("data", blocks.source());
        List<String> unreached = stats.unreached();
        if (!unreached.isEmpty()) {
            // an expert no calibration token was routed to: zeros (AIM then keeps its whole delta)
            LOG.warning(unreached.size() + " module(s) saw no calibration token, their statistic is zeros: " + String.join(", ", unreached));
            meta.put(UNREACHED, String.join(",", unreached));
        }
        return new StatsFile(stats.means(), meta);
    }

    static TokenBlocks loadData(Path modelDir, Path data, int bos, Settings s) {
        CalibrationData.Documents peek = CalibrationData.read(data);
        if (peek.pretokenized()) return CalibrationData.load(data, null, bos, s.samples(), s.seqLen());
        try (TextTokenizer tok = TextTokenizer.open(modelDir)) {
            return CalibrationData.load(data, tok, bos, s.samples(), s.seqLen());
        }
    }

    /** sha-256 (first 16 hex digits) of everything the result depends on. */
    static String cacheKey(Path modelDir, String dataKey, Settings s) {
        StringBuilder k = new StringBuilder(FORMAT).append("\nact_mean\n").append(modelDir.toAbsolutePath().normalize());
        try (Stream<Path> files = Files.list(modelDir)) {
            List<Path> relevant = files.filter(p -> {
                String n = p.getFileName().toString();
                return n.endsWith(".safetensors") || n.equals("config.json") || n.endsWith(".index.json");
            }).sorted().toList();
            for (Path p : relevant) {
                k.append('\n').append(p.getFileName()).append(' ').append(Files.size(p)).append(' ')
                        .append(Files.getLastModifiedTime(p).toMillis());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + modelDir + ": " + e.getMessage(), e);
        }
        k.append('\n').append(dataKey).append('\n').append(s.samples()).append(' ').append(s.seqLen());
        if (!s.device().equals("cpu")) k.append("\ndevice cuda");  // CPU keys stay as before
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(k.toString().getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(h, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
