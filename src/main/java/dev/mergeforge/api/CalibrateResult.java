package dev.mergeforge.api;

import java.nio.file.Path;

/** A finished calibration: the stats file written and how long it took. */
public record CalibrateResult(Path output, double seconds) {}
