package dev.mergeforge.api;

/**
 * What a running call reports, in order: {@link Started}, a {@link TensorWritten} per output tensor,
 * {@link Note}s and {@link Warning}s, then {@link Finished} or {@link Failed}. The same events as the command line's
 * {@code --events json} (docs/events.md), as values.
 */
public sealed interface Event {
    record Started(String method, int tensors, long bytesIn, long bytesOut, String backend) implements Event {}

    record TensorWritten(int index, int total, String name, long bytesIn, long bytesOut, double elapsedSeconds) implements Event {}

    record Note(String message) implements Event {}

    /**
     * Something the caller should know before trusting the result (a config key accepted for
     * mergekit compatibility that changes nothing; models of another architecture merged under
     * allowCrimes). The command line prints it on stderr as "warning: " + message.
     */
    record Warning(String message) implements Event {}

    /**
     * The memory budget a merge runs under (docs/io.md, "Memory budget"), sent before the first
     * tensor: {@code line} as the log prints it, the budget, the chunk size it gives and the peak it predicts.
     */
    record Budget(String line, long budgetBytes, long chunkElements, long predictedPeakBytes) implements Event {}

    record Finished(String output, int tensors, long bytesIn, long bytesOut, double seconds, long peakWorkingBytes, long peakRssBytes)
            implements Event {}

    record Failed(String message, int exitCode) implements Event {}
}
