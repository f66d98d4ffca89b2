package dev.mergeforge.run;

/**
 * What a merge reports as it goes: to a person on stderr ({@link Progress}) or, for tools that
 * call mergeforge as a backend, as one JSON object per line ({@link JsonEvents}).
 */
public interface Events {
    void start(String method, int tensors, long bytesIn, long bytesOut, String backend);

    void tensor(int index, int total, String name, long bytesIn, long bytesOut, double elapsedSeconds);

    void note(String message);

    void done(String outputDir, int tensors, long bytesIn, long bytesOut, double seconds, long peakWorkingBytes, long peakRssBytes);

    void error(String message, int exitCode);

    /** Events that go nowhere (tests, dry runs). */
    Events NONE = new Events() {
        @Override public void start(String m, int t, long bi, long bo, String b) {}
        @Override public void tensor(int i, int t, String n, long bi, long bo, double e) {}
        @Override public void note(String m) {}
        @Override public void done(String o, int t, long bi, long bo, double s, long p, long r) {}
        @Override public void error(String m, int c) {}
    };
}
