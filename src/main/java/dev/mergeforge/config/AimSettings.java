package dev.mergeforge.config;

import java.util.List;

/**
 * The {@code aim:} block: Activation-Informed Merging (Nobari et al. 2025, arXiv 2502.02421)
 * applied after the merge method. θ = θ₀ + Δ ⊙ (1 − (1 − ω)·I) with I the base model's per-input-channel
 * importance, I = s / max(s), optionally raised to {@code power}.
 *
 * @param omega       share of the delta kept on the most important channel, in [0, 1] (default 0.4)
 * @param stats       precomputed AIM statistics file, or null (then {@code calibration} or the default set)
 * @param calibration calibration data for the base model, or null
 * @param scaling     {@code identity} (I as is) or {@code power} (I^power)
 * @param power       exponent for {@code scaling: power}, finite and > 0 (default 1)
 * @param include     tensor-name substrings AIM applies to; empty means every eligible tensor
 * @param exclude     tensor-name substrings AIM skips (checked after include)
 */
public record AimSettings(double omega, String stats, CalibrationSettings calibration, String scaling, double power,
                          List<String> include, List<String> exclude) {
    public static final double DEFAULT_OMEGA = 0.4;
    public static final List<String> SCALINGS = List.of("identity", "power");

    public AimSettings {
        if (!(omega >= 0 && omega <= 1)) throw new IllegalArgumentException("omega must be in [0, 1], got " + omega);
        if (!SCALINGS.contains(scaling)) throw new IllegalArgumentException("scaling must be one of " + SCALINGS + ", got '" + scaling + "'");
        if (!(Double.isFinite(power) && power > 0)) throw new IllegalArgumentException("power must be finite and > 0, got " + power);
        if (stats != null && calibration != null) {
            throw new IllegalArgumentException("give aim stats or aim calibration, not both");
        }
        include = List.copyOf(include);
        exclude = List.copyOf(exclude);
    }

    /** AIM with every default: ω = 0.4, statistics from the default calibration set. */
    public static AimSettings defaults() {
        return new AimSettings(DEFAULT_OMEGA, null, null, "identity", 1, List.of(), List.of());
    }

    /** Whether AIM touches the named tensor under include/exclude (eligibility by module type is the caller's). */
    public boolean selects(String tensorName) {
        boolean in = include.isEmpty() || include.stream().anyMatch(tensorName::contains);
        return in && exclude.stream().noneMatch(tensorName::contains);
    }
}
