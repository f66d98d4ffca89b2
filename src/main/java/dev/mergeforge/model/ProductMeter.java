package dev.mergeforge.model;

import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counts the floating-point operations of the forward pass's products and the wall and process
 * CPU time spent in them, while switched on: calib-bench's achieved GFLOP/s. Two kinds: the
 * linear layers (2·tokens·in·out per {@code MatMul.linear}) and attention on the GEMM route (its
 * two products; the time is the whole attention step, softmax included). Off by default (one
 * volatile read per product); meant for one forward pass at a time, since concurrent products
 * would count their overlapping time twice.
 */
public final class ProductMeter {
    /** What is counted. */
    public enum Kind { LINEAR, ATTENTION }

    private static volatile boolean on;
    private static final LongAdder[][] COUNTS = new LongAdder[Kind.values().length][3];
    private static final com.sun.management.OperatingSystemMXBean OS =
            ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os ? os : null;

    static {
        for (LongAdder[] k : COUNTS) for (int i = 0; i < 3; i++) k[i] = new LongAdder();
    }

    private ProductMeter() {}

    /** One kind's count: operations, wall nanoseconds and process CPU nanoseconds (−1 where unknown). */
    public record Part(long flops, long nanos, long cpuNanos) {
        public double gflopsPerSecond() { return nanos == 0 ? 0 : flops / (double) nanos; }
        public double gflopsPerCpuSecond() { return cpuNanos <= 0 ? 0 : flops / (double) cpuNanos; }

        Part plus(Part o) { return new Part(flops + o.flops, nanos + o.nanos, cpuNanos < 0 ? -1 : cpuNanos + o.cpuNanos); }
    }

    /** What the meter counted between {@link #start} and {@link #stop}. */
    public record Reading(Part linear, Part attention) {
        public Part total() { return linear.plus(attention); }
    }

    /** Zeroes the counts and starts counting. */
    public static void start() {
        for (LongAdder[] k : COUNTS) for (LongAdder a : k) a.reset();
        on = true;
    }

    /** Stops counting and returns what was counted since {@link #start}. */
    public static Reading stop() {
        on = false;
        return new Reading(part(Kind.LINEAR), part(Kind.ATTENTION));
    }

    private static Part part(Kind k) {
        LongAdder[] c = COUNTS[k.ordinal()];
        return new Part(c[0].sum(), c[1].sum(), OS == null ? -1 : c[2].sum());
    }

    /** This process's CPU time in nanoseconds, or −1 where the JVM does not report it. */
    public static long processCpuNanos() { return OS == null ? -1 : OS.getProcessCpuTime(); }

    static boolean on() { return on; }

    static long cpuNow() { return OS == null ? 0 : OS.getProcessCpuTime(); }

    static void add(Kind kind, long flops, long nanos, long cpuNanos) {
        LongAdder[] c = COUNTS[kind.ordinal()];
        c[0].add(flops);
        c[1].add(nanos);
        c[2].add(cpuNanos);
    }
}
