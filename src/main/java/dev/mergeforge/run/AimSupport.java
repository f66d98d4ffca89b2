package dev.mergeforge.run;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.arch.TensorRoles;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.config.AimSettings;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** Builds the AIM relaxer a config asks for (from a stats file, or by calibrating the base model). */
public final class AimSupport {
    private AimSupport() {}

    /** The relaxer for {@code cfg.aim()}, or null when the config has no aim: block. */
    public static AimRelaxer relaxer(MergeConfig cfg, Planner.Plan plan, Planner.Inputs inputs, Backend backend, Events ev) {
        AimSettings a = cfg.aim();
        if (a == null) return null;
        if (cfg.baseModel() == null) {
            throw new ConfigException("aim: needs base_model (AIM pulls the merged delta back toward the base); add base_model: to the config");
        }
        Checkpoint base = inputs.get(cfg.baseModel());
        Path stats = statsFile(a, base, backend, ev);
        TensorRoles roles = Architectures.roles(base.config());
        return new AimRelaxer(stats, settings(a), roles, roles.tiedHead(base.config()));
    }

    public static AimRelaxer.Settings settings(AimSettings a) {
        AimRelaxer.Scaling scaling = switch (a.scaling() == null ? "identity" : a.scaling().toLowerCase(Locale.ROOT)) {
            case "identity" -> AimRelaxer.Scaling.IDENTITY;
            case "power" -> AimRelaxer.Scaling.POWER;
            default -> throw new ConfigException("aim.scaling: unknown value '" + a.scaling() + "'; valid: identity, power");
        };
        return new AimRelaxer.Settings(a.omega(), scaling, a.power(), a.include(), a.exclude());
    }

    public static Path statsFile(AimSettings a, Checkpoint base, Backend backend, Events ev) {
        if (a.stats() != null) {
            Path p = Path.of(a.stats());
            if (!Files.isRegularFile(p)) {
                throw new ConfigException("aim.stats: file " + p + " not found; run `mergeforge calibrate` on the base model to make it");
            }
            return p;
        }
        if (a.calibration() != null) return Calibration.statsFor(base, a.calibration(), backend, ev);
        throw new ConfigException("aim: needs either stats: FILE or calibration: {data: ...}; see `mergeforge calibrate --help`");
    }
}
