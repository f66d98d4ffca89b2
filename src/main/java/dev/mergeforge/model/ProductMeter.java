package dev.mergeforge.model;

import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counts the floating-point operations of the forward pass's products (2·tokens·in·out per
 * {@code MatMul.linear}) and the wall and process CPU time spent in them, while switched on:
 * calib-bench's achieved GFLOP/s. Off by default (one volatile read per product); meant for one
 * forward pass at a time, since concurrent products would count their overlapping time twice.
 */
public final class ProductMeter {
    private static volatile boolean on;
    private static final LongAdder FLOPS = new LongAdder(), NANOS = new LongAdder(), CPU_NANOS = new LongAdder();
    private static final com.sun.management.OperatingSystemMXBean OS =
            ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os ? os : null;

    private ProductMeter() {}

    /** What the meter counted: operations, wall nanoseconds and process CPU nanoseconds (−1 where unknown). */
    public record Reading(long flops, long nanos, long cpuNanos) {
        public double gflopsPerSecond() { return nanos == 0 ? 0 : flops / (double) nanos; }
        public double gflopsPerCpuSecond() { return cpuNanos <= 0 ? 0 : flops / (double) cpuNanos; }
    }

    /** Zeroes the counts and starts counting. */
    public static void start() {
        FLOPS.reset();
        NANOS.reset();
        CPU_NANOS.reset();
        on = true;
    }

    /** Stops counting and returns what was counted since {@link #start}. */
    public static Reading stop() {
        on = false;
        return new Reading(FLOPS.sum(), NANOS.sum(), OS == null ? -1 : CPU_NANOS.sum());
    }

    /** This process's CPU time in nanoseconds, or −1 where the JVM does not report it. */
    public static long processCpuNanos() { return OS == null ? -1 : OS.getProcessCpuTime(); }

    static boolean on() { return on; }

    static long cpuNow() { return OS == null ? 0 : OS.getProcessCpuTime(); }

    static void add(long flops, long nanos, long cpuNanos) {
        FLOPS.add(flops);
        NANOS.add(nanos);
        CPU_NANOS.add(cpuNanos);
    }
}
