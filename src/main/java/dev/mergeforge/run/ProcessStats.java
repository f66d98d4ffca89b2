package dev.mergeforge.run;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's memory as Linux reports it in /proc/self/status (0 where unavailable). */
public final class ProcessStats {
    private ProcessStats() {}

    /** Peak resident set size (VmHWM) in bytes. */
    public static long peakRssBytes() { return statusKb("VmHWM:") * 1024; }

    /** Current resident set size (VmRSS) in bytes. */
    public static long rssBytes() { return statusKb("VmRSS:") * 1024; }

    private static long statusKb(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(key)) return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]);
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }
}
