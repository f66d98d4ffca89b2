package dev.mergeforge.api;

import java.nio.file.Path;

/** A finished merge: where it is, what it moved, how long it took and the memory it used. */
public record MergeResult(Path output, int tensors, long bytesIn, long bytesOut, double seconds, long peakWorkingBytes, long peakRssBytes) {}
