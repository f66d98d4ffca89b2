package dev.mergeforge.aim;

import dev.mergeforge.arch.TensorRoles;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;

import java.nio.file.Path;
import java.util.List;

/**
 * Activation-Informed Merging (Nobari et al. 2025, arXiv 2502.02421), the relaxation of
 * docs/aim.md applied after any method: with s the base model's mean |input| per input channel
 * (from a stats file), I = s / max(s) (optionally I^p), and
 * theta = theta_0 + (theta_merged - theta_0) * (1 - (1 - omega) * I) along the input-channel axis.
 * Embeddings, biases and a tied lm_head are left as merged.
 *
 * <p>Lifetime: owns the mapped stats file until {@link #close()}.
 */
public final class AimRelaxer implements AutoCloseable {
    /** How importance is derived from the normalised statistic. */
    public enum Scaling { IDENTITY, POWER }

    /**
     * @param omega   share of the delta kept on the most important channel, in [0, 1]
     * @param power   exponent p for {@link Scaling#POWER} (importance I^p), > 0
     * @param include substrings a tensor name must contain one of (empty: all)
     * @param exclude substrings that exclude a tensor
     */
    public record Settings(double omega, Scaling scaling, double power, List<String> include, List<String> exclude) {
        public Settings {
            if (!(omega >= 0 && omega <= 1)) throw new ConfigException("aim.omega must be in [0, 1], got " + omega);
            if (!(power > 0) || !Double.isFinite(power)) throw new ConfigException("aim.power must be a positive number, got " + power);
            include = List.copyOf(include);
            exclude = List.copyOf(exclude);
        }

        public static Settings of(double omega) { return new Settings(omega, Scaling.IDENTITY, 1.0, List.of(), List.of()); }
    }

    private final SafetensorsFile stats;
    private final Settings settings;
    private final TensorRoles roles;
    private final boolean tiedHead;

    /**
     * @param roles    the base model's architecture: which tensors are embeddings and the head, and
     *                 which axis of a weight holds its input channels (GPT-2's Conv1D stores (in, out))
     * @param tiedHead true when the head is tied to the embeddings (it then follows them: untouched)
     */
    public AimRelaxer(Path statsFile, Settings settings, TensorRoles roles, boolean tiedHead) {
        this.stats = SafetensorsFile.open(statsFile);
        this.settings = settings;
        this.roles = roles;
        this.tiedHead = tiedHead;
    }

    public Settings settings() { return settings; }

    public Path statsPath() { return stats.path(); }

    /** True when this tensor is relaxed: it has a statistic, passes the filters and is not an embedding, bias or tied head. */
    public boolean applies(String name) {
        if (roles.isEmbedding(name) || name.endsWith(".bias")) return false;
        if (tiedHead && roles.isHead(name)) return false;
        if (!settings.include().isEmpty() && settings.include().stream().noneMatch(name::contains)) return false;
        if (settings.exclude().stream().anyMatch(name::contains)) return false;
        return stats.contains(name);
    }

    /** Which axis of this tensor holds the input channels. */
    public Backend.Axis axis(String name, Shape shape) {
        if (shape.rank() <= 1) return Backend.Axis.ELEMENTS;
        return roles.storedInOut(name) ? Backend.Axis.ROWS : Backend.Axis.COLUMNS;
    }

    /** Relaxes {@code merged} toward {@code base} in place when the tensor {@link #applies}. */
    public void apply(Backend be, String name, Shape shape, Tile base, Tile merged) {
        if (!applies(name)) return;
        Backend.Axis axis = axis(name, shape);
        float[] imp = importance(name, shape, axis);
        be.relax(base, merged, Tile.ofArray(imp), (float) settings.omega(), axis, merged);
    }

    /**
     * The relaxation of this tensor as the last step of a fused combination, or null when the
     * tensor is not relaxed: the same importance, omega and axis {@link #apply} uses.
     */
    public dev.mergeforge.backend.Combination.Relax relaxation(String name, Shape shape) {
        if (!applies(name)) return null;
        Backend.Axis axis = axis(name, shape);
        return new dev.mergeforge.backend.Combination.Relax(importance(name, shape, axis), (float) settings.omega(), axis, Math.max(1, shape.cols()));
    }

    /** I = s / max(s), then I^p for power scaling; an all-zero statistic gives I = 0 (the delta is kept). */
    float[] importance(String name, Shape shape, Backend.Axis axis) {
        TensorView v = stats.tensor(name);
        long channels = axis.channels(shape.numel(), shape.cols());
        if (v.dtype() != DType.F32 || v.numel() != channels) {
            throw new CheckpointException("AIM statistic '" + name + "' in " + stats.path() + " is " + v.dtype() + v.shape()
                    + " but the tensor " + shape + " has " + channels + " input channels; use a stats file computed on this base model");
        }
        float[] s = v.data().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN));
        float max = 0f;
        for (int j = 0; j < s.length; j++) {
            if (!(s[j] >= 0f) || Float.isInfinite(s[j])) {
                throw new CheckpointException("AIM statistic '" + name + "' in " + stats.path() + " has an invalid value " + s[j]
                        + " at channel " + j + " (must be finite and >= 0); recompute the statistic");
            }
            max = Math.max(max, s[j]);
        }
        float[] imp = new float[s.length];
        if (max == 0f) return imp;
        for (int j = 0; j < s.length; j++) {
            float i = s[j] / max;
            imp[j] = settings.scaling() == Scaling.POWER ? (float) Math.pow(i, settings.power()) : i;
        }
        return imp;
    }

    @Override
    public void close() { stats.close(); }
}
