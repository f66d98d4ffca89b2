package dev.mergeforge.run;

import dev.mergeforge.calib.Calibrator;
import dev.mergeforge.calib.GramCalibrator;
import dev.mergeforge.config.CalibrationSettings;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.merge.MethodSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Finds the per-model statistics file a data-informed method reads: the {@code stats:} file of the
 * model's {@code calibration:} block, or, for Grams, the file computed now on its {@code data:}
 * (or on text the model samples itself when the block names neither), cached across runs.
 */
@FunctionalInterface
public interface StatsLocator {

    /**
     * @param where the config place of the calibration block, for messages (e.g. "models[1].calibration")
     */
    Path locate(Checkpoint model, CalibrationSettings settings, MethodSpec.Stats kind, String where);

    /** The locator the CLI uses: cached in {@code cacheDir} (null: no cache), notes through {@code note}. */
    static StatsLocator calibrating(Path cacheDir, Consumer<String> note) {
        return (model, c, kind, where) -> {
            if (c.stats() != null) {
                Path p = Path.of(c.stats());
                if (!Files.isRegularFile(p)) {
                    throw new ConfigException(where + ".stats: file " + p + " not found; "
                            + (kind == MethodSpec.Stats.GRAM ? "run `mergeforge calibrate " + model.ref() + " --stat gram -o " + p + "` to make it"
                            : "give the Fisher file of " + model.ref() + " (see docs/data-informed.md)"));
                }
                return p;
            }
            return switch (kind) {
                case NONE -> throw new IllegalArgumentException("no statistics needed");
                case FISHER -> throw new ConfigException(where + ": fisher needs a precomputed Fisher file (stats: FILE) for "
                        + model.ref() + "; mergeforge has no backward pass to compute one (docs/data-informed.md lists the format)");
                case GRAM -> {
                    Path data = c.data() == null ? null : Path.of(c.data());
                    if (data != null && !Files.isRegularFile(data)) {
                        throw new ConfigException(where + ".data: file " + data + " not found; give a text file, JSONL with \"text\" or with \"input_ids\"");
                    }
                    Calibrator.Settings s = Calibrator.Settings.defaults().withCacheDir(cacheDir);
                    if (c.samples() != null) s = s.withSamples(c.samples());
                    if (c.seqLen() != null) s = s.withSeqLen(c.seqLen());
                    note.accept("computing Gram statistics of " + model.ref() + (data == null ? " on self-generated samples" : " on " + data)
                            + (cacheDir == null ? "" : " (cached in " + cacheDir + ")"));
                    yield GramCalibrator.run(model.dir(), data, s);
                }
            };
        };
    }

    /** -Dmergeforge.cache, else $MERGEFORGE_CACHE, else $XDG_CACHE_HOME/mergeforge, else ~/.cache/mergeforge (calibration results of AIM and RegMean). */
    public static Path defaultCacheDir() {
        String prop = System.getProperty("mergeforge.cache");
        if (prop != null && !prop.isBlank()) return Path.of(prop);
        String env = System.getenv("MERGEFORGE_CACHE");
        if (env != null && !env.isBlank()) return Path.of(env);
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "mergeforge");
        return Path.of(System.getProperty("user.home"), ".cache", "mergeforge");
    }
}
