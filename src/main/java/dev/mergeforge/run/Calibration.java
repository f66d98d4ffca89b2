package dev.mergeforge.run;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.calib.Calibrator;
import dev.mergeforge.config.CalibrationSettings;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;

import java.nio.file.Files;
import java.nio.file.Path;

/** Runs (or reuses from the cache) the base model's AIM calibration for a merge config. */
public final class Calibration {
    private Calibration() {}

    /** Where calibration results are cached (see {@link StatsLocator#defaultCacheDir()}). */
    public static Path cacheDir() { return StatsLocator.defaultCacheDir(); }

    /** The stats file for {@code base}: given by the settings, or calibrated now (cached across runs). */
    public static Path statsFor(Checkpoint base, CalibrationSettings c, Backend backend, Events ev) {
        if (c.stats() != null) {
            Path p = Path.of(c.stats());
            if (!Files.isRegularFile(p)) throw new ConfigException("calibration.stats: file " + p + " not found; run `mergeforge calibrate` to make it");
            return p;
        }
        Path data = c.data() == null ? null : Path.of(c.data());
        if (data != null && !Files.isRegularFile(data)) {
            throw new ConfigException("calibration.data: file " + data + " not found; give a text file, JSONL with \"text\" or with \"input_ids\"");
        }
        Calibrator.Settings s = Calibrator.Settings.defaults().withCacheDir(cacheDir());
        if (c.samples() != null) s = s.withSamples(c.samples());
        if (c.seqLen() != null) s = s.withSeqLen(c.seqLen());
        ev.note("calibrating " + base.ref() + (data == null ? " on self-generated samples" : " on " + data) + " (cached in " + cacheDir() + ")");
        try {
            Files.createDirectories(cacheDir());
            // the relaxer maps a file: this run's copy lives in the temp dir, the cache keeps its own
            Path out = Files.createTempFile("mergeforge-aim-", ".safetensors");
            Files.delete(out);
            out.toFile().deleteOnExit();
            return Calibrator.calibrate(base.dir(), data, s, out);
        } catch (java.io.IOException e) {
            throw new ConfigException("cannot create the cache folder " + cacheDir() + " or a temporary file: " + e.getMessage()
                    + "; set MERGEFORGE_CACHE (and java.io.tmpdir) to writable folders");
        }
    }
}
