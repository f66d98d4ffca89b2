package dev.mergeforge.cli;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.config.CalibrationSettings;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.run.Events;

import java.nio.file.Path;

/** Runs (or reuses from the cache) the base model's AIM calibration for a merge config. */
final class Calibration {
    private Calibration() {}

    static Path statsFor(Checkpoint base, CalibrationSettings c, Backend backend, Events ev) {
        if (c.stats() != null) return Path.of(c.stats());
        throw new ConfigException("aim.calibration: calibrating inside a merge is not available in this build; run `mergeforge calibrate "
                + base.ref() + " --stat act_mean -o STATS.safetensors` and use aim: {stats: STATS.safetensors}");
    }
}
